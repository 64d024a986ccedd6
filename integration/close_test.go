package integration

import (
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	epursesim "github.com/cardd/cardd/apdu/epurse/sim"
	"github.com/cardd/cardd/host"
	"github.com/cardd/cardd/reader/vpcd"
	"github.com/cardd/cardd/tap"
)

// TestCardCloseThroughServe is item 3's must-show through pcscd, `cardd
// run --mode pos` with the simulated PSAM, and `cardhost serve`: two named
// cards holding 45.60 each are closed with `cardhost card close`. Card A's
// next tap at the POS debits 45.60 once through the PSAM; the host, on the
// uploaded row (its TAC verified), records 45.60 due to the holder, listed
// by `cardhost refunds due`, and denies the card, which its next tap blocks
// on the chip (APPLICATION BLOCK).
// Card B is pulled during its closing DEBIT FOR PURCHASE: the card has
// debited, the tap is in doubt; tapped again, the recovery settles it from
// the card (GET TRANSACTION PROVE): still one debit and one refund due of
// 45.60, and the card blocked after.
func TestCardCloseThroughServe(t *testing.T) {
	requirePCSC(t)
	ctx := context.Background()
	w := newHostWorld(t)
	insertPSAM(t, w.hostDir)
	const numberA, numberB = "3101000000830007", "3101000000830015"
	pathA := w.issue(t, numberA, 4560)
	pathB := w.issue(t, numberB, 4560)
	for _, n := range []string{numberA, numberB} {
		cardhostCLI(t, w.hostDir, "card", "close", "--card", n, "--reason", "graduated", "--operator", "alice")
	}
	hostURL := startServe(t, w.hostDir)
	dir := t.TempDir()
	storePath := filepath.Join(dir, "cardd.db")
	waitEmpty(t, 0)
	d := startDaemon(t, "CARDD_MODE=pos", "CARDD_READER_SAM_PATTERN=^"+regexp.QuoteMeta(slot1Reader)+"$",
		"CARDD_HOST_URL="+hostURL, "CARDD_HOST_SECRET_FILE="+w.secretFile(t, dir),
		"CARDD_STORE_PATH="+storePath, "CARDD_TERMINAL_ID="+termID)
	d.waitLine(t, "reader added", 10*time.Second, func(m map[string]any) bool { return m["reader"] == slot1Reader && m["role"] == "sam" })
	waitClosesPulled(t, storePath, 2, 15*time.Second)

	// tap inserts the card at path with opt and returns the tap's log line.
	tapOnce := func(what, path string, opt vpcd.Options, outcome string) map[string]any {
		t.Helper()
		in := insert(t, path, 0, opt)
		m := d.waitLine(t, what, 20*time.Second, func(m map[string]any) bool { return m["msg"] == "tap" })
		in.remove(t)
		waitEmpty(t, 0)
		if m["outcome"] != outcome {
			t.Fatalf("%s: outcome %v, want %s: %v", what, m["outcome"], outcome, m)
		}
		return m
	}
	closedTap := func(m map[string]any) bool {
		return m["closing"] == true && m["closed"] == true && m["refund_due"] == "45.60"
	}

	// Card A: its tap closes it, its APDUs logged to find DEBIT's number.
	var apdus lockedBuffer
	m := tapOnce("card A's closing tap", pathA, vpcd.Options{Logger: slog.New(slog.NewJSONHandler(&apdus, &slog.HandlerOptions{Level: slog.LevelDebug}))}, "ok")
	if !closedTap(m) {
		t.Fatalf("card A's closing tap: %v", m)
	}
	debitAt := apduNumber(t, apdus.String(), "54")
	wantBalance(t, pathA, 0)
	waitRefundDue(t, w.host, numberA, 30*time.Second)
	waitDenied(t, storePath, numberA, host.DenyReasonClosed, 15*time.Second)
	// Closed, it is denied: its next tap blocks it on the chip.
	tapOnce("card A tapped after its close", pathA, vpcd.Options{}, string(tap.OutcomeBlocked))
	wantBlocked(t, pathA, 0)

	// Card B: pulled during its closing DEBIT, whose answer is lost.
	tapOnce("card B pulled during DEBIT", pathB, vpcd.Options{TearAfter: debitAt}, string(tap.OutcomeSaleInDoubt))
	wantBalance(t, pathB, 0) // the DEBIT reached the card
	m = tapOnce("card B tapped again", pathB, vpcd.Options{}, "ok")
	if !closedTap(m) || !strings.Contains(toJSON(m["recovered_purchase"]), "applied=true") {
		t.Fatalf("card B's recovering tap: %v", m)
	}
	wantBalance(t, pathB, 0)
	waitRefundDue(t, w.host, numberB, 30*time.Second)
	waitDenied(t, storePath, numberB, host.DenyReasonClosed, 15*time.Second)
	// Closed, it is denied: its next tap blocks it on the chip.
	tapOnce("card B tapped after its close", pathB, vpcd.Options{}, string(tap.OutcomeBlocked))
	wantBlocked(t, pathB, 0)

	// Exactly one refund due each, 45.60, with the holder; one closing
	// debit each at the host.
	out := cardhostCLI(t, w.hostDir, "refunds", "due", "--json")
	var due []host.Close
	if err := json.Unmarshal([]byte(out), &due); err != nil || len(due) != 2 {
		t.Fatalf("refunds due: %v\n%s", err, out)
	}
	for _, c := range due {
		if c.RefundFen == nil || *c.RefundFen != 4560 || c.Holder != "测试" || c.Operator != "operator alice" || c.TACCheck != "ok" {
			t.Fatalf("refund due %+v; want 45.60 to 测试, asked by alice, TAC verified", c)
		}
	}
	rep, err := w.host.Daily(ctx, time.Now().Format(time.DateOnly))
	if err != nil || rep.Total.Purchases != 2 {
		t.Fatalf("the host holds %+v (%v); want the 2 closing debits as its only purchases", rep.Total, err)
	}
	d.stop(t, 10*time.Second)
}

// wantBlocked fails the test unless the simulated card at path is blocked
// on the chip (APPLICATION BLOCK) holding fen.
func wantBlocked(t *testing.T, path string, fen int64) {
	t.Helper()
	f, err := epursesim.LoadCardFile(path)
	if err != nil || !f.Blocked || f.EPBalance != fen {
		t.Fatalf("card: blocked %v, holds %d (%v); want blocked on the chip with %d", f.Blocked, f.EPBalance, err, fen)
	}
}

// waitClosesPulled waits, bounded, until the terminal's store at path holds
// n closes pulled from the host.
func waitClosesPulled(t testing.TB, path string, n int, limit time.Duration) {
	t.Helper()
	db := sqlOpen(t, path)
	for deadline := time.Now().Add(limit); ; time.Sleep(20 * time.Millisecond) {
		var got int
		err := db.QueryRow(`SELECT count(*) FROM card_closes`).Scan(&got)
		if err == nil && got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d closes in the terminal's store within %v (%v), want %d", got, limit, err, n)
		}
	}
}

// waitRefundDue waits, bounded, until the host records card closed.
func waitRefundDue(t testing.TB, st *host.Store, card string, limit time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(limit); ; time.Sleep(100 * time.Millisecond) {
		list, err := st.Closes(context.Background(), host.CloseClosed)
		for _, c := range list {
			if c.Card == card {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("card %s not closed at the host within %v (%+v, %v)", card, limit, list, err)
		}
	}
}

// toJSON is v as JSON, for a look into a log line's nested field.
func toJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
