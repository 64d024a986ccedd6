package integration

import (
	"context"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cardd/cardd/apdu/epurse"
	epursesim "github.com/cardd/cardd/apdu/epurse/sim"
	"github.com/cardd/cardd/offline"
	"github.com/cardd/cardd/printer/sim"
	"github.com/cardd/cardd/reader/vpcd"
)

// cardhostCLI runs the cardhost binary on the host directory.
func cardhostCLI(t *testing.T, hostDir string, args ...string) string {
	t.Helper()
	cmd := exec.Command(binary(t, "cardhost"), append(args, "--dir", hostDir)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("cardhost %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestTUnionCardEndToEnd: a card issued with `cardhost card issue --profile
// tunion` has a 19-digit T-Union number. A top-up added at the host loads on
// its first tap at a POS, the sale is paid on the same tap through pcscd and
// the PSAM, and its 19-digit number is in the terminal's journal and the
// host's ledger whole, and on the receipt masked.
func TestTUnionCardEndToEnd(t *testing.T) {
	requirePCSC(t)
	w := newHostWorld(t)
	insertPSAM(t, w.hostDir)
	dir := t.TempDir()
	secretFile := w.secretFile(t, dir)
	storePath := filepath.Join(dir, "cardd.db")
	link := filepath.Join(dir, "printer")
	p := openPrinter(t, link, sim.Options{})
	env := append([]string{"CARDD_MODE=pos", "CARDD_READER_SAM_PATTERN=^" + regexp.QuoteMeta(slot1Reader) + "$",
		"CARDD_HOST_URL=" + w.srv.URL, "CARDD_HOST_SECRET_FILE=" + secretFile,
		"CARDD_STORE_PATH=" + storePath, "CARDD_TERMINAL_ID=" + termID}, printerEnv(link)...)

	const number = "3104990600000000006" // 19 digits, as printed on a T-Union card
	path := filepath.Join(dir, "tunion.json")
	cardhostCLI(t, w.hostDir, "card", "issue", "--profile", "tunion", "--number", number, "--balance", "100.00", "--out", path)
	cardhostCLI(t, w.hostDir, "credit", "add", "--card", number, "--amount", "20.00", "--note", "wechat")
	f, err := epursesim.LoadCardFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if f.Info.Numbering != epurse.NumberTUnion || f.AID != "A000000632010105" {
		t.Fatalf("card file: numbering %q, AID %q", f.Info.Numbering, f.AID)
	}

	waitEmpty(t, 0)
	d := startDaemon(t, env...)
	d.waitLine(t, "reader added", 10*time.Second, func(m map[string]any) bool { return m["reader"] == slot1Reader && m["role"] == "sam" })
	wait := posCharge(t, env, "", "12.50", "--wait", "20s")
	in := insert(t, path, 0, vpcd.Options{})
	out, err := wait()
	in.remove(t)
	if err != nil || !strings.Contains(out, "paid 12.50: balance 107.50") {
		t.Fatalf("cardd pos charge 12.50: %v\n%s", err, out)
	}
	if f, err = epursesim.LoadCardFile(path); err != nil || f.EPBalance != 10750 {
		t.Fatalf("card balance %d (%v), want 10750", f.EPBalance, err)
	}

	// The terminal's journal knows the card by its 19 digits.
	rows := purchaseRows(t, storePath, number)
	if len(rows) != 1 || rows[0].State != offline.StateDone || rows[0].Card != number {
		t.Fatalf("purchase rows %+v", rows)
	}
	checkTAC(t, path, rows[0])
	// So does the host's ledger: the load, and the sale once uploaded.
	if l, err := w.host.Ledger(context.Background(), number); err != nil || l.LoadedFen != 2000 || l.PendingFen != 0 {
		t.Fatalf("host ledger %+v %v", l, err)
	}
	ledger := cardhostCLI(t, w.hostDir, "ledger", "--card", number)
	if !strings.Contains(ledger, number) && !strings.Contains(ledger, "3104***********0006") {
		t.Errorf("cardhost ledger names no card:\n%s", ledger)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		n, err := w.host.JournalCount(context.Background(), termID)
		if err == nil && n >= 3 { // the tap's read, the load, the purchase
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("host holds %d journal rows of the terminal (%v)", n, err)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// Two receipts, top-up and sale, each with the number masked and the
	// card's family.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	got, err := p.WaitReceipts(ctx, 2)
	if err != nil {
		t.Fatalf("receipts: %v", err)
	}
	for _, r := range got {
		text := r.Text()
		if !strings.Contains(text, "3104***********0006") || !strings.Contains(text, "交通联合") {
			t.Errorf("receipt lacks the masked number or the family:\n%s", text)
		}
		if strings.Contains(text, number) {
			t.Errorf("receipt shows the whole number:\n%s", text)
		}
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	if err := <-d.exit; err != nil {
		t.Fatalf("cardd exited with %v", err)
	}
}
