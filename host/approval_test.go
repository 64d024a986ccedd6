package host

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cardd/cardd/hostapi"
)

// pulledCredits pulls the whole change feed as a terminal does and returns
// the ids of the credits in it, in order.
func (e *env) pulledCredits() []string {
	e.t.Helper()
	var r hostapi.PullResponse
	e.mustCall(hostapi.PathPull, hostapi.PullRequest{}, &r)
	var ids []string
	for _, c := range r.Credits {
		ids = append(ids, c.ID+":"+c.State)
	}
	return ids
}

// creditEvents lists the ledger events of one credit, "event by actor".
func (e *env) creditEvents(id string) []string {
	e.t.Helper()
	l, err := e.st.Ledger(context.Background(), testNumber)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, c := range l.Credits {
		if c.ID != id {
			continue
		}
		var out []string
		for _, ev := range c.Events {
			out = append(out, ev.Event+" by "+ev.Actor)
		}
		return out
	}
	e.t.Fatalf("credit %s not in the ledger", id)
	return nil
}

// TestApprovalAboveThreshold is the must-show: with a threshold of
// 2,000.00, a 2,500.00 credit is not in the pull nor in the card's
// credits, its authorization is refused (409 credit_unapproved), the
// operator who added it cannot approve it; another operator can, and then
// it is pulled and loads. A credit of exactly the threshold does not wait.
func TestApprovalAboveThreshold(t *testing.T) { eachStore(t, testApprovalAboveThreshold) }

