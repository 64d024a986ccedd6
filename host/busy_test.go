package host

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cardd/cardd/apdu/epurse"
	"github.com/cardd/cardd/hostapi"
)

const testTermB = "000000000002"

// addTerminalB registers a second terminal and returns its secret.
func (e *env) addTerminalB() string {
	e.t.Helper()
	secret, err := NewTerminalSecret()
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.st.AddTerminal(context.Background(), testTermB, secret, time.Now()); err != nil {
		e.t.Fatal(err)
	}
	return secret
}

// initLoadAs runs INITIALIZE FOR LOAD on the card as terminal term would:
// the MAC1 covers the terminal's id.
func (e *env) initLoadAs(term string, amount int64) epurse.LoadInit {
	e.t.Helper()
	e.card.Reset()
	if _, err := epurse.Select(e.card); err != nil {
		e.t.Fatal(err)
	}
	li, err := epurse.InitLoad(e.card, epurse.PurseEP, 1, amount, terminalBytes(term))
	if err != nil {
		e.t.Fatal(err)
	}
	return li
}

// authorizeAs posts an authorization as terminal term and returns the
// status and the error code ("" on 200).
func (e *env) authorizeAs(term, secret string, req hostapi.LoadAuthorizeRequest) (int, string, hostapi.LoadAuthorizeResponse) {
	e.t.Helper()
	status, b := e.send(e.signed(hostapi.PathLoadAuthorize, req, term, secret, time.Now()))
	var resp hostapi.LoadAuthorizeResponse
	var apiErr hostapi.Error
	if status == http.StatusOK {
		json.Unmarshal(b, &resp)
	} else {
		json.Unmarshal(b, &apiErr)
	}
	return status, apiErr.Code, resp
}

// TestAuthorizeRaceBusy: terminals A and B ask for the same credit of one
// card at the same counter, 20 rounds, both at once each round. The first
// to be authorized holds the counter: the other is answered 409 credit_busy
// every time, and the ledger never voids one terminal's MAC2 for the
// other's (before, 20 attempts gave 20 authorize/void flip-flops). The
// holder's own new INIT answers still re-authorize, as after its own torn
// tap.
func TestAuthorizeRaceBusy(t *testing.T) { eachStore(t, testAuthorizeRaceBusy) }

func testAuthorizeRaceBusy(t *testing.T) {
	e := newEnv(t, Options{})
	secretB := e.addTerminalB()
	id := e.addCredit(2000)
	secrets := map[string]string{testTerm: e.secret, testTermB: secretB}
	busy := map[string]int{}
	var mu sync.Mutex
	for round := range 20 {
		reqs := map[string]hostapi.LoadAuthorizeRequest{}
		for _, term := range []string{testTerm, testTermB} {
			li := e.initLoadAs(term, 2000)
			reqs[term] = authorizeRequest(id, li, 2000, loadTime())
		}
		var wg sync.WaitGroup
		for term, req := range reqs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				status, code, _ := e.authorizeAs(term, secrets[term], req)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case status == http.StatusOK:
				case status == http.StatusConflict && code == hostapi.CodeCreditBusy:
					busy[term]++
				default:
					t.Errorf("round %d, terminal %s: %d %s", round, term, status, code)
				}
			}()
		}
		wg.Wait()
	}
	var holders []string
	rows, err := e.st.db.Query(`SELECT DISTINCT terminal FROM authorizations WHERE credit = ?`, id)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var term string
		rows.Scan(&term)
		holders = append(holders, term)
	}
	rows.Close()
	if len(holders) != 1 {
		t.Fatalf("authorizations issued to terminals %v: one terminal's MAC2 was voided for another's", holders)
	}
	other := testTermB
	if holders[0] == testTermB {
		other = testTerm
	}
	if busy[other] != 20 || busy[holders[0]] != 0 {
		t.Fatalf("busy answers %v, want 20 for %s only", busy, other)
	}
	// No void by a terminal of another's authorization.
	if n := e.count("ledger", "event = 'voided' AND actor != ?", terminalActor(holders[0])); n != 0 {
		t.Fatalf("%d authorizations voided by the other terminal", n)
	}
	if n := e.count("authorizations", "state = 'open'"); n != 1 {
		t.Fatalf("%d open authorizations, want 1", n)
	}
}

