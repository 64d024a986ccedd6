package host

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/cardd/cardd/hostapi"
)

const testUID = "uid:04A1B2C3"

// m1Env is env with an M1 wallet registered and a second terminal.
func m1Env(t *testing.T) (*env, string) {
	t.Helper()
	e := newEnv(t, Options{BalanceCap: 100000})
	ctx := context.Background()
	if _, err := e.st.RegisterM1(ctx, "04a1b2c3", "李四", "operator test", time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.RegisterM1(ctx, "04A1B2C3", "", "operator test", time.Now()); !errors.Is(err, ErrExists) {
		t.Fatalf("registering the UID twice: %v, want ErrExists", err)
	}
	secret2, err := NewTerminalSecret()
	if err != nil {
		t.Fatal(err)
	}
	if err := e.st.AddTerminal(ctx, "000000000002", secret2, time.Now()); err != nil {
		t.Fatal(err)
	}
	return e, secret2
}

func (e *env) addM1Credit(amount int64) string {
	e.t.Helper()
	c, err := e.st.AddCredit(context.Background(), testUID, amount, "wechat", "operator test", time.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	return c.ID
}

const (
	ref1 = "00000000000000A1"
	ref2 = "00000000000000A2"
)

func m1Authorize(credit, ref string, balance, amount int64) hostapi.LoadAuthorizeRequest {
	return hostapi.LoadAuthorizeRequest{CreditID: credit, Card: testUID, Purse: hostapi.PurseM1, AmountFen: amount,
		OldBalanceFen: balance, OnlineCounter: 7, Ref: ref, Time: loadTime().Format(hostapi.TimeLayout)}
}

func m1Complete(credit, ref string, balance int64, notApplied bool) hostapi.LoadCompleteRequest {
	return hostapi.LoadCompleteRequest{CreditID: credit, Card: testUID, Purse: hostapi.PurseM1, Ref: ref, BalanceFen: balance, NotApplied: notApplied}
}

func TestM1Load(t *testing.T) { eachStore(t, testM1Load) }

func testM1Load(t *testing.T) {
	e, secret2 := m1Env(t)
	id := e.addM1Credit(5000)
	var auth hostapi.LoadAuthorizeResponse
	e.mustCall(hostapi.PathLoadAuthorize, m1Authorize(id, ref1, 1000, 5000), &auth)
	if auth.MAC2 != "" || auth.Time == "" {
		t.Fatalf("authorize answered %+v: want a time and no MAC2", auth)
	}
	// The wallet's credits show the open load, for any terminal that
	// reads the wallet to settle.
	var cc hostapi.CardCreditsResponse
	e.mustCall(hostapi.PathCardCredits, hostapi.CardCreditsRequest{Card: testUID}, &cc)
	want := hostapi.M1OpenLoad{CreditID: id, Ref: ref1, Terminal: testTerm, OldBalanceFen: 1000, AmountFen: 5000, Seq: 7}
	if len(cc.Credits) != 1 || cc.M1Open == nil || *cc.M1Open != want {
		t.Fatalf("card credits %+v (open %+v), want the credit and its open load %+v", cc.Credits, cc.M1Open, want)
	}
	// The same ref again is a retry.
	var again hostapi.LoadAuthorizeResponse
	e.mustCall(hostapi.PathLoadAuthorize, m1Authorize(id, ref1, 1000, 5000), &again)
	if n := e.count("m1_loads", "credit = ?", id); n != 1 || !reflect.DeepEqual(again, auth) {
		t.Fatalf("%d authorizations after a retry (%+v, first %+v), want 1, the same", n, again, auth)
	}
	// The ref at another balance names another authorization: refused.
	e.wantRefusal(hostapi.PathLoadAuthorize, m1Authorize(id, ref1, 2000, 5000), http.StatusBadRequest, hostapi.CodeBadRequest)
	// A second load of the wallet while this one is open, from here or
	// elsewhere: refused.
	e.wantRefusal(hostapi.PathLoadAuthorize, m1Authorize(id, ref2, 1000, 5000), http.StatusConflict, hostapi.CodeCreditPending)
	status, b := e.send(e.signed(hostapi.PathLoadAuthorize, m1Authorize(e.addM1Credit(100), ref2, 1000, 100), "000000000002", secret2, time.Now()))
	if status != http.StatusConflict {
		t.Fatalf("another terminal's load of the wallet: %d %s, want 409", status, b)
	}
	// A balance that does not fit is refused and changes nothing.
	e.wantRefusal(hostapi.PathLoadComplete, m1Complete(id, ref1, 5000, false), http.StatusConflict, hostapi.CodeCounterMismatch)
	e.wantRefusal(hostapi.PathLoadComplete, m1Complete(id, "00000000000000FF", 6000, false), http.StatusNotFound, hostapi.CodeNotFound)
	if got := e.creditState(id); got != hostapi.CreditPending {
		t.Fatalf("credit %s after refused completions, want pending", got)
	}

	// Another terminal that read the wallet completes it: consumed, by
	// the terminal that wrote it.
	status, b = e.send(e.signed(hostapi.PathLoadComplete, m1Complete(id, ref1, 6000, false), "000000000002", secret2, time.Now()))
	if status != http.StatusOK || e.creditState(id) != hostapi.CreditConsumed {
		t.Fatalf("completion from the wallet at another terminal: %d %s, credit %s", status, b, e.creditState(id))
	}
	// The writer's own completion, later: the same answer, once.
	var done hostapi.LoadCompleteResponse
	e.mustCall(hostapi.PathLoadComplete, m1Complete(id, ref1, 6000, false), &done)
	if done.State != hostapi.CreditConsumed || e.count("ledger", "event = 'consumed'") != 1 {
		t.Fatalf("second complete: %q, %d consumed in the ledger", done.State, e.count("ledger", "event = 'consumed'"))
	}
	if n := e.count("credits", "id = ? AND consumed_by = ?", id, testTerm); n != 1 {
		t.Fatal("consumed_by is not the terminal that wrote the load")
	}
	e.wantRefusal(hostapi.PathLoadAuthorize, m1Authorize(id, ref2, 6000, 5000), http.StatusConflict, hostapi.CodeCreditConsumed)
}

func TestM1LoadNotApplied(t *testing.T) { eachStore(t, testM1LoadNotApplied) }

func testM1LoadNotApplied(t *testing.T) {
	e, _ := m1Env(t)
	id := e.addM1Credit(700)
	// Not applied for a ref the host never saw (the request was lost):
	// nothing to void, nothing changes.
	var done hostapi.LoadCompleteResponse
	e.mustCall(hostapi.PathLoadComplete, m1Complete(id, ref1, 1000, true), &done)
	if done.State != hostapi.CreditPending || e.count("m1_loads", "TRUE") != 0 {
		t.Fatalf("not applied of an unknown ref: %q", done.State)
	}
	e.mustCall(hostapi.PathLoadAuthorize, m1Authorize(id, ref1, 1000, 700), nil)
	e.mustCall(hostapi.PathLoadComplete, m1Complete(id, ref1, 1000, true), &done)
	if done.State != hostapi.CreditPending || e.count("m1_loads", "credit = ? AND state = 'void'", id) != 1 {
		t.Fatalf("not applied answered %q, want pending and the authorization void", done.State)
	}
	// A second authorization, at the same balance, written to the wallet.
	e.mustCall(hostapi.PathLoadAuthorize, m1Authorize(id, ref2, 1000, 700), nil)
	// A late copy of the first one's report must not touch the second.
	e.mustCall(hostapi.PathLoadComplete, m1Complete(id, ref1, 1000, true), &done)
	e.mustCall(hostapi.PathLoadComplete, m1Complete(id, ref2, 1700, false), &done)
	if done.State != hostapi.CreditConsumed {
		t.Fatalf("the second authorization's completion: %q, want consumed", done.State)
	}
	// Not applied after applied: the records contradict; an alarm, and
	// nothing changes.
	e.mustCall(hostapi.PathLoadComplete, m1Complete(id, ref2, 1000, true), &done)
	if e.creditState(id) != hostapi.CreditConsumed || e.count("ledger", "event = 'alarm'") != 1 {
		t.Fatalf("not applied after applied: credit %s, %d alarms", e.creditState(id), e.count("ledger", "event = 'alarm'"))
	}

	// While a load is open the credit cannot be cancelled: it may be on
	// the wallet.
	id2 := e.addM1Credit(300)
	e.mustCall(hostapi.PathLoadAuthorize, m1Authorize(id2, ref1, 300, 300), nil)
	if err := e.st.CancelCredit(context.Background(), id2, "operator test", time.Now()); err == nil {
		t.Fatal("a credit with an open M1 authorization was cancelled")
	}
	// An operator settles it: not applied, and it is pending again.
	if err := e.st.SettleM1(context.Background(), id2, false, "operator test", time.Now()); err != nil {
		t.Fatal(err)
	}
	if s := e.creditState(id2); s != hostapi.CreditPending || e.count("m1_loads", "credit = ? AND state = 'open'", id2) != 0 {
		t.Fatalf("after settle-m1 not applied: %s", s)
	}
	if err := e.st.SettleM1(context.Background(), id2, true, "operator test", time.Now()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("settling with nothing open: %v, want ErrNotFound", err)
	}
	// The terminal reports it applied after all: alarm, and consumed (it
	// is on the wallet, and nothing else holds it).
	e.mustCall(hostapi.PathLoadComplete, m1Complete(id2, ref1, 600, false), &done)
	if done.State != hostapi.CreditConsumed || e.count("ledger", "event = 'alarm'") != 2 {
		t.Fatalf("applied after void: %q, %d alarms", done.State, e.count("ledger", "event = 'alarm'"))
	}
}

func TestM1Refusals(t *testing.T) { eachStore(t, testM1Refusals) }

func testM1Refusals(t *testing.T) {
	e, _ := m1Env(t)
	id := e.addM1Credit(5000)
	ep := e.addCredit(100)
	cases := []struct {
		name   string
		req    hostapi.LoadAuthorizeRequest
		status int
		code   string
	}{
		{"a MAC1 on an M1 load", func() hostapi.LoadAuthorizeRequest {
			r := m1Authorize(id, ref1, 0, 5000)
			r.MAC1 = "00000000"
			return r
		}(), 400, hostapi.CodeBadRequest},
		{"a card number as an M1 card", func() hostapi.LoadAuthorizeRequest { r := m1Authorize(ep, ref1, 0, 100); r.Card = testNumber; return r }(), 400, hostapi.CodeBadRequest},
		{"a lower-case UID", func() hostapi.LoadAuthorizeRequest {
			r := m1Authorize(id, ref1, 0, 5000)
			r.Card = "uid:04a1b2c3"
			return r
		}(), 400, hostapi.CodeBadRequest},
		{"the wrong amount", m1Authorize(id, ref1, 0, 4000), 400, hostapi.CodeBadRequest},
		{"over the cap", m1Authorize(id, ref1, 96000, 5000), 409, hostapi.CodeBalanceCap},
		{"another card's credit", func() hostapi.LoadAuthorizeRequest { r := m1Authorize(ep, ref1, 0, 100); return r }(), 400, hostapi.CodeBadRequest},
		{"a negative balance", m1Authorize(id, ref1, -1, 5000), 400, hostapi.CodeBadRequest},
		{"no ref", m1Authorize(id, "", 0, 5000), 400, hostapi.CodeBadRequest},
		{"a lower-case ref", m1Authorize(id, "00000000000000a1", 0, 5000), 400, hostapi.CodeBadRequest},
		{"a sequence past 255", func() hostapi.LoadAuthorizeRequest {
			r := m1Authorize(id, ref1, 0, 5000)
			r.OnlineCounter = 256
			return r
		}(), 400, hostapi.CodeBadRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			e.wantRefusal(hostapi.PathLoadAuthorize, tc.req, tc.status, tc.code)
		})
	}
	e.t = t
	// The e-purse path refuses an M1 card cleanly, not with a 500.
	li := e.initLoad(5000)
	r := authorizeRequest(id, li, 5000, loadTime())
	r.Card = testUID
	e.wantRefusal(hostapi.PathLoadAuthorize, r, 400, hostapi.CodeBadRequest)
	// A denied wallet gets nothing; the deny list takes its UID.
	if _, err := e.st.Deny(context.Background(), testUID, "lost", "operator test", time.Now()); err != nil {
		t.Fatal(err)
	}
	e.wantRefusal(hostapi.PathLoadAuthorize, m1Authorize(id, ref1, 0, 5000), 409, hostapi.CodeCardDenied)
	var pull hostapi.PullResponse
	e.mustCall(hostapi.PathPull, hostapi.PullRequest{}, &pull)
	found := false
	for _, d := range pull.Deny {
		found = found || d.Card == testUID && d.Denied
	}
	if !found {
		t.Fatalf("pull %+v: the UID's denial is not in it", pull.Deny)
	}
	if n := e.count("m1_loads", "TRUE"); n != 0 {
		t.Fatalf("%d authorizations recorded by refusals, want 0", n)
	}
}