func testApprovalAboveThreshold(t *testing.T) {
	e := newEnv(t, Options{BalanceCap: 1000000})
	ctx := context.Background()
	if err := e.st.SetApprovalThreshold(ctx, 200000, "operator chief", time.Now()); err != nil {
		t.Fatal(err)
	}
	if got, err := e.st.ApprovalThreshold(ctx); err != nil || got.AboveFen != 200000 || got.Actor != "operator chief" {
		t.Fatalf("threshold %+v, %v", got, err)
	}
	at, err := e.st.AddCredit(ctx, testNumber, 200000, "cash", "operator alice", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	big, err := e.st.AddCredit(ctx, testNumber, 250000, "cash", "operator alice", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if c, err := e.st.Credit(ctx, big.ID); err != nil || c.State != hostapi.CreditPending || c.Approval != approvalAwaiting {
		t.Fatalf("credit above the threshold: %+v, %v; want pending, awaiting", c, err)
	}
	if c, err := e.st.Credit(ctx, at.ID); err != nil || c.Approval != "" {
		t.Fatalf("credit at the threshold: approval %q, %v; want none", c.Approval, err)
	}

	// Terminals do not see it: not pulled, not among the card's credits.
	if got := strings.Join(e.pulledCredits(), ","); got != at.ID+":pending" {
		t.Fatalf("pulled %s, want only %s", got, at.ID)
	}
	var cc hostapi.CardCreditsResponse
	e.mustCall(hostapi.PathCardCredits, hostapi.CardCreditsRequest{Card: testNumber}, &cc)
	if len(cc.Credits) != 1 || cc.Credits[0].ID != at.ID {
		t.Fatalf("card credits %+v, want only %s", cc.Credits, at.ID)
	}
	// A terminal naming it anyway is refused and nothing is recorded.
	apiErr := e.wantRefusal(hostapi.PathLoadAuthorize, authorizeRequest(big.ID, e.initLoad(250000), 250000, loadTime()), http.StatusConflict, hostapi.CodeCreditUnapproved)
	if !strings.Contains(apiErr.Reason, "approval") {
		t.Fatalf("refusal reason %q", apiErr.Reason)
	}
	if n := e.count("authorizations", "credit = ?", big.ID); n != 0 {
		t.Fatalf("%d authorizations of an unapproved credit", n)
	}
	// An authorization of another credit does not hand it over either.
	_, resp := e.authorize(at.ID, 200000)
	if len(resp.Credits) != 0 {
		t.Fatalf("authorization listed other credits %+v", resp.Credits)
	}
	l, err := e.st.Ledger(ctx, testNumber)
	if err != nil {
		t.Fatal(err)
	}
	if l.PendingFen != 200000 || l.AwaitingFen != 250000 {
		t.Fatalf("ledger pending %d, awaiting %d", l.PendingFen, l.AwaitingFen)
	}

	// The operator who added it cannot approve it.
	err = e.st.ApproveCredit(ctx, big.ID, "operator alice", "", time.Now())
	var self *SelfApprovalError
	if !errors.As(err, &self) || self.Operator != "operator alice" {
		t.Fatalf("self-approval: %v, want a SelfApprovalError", err)
	}
	if c, _ := e.st.Credit(ctx, big.ID); c.Approval != approvalAwaiting {
		t.Fatalf("after a refused self-approval: %q", c.Approval)
	}
	// Nor can a credit that needs none be approved.
	if err := e.st.ApproveCredit(ctx, at.ID, "operator bob", "", time.Now()); err == nil {
		t.Fatal("approved a credit at the threshold")
	}

	// Another operator approves it: it enters the feed as a new credit and loads.
	if err := e.st.ApproveCredit(ctx, big.ID, "operator bob", "checked the receipt", time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := e.st.ApproveCredit(ctx, big.ID, "operator carol", "", time.Now()); err == nil {
		t.Fatal("approved twice")
	}
	if got := strings.Join(e.pulledCredits(), ","); got != at.ID+":pending,"+big.ID+":pending" {
		t.Fatalf("pulled %s after the approval", got)
	}
	// The card never took the first MAC2: a new INIT at the same counter
	// voids it and the approved credit is authorized.
	li, resp2 := e.authorize(big.ID, 250000)
	tac := e.credit(resp2)
	e.mustCall(hostapi.PathLoadComplete, tacRequest(big.ID, li.OnlineCounter, tac), nil)
	if got := e.creditState(big.ID); got != "consumed" {
		t.Fatalf("approved credit %s after its load, want consumed", got)
	}
	if got := strings.Join(e.creditEvents(big.ID), ","); got != "added by operator alice,awaiting by operator alice,approved by operator bob,authorized by terminal "+testTerm+",consumed by terminal "+testTerm {
		t.Fatalf("ledger of the credit: %s", got)
	}
	l, err = e.st.Ledger(ctx, testNumber)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range l.Credits {
		for _, ev := range c.Events {
			if ev.Event == EventApproved && ev.Detail != "added by operator alice; checked the receipt" {
				t.Fatalf("approval detail %q", ev.Detail)
			}
		}
	}
}

// TestApprovalThresholdOff: with no threshold (never set, or set to 0)
// nothing waits, whatever the amount.
func TestApprovalThresholdOff(t *testing.T) { eachStore(t, testApprovalThresholdOff) }

func testApprovalThresholdOff(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	id := e.addCredit(250000)
	if err := e.st.SetApprovalThreshold(ctx, 100, "operator chief", time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := e.st.SetApprovalThreshold(ctx, 0, "operator chief", time.Now()); err != nil {
		t.Fatal(err)
	}
	id2 := e.addCredit(250000)
	for _, id := range []string{id, id2} {
		if c, err := e.st.Credit(ctx, id); err != nil || c.Approval != "" {
			t.Fatalf("credit %s: approval %q, %v", id, c.Approval, err)
		}
	}
	if err := e.st.SetApprovalThreshold(ctx, -1, "operator chief", time.Now()); err == nil {
		t.Fatal("took a negative threshold")
	}
}

// TestCancelAwaiting: a credit awaiting approval can be cancelled with a
// reason, which the ledger keeps; it never reaches the feed, not even as
// a cancellation, and can no longer be approved.
func TestCancelAwaiting(t *testing.T) { eachStore(t, testCancelAwaiting) }

func testCancelAwaiting(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	if err := e.st.SetApprovalThreshold(ctx, 200000, "operator chief", time.Now()); err != nil {
		t.Fatal(err)
	}
	big, err := e.st.AddCredit(ctx, testNumber, 250000, "cash", "operator alice", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := e.st.CancelCreditWithReason(ctx, big.ID, "operator alice", "typed 2500 for 250", time.Now()); err != nil {
		t.Fatal(err)
	}
	if got := e.pulledCredits(); len(got) != 0 {
		t.Fatalf("pulled %v", got)
	}
	if err := e.st.ApproveCredit(ctx, big.ID, "operator bob", "", time.Now()); err == nil {
		t.Fatal("approved a cancelled credit")
	}
	if n := e.count("ledger", "credit = ? AND event = 'cancelled' AND actor = 'operator alice' AND detail = 'typed 2500 for 250'", big.ID); n != 1 {
		t.Fatalf("%d cancellation lines with the operator and reason", n)
	}
}

// TestCancelUntilAuthorized: a credit added by mistake is cancelled with
// the operator's reason until a terminal holds a MAC2 for it; with one
// open the cancel is refused with the reason; once the card proved the
// load, only a correction answers the mistake, and it records money owed
// back without touching the load.
func TestCancelUntilAuthorized(t *testing.T) { eachStore(t, testCancelUntilAuthorized) }

func testCancelUntilAuthorized(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()

	// Before any authorization: cancelled, with the reason in the ledger.
	first := e.addCredit(3000)
	if err := e.st.CancelCreditWithReason(ctx, first, "operator alice", "wrong card", time.Now()); err != nil {
		t.Fatal(err)
	}
	if n := e.count("ledger", "credit = ? AND event = 'cancelled' AND actor = 'operator alice' AND detail = 'wrong card'", first); n != 1 {
		t.Fatalf("%d cancellation lines with the operator and reason", n)
	}
	if _, err := e.st.CorrectCredit(ctx, first, 0, "operator alice", "wrong card", time.Now()); err == nil {
		t.Fatal("corrected a cancelled credit")
	}

	// Authorized (a MAC2 is out): the cancel is refused and says why.
	id := e.addCredit(5000)
	li, resp := e.authorize(id, 5000)
	err := e.st.CancelCreditWithReason(ctx, id, "operator alice", "wrong card", time.Now())
	if err == nil || !strings.Contains(err.Error(), "authorized") {
		t.Fatalf("cancel with an open MAC2: %v", err)
	}
	if _, err := e.st.CorrectCredit(ctx, id, 0, "operator alice", "wrong card", time.Now()); err == nil {
		t.Fatal("corrected a credit whose load is not proven")
	}
	// Loaded: still refused, and the refusal names the correction.
	tac := e.credit(resp)
	e.mustCall(hostapi.PathLoadComplete, tacRequest(id, li.OnlineCounter, tac), nil)
	err = e.st.CancelCreditWithReason(ctx, id, "operator alice", "wrong card", time.Now())
	if err == nil || !strings.Contains(err.Error(), "credit correct") {
		t.Fatalf("cancel of a loaded credit: %v", err)
	}
	if e.count("ledger", "credit = ? AND event = 'cancelled'", id) != 0 || e.creditState(id) != "consumed" {
		t.Fatal("a refused cancel changed something")
	}

	// The correction: a reason is required, never more than the credit.
	if _, err := e.st.CorrectCredit(ctx, id, 0, "operator alice", " ", time.Now()); err == nil {
		t.Fatal("corrected without a reason")
	}
	if _, err := e.st.CorrectCredit(ctx, id, 5001, "operator alice", "wrong card", time.Now()); err == nil {
		t.Fatal("corrected more than the credit")
	}
	if got, err := e.st.CorrectCredit(ctx, id, 2000, "operator alice", "wrong card: 20.00 of it", time.Now()); err != nil || got != 2000 {
		t.Fatalf("partial correction: %d, %v", got, err)
	}
	if got, err := e.st.CorrectCredit(ctx, id, 0, "operator bob", "the rest too", time.Now()); err != nil || got != 3000 {
		t.Fatalf("correction of the rest: %d, %v", got, err)
	}
	if _, err := e.st.CorrectCredit(ctx, id, 0, "operator bob", "again", time.Now()); err == nil {
		t.Fatal("corrected past the credit's amount")
	}
	l, err := e.st.Ledger(ctx, testNumber)
	if err != nil {
		t.Fatal(err)
	}
	// The money is on the card: loaded still says so; the corrections
	// say what is owed back.
	if l.LoadedFen != 5000 || l.CorrectedFen != -5000 || l.Card.InitialBalanceFen+l.LoadedFen != e.balance() {
		t.Fatalf("ledger loaded %d, corrected %d, card balance %d", l.LoadedFen, l.CorrectedFen, e.balance())
	}
	if n := e.count("ledger", "credit = ? AND event = 'corrected' AND amount_fen = -3000 AND actor = 'operator bob' AND detail = 'the rest too'", id); n != 1 {
		t.Fatalf("%d correction lines of -30.00 by bob", n)
	}
}

// TestApprovalM1Wallet: an M1 wallet's credit above the threshold waits
// the same way: not among the wallet's credits, its load refused 409
// credit_unapproved with nothing recorded, until another operator
// approves it.
func TestApprovalM1Wallet(t *testing.T) { eachStore(t, testApprovalM1Wallet) }

func testApprovalM1Wallet(t *testing.T) {
	e, _ := m1Env(t)
	ctx := context.Background()
	if err := e.st.SetApprovalThreshold(ctx, 20000, "operator chief", time.Now()); err != nil {
		t.Fatal(err)
	}
	id := e.addM1Credit(25000)
	var cc hostapi.CardCreditsResponse
	e.mustCall(hostapi.PathCardCredits, hostapi.CardCreditsRequest{Card: testUID}, &cc)
	if len(cc.Credits) != 0 {
		t.Fatalf("wallet credits %+v before the approval", cc.Credits)
	}
	e.wantRefusal(hostapi.PathLoadAuthorize, m1Authorize(id, ref1, 1000, 25000), http.StatusConflict, hostapi.CodeCreditUnapproved)
	if n := e.count("m1_loads", "credit = ?", id); n != 0 {
		t.Fatalf("%d M1 loads of an unapproved credit", n)
	}
	if err := e.st.ApproveCredit(ctx, id, "operator chief", "", time.Now()); err != nil {
		t.Fatal(err)
	}
	e.mustCall(hostapi.PathLoadAuthorize, m1Authorize(id, ref1, 1000, 25000), nil)
	e.mustCall(hostapi.PathLoadComplete, m1Complete(id, ref1, 26000, false), nil)
	if got := e.creditState(id); got != hostapi.CreditConsumed {
		t.Fatalf("approved M1 credit %s after its load, want consumed", got)
	}
}
