package host

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cardd/cardd/hostapi"
)

// purchaseRow is a settled e-purse purchase as a terminal uploads it.
func purchaseRow(seq string) hostapi.JournalRow {
	return hostapi.JournalRow{ID: testTerm + "-" + seq, Kind: "purchase", State: "done", Card: testNumber, Purse: "EP",
		Counter: 7, BalanceFen: 10000, AmountFen: 1250, TAC: "1A2B3C4D", TermSerial: 42,
		Time: purchaseRowTime, Detail: "canteen"}
}

// purchaseRowTime is one instant for every purchaseRow of the test binary:
// the same row made twice (an unknown copy, then its done copy) must carry
// the same time, or the host rightly refuses the second as a different
// record. A time taken per call differed whenever the two calls fell on
// either side of a second (TestShiftUpload failed so in CI).
var purchaseRowTime = time.Now().Add(-time.Hour).Format(time.RFC3339)

// upload sends rows and returns the host's answer, which must be 200.
func (e *env) upload(rows ...hostapi.JournalRow) hostapi.JournalResponse {
	e.t.Helper()
	var resp hostapi.JournalResponse
	e.mustCall(hostapi.PathJournal, hostapi.JournalRequest{Rows: rows}, &resp)
	return resp
}

// storedJournal reads a row back as the host holds it.
func (e *env) storedJournal(id string) hostapi.JournalRow {
	e.t.Helper()
	get, err := e.st.db.Prepare(storedRowQuery)
	if err != nil {
		e.t.Fatal(err)
	}
	defer get.Close()
	r, found, err := storedRow(get, testTerm, id)
	if err != nil || !found {
		e.t.Fatalf("row %s: found %v, %v", id, found, err)
	}
	return r
}

// TestJournalRowChecks: each malformed row is refused with its reason, by
// index and id, and the good rows of the same batch are stored.
func TestJournalRowChecks(t *testing.T) { eachStore(t, testJournalRowChecks) }

