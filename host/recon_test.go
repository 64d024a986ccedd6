package host

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cardd/cardd/hostapi"
)

// sale is a done EP purchase of the test card at testPSAM, with the TAC
// the card gives for it: counter, PSAM serial, balance before and amount
// as given, at a time step minutes into the test's hour.
func (e *env) sale(id string, counter uint16, serial uint32, balance, amount int64, step int) hostapi.JournalRow {
	e.t.Helper()
	at := time.Now().UTC().Truncate(time.Hour).Add(-time.Hour + time.Duration(step)*time.Minute)
	return e.proved(hostapi.JournalRow{ID: testTerm + "-" + id, Kind: "purchase", State: "done", Card: testNumber, Purse: "EP",
		Counter: counter, BalanceFen: balance, AmountFen: amount, TermSerial: serial, PSAMTerminal: testPSAMHex,
		Time: at.Format(time.RFC3339)})
}

// openAlarms lists the open alarms, failing the test on an error.
func (e *env) openAlarms() []Alarm {
	e.t.Helper()
	list, err := e.st.Alarms(context.Background(), false)
	if err != nil {
		e.t.Fatal(err)
	}
	return list
}

// wantOpenAlarms fails unless exactly the open alarms have details
// containing each of want, in order.
func (e *env) wantOpenAlarms(when string, want ...string) {
	e.t.Helper()
	got := e.openAlarms()
	ok := len(got) == len(want)
	for i := 0; ok && i < len(want); i++ {
		ok = strings.Contains(got[i].Detail, want[i])
	}
	if !ok {
		var details []string
		for _, a := range got {
			details = append(details, a.Detail)
		}
		e.t.Fatalf("%s: open alarms %q; want %d containing %q", when, details, len(want), want)
	}
}

// TestReconPurchaseTAC: an uploaded purchase whose TAC the card's key
// gives is verified with no alarm; one with a forged TAC is one alarm,
// however often it is uploaded; a row stored before without its PSAM
// terminal id is not a conflict when it comes again with it, and is then
// verified.
func TestReconPurchaseTAC(t *testing.T) { eachStore(t, testReconPurchaseTAC) }

func testReconPurchaseTAC(t *testing.T) {
	e := newEnv(t, Options{})
	good := e.sale("1", 0, 1, 10000, 300, 1)
	forged := e.sale("2", 1, 2, 9700, 200, 2)
	forged.TAC = flip(forged.TAC)
	for range 2 {
		if up := e.upload(good, forged); len(up.Acked) != 2 {
			t.Fatalf("upload: %+v", up)
		}
	}
	e.wantOpenAlarms("a forged TAC uploaded twice", "the sale's TAC does not verify")
	if a := e.openAlarms()[0]; a.Card != testNumber || !strings.Contains(a.Detail, forged.ID) {
		t.Fatalf("alarm %+v; want the card's, naming row %s", a, forged.ID)
	}
	var checks []string
	for _, id := range []string{good.ID, forged.ID} {
		var c string
		if err := e.st.db.QueryRow(`SELECT tac_check FROM journal WHERE id = ?`, id).Scan(&c); err != nil {
			t.Fatal(err)
		}
		checks = append(checks, c)
	}
	if checks[0] != tacOK || checks[1] != tacBad {
		t.Fatalf("tac checks %v; want ok, bad", checks)
	}

	// An older terminal's upload, without the PSAM's id, then the same row
	// with it: acked, stored with it, and its forged TAC found.
	old := e.sale("3", 2, 3, 9500, 100, 3)
	old.TAC = flip(old.TAC)
	old.PSAMTerminal = ""
	e.upload(old)
	e.wantOpenAlarms("a row without its PSAM's id", "the sale's TAC does not verify")
	old.PSAMTerminal = testPSAMHex
	if up := e.upload(old); len(up.Acked) != 1 {
		t.Fatalf("the row again with its PSAM's id: %+v", up)
	}
	if got := e.storedJournal(old.ID); got.PSAMTerminal != testPSAMHex {
		t.Fatalf("stored PSAM terminal %q", got.PSAMTerminal)
	}
	e.wantOpenAlarms("the row with its PSAM's id", "the sale's TAC does not verify", "the sale's TAC does not verify")
	// Without it again (an old copy): the same row, acked, nothing new.
	old.PSAMTerminal = ""
	if up := e.upload(old); len(up.Acked) != 1 {
		t.Fatalf("the row again without its PSAM's id: %+v", up)
	}
	// Another PSAM's id for it is a change of a settled row.
	old.PSAMTerminal = "000000000099"
	if up := e.upload(old); len(up.Refused) != 1 || up.Refused[0].Code != hostapi.CodeRowSettled {
		t.Fatalf("the row with another PSAM's id: %+v", up)
	}
	// A PSAM terminal id on a load is malformed.
	bad := good
	bad.ID, bad.Kind, bad.CreditID, bad.TermSerial = testTerm+"-9", "load", "cr-1", 0
	if up := e.upload(bad); len(up.Refused) != 1 || !strings.Contains(up.Refused[0].Reason, "psam_terminal") {
		t.Fatalf("a load with a PSAM terminal id: %+v", up)
	}
}