// TestBusyHoldEnds: the hold ends when its holder proves the load did not
// happen (the card's next tap there), or after LoadHold; then the other
// terminal is authorized, and the load goes through once.
func TestBusyHoldEnds(t *testing.T) { eachStore(t, testBusyHoldEnds) }

func testBusyHoldEnds(t *testing.T) {
	clock := time.Now()
	var mu sync.Mutex
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	e := newEnv(t, Options{Now: now, LoadHold: time.Minute})
	secretB := e.addTerminalB()
	id := e.addCredit(2000)

	// A is authorized; the card is torn away before CREDIT FOR LOAD.
	liA := e.initLoadAs(testTerm, 2000)
	if status, code, _ := e.authorizeAs(testTerm, e.secret, authorizeRequest(id, liA, 2000, loadTime())); status != http.StatusOK {
		t.Fatalf("A: %d %s", status, code)
	}
	// B, at once: busy, and the reason says what to do.
	liB := e.initLoadAs(testTermB, 2000)
	status, b := e.send(e.signed(hostapi.PathLoadAuthorize, authorizeRequest(id, liB, 2000, loadTime()), testTermB, secretB, time.Now()))
	if status != http.StatusConflict || !strings.Contains(string(b), hostapi.CodeCreditBusy) || !strings.Contains(string(b), "next tap") {
		t.Fatalf("B while A holds: %d %s", status, b)
	}
	// 61 s later the hold is over: B is authorized, A's MAC2 void.
	mu.Lock()
	clock = clock.Add(61 * time.Second)
	mu.Unlock()
	liB = e.initLoadAs(testTermB, 2000)
	status, code, _ := e.authorizeAs(testTermB, secretB, authorizeRequest(id, liB, 2000, loadTime()))
	if status != http.StatusOK {
		t.Fatalf("B after the hold: %d %s", status, code)
	}
	if got := e.authStates(id); strings.Join(got, ",") != "void,open" {
		t.Fatalf("authorizations %v, want [void open]", got)
	}
	// Now A is the one refused while B holds; B's own re-INIT is not.
	liA = e.initLoadAs(testTerm, 2000)
	if status, code, _ := e.authorizeAs(testTerm, e.secret, authorizeRequest(id, liA, 2000, loadTime())); code != hostapi.CodeCreditBusy {
		t.Fatalf("A while B holds: %d %s", status, code)
	}
	liB = e.initLoadAs(testTermB, 2000)
	status, code, _ = e.authorizeAs(testTermB, secretB, authorizeRequest(id, liB, 2000, loadTime()))
	if status != http.StatusOK {
		t.Fatalf("B again on its own: %d %s", status, code)
	}
	// B proves the load did not happen (a probe at its next tap): the hold
	// ends at once and A is authorized and loads.
	probe := e.initLoadAs(testTermB, 2000)
	req := probeRequest(id, liB.OnlineCounter, probe, 2000)
	if status, b := e.send(e.signed(hostapi.PathLoadComplete, req, testTermB, secretB, time.Now())); status != http.StatusOK {
		t.Fatalf("B's probe: %d %s", status, b)
	}
	liA = e.initLoadAs(testTerm, 2000)
	status, code, resp := e.authorizeAs(testTerm, e.secret, authorizeRequest(id, liA, 2000, loadTime()))
	if status != http.StatusOK {
		t.Fatalf("A after B released: %d %s", status, code)
	}
	tac := e.credit(resp)
	e.mustCall(hostapi.PathLoadComplete, tacRequest(id, liA.OnlineCounter, tac), nil)
	if e.creditState(id) != "consumed" || e.balance() != 12000 {
		t.Fatalf("credit %s, balance %d", e.creditState(id), e.balance())
	}
}