func testJournalRowChecks(t *testing.T) {
	e := newEnv(t, Options{})
	now := time.Now()
	bad := map[string]func(*hostapi.JournalRow){
		"empty id":        func(r *hostapi.JournalRow) { r.ID = "" },
		"at most 128":     func(r *hostapi.JournalRow) { r.ID = strings.Repeat("9", 129) },
		"printable ASCII": func(r *hostapi.JournalRow) { r.ID = testTerm + "-1\n" },
		`kind "refund"`:   func(r *hostapi.JournalRow) { r.Kind = "refund" },
		`state "intent"`:  func(r *hostapi.JournalRow) { r.State = "intent" },
		`state "settled"`: func(r *hostapi.JournalRow) { r.State = "settled" },
		"card 3104*************0061: 21 digits; want 8 to 20": func(r *hostapi.JournalRow) { r.Card = "310499060000000000061" },
		"card uid:**34ab":          func(r *hostapi.JournalRow) { r.Card = "uid:1234ab" },
		`purse "XX"`:               func(r *hostapi.JournalRow) { r.Purse = "XX" },
		"names its purse":          func(r *hostapi.JournalRow) { r.Purse = "" },
		"amount_fen -1250":         func(r *hostapi.JournalRow) { r.AmountFen = -1250 },
		"amount_fen 10000001":      func(r *hostapi.JournalRow) { r.AmountFen = MaxJournalAmountFen + 1 },
		"balance_fen -1":           func(r *hostapi.JournalRow) { r.BalanceFen = -1 },
		"amount_fen 0: a purchase": func(r *hostapi.JournalRow) { r.AmountFen = 0 },
		"only a load row applies":  func(r *hostapi.JournalRow) { r.CreditID = "cr-1" },
		"detail of 5000 bytes":     func(r *hostapi.JournalRow) { r.Detail = strings.Repeat("x", 5000) },
		`tac "1a2b3c4d"`:           func(r *hostapi.JournalRow) { r.TAC = "1a2b3c4d" },
		`tac "1A2B3C"`:             func(r *hostapi.JournalRow) { r.TAC = "1A2B3C" },
		"only a done e-purse":      func(r *hostapi.JournalRow) { r.State = "failed" },
		`time "yesterday"`:         func(r *hostapi.JournalRow) { r.Time = "yesterday" },
		`time ""`:                  func(r *hostapi.JournalRow) { r.Time = "" },
		"clock was not set": func(r *hostapi.JournalRow) {
			r.Kind, r.TAC, r.TermSerial, r.AmountFen, r.Purse, r.Time = "access", "", 0, 0, "", "1970-01-01T00:00:00Z"
		},
		"ahead of the host's clock": func(r *hostapi.JournalRow) {
			r.Kind, r.TAC, r.TermSerial, r.AmountFen, r.Purse, r.Time = "read", "", 0, 0, "", now.Add(25*time.Hour).Format(time.RFC3339)
		},
		"moves no money":               func(r *hostapi.JournalRow) { r.Kind, r.TAC, r.TermSerial = "read", "", 0 },
		"a door decision names none":   func(r *hostapi.JournalRow) { r.Kind, r.TAC, r.TermSerial, r.AmountFen = "access", "", 0, 0 },
		"names the credit it applies":  func(r *hostapi.JournalRow) { r.Kind, r.TermSerial = "load", 0 },
		"carries the card's TAC":       func(r *hostapi.JournalRow) { r.Kind, r.TermSerial, r.CreditID, r.TAC = "load", 0, "cr-1", "" },
		"only a purchase has one":      func(r *hostapi.JournalRow) { r.Kind, r.CreditID = "load", "cr-1" },
		"only a done e-purse load or ": func(r *hostapi.JournalRow) { r.Purse = hostapi.PurseM1 },
	}
	var batch []hostapi.JournalRow
	var reasons []string
	for reason, spoil := range bad {
		good := purchaseRow(fmt.Sprint(len(batch)))
		batch = append(batch, good)
		r := purchaseRow(fmt.Sprint(len(batch)))
		spoil(&r)
		batch = append(batch, r)
		reasons = append(reasons, reason)
	}
	resp := e.upload(batch...)
	if len(resp.Acked) != len(bad) || len(resp.Refused) != len(bad) {
		t.Fatalf("acked %d, refused %d of %d good and %d bad rows: %+v", len(resp.Acked), len(resp.Refused), len(bad), len(bad), resp.Refused)
	}
	for i, rf := range resp.Refused {
		want := reasons[i]
		if rf.Index != 2*i+1 || rf.ID != batch[rf.Index].ID || rf.Status != http.StatusBadRequest || rf.Code != hostapi.CodeBadRow ||
			!strings.Contains(rf.Reason, want) {
			t.Errorf("refusal %+v, want row %d refused 400 bad_row with %q", rf, 2*i+1, want)
		}
		if strings.Contains(rf.Reason, "310499060000000000061") {
			t.Errorf("reason shows the card number: %s", rf.Reason)
		}
	}
	for i, id := range resp.Acked {
		if id != batch[2*i].ID {
			t.Errorf("acked %s, want %s", id, batch[2*i].ID)
		}
	}
	if n, _ := e.st.JournalCount(context.Background(), testTerm); n != len(bad) {
		t.Fatalf("%d rows stored, want the %d good ones", n, len(bad))
	}

	// Rows of each kind the terminal writes pass.
	at := now.Format(time.RFC3339)
	good := []hostapi.JournalRow{
		{ID: "ok-1", Kind: "read", State: "done", Card: testNumber, Purse: "EP", BalanceFen: 100, Time: at},
		{ID: "ok-2", Kind: "load", State: "done", Card: testNumber, Purse: "ED", Counter: 1, BalanceFen: 100, AmountFen: 5, CreditID: "c", TAC: "00FF00FF", Time: at},
		{ID: "ok-3", Kind: "load", State: "failed", Card: testNumber, Purse: "EP", Counter: 1, BalanceFen: 100, AmountFen: 5, CreditID: "c", Time: at},
		{ID: "ok-4", Kind: "load", State: "done", Card: "uid:04A1B2C3D4E5F6", Purse: "M1", Counter: 9, AmountFen: 5, CreditID: "c", Time: at},
		{ID: "ok-5", Kind: "purchase", State: "done", Card: "uid:0A0B0C0D", Purse: "M1", Counter: 3, BalanceFen: 500, AmountFen: 5, Time: at},
		{ID: "ok-6", Kind: "purchase", State: "done", Card: testNumber, Purse: "EP", Counter: 3, BalanceFen: 500, AmountFen: 5, TermSerial: 8, Time: at, Detail: "no TAC from the card"},
		{ID: "ok-7", Kind: "access", State: "done", Card: "uid:0A0B0C0D", Time: at, Detail: "allowed: group A"},
		{ID: "ok-8", Kind: "recovery", State: "done", Card: testNumber, AmountFen: 5, Time: at},
		{ID: "ok-9", Kind: "purchase", State: "unknown", Card: testNumber, Purse: "EP", Counter: 3, BalanceFen: 500, AmountFen: 5, Time: now.Add(23 * time.Hour).Format(time.RFC3339)},
	}
	if resp := e.upload(good...); len(resp.Acked) != len(good) {
		t.Fatalf("rows of every kind: refused %+v", resp.Refused)
	}
	// The cap follows a balance cap above MaxJournalAmountFen.
	big := purchaseRow("big")
	big.BalanceFen, big.AmountFen = 2*MaxJournalAmountFen, MaxJournalAmountFen+1
	e2 := newEnv(t, Options{BalanceCap: 2 * MaxJournalAmountFen})
	if resp := e2.upload(big); len(resp.Acked) != 1 {
		t.Fatalf("a row within a raised balance cap: %+v", resp.Refused)
	}
}