// TestReconLoadTAC: a load row whose TAC the host verified at completion
// raises nothing; one whose TAC is no authorization's is one alarm.
func TestReconLoadTAC(t *testing.T) { eachStore(t, testReconLoadTAC) }

func testReconLoadTAC(t *testing.T) {
	e := newEnv(t, Options{})
	id := e.addCredit(500)
	li, auth := e.authorize(id, 500)
	tac := e.credit(auth)
	e.mustCall(hostapi.PathLoadComplete, tacRequest(id, li.OnlineCounter, tac), nil)
	row := hostapi.JournalRow{ID: testTerm + "-1", Kind: "load", State: "done", Card: testNumber, Purse: "EP",
		Counter: li.OnlineCounter, BalanceFen: li.OldBalance, AmountFen: 500, CreditID: id, TAC: fmt.Sprintf("%X", tac),
		Time: time.Now().Add(-time.Minute).Format(time.RFC3339)}
	e.upload(row)
	e.wantOpenAlarms("a load's verified TAC")
	forged := row
	forged.ID, forged.Counter, forged.BalanceFen, forged.TAC = testTerm+"-2", li.OnlineCounter+1, li.OldBalance+500, flip(row.TAC)
	e.upload(forged)
	e.upload(forged)
	e.wantOpenAlarms("a load with a TAC of no authorization", "the load's TAC does not verify")
}

// TestReconCounterGap: a card's purchase counter that skips one is one
// alarm, not repeated by a re-upload; the missing row arriving (from
// another terminal) resolves it with a note, and the books then agree.
func TestReconCounterGap(t *testing.T) { eachStore(t, testReconCounterGap) }

func testReconCounterGap(t *testing.T) {
	e := newEnv(t, Options{})
	first := e.sale("1", 4, 11, 10000, 300, 1)
	missing := e.sale("2", 5, 12, 9700, 200, 2)
	last := e.sale("3", 6, 13, 9500, 100, 3)
	e.upload(first, last)
	e.upload(first, last)
	e.wantOpenAlarms("counter 5 missing", "EP purchase (offline) counter 5 never reached the host", "PSAM 123456789ABC terminal serial 12 never reached the host")
	var books int
	if err := e.st.db.QueryRow(`SELECT count(*) FROM purse_books WHERE alarm IS NOT NULL`).Scan(&books); err != nil || books != 0 {
		t.Fatalf("%d balance alarms (%v) while a gap explains the difference", books, err)
	}
	// The missing sale, from another terminal's upload (its own PSAM
	// serial is the same PSAM's: the PSAM moved).
	secretB := e.addTerminalB()
	missing.ID = testTermB + "-1"
	status, b := e.send(e.signed(hostapi.PathJournal, hostapi.JournalRequest{Rows: []hostapi.JournalRow{missing}}, testTermB, secretB, time.Now()))
	if status != 200 {
		t.Fatalf("terminal B's upload: %d %s", status, b)
	}
	e.wantOpenAlarms("the gap filled")
	all, err := e.st.Alarms(t.Context(), true)
	if err != nil || len(all) != 2 || !all[0].Acked || !strings.Contains(all[0].AckNote, "arrived") || all[0].AckOperator != reconActor {
		t.Fatalf("alarms after the gap filled: %+v %v", all, err)
	}
}

