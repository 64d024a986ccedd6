package integration

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	epursesim "github.com/cardd/cardd/apdu/epurse/sim"
	"github.com/cardd/cardd/host"
	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/offline"
	"github.com/cardd/cardd/printer/sim"
	"github.com/cardd/cardd/reader/vpcd"
)

// posVoid runs `cardd pos void` against the running daemon: its output and
// exit code.
func posVoid(t *testing.T, env []string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(binary(t, "cardd"), append([]string{"pos", "void"}, args...)...)
	cmd.Env = append(append(os.Environ(), "CARDD_CONFIG="), env...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	}
	t.Fatalf("cardd pos void %v: %v\n%s", args, err, out)
	return "", -1
}

// TestPOSVoidRefundsOnce: `cardd run --mode pos` with the PSAM and the
// reference host (`cardhost serve`). A sale of 12.50 is voided with the card still on the
// reader: the refund is loaded at once, the card back at 100.00. A second
// void of it is refused (exit 2, "already voided"). A sale of 8.00 voided
// after the card left is refunded at the card's next tap at another
// terminal (a second daemon, another terminal id and journal), once: a
// further tap there loads nothing. A sale voided while the host is down is
// journaled and owed, becomes the refund once the daemon reaches the host,
// and loads at the card's next tap. Each void prints its slip (冲正退款).
// A sale voided after pos.void_window is refused (exit 2) and keeps its
// money. The host holds exactly one refund
// per voided sale, each consumed once, tied to the sale's row and TAC.
func TestPOSVoidRefundsOnce(t *testing.T) {
	requirePCSC(t)
	ctx := context.Background()
	w := newHostWorld(t)
	insertPSAM(t, w.hostDir)
	const number, termB = "3101000000800024", "000000000002"
	path := w.issue(t, number, 10000)
	dir := t.TempDir()
	secretB, err := host.NewTerminalSecret()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.host.AddTerminal(ctx, termB, secretB, time.Now()); err != nil {
		t.Fatal(err)
	}
	secretFileB := filepath.Join(dir, "b.secret")
	if err := os.WriteFile(secretFileB, []byte(secretB+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The host is cardhost serve on the world's directory, as in the
	// field; the test reads its books through the same store.
	hostURL := startServe(t, w.hostDir)
	storeA, storeB := filepath.Join(dir, "a.db"), filepath.Join(dir, "b.db")
	link := filepath.Join(dir, "printer")
	p := openPrinter(t, link, sim.Options{})
	env := func(store, terminal, secretFile string, extra ...string) []string {
		return append([]string{"CARDD_MODE=pos", "CARDD_READER_SAM_PATTERN=^" + regexp.QuoteMeta(slot1Reader) + "$",
			"CARDD_HOST_URL=" + hostURL, "CARDD_HOST_SECRET_FILE=" + secretFile,
			"CARDD_STORE_PATH=" + store, "CARDD_TERMINAL_ID=" + terminal}, extra...)
	}
	start := func(e []string) *daemon {
		waitEmpty(t, 0)
		d := startDaemon(t, e...)
		d.waitLine(t, "reader added", 10*time.Second, func(m map[string]any) bool { return m["reader"] == slot1Reader && m["role"] == "sam" })
		return d
	}
	balance := func() int64 {
		f, err := epursesim.LoadCardFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return f.EPBalance
	}
	// sell charges amount and returns with the card still on the reader.
	sell := func(e []string, amount string) *inserted {
		wait := posCharge(t, e, "", amount, "--wait", "20s")
		in := insert(t, path, 0, vpcd.Options{})
		if out, err := wait(); err != nil || !strings.Contains(out, "paid "+amount) {
			t.Fatalf("cardd pos charge %s: %v\n%s", amount, err, out)
		}
		return in
	}

	// Terminal A: void with the card on the reader.
	secretFileA := w.secretFile(t, dir)
	envA := env(storeA, termID, secretFileA, printerEnv(link)...)
	d := start(envA)
	in := sell(envA, "12.50")
	if b := balance(); b != 8750 {
		t.Fatalf("balance %d after the sale, want 8750", b)
	}
	out, code := posVoid(t, envA, "--cashier", "c07")
	if code != 0 || !strings.Contains(out, "refunded onto the card: balance 100.00") {
		t.Fatalf("cardd pos void with the card on the reader: exit %d\n%s", code, out)
	}
	if b := balance(); b != 10000 {
		t.Fatalf("balance %d after the void, want 10000", b)
	}
	if err := in.remove(t); err != nil {
		t.Fatal(err)
	}
	if out, code := posVoid(t, envA); code != 2 || !strings.Contains(out, "sale already voided") {
		t.Fatalf("second void of the sale: exit %d\n%s; want 2, already voided", code, out)
	}

	// A second sale, voided once the card has gone: the refund waits.
	in = sell(envA, "8.00")
	if err := in.remove(t); err != nil {
		t.Fatal(err)
	}
	out, code = posVoid(t, envA)
	if code != 0 || !strings.Contains(out, "loads at the card's next tap, at any terminal") {
		t.Fatalf("cardd pos void with the card gone: exit %d\n%s", code, out)
	}
	if b := balance(); b != 9200 {
		t.Fatalf("balance %d with the refund waiting, want 9200", b)
	}
	d.stop(t, 10*time.Second)

	// Terminal B: the card's next tap loads the refund, once.
	envB := env(storeB, termB, secretFileB)
	d = start(envB)
	tapB := func() map[string]any {
		in := insert(t, path, 0, vpcd.Options{})
		m := d.waitLine(t, "the tap", 20*time.Second, func(m map[string]any) bool { return m["msg"] == "tap" })
		if err := in.remove(t); err != nil {
			t.Fatal(err)
		}
		return m
	}
	if m := tapB(); m["outcome"] != "ok" {
		t.Fatalf("the tap at terminal B: %v", m)
	}
	if b := balance(); b != 10000 {
		t.Fatalf("balance %d after the tap at terminal B, want 10000", b)
	}
	if m := tapB(); m["outcome"] != "ok" || balance() != 10000 {
		t.Fatalf("a second tap at terminal B: %v, balance %d; want 10000", m, balance())
	}
	d.stop(t, 10*time.Second)

	// Terminal A offline (its host link pointing nowhere): the void is
	// journaled and owed; back online, the sync loop makes it the refund,
	// which the card's next tap loads.
	envOff := env(storeA, termID, secretFileA, printerEnv(link)...)
	envOff = append(envOff, "CARDD_HOST_URL=http://127.0.0.1:1")
	d = start(envOff)
	in = sell(envOff, "3.00")
	if err := in.remove(t); err != nil {
		t.Fatal(err)
	}
	if out, code := posVoid(t, envOff); code != 0 || !strings.Contains(out, "the host has not answered") {
		t.Fatalf("an offline void: exit %d\n%s", code, out)
	}
	d.stop(t, 10*time.Second)
	if b := balance(); b != 9700 {
		t.Fatalf("balance %d after the offline void, want 9700", b)
	}
	d = start(envA)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if r, err := w.host.Refunds(ctx, number); err == nil && len(r) == 3 {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("the owed void did not become a refund within 30 s: %+v %v", r, err)
		}
	}
	in = insert(t, path, 0, vpcd.Options{})
	if m := d.waitLine(t, "the tap", 20*time.Second, func(m map[string]any) bool { return m["msg"] == "tap" }); m["outcome"] != "ok" {
		t.Fatalf("the tap after the offline void: %v", m)
	}
	if err := in.remove(t); err != nil {
		t.Fatal(err)
	}
	if b := balance(); b != 10000 {
		t.Fatalf("balance %d after the offline void's refund, want 10000", b)
	}
	// The slips: one 冲正退款 per void, naming its sale and refund.
	ctx20, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	var voidSlips []string
	for len(voidSlips) < 3 && ctx20.Err() == nil {
		voidSlips = voidSlips[:0]
		for _, rc := range p.Receipts() {
			if text := rc.Text(); strings.Contains(text, "冲正退款") {
				voidSlips = append(voidSlips, text)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(voidSlips) != 3 {
		t.Fatalf("%d void slips printed, want 3", len(voidSlips))
	}
	for i, want := range []string{"12.50", "8.00", "3.00"} {
		if !strings.Contains(voidSlips[i], "原交易") || !strings.Contains(voidSlips[i], want) || !strings.Contains(voidSlips[i], termID+"-V") {
			t.Errorf("void slip %d lacks its sale, %s or the void's id:\n%s", i, want, voidSlips[i])
		}
	}
	d.stop(t, 10*time.Second)

	// Terminal A with a 1 s window: a sale voided too late keeps its money.
	envLate := env(storeA, termID, secretFileA, "CARDD_POS_VOID_WINDOW=1s")
	d = start(envLate)
	in = sell(envLate, "5.00")
	if err := in.remove(t); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // past the window, which is the rule under test
	if out, code := posVoid(t, envLate); code != 2 || !strings.Contains(out, "outside the void window") {
		t.Fatalf("a void after the window: exit %d\n%s; want 2, outside the void window", code, out)
	}
	d.stop(t, 10*time.Second)
	if b := balance(); b != 9500 {
		t.Fatalf("balance %d after the late void, want 9500", b)
	}

	// The host: one refund per voided sale, tied to its row and TAC, each
	// consumed once.
	refunds, err := w.host.Refunds(ctx, number)
	if err != nil || len(refunds) != 3 {
		t.Fatalf("host refunds %+v %v; want 3", refunds, err)
	}
	st, err := offline.Open(storeA, termID)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	credits, err := w.host.Credits(ctx, number)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range refunds {
		sale, err := st.Get(ctx, r.SaleID)
		if err != nil || sale.TAC == "" || sale.TAC != r.SaleTAC || sale.AmountFen != r.AmountFen || r.Terminal != termID {
			t.Errorf("refund %+v of sale %+v (%v): not tied to its sale", r, sale, err)
		}
		n := 0
		for _, c := range credits {
			if c.ID == r.Credit {
				n++
				if c.State != hostapi.CreditConsumed || c.AmountFen != r.AmountFen {
					t.Errorf("refund credit %+v: want consumed, %d", c, r.AmountFen)
				}
			}
		}
		if n != 1 {
			t.Errorf("refund %s: %d credits", r.Credit, n)
		}
	}
	ledger, err := w.host.Ledger(ctx, number)
	if err != nil {
		t.Fatal(err)
	}
	events := map[string]map[string]int{}
	for _, c := range ledger.Credits {
		events[c.ID] = map[string]int{}
		for _, e := range c.Events {
			events[c.ID][e.Event]++
		}
	}
	for _, r := range refunds {
		if ev := events[r.Credit]; ev[host.EventConsumed] != 1 || ev[host.EventRefund] != 1 {
			t.Errorf("refund credit %s: ledger events %v; want one refund, consumed once", r.Credit, ev)
		}
	}
	if ledger.LoadedFen != 1250+800+300 || ledger.PendingFen != 0 {
		t.Errorf("host ledger: loaded %d, pending %d; want the three refunds (2350) loaded, none pending", ledger.LoadedFen, ledger.PendingFen)
	}
}
