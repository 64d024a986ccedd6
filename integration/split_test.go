package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	epursesim "github.com/cardd/cardd/apdu/epurse/sim"
	"github.com/cardd/cardd/offline"
	"github.com/cardd/cardd/printer/sim"
	"github.com/cardd/cardd/reader/vpcd"
	"github.com/cardd/cardd/tap"
)

// lockedBuffer is a bytes.Buffer for a logger that writes from vpcd's
// serving goroutine while the test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// apduNumber is the number, in its insertion, of the first command APDU
// with ins that vpcd logged (Options.Logger at debug level, JSON): the N
// of Options.TearAfter that pulls the card during it.
func apduNumber(t *testing.T, log string, ins string) int {
	t.Helper()
	n := 0
	for _, line := range strings.Split(log, "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil || m["ins"] == nil {
			continue
		}
		n++
		if m["ins"] == ins {
			return n
		}
	}
	t.Fatalf("no APDU with INS %s in vpcd's log:\n%s", ins, log)
	return 0
}

// TestPOSSplitPayment: `cardd run` in mode pos with the simulated PSAM and
// the virtual printer; `cardd pos charge 30.00 --split` on a card holding
// 18.40 debits 18.40 once and reports 11.60 to collect, in the command's
// outcome, the log, the journal row and on the printed receipt. A second
// card like it is pulled during DEBIT FOR PURCHASE: the sale waits in doubt
// for it, and tapped again it holds exactly one debit of 18.40, the outcome
// again 11.60 to collect. A card holding nothing pays nothing: 30.00 to
// collect, no row, no receipt. Card D is pulled during DEBIT and the
// daemon restarted: the sale comes back split from the journal, and card D
// settles it once.
func TestPOSSplitPayment(t *testing.T) {
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
	const numberA, numberB, numberC, numberD = "3101000000810001", "3101000000810002", "3101000000810003", "3101000000810004"
	pathA := w.issue(t, numberA, 1840)
	pathB := w.issue(t, numberB, 1840)

	waitEmpty(t, 0)
	d := startDaemon(t, env...)
	d.waitLine(t, "reader added", 10*time.Second, func(m map[string]any) bool { return m["reader"] == slot1Reader && m["role"] == "sam" })

	const paidSplit = "paid 18.40 by card: collect 11.60 by other means (sale 30.00); balance 0.00"
	// Card A: the whole tap, its APDUs logged to find DEBIT's number.
	var apdus lockedBuffer
	wait := posCharge(t, env, "", "30.00", "--split", "--wait", "20s")
	in := insert(t, pathA, 0, vpcd.Options{Logger: slog.New(slog.NewJSONHandler(&apdus, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	out, err := wait()
	in.remove(t)
	if err != nil || !strings.Contains(out, paidSplit) {
		t.Fatalf("cardd pos charge 30.00 --split: %v\n%s", err, out)
	}
	d.waitLine(t, "split sale log", 10*time.Second, func(m map[string]any) bool {
		return m["msg"] == "split sale" && m["card_fen"] == float64(1840) && m["collect_fen"] == float64(1160)
	})
	checkSplitCard(t, storePath, pathA, numberA)
	debitAt := apduNumber(t, apdus.String(), "54")

	// Card B: pulled during DEBIT FOR PURCHASE, its answer lost.
	wait = posCharge(t, env, "", "30.00", "--split", "--wait", "20s")
	in = insert(t, pathB, 0, vpcd.Options{TearAfter: debitAt})
	out, err = wait()
	in.remove(t)
	if err == nil || !strings.Contains(out, "IN DOUBT") {
		t.Fatalf("split sale with the card pulled at DEBIT (APDU %d): %v\n%s", debitAt, err, out)
	}
	if f, err := epursesim.LoadCardFile(pathB); err != nil || f.EPBalance != 0 {
		t.Fatalf("card B after the tear: %+v %v: the DEBIT should have reached it", f, err)
	}
	// The cashier presses charge again (the same sale: it is in doubt) and
	// the card comes back.
	wait = posCharge(t, env, "", "30.00", "--split", "--wait", "20s")
	in = insert(t, pathB, 0, vpcd.Options{})
	out, err = wait()
	in.remove(t)
	if err != nil || !strings.Contains(out, paidSplit) {
		t.Fatalf("split sale, card tapped again: %v\n%s", err, out)
	}
	d.waitLine(t, "the recovering tap's log line", 10*time.Second, func(m map[string]any) bool {
		return m["msg"] == "tap" && m["outcome"] == "ok" && m["paid"] == true && m["split_card_fen"] == float64(1840) && m["split_collect_fen"] == float64(1160)
	})
	checkSplitCard(t, storePath, pathB, numberB)

	// Card C holds nothing: not debited, nothing journaled or printed, the
	// whole 30.00 to collect.
	pathC := w.issue(t, numberC, 0)
	wait = posCharge(t, env, "", "30.00", "--split", "--wait", "20s")
	in = insert(t, pathC, 0, vpcd.Options{})
	out, err = wait()
	in.remove(t)
	if err != nil || !strings.Contains(out, "card paid 0.00 (balance 0.00): collect 30.00 by other means (sale 30.00)") {
		t.Fatalf("split sale on an empty card: %v\n%s", err, out)
	}
	if rows := purchaseRows(t, storePath, numberC); len(rows) != 0 {
		t.Fatalf("empty card: purchase rows %+v", rows)
	}

	// Card D: pulled during DEBIT, then the daemon restarts. The sale
	// comes back from the journal in doubt, split: a whole sale cannot be
	// armed over it, the split one can, and card D settles it once.
	pathD := w.issue(t, numberD, 1840)
	wait = posCharge(t, env, "", "30.00", "--split", "--wait", "20s")
	in = insert(t, pathD, 0, vpcd.Options{TearAfter: debitAt})
	if out, err = wait(); err == nil || !strings.Contains(out, "IN DOUBT") {
		t.Fatalf("card D pulled at DEBIT: %v\n%s", err, out)
	}
	in.remove(t)
	d.stop(t, 10*time.Second)
	d = startDaemon(t, env...)
	d.waitLine(t, "the sale in doubt restored", 10*time.Second, func(m map[string]any) bool {
		return m["msg"] == "a purchase of the last run is in doubt: its sale waits for that card's next tap" && m["amount"] == "18.40"
	})
	d.waitLine(t, "reader added", 10*time.Second, func(m map[string]any) bool { return m["reader"] == slot1Reader && m["role"] == "sam" })
	whole := exec.Command(binary(t, "cardd"), "pos", "charge", "30.00")
	whole.Env = append(append(os.Environ(), "CARDD_CONFIG="), env...)
	if b, err := whole.CombinedOutput(); err == nil || !strings.Contains(string(b), "tap that card again") {
		t.Fatalf("a whole sale armed over the split sale in doubt: %v\n%s", err, b)
	}
	wait = posCharge(t, env, "", "30.00", "--split", "--wait", "20s")
	in = insert(t, pathD, 0, vpcd.Options{})
	out, err = wait()
	in.remove(t)
	if err != nil || !strings.Contains(out, paidSplit) {
		t.Fatalf("card D after the restart: %v\n%s", err, out)
	}
	checkSplitCard(t, storePath, pathD, numberD)

	// Every receipt shows both parts.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	got, err := p.WaitReceipts(ctx, 3)
	if err != nil {
		t.Fatalf("receipts: %v", err)
	}
	for i, rc := range got {
		text := rc.Text()
		for _, want := range []string{"消费成功", "应付 TOTAL", "30.00", "卡付 CARD", "18.40", "待收 DUE", "11.60"} {
			if !strings.Contains(text, want) {
				t.Errorf("receipt %d lacks %q:\n%s", i, want, text)
			}
		}
	}
	d.stop(t, 10*time.Second)
	if n := len(p.Receipts()); n != 3 {
		t.Errorf("%d receipts printed, want 3 (none for the empty card)", n)
	}
}

// checkSplitCard: the card at path holds 0.00 after one debit of 18.40,
// journaled done with its TAC and the split's terms.
func checkSplitCard(t *testing.T, storePath, path, number string) {
	t.Helper()
	f, err := epursesim.LoadCardFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if f.EPBalance != 0 {
		t.Fatalf("card %s holds %d, want 0 after one debit of 18.40", number, f.EPBalance)
	}
	rows := purchaseRows(t, storePath, number)
	if len(rows) != 1 || rows[0].State != offline.StateDone || rows[0].AmountFen != 1840 {
		t.Fatalf("card %s: purchase rows %+v, want one done of 18.40", number, rows)
	}
	if s, ok := tap.SplitOf(rows[0]); !ok || s.SaleFen != 3000 || s.CollectFen != 1160 {
		t.Fatalf("card %s: row detail %q lacks the split", number, rows[0].Detail)
	}
	checkTAC(t, path, rows[0])
}