// TestReconPSAMGap: a PSAM whose serials skip one across two terminals'
// uploads is one alarm (the cards' counters have no gap).
func TestReconPSAMGap(t *testing.T) { eachStore(t, testReconPSAMGap) }

func testReconPSAMGap(t *testing.T) {
	e := newEnv(t, Options{})
	e.upload(e.sale("1", 0, 41, 10000, 300, 1))
	e.upload(e.sale("2", 1, 43, 9700, 200, 2), e.sale("3", 2, 44, 9500, 100, 3))
	e.upload(e.sale("2", 1, 43, 9700, 200, 2))
	e.wantOpenAlarms("a PSAM serial skipped", "PSAM 123456789ABC terminal serial 42 never reached the host")
	if a := e.openAlarms()[0]; a.Card != "" {
		t.Fatalf("a PSAM's alarm on card %q", a.Card)
	}
}

// TestReconBalance: rows of a card whose balances do not follow from each
// other (the card holds money the host cannot account for) are one alarm,
// not one per further row; it resolves once the books agree again.
func TestReconBalance(t *testing.T) { eachStore(t, testReconBalance) }

func testReconBalance(t *testing.T) {
	e := newEnv(t, Options{})
	e.upload(e.sale("1", 0, 1, 10000, 300, 1))
	e.wantOpenAlarms("one row")
	// 97.00 after the first; the card shows 99.00 before the second.
	e.upload(e.sale("2", 1, 2, 9900, 200, 2))
	e.wantOpenAlarms("a balance 2.00 too high", "the card last reported a balance of 97.00, the host's books say 95.00")
	e.upload(e.sale("3", 2, 3, 9700, 100, 3))
	e.wantOpenAlarms("a further row, the difference the same", "the card last reported a balance of 97.00, the host's books say 95.00")
	// The next row shows the balance the books expect (94.00 before,
	// 92.00 after): the books agree again, and the alarm is resolved.
	fix := e.sale("4", 3, 4, 9400, 200, 4)
	e.upload(fix)
	e.wantOpenAlarms("the books agreeing again")
}

// TestAlarmAck: an operator acknowledges an open alarm with a note, in
// the ledger too; a second acknowledgement, an unknown alarm and an empty
// note are refused and change nothing.
func TestAlarmAck(t *testing.T) { eachStore(t, testAlarmAck) }

func testAlarmAck(t *testing.T) {
	e := newEnv(t, Options{})
	forged := e.sale("1", 0, 1, 10000, 300, 1)
	forged.TAC = flip(forged.TAC)
	e.upload(forged)
	list := e.openAlarms()
	if n, err := e.st.OpenAlarms(t.Context()); err != nil || n != 1 || len(list) != 1 {
		t.Fatalf("open alarms %d (%v), listed %d; want 1", n, err, len(list))
	}
	ctx, now := t.Context(), time.Now()
	if err := e.st.AckAlarm(ctx, list[0].ID, "operator wang", "  ", now); err == nil {
		t.Fatal("an empty note was taken")
	}
	if err := e.st.AckAlarm(ctx, list[0].ID+1000, "operator wang", "x", now); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown alarm: %v", err)
	}
	if err := e.st.AckAlarm(ctx, list[0].ID, "operator wang", "terminal 1 replaced, its secret rotated", now); err != nil {
		t.Fatal(err)
	}
	if err := e.st.AckAlarm(ctx, list[0].ID, "operator li", "again", now); !errors.Is(err, ErrAcked) {
		t.Fatalf("second acknowledgement: %v", err)
	}
	if n, err := e.st.OpenAlarms(ctx); err != nil || n != 0 {
		t.Fatalf("open alarms after the acknowledgement: %d %v", n, err)
	}
	all, err := e.st.Alarms(ctx, true)
	if err != nil || len(all) != 1 || all[0].AckOperator != "operator wang" || all[0].AckNote != "terminal 1 replaced, its secret rotated" {
		t.Fatalf("alarms: %+v %v", all, err)
	}
	if n := e.count("ledger", "event = ? AND card = ? AND detail LIKE '%terminal 1 replaced%'", EventAlarmAck, testNumber); n != 1 {
		t.Fatalf("%d acknowledgements in the ledger; want 1", n)
	}
	if l, err := e.st.Ledger(ctx, testNumber); err != nil || l.Alarms != 0 {
		t.Fatalf("the card's ledger counts %d alarms (%v) after the acknowledgement; want 0", l.Alarms, err)
	}
}