// TestJournalSettledRowIsFinal is the audit's case: a done 12.50 purchase
// with its TAC, then the same id as done 0.01 with TAC 00000000, then as
// failed. The first is stored; the others are refused 409 row_settled with
// what differs, the host keeps the original, and one alarm is in the card's
// ledger. The same copy again is acked; a reworded detail is taken.
func TestJournalSettledRowIsFinal(t *testing.T) { eachStore(t, testJournalSettledRowIsFinal) }

func testJournalSettledRowIsFinal(t *testing.T) {
	e := newEnv(t, Options{})
	orig := purchaseRow("1")
	if resp := e.upload(orig); len(resp.Acked) != 1 {
		t.Fatalf("first upload: %+v", resp)
	}
	forged := orig
	forged.AmountFen, forged.TAC = 1, "00000000"
	failed := orig
	failed.State, failed.TAC = "failed", ""
	for _, c := range []struct {
		row  hostapi.JournalRow
		diff string
	}{{forged, "amount_fen 1250 → 1, tac 1A2B3C4D → 00000000"}, {failed, "state done → failed"}} {
		resp := e.upload(c.row)
		if len(resp.Acked) != 0 || len(resp.Refused) != 1 {
			t.Fatalf("changed copy: %+v", resp)
		}
		if rf := resp.Refused[0]; rf.ID != orig.ID || rf.Status != http.StatusConflict || rf.Code != hostapi.CodeRowSettled || !strings.Contains(rf.Reason, c.diff) {
			t.Errorf("refusal %+v, want 409 row_settled naming %q", rf, c.diff)
		}
		if got := e.storedJournal(orig.ID); got != orig {
			t.Fatalf("host holds %+v, want the original %+v", got, orig)
		}
	}
	if n := e.count("ledger", "event = 'alarm' AND card = ? AND detail LIKE ?", testNumber, "journal row "+orig.ID+" of terminal "+testTerm+" re-uploaded changed%"); n != 1 {
		t.Fatalf("%d alarms in the ledger, want one for the row", n)
	}
	l, err := e.st.Ledger(context.Background(), testNumber)
	if err != nil || l.Alarms != 1 {
		t.Fatalf("card ledger: %d alarms (%v), want 1", l.Alarms, err)
	}
	// The same copy again: acked, nothing changes.
	if resp := e.upload(orig); len(resp.Acked) != 1 || len(resp.Refused) != 0 {
		t.Fatalf("identical copy: %+v", resp)
	}
	reworded := orig
	reworded.Detail = "canteen, window 3"
	if resp := e.upload(reworded); len(resp.Acked) != 1 {
		t.Fatalf("reworded detail: %+v", resp)
	}
	if got := e.storedJournal(orig.ID); got != reworded {
		t.Fatalf("host holds %+v after a reworded detail", got)
	}
}

