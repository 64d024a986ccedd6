package host

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/cardd/cardd/apdu/epurse"
	"github.com/cardd/cardd/hostapi"
)

// closeWithDebit closes the test card: asked, then its proven closing
// debit of its 100.00 uploaded.
func (e *env) closeWithDebit() {
	e.t.Helper()
	if _, err := e.st.CloseCard(e.t.Context(), testNumber, "operator alice", "graduated", time.Now()); err != nil {
		e.t.Fatal(err)
	}
	debit := e.sale("1", 0, 1, 10000, 10000, 1)
	debit.CreditID = hostapi.CloseID(testNumber)
	if up := e.upload(debit); len(up.Acked) != 1 {
		e.t.Fatalf("upload: %+v", up)
	}
}

func TestClosedCardStaysDenied(t *testing.T) { eachStore(t, testClosedCardStaysDenied) }

// testClosedCardStaysDenied: a closed card's balance is owed back as a
// refund; lifting its deny would put it back in service while the refund
// is still due (and every terminal that pulled its close would debit it
// again as a closing debit). Undeny refuses it and it stays denied.
func testClosedCardStaysDenied(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	e.closeWithDebit()
	err := e.st.Undeny(ctx, testNumber, "operator bob", time.Now())
	if !errors.Is(err, ErrClosedCard) {
		t.Fatalf("undeny of a closed card: %v; want ErrClosedCard", err)
	}
	if denied, reason, _ := denyState(e.st.db, testNumber); !denied || reason != DenyReasonClosed {
		t.Fatalf("deny %v %q after the refused undeny; want closed", denied, reason)
	}
}

func TestCloseWaitsForReplacement(t *testing.T) { eachStore(t, testCloseWaitsForReplacement) }

// testCloseWaitsForReplacement: the new card of a replacement still
// settling is owed the lost card's balance as a credit that does not exist
// yet; closing it now would leave that credit, made at the settlement,
// pending on a closed card that no terminal serves, outside the refund
// due. The close is refused, and nothing changes.
func testCloseWaitsForReplacement(t *testing.T) {
	e := newEnv(t, Options{})
	e.lostCard83()
	var refused *CloseRefusedError
	if _, err := e.st.CloseCard(e.t.Context(), testNewNumber, "operator alice", "left", time.Now()); !errors.As(err, &refused) {
		t.Fatalf("closing the new card of a replacement still settling: %v; want refused", err)
	}
	if n := e.count("closes", "card = ?", testNewNumber); n != 0 {
		t.Fatalf("%d closes of the new card after the refusal", n)
	}
}

func TestCloseRefundsCancelledCredits(t *testing.T) { eachStore(t, testCloseRefundsCancelledCredits) }

// testCloseRefundsCancelledCredits: the pending credits a close cancels
// (so that nothing is loaded onto a card being emptied) are the holder's
// money never loaded: a top-up of 5.00 goes back with the refund due, on
// top of the 100.00 the closing debit took. A subsidy is the operator's
// grant, withdrawn with the close, not paid out. A credit still awaiting a
// second operator's approval refuses the close, and nothing changes:
// refunding it would pay out what nobody approved, cancelling it would
// lose it if it was the holder's.
func testCloseRefundsCancelledCredits(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	e := newEnv(t, Options{Now: func() time.Time { return now }})
	ctx := context.Background()
	topup := e.addCredit(500)
	e.addSubsidy(NewSubsidy{ID: "lunch", AmountFen: 300, Purse: epurse.PurseEP, NotBefore: now.Add(-time.Hour), Expires: now.Add(24 * time.Hour),
		Note: "lunch", Cards: []string{testNumber}}, now)

	if err := e.st.SetApprovalThreshold(ctx, 1000, "operator a", now); err != nil {
		t.Fatal(err)
	}
	big, err := e.st.AddCredit(ctx, testNumber, 2000, "desk", "operator a", now)
	if err != nil {
		t.Fatal(err)
	}
	var refused *CloseRefusedError
	if _, err := e.st.CloseCard(ctx, testNumber, "operator alice", "graduated", now); !errors.As(err, &refused) {
		t.Fatalf("close with a credit awaiting approval: %v; want refused", err)
	}
	if s := e.creditState(topup); s != hostapi.CreditPending || e.count("closes", "1 = 1") != 0 {
		t.Fatalf("the refused close changed something: top-up %s, %d closes", s, e.count("closes", "1 = 1"))
	}
	if err := e.st.CancelCreditWithReason(ctx, big.ID, "operator a", "typed 20.00 for 2.00", now); err != nil {
		t.Fatal(err)
	}

	if _, err := e.st.CloseCard(ctx, testNumber, "operator alice", "graduated", now); err != nil {
		t.Fatal(err)
	}
	if s := e.creditState(topup); s != hostapi.CreditCancelled {
		t.Fatalf("top-up %s after the close; want cancelled", s)
	}
	debit := e.sale("1", 0, 1, 10000, 10000, 1)
	debit.CreditID = hostapi.CloseID(testNumber)
	if up := e.upload(debit); len(up.Acked) != 1 {
		t.Fatalf("upload: %+v", up)
	}
	list, err := e.st.Closes(ctx, CloseClosed)
	if err != nil || len(list) != 1 || list[0].RefundFen == nil {
		t.Fatalf("closed: %+v, %v", list, err)
	}
	if got := *list[0].RefundFen; got != 10500 || list[0].CreditsFen != 500 {
		t.Fatalf("refund due %d (credits %d); want 10500: the closing debit's 10000 and the cancelled top-up's 500", got, list[0].CreditsFen)
	}
}