// TestReconcileSweep: moves an upload stored but did not check (the host
// stopped after the commit) are checked by the sweep: a gap between them
// is one alarm, and a second sweep adds none.
func TestReconcileSweep(t *testing.T) { eachStore(t, testReconcileSweep) }

func testReconcileSweep(t *testing.T) {
	e := newEnv(t, Options{})
	at := time.Now().UTC().Format(time.RFC3339)
	for i, ctr := range []int{4, 6} {
		mustExec(t, e.st.db, `INSERT INTO recon_moves (card, purse, kind, counter, terminal, row_id, balance_fen, amount_fen, time, state)
			VALUES (?, 'EP', 'purchase', ?, ?, ?, ?, 100, ?, 'done')`, testNumber, ctr, testTerm, fmt.Sprint(i), 10000-200*i, at)
	}
	for i, want := range []int{1, 0} {
		alarms, err := e.st.ReconcileSweep(t.Context(), time.Now())
		if err != nil || len(alarms) != want {
			t.Fatalf("sweep %d: alarms %q, %v; want %d", i+1, alarms, err, want)
		}
	}
	e.wantOpenAlarms("the sweep", "EP purchase (offline) counter 5 never reached the host")
	if n := e.count("recon_moves", pendingMoves); n != 0 {
		t.Fatalf("%d moves left unchecked", n)
	}
}

// TestReconRowInDoubt: a row uploaded unknown holds its counter: the rows
// after it show no gap, and the books wait for its outcome; settled done,
// it is booked and they agree. One that settles failed gives its counter
// back to the card's next transaction. No alarm throughout.
func TestReconRowInDoubt(t *testing.T) { eachStore(t, testReconRowInDoubt) }

func testReconRowInDoubt(t *testing.T) {
	e := newEnv(t, Options{})
	doubt := e.sale("2", 5, 12, 9700, 200, 2)
	doubt.State, doubt.TAC = "unknown", ""
	e.upload(e.sale("1", 4, 11, 10000, 300, 1), doubt, e.sale("3", 6, 13, 9500, 100, 3))
	e.wantOpenAlarms("a row in doubt between two")
	e.upload(e.sale("2", 5, 12, 9700, 200, 2))
	e.wantOpenAlarms("the row in doubt settled done")
	var booked int
	if err := e.st.db.QueryRow(`SELECT net_fen FROM purse_books WHERE card = ? AND purse = 'EP'`, testNumber).Scan(&booked); err != nil || booked != -600 {
		t.Fatalf("books' net %d (%v); want -6.00", booked, err)
	}

	failed := e.sale("4", 7, 14, 9400, 50, 4)
	failed.State, failed.TAC = "unknown", ""
	e.upload(failed)
	failed.State = "failed"
	e.upload(failed)
	retry := e.sale("5", 7, 15, 9400, 50, 5)
	e.upload(retry, e.sale("6", 8, 16, 9350, 50, 6))
	e.wantOpenAlarms("a failed row's counter taken by the retry")
	if n := e.count("recon_moves", "row_id = ?", retry.ID); n != 1 {
		t.Fatalf("the retry's move: %d", n)
	}
}
