package host

import (
	"net/http"
	"testing"

	"github.com/cardd/cardd/hostapi"
)

// TestBalanceCapBoundary: the cap is the most a purse may hold, so a load
// landing exactly on it is authorized, and one fen more is refused. The
// card holds 100.00 (newEnv); the cap is 150.00.
func TestBalanceCapBoundary(t *testing.T) { eachStore(t, testBalanceCapBoundary) }

func testBalanceCapBoundary(t *testing.T) {
	e := newEnv(t, Options{BalanceCap: 15000})
	over := e.addCredit(5001)
	e.wantRefusal(hostapi.PathLoadAuthorize, authorizeRequest(over, e.initLoad(5001), 5001, loadTime()), http.StatusConflict, hostapi.CodeBalanceCap)
	if n := e.count("authorizations", "TRUE"); n != 0 {
		t.Fatalf("%d authorizations after a load over the cap, want none", n)
	}
	exact := e.addCredit(5000)
	li, auth := e.authorize(exact, 5000)
	if auth.MAC2 == "" {
		t.Fatalf("a load landing on the cap got no MAC2: %+v", auth)
	}
	tac := e.credit(auth)
	var done hostapi.LoadCompleteResponse
	e.mustCall(hostapi.PathLoadComplete, tacRequest(exact, li.OnlineCounter, tac), &done)
	if done.State != hostapi.CreditConsumed || e.balance() != 15000 {
		t.Fatalf("load onto the cap: credit %q, card holds %d, want consumed and 15000", done.State, e.balance())
	}
}

// TestM1BalanceCapBoundary is TestBalanceCapBoundary for an M1 wallet,
// whose balance the terminal reports (m1Env's cap is 1000.00).
func TestM1BalanceCapBoundary(t *testing.T) { eachStore(t, testM1BalanceCapBoundary) }

func testM1BalanceCapBoundary(t *testing.T) {
	e, _ := m1Env(t)
	id := e.addM1Credit(5000)
	e.wantRefusal(hostapi.PathLoadAuthorize, m1Authorize(id, ref1, 95001, 5000), http.StatusConflict, hostapi.CodeBalanceCap)
	if n := e.count("m1_loads", "credit = ?", id); n != 0 {
		t.Fatalf("%d M1 loads recorded over the cap, want none", n)
	}
	var auth hostapi.LoadAuthorizeResponse
	e.mustCall(hostapi.PathLoadAuthorize, m1Authorize(id, ref1, 95000, 5000), &auth)
	if auth.Time == "" || e.count("m1_loads", "credit = ? AND state = 'open'", id) != 1 {
		t.Fatalf("a wallet load landing on the cap was not authorized: %+v", auth)
	}
}