// TestJournalUnknownSettles: a row stored unknown takes its outcome (done
// with a TAC, failed) once; any other change to its record is refused.
func TestJournalUnknownSettles(t *testing.T) { eachStore(t, testJournalUnknownSettles) }

func testJournalUnknownSettles(t *testing.T) {
	e := newEnv(t, Options{})
	unknown := purchaseRow("1")
	unknown.State, unknown.TAC = "unknown", ""
	e.upload(unknown)
	again := unknown
	again.Detail = "still unknown"
	if resp := e.upload(again); len(resp.Acked) != 1 {
		t.Fatalf("unknown again: %+v", resp)
	}
	moved := unknown
	moved.State, moved.TAC, moved.AmountFen = "done", "1A2B3C4D", 1
	resp := e.upload(moved)
	if len(resp.Refused) != 1 || resp.Refused[0].Code != hostapi.CodeRowSettled || !strings.Contains(resp.Refused[0].Reason, "amount_fen 1250 → 1") {
		t.Fatalf("unknown settled with another amount: %+v", resp)
	}
	done := unknown
	done.State, done.TAC = "done", "1A2B3C4D"
	if resp := e.upload(done); len(resp.Acked) != 1 {
		t.Fatalf("unknown settled: %+v", resp)
	}
	if got := e.storedJournal(done.ID); got.State != "done" || got.TAC != "1A2B3C4D" || got.AmountFen != 1250 {
		t.Fatalf("host holds %+v", got)
	}
	if n := e.count("ledger", "event = 'alarm'"); n != 0 {
		t.Fatalf("%d alarms for a row that settled as it should", n)
	}
}

// TestJournalDuplicateIDInBatch: two copies of one id in a batch, the same
// or not, are both refused and neither is stored; the rest of the batch is.
func TestJournalDuplicateIDInBatch(t *testing.T) { eachStore(t, testJournalDuplicateIDInBatch) }

func testJournalDuplicateIDInBatch(t *testing.T) {
	e := newEnv(t, Options{})
	a := purchaseRow("1")
	b := a
	b.AmountFen = 1
	other := purchaseRow("2")
	for _, batch := range [][]hostapi.JournalRow{{a, other, b}, {a, other, a}} {
		resp := e.upload(batch...)
		if len(resp.Acked) != 1 || resp.Acked[0] != other.ID || len(resp.Refused) != 2 ||
			resp.Refused[0].Index != 0 || resp.Refused[1].Index != 2 || !strings.Contains(resp.Refused[0].Reason, "2 times") {
			t.Fatalf("batch with a repeated id: %+v", resp)
		}
		if n := e.count("journal", "id = ?", a.ID); n != 0 {
			t.Fatal("a repeated id was stored")
		}
	}
}

// TestJournalTerminalAlarm: a row whose detail begins with the terminal's
// alarm (a card whose MAC2 the PSAM did not accept) is stored and acked as
// any other, and its alarm reaches the card's ledger once, however often the
// row is sent.
func TestJournalTerminalAlarm(t *testing.T) { eachStore(t, testJournalTerminalAlarm) }