func TestCloseRefundsLateCredits(t *testing.T) { eachStore(t, testCloseRefundsLateCredits) }

// testCloseRefundsLateCredits: money that becomes a credit of the card
// while its close waits, or after it closed, never reaches the card: a
// credit added while the close is pending, and a top-up ordered then and
// paid after the close, each go back with the refund due, once. An
// operator's credit for a closed card is refused with the reason.
func testCloseRefundsLateCredits(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	now := time.Now()
	if _, err := e.st.CloseCard(ctx, testNumber, "operator alice", "graduated", now); err != nil {
		t.Fatal(err)
	}
	order, _, err := e.st.newTopup(ctx, testTerm, "sim", hostapi.TopupOrderRequest{Card: testNumber, AmountFen: 700, BalanceFen: 10000, Key: "k1"},
		100000, now.Add(time.Hour), now)
	if err != nil {
		t.Fatal(err)
	}
	late := e.addCredit(300)
	debit := e.sale("1", 0, 1, 10000, 10000, 1)
	debit.CreditID = hostapi.CloseID(testNumber)
	if up := e.upload(debit); len(up.Acked) != 1 {
		t.Fatalf("upload: %+v", up)
	}
	refund := func() int64 {
		t.Helper()
		list, err := e.st.Closes(ctx, CloseClosed)
		if err != nil || len(list) != 1 || list[0].RefundFen == nil {
			t.Fatalf("closed: %+v, %v", list, err)
		}
		return *list[0].RefundFen
	}
	if got := refund(); got != 10300 || e.creditState(late) != hostapi.CreditCancelled {
		t.Fatalf("refund due %d, credit added while pending %s; want 10300 and cancelled", got, e.creditState(late))
	}
	for range 2 {
		if _, err := e.st.payTopup(ctx, Payment{OrderID: order.ID, State: hostapi.TopupPaid, AmountFen: 700, TxnID: "t1"}, "notify", time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if got := refund(); got != 11000 || e.creditState(order.ID) != hostapi.CreditCancelled {
		t.Fatalf("refund due %d, top-up paid after the close %s; want 11000 and cancelled", got, e.creditState(order.ID))
	}
	if _, err := e.st.AddCredit(ctx, testNumber, 100, "desk", "operator a", time.Now()); !errors.Is(err, ErrClosedCard) {
		t.Fatalf("a credit for a closed card: %v; want ErrClosedCard", err)
	}
	if n := e.count("credits", "card = ? AND state = 'pending'", testNumber); n != 0 {
		t.Fatalf("%d credits pending on the closed card", n)
	}
}

func TestCloseRefundsApprovedLate(t *testing.T) { eachStore(t, testCloseRefundsApprovedLate) }

// testCloseRefundsApprovedLate: a credit added while the close waited and
// still awaiting approval when the card closed waits for its second
// operator; approved, it goes back with the refund due, as no terminal
// loads a closed card.
func testCloseRefundsApprovedLate(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	if _, err := e.st.CloseCard(ctx, testNumber, "operator alice", "graduated", time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := e.st.SetApprovalThreshold(ctx, 1000, "operator a", time.Now()); err != nil {
		t.Fatal(err)
	}
	big, err := e.st.AddCredit(ctx, testNumber, 2000, "desk", "operator a", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	debit := e.sale("1", 0, 1, 10000, 10000, 1)
	debit.CreditID = hostapi.CloseID(testNumber)
	if up := e.upload(debit); len(up.Acked) != 1 {
		t.Fatalf("upload: %+v", up)
	}
	if s := e.creditState(big.ID); s != hostapi.CreditPending {
		t.Fatalf("credit awaiting approval %s at the close; want still pending", s)
	}
	if err := e.st.ApproveCredit(ctx, big.ID, "operator b", "", time.Now()); err != nil {
		t.Fatal(err)
	}
	list, err := e.st.Closes(ctx, CloseClosed)
	if err != nil || len(list) != 1 || *list[0].RefundFen != 12000 || e.creditState(big.ID) != hostapi.CreditCancelled {
		t.Fatalf("after the approval: %+v, %v, credit %s; want 120.00 due and the credit cancelled", list, err, e.creditState(big.ID))
	}
}

func TestClosingDebitNotVoidable(t *testing.T) { eachStore(t, testClosingDebitNotVoidable) }

// testClosingDebitNotVoidable: a closing debit is no sale: its money is
// the refund due, paid at the desk. Voided as a sale, its refund credit
// would pay it a second time. The void is refused 409 not_voidable and
// the refund due stays the debit's.
func testClosingDebitNotVoidable(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	if _, err := e.st.CloseCard(ctx, testNumber, "operator alice", "graduated", time.Now()); err != nil {
		t.Fatal(err)
	}
	row := purchaseRow("9")
	row.AmountFen, row.BalanceFen, row.CreditID = 10000, 10000, hostapi.CloseID(testNumber)
	debit := e.proved(row)
	if up := e.upload(debit); len(up.Acked) != 1 {
		t.Fatalf("upload: %+v", up)
	}
	e.wantRefusal(hostapi.PathVoid, voidRequest(testTerm+"-V1", debit, 10000), http.StatusConflict, hostapi.CodeNotVoidable)
	list, err := e.st.Closes(ctx, CloseClosed)
	if err != nil || len(list) != 1 || *list[0].RefundFen != 10000 {
		t.Fatalf("closes %+v, %v; want 100.00 due", list, err)
	}
	if n := e.count("credits", "card = ?", testNumber); n != 0 {
		t.Fatalf("%d credits for the closed card after the void", n)
	}
}

func TestUnprovenClosingDebit(t *testing.T) { eachStore(t, testUnprovenClosingDebit) }

// testUnprovenClosingDebit: a closing debit the host cannot verify (no TAC,
// no PSAM terminal id: honest only when the card could not prove it any
// more, else a terminal's word alone) is money paid out at the desk on
// that word: it raises an alarm, and the close shows its TAC check as
// none, also when it is a further closing debit after a proven one (the
// close showed "ok" for a refund due that was no longer all proven).
func testUnprovenClosingDebit(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	e.closeWithDebit()
	e.wantOpenAlarms("a proven closing debit")
	further := e.sale("2", 1, 2, 50000, 50000, 2)
	further.CreditID, further.TAC = hostapi.CloseID(testNumber), ""
	if up := e.upload(further); len(up.Acked) != 1 {
		t.Fatalf("upload: %+v", up)
	}
	list, err := e.st.Closes(ctx, CloseClosed)
	if err != nil || len(list) != 1 || *list[0].RefundFen != 60000 || list[0].TACCheck != tacNone {
		t.Fatalf("closes %+v, %v; want 600.00 due with TAC check none", list, err)
	}
	// The books cannot hold a debit of a card already emptied: that is
	// the reconciliation's alarm, after this one.
	e.wantOpenAlarms("an unproven closing debit", "no TAC", "unaccounted")
}

func TestClosingReadOfCardWithMoney(t *testing.T) { eachStore(t, testClosingReadOfCardWithMoney) }

// testClosingReadOfCardWithMoney: a closing read says the card held
// nothing, with no proof; the host's books say it holds 100.00. It closes
// the card with nothing owed all the same (a purchase not yet uploaded
// may have emptied it), but raises an alarm: else a terminal's word alone
// closed a card with its holder's money on it, owed nowhere.
func testClosingReadOfCardWithMoney(t *testing.T) {
	e := newEnv(t, Options{})
	if _, err := e.st.CloseCard(e.t.Context(), testNumber, "operator alice", "graduated", time.Now()); err != nil {
		t.Fatal(err)
	}
	read := hostapi.JournalRow{ID: testTerm + "-5", Kind: "read", State: "done", Card: testNumber, Purse: "EP",
		CreditID: hostapi.CloseID(testNumber), Time: time.Now().Format(time.RFC3339)}
	if up := e.upload(read); len(up.Acked) != 1 {
		t.Fatalf("upload: %+v", up)
	}
	e.wantOpenAlarms("a closing read of a card the books say holds 100.00", "100.00")
}
