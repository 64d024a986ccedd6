package tap

import (
	"context"
	"errors"
	"testing"

	epursesim "github.com/cardd/cardd/apdu/epurse/sim"
	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/offline"
)

// closingWorld is a POS that closes cards, which has pulled the host's
// close of the test card.
func closingWorld(t *testing.T) *posWorld {
	t.Helper()
	w := newPOSWorld(t, 3)
	w.p.CloseCards = true
	if err := w.store.ApplyPage(context.Background(), offline.PullPage{
		Closes: []offline.CloseChange{{Card: testNumber, ID: hostapi.CloseID(testNumber)}}, Cursor: "1"}); err != nil {
		t.Fatal(err)
	}
	return w
}

// closingRows are the journal rows naming the test card's close.
func closingRows(t *testing.T, w *posWorld) []offline.Row {
	t.Helper()
	rows, err := w.store.List(context.Background(), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []offline.Row
	for _, r := range rows {
		if r.CreditID == hostapi.CloseID(testNumber) {
			out = append(out, r)
		}
	}
	return out
}

// closeDebitIndex is the index of DEBIT FOR PURCHASE among the commands of
// a closing tap.
func closeDebitIndex(t *testing.T) int {
	t.Helper()
	return debitIndexIn(t, closingWorld(t))
}

// TestCloseDebitsWholeBalanceOnce: a card the host asked to close has its
// whole balance debited through the PSAM, as a purchase row naming the
// close, with the card's TAC; the armed sale is not taken; its next tap
// is refused as a closed card and debits nothing.
func TestCloseDebitsWholeBalanceOnce(t *testing.T) {
	w := closingWorld(t)
	start := w.card.File().EPBalance
	if _, err := w.till.Arm(700, ""); err != nil {
		t.Fatal(err)
	}
	rep, err := w.tap(t, w.card)
	if err != nil {
		t.Fatal(err)
	}
	c := rep.Close
	if c == nil || !c.Closed || c.RefundFen != start || !rep.Paid || rep.Sale.ID != "" || rep.Balance != 0 {
		t.Fatalf("report %+v, close %+v", rep, c)
	}
	if got := w.card.File().EPBalance; got != 0 {
		t.Fatalf("card holds %d after its close", got)
	}
	if _, ok := w.till.Armed(); !ok {
		t.Fatal("the armed sale was taken by the closing card")
	}
	rows := closingRows(t, w)
	if len(rows) != 1 || rows[0].Kind != offline.KindPurchase || rows[0].State != offline.StateDone || rows[0].AmountFen != start ||
		rows[0].TAC == "" || rows[0].ID != c.JournalID {
		t.Fatalf("closing rows %+v", rows)
	}
	again, err := w.tap(t, w.card)
	if !errors.Is(err, ErrCardClosed) || (Result{Err: err}).Outcome() != OutcomeDenied || again.Paid {
		t.Fatalf("next tap: %+v, %v; want refused as closed", again, err)
	}
	if n := len(closingRows(t, w)); n != 1 {
		t.Fatalf("%d closing rows after the next tap", n)
	}
}

// TestClosePulledDuringDebit: the card leaves during the closing DEBIT,
// which reached it (deliver) or not: its next tap settles the row from the
// card and the card ends closed with exactly one debit of its balance.
func TestClosePulledDuringDebit(t *testing.T) {
	at := closeDebitIndex(t)
	for _, deliver := range []bool{true, false} {
		w := closingWorld(t)
		start := w.card.File().EPBalance
		_, err := w.tap(t, &cutAfter{t: w.card, n: at, deliver: deliver})
		if !errors.Is(err, ErrCloseInDoubt) {
			t.Fatalf("deliver %v: the cut tap: %v, want the close in doubt", deliver, err)
		}
		rep, err := w.tap(t, w.card)
		if err != nil || rep.Close == nil || !rep.Close.Closed || rep.Close.RefundFen != start {
			t.Fatalf("deliver %v: the next tap: %+v %v", deliver, rep, err)
		}
		if got := w.card.File().EPBalance; got != 0 {
			t.Fatalf("deliver %v: card holds %d", deliver, got)
		}
		var done int
		for _, r := range closingRows(t, w) {
			if r.State == offline.StateDone {
				done++
			}
		}
		if done != 1 {
			t.Fatalf("deliver %v: %d closing rows done, want 1: %+v", deliver, done, closingRows(t, w))
		}
		if _, err := w.tap(t, w.card); !errors.Is(err, ErrCardClosed) {
			t.Fatalf("deliver %v: the tap after: %v", deliver, err)
		}
	}
}

// TestCloseEmptyCard: a card that holds nothing closes with refund 0 and
// no DEBIT: a read row names the close.
func TestCloseEmptyCard(t *testing.T) {
	w := closingWorld(t)
	w.card = newTestCard(t, "王小明", 0, func(f *epursesim.CardFile) { f.EPBalance = 0 })
	rec := &recorder{t: w.card}
	rep, err := w.tap(t, rec)
	if err != nil || rep.Close == nil || !rep.Close.Closed || rep.Close.RefundFen != 0 || rep.Paid {
		t.Fatalf("report %+v %v", rep, err)
	}
	for _, c := range rec.cmds {
		if c.INS == 0x54 || c.INS == 0x50 {
			t.Fatalf("a command %02X to a card that holds nothing", c.INS)
		}
	}
	rows := closingRows(t, w)
	if len(rows) != 1 || rows[0].Kind != offline.KindRead || rows[0].AmountFen != 0 || rows[0].State != offline.StateDone {
		t.Fatalf("closing rows %+v", rows)
	}
}

// TestCloseNotHere: a POS that does not close cards sells to a card the
// host asked to close as to any other.
func TestCloseNotHere(t *testing.T) {
	w := closingWorld(t)
	w.p.CloseCards = false
	start := w.card.File().EPBalance
	if _, err := w.till.Arm(700, ""); err != nil {
		t.Fatal(err)
	}
	rep, err := w.tap(t, w.card)
	if err != nil || !rep.Paid || rep.Close != nil || w.card.File().EPBalance != start-700 {
		t.Fatalf("report %+v %v", rep, err)
	}
}