func testJournalTerminalAlarm(t *testing.T) {
	e := newEnv(t, Options{})
	row := purchaseRow("mac2")
	row.Detail = hostapi.AlarmPrefix + " the PSAM did not accept the card's MAC2: MAC invalid"
	for range 2 {
		if resp := e.upload(row); len(resp.Acked) != 1 {
			t.Fatalf("alarmed row: %+v", resp)
		}
	}
	if n := e.count("ledger", "event = 'alarm' AND card = ? AND detail LIKE ?", testNumber, "journal row "+row.ID+" of terminal "+testTerm+" reported by the terminal: ALARM:%"); n != 1 {
		t.Fatalf("%d terminal alarms in the ledger, want 1", n)
	}
	// Its detail, unlike another row's, cannot be reworded away.
	quiet := row
	quiet.Detail = "all fine"
	if resp := e.upload(quiet); len(resp.Refused) != 1 || resp.Refused[0].Code != hostapi.CodeRowSettled {
		t.Fatalf("alarm detail reworded: %+v", resp)
	}
	if got := e.storedJournal(row.ID); got.Detail != row.Detail {
		t.Fatalf("host holds detail %q, want the alarm %q", got.Detail, row.Detail)
	}
	// A row without the prefix raises none.
	plain := purchaseRow("plain")
	plain.Detail = "no ALARM: here"
	e.upload(plain)
	if l, err := e.st.Ledger(context.Background(), testNumber); err != nil || l.Alarms != 1 {
		t.Fatalf("card ledger: %d alarms (%v), want 1", l.Alarms, err)
	}
}

// TestJournalMoneyRowWithAWrongClock: a done sale or load whose time cannot
// be right (a kiosk without a clock battery, selling before NTP) is kept,
// with an alarm, not refused: the card moved the money, and its TAC, made
// over that time, cannot come again with a better one.
func TestJournalMoneyRowWithAWrongClock(t *testing.T) {
	eachStore(t, testJournalMoneyRowWithAWrongClock)
}

func testJournalMoneyRowWithAWrongClock(t *testing.T) {
	e := newEnv(t, Options{})
	early := purchaseRow("1970")
	early.Time = "1970-01-01T00:05:00Z"
	ahead := purchaseRow("ahead")
	ahead.Time = time.Now().Add(72 * time.Hour).Format(time.RFC3339)
	for _, r := range []hostapi.JournalRow{early, ahead} {
		if resp := e.upload(r); len(resp.Acked) != 1 {
			t.Fatalf("money row at %s: %+v", r.Time, resp.Refused)
		}
		if got := e.storedJournal(r.ID); got != r {
			t.Fatalf("host holds %+v, want %+v", got, r)
		}
		if n := e.count("ledger", "event = 'alarm' AND card = ? AND detail LIKE ?", testNumber, "journal row "+r.ID+" of terminal "+testTerm+" stored with a wrong time%"); n != 1 {
			t.Fatalf("%s: %d clock alarms, want 1", r.ID, n)
		}
	}
}

// TestJournalTimeZoneChanged: the same instant written in another zone (the
// terminal's zone changed between two uploads) is the same row.
func TestJournalTimeZoneChanged(t *testing.T) { eachStore(t, testJournalTimeZoneChanged) }

func testJournalTimeZoneChanged(t *testing.T) {
	e := newEnv(t, Options{})
	at := time.Now().Add(-time.Hour).Truncate(time.Second)
	unknown := purchaseRow("tz")
	unknown.State, unknown.TAC, unknown.Time = "unknown", "", at.In(time.FixedZone("CST", 8*3600)).Format(time.RFC3339)
	if resp := e.upload(unknown); len(resp.Acked) != 1 {
		t.Fatalf("unknown row: %+v", resp.Refused)
	}
	done := purchaseRow("tz")
	done.Time = at.UTC().Format(time.RFC3339)
	if resp := e.upload(done); len(resp.Acked) != 1 {
		t.Fatalf("its done copy written in UTC: %+v", resp.Refused)
	}
	if got := e.storedJournal(done.ID); got.State != "done" {
		t.Fatalf("host holds %+v, want done", got)
	}
}
