package host

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cardd/cardd/apdu/epurse"
	"github.com/cardd/cardd/hostapi"
)

func TestFullLoad(t *testing.T) { eachStore(t, testFullLoad) }

func testFullLoad(t *testing.T) {
	e := newEnv(t, Options{})
	id := e.addCredit(5000)

	li, resp := e.authorize(id, 5000)
	if li.OldBalance != 10000 || li.OnlineCounter != 0 {
		t.Fatalf("INIT = %+v, want balance 10000 at counter 0", li)
	}
	if len(resp.MAC2) != 8 || resp.Time == "" {
		t.Fatalf("authorize answer %+v", resp)
	}
	tac := e.credit(resp)
	if got := e.balance(); got != 15000 {
		t.Fatalf("card balance %d after the load, want 15000", got)
	}
	var done hostapi.LoadCompleteResponse
	e.mustCall(hostapi.PathLoadComplete, tacRequest(id, li.OnlineCounter, tac), &done)
	if done.State != hostapi.CreditConsumed {
		t.Fatalf("complete answered %q, want consumed", done.State)
	}
	if got := e.creditState(id); got != "consumed" {
		t.Fatalf("credit %s, want consumed", got)
	}
	if got := e.authStates(id); len(got) != 1 || got[0] != "applied" {
		t.Fatalf("authorizations %v, want [applied]", got)
	}

	// The same TAC again: nothing changes, still consumed.
	done = hostapi.LoadCompleteResponse{}
	e.mustCall(hostapi.PathLoadComplete, tacRequest(id, li.OnlineCounter, tac), &done)
	if done.State != hostapi.CreditConsumed || e.count("ledger", "event = 'consumed'") != 1 {
		t.Fatalf("second complete: %q, %d consumed rows in the ledger", done.State, e.count("ledger", "event = 'consumed'"))
	}

	// The consumed credit cannot be authorized again.
	li2 := e.initLoad(5000)
	e.wantRefusal(hostapi.PathLoadAuthorize, authorizeRequest(id, li2, 5000, loadTime()), http.StatusConflict, hostapi.CodeCreditConsumed)

	// The ledger tells the same story.
	l, err := e.st.Ledger(context.Background(), testNumber)
	if err != nil {
		t.Fatal(err)
	}
	if l.LoadedFen != 5000 || l.PendingFen != 0 || len(l.Credits) != 1 || l.Alarms != 0 {
		t.Fatalf("ledger: loaded %d, pending %d, %d credits, %d alarms", l.LoadedFen, l.PendingFen, len(l.Credits), l.Alarms)
	}
	var events []string
	for _, ev := range l.Credits[0].Events {
		events = append(events, ev.Event)
	}
	if strings.Join(events, ",") != "added,authorized,consumed" {
		t.Fatalf("credit events %v", events)
	}
	c := l.Credits[0]
	if c.ConsumedTAC != strings.ToUpper(hex.EncodeToString(tac[:])) || c.ConsumedBy != testTerm {
		t.Fatalf("credit consumed with TAC %s by %s", c.ConsumedTAC, c.ConsumedBy)
	}
	if l.Card.InitialBalanceFen+l.LoadedFen != e.balance() {
		t.Fatalf("initial %d + loaded %d != card balance %d", l.Card.InitialBalanceFen, l.LoadedFen, e.balance())
	}

	// Nothing is pending for the card any more.
	var cc hostapi.CardCreditsResponse
	e.mustCall(hostapi.PathCardCredits, hostapi.CardCreditsRequest{Card: testNumber}, &cc)
	if len(cc.Credits) != 0 || cc.Denied {
		t.Fatalf("card credits after the load: %+v", cc)
	}
}

func TestConformanceVectors(t *testing.T) {
	key := func(s string) epurse.Key16 {
		var k epurse.Key16
		hex.Decode(k[:], []byte(s))
		return k
	}
	b4 := func(s string) [4]byte {
		var b [4]byte
		hex.Decode(b[:], []byte(s))
		return b
	}
	b6 := func(s string) [6]byte {
		var b [6]byte
		hex.Decode(b[:], []byte(s))
		return b
	}
	// Load, ED: session input 11223344 0000 8000.
	dlk := key("11223344556677888877665544332211")
	random, counter := b4("11223344"), uint16(0)
	if got := epurse.SessionKeyLoad(dlk, random, counter); hex.EncodeToString(got[:]) != "9b1d924e05595603" {
		t.Fatalf("SESLK = %X", got)
	}
	term := b6("001122334455")
	when := time.Date(2011, 12, 21, 21, 48, 22, 0, time.UTC)
	mac2, err := loadMAC2(dlk, random, counter, 0x1000, epurse.TxEDLoad, term, when)
	if err != nil || strings.ToUpper(hex.EncodeToString(mac2[:])) != "3A845BF0" {
		t.Fatalf("MAC2 = %X, %v; want 3A845BF0", mac2, err)
	}
	ok, err := checkLoadMAC1(dlk, random, counter, 0, 0x1000, epurse.TxEDLoad, term, b4("2988AE5A"))
	if err != nil || !ok {
		t.Fatalf("ED MAC1 2988AE5A does not verify: %v", err)
	}
	if ok, _ := checkLoadMAC1(dlk, random, counter, 0, 0x1000, epurse.TxEDLoad, term, b4("2988AE5B")); ok {
		t.Fatal("a MAC1 with a flipped bit verifies")
	}
	// The wrong counter must not verify: that is what tells a moved card.
	if ok, _ := checkLoadMAC1(dlk, random, counter+1, 0, 0x1000, epurse.TxEDLoad, term, b4("2988AE5A")); ok {
		t.Fatal("MAC1 verifies at another counter")
	}
	// Load, EP: input F9CABA91 0000 8000.
	ok, err = checkLoadMAC1(key("3F013F013F013F013F013F013F013F01"), b4("F9CABA91"), 0, 0, 0x1234, epurse.TxEPLoad, b6("000000000001"), b4("6C394D64"))
	if err != nil || !ok {
		t.Fatalf("EP MAC1 6C394D64 does not verify: %v", err)
	}
}

func TestReauthorizeSameCounter(t *testing.T) { eachStore(t, testReauthorizeSameCounter) }

func testReauthorizeSameCounter(t *testing.T) {
	e := newEnv(t, Options{})
	id := e.addCredit(2000)
	li1, first := e.authorize(id, 2000)
	// The card is pulled before CREDIT FOR LOAD; on the next tap the
	// terminal runs INIT again and the counter has not moved.
	li2, second := e.authorize(id, 2000)
	if li2.OnlineCounter != li1.OnlineCounter {
		t.Fatalf("counter moved from %d to %d without a load", li1.OnlineCounter, li2.OnlineCounter)
	}
	if first.MAC2 == second.MAC2 {
		t.Fatal("a new INIT got the old MAC2")
	}
	if got := e.authStates(id); strings.Join(got, ",") != "void,open" {
		t.Fatalf("authorizations %v, want [void open]", got)
	}
	if e.count("ledger", "event = 'voided' AND credit = ?", id) != 1 {
		t.Fatal("the void is not in the ledger")
	}
	// The old MAC2 is dead on the card too: its session was replaced.
	var old [4]byte
	hex.Decode(old[:], []byte(first.MAC2))
	when, _ := time.Parse(hostapi.TimeLayout, first.Time)
	if _, err := epurse.CreditLoad(e.card, when, old); err == nil {
		t.Fatal("the card took the superseded MAC2")
	}
	// A terminal that retries the very same INIT answer gets the same MAC2,
	// never a second one for one card session.
	li3 := e.initLoad(2000)
	req := authorizeRequest(id, li3, 2000, loadTime())
	var a, b hostapi.LoadAuthorizeResponse
	e.mustCall(hostapi.PathLoadAuthorize, req, &a)
	req.Time = loadTime().Add(time.Second).Format(hostapi.TimeLayout)
	e.mustCall(hostapi.PathLoadAuthorize, req, &b)
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("a retried INIT answer got %+v, then %+v", a, b)
	}
	tac := e.credit(b)
	e.mustCall(hostapi.PathLoadComplete, tacRequest(id, li3.OnlineCounter, tac), nil)
	if got := e.creditState(id); got != "consumed" || e.balance() != 12000 {
		t.Fatalf("credit %s, balance %d", got, e.balance())
	}
}

func TestInFlight(t *testing.T) { eachStore(t, testInFlight) }

func testInFlight(t *testing.T) {
	e := newEnv(t, Options{})
	id := e.addCredit(3000)
	other := e.addCredit(100)
	held := e.initLoad(3000) // a lying terminal keeps an INIT answer from before the load
	li, resp := e.authorize(id, 3000)
	e.credit(resp) // the card is loaded; the TAC never reaches the terminal

	// Next tap: the counter moved, so the earlier MAC2 may have been used.
	li2 := e.initLoad(3000)
	if li2.OnlineCounter != li.OnlineCounter+1 {
		t.Fatalf("counter %d after a load from %d", li2.OnlineCounter, li.OnlineCounter)
	}
	apiErr := e.wantRefusal(hostapi.PathLoadAuthorize, authorizeRequest(id, li2, 3000, loadTime()), http.StatusConflict, hostapi.CodeCreditPending)
	if !strings.Contains(apiErr.Reason, "complete authorization at counter 0") {
		t.Fatalf("reason %q does not say what to do", apiErr.Reason)
	}
	// Another credit of the card waits too: loading it would replace the
	// card's proof of the load in flight.
	li3 := e.initLoad(100)
	e.wantRefusal(hostapi.PathLoadAuthorize, authorizeRequest(other, li3, 100, loadTime()), http.StatusConflict, hostapi.CodeCreditPending)
	if e.creditState(id) != "pending" || e.count("authorizations", "state = 'open'") != 1 {
		t.Fatal("a refused authorization changed the credits")
	}
	// The host has now seen the card past counter 0: an INIT answer held
	// back from before the load cannot pass for "not applied".
	e.wantRefusal(hostapi.PathLoadComplete, probeRequest(id, li.OnlineCounter, held, 3000), http.StatusConflict, hostapi.CodeCounterMismatch)

	// The card's proof settles it.
	_, tac, err := epurse.GetTransactionProve(e.card, epurse.TxEPLoad, li.OnlineCounter+1)
	if err != nil {
		t.Fatal(err)
	}
	var done hostapi.LoadCompleteResponse
	e.mustCall(hostapi.PathLoadComplete, tacRequest(id, li.OnlineCounter, tac), &done)
	if done.State != hostapi.CreditConsumed || e.creditState(id) != "consumed" {
		t.Fatalf("after the proof: %q, credit %s", done.State, e.creditState(id))
	}
	// And the other credit loads now.
	_, r2 := e.authorize(other, 100)
	e.credit(r2)
	if e.balance() != 10000+3000+100 {
		t.Fatalf("balance %d", e.balance())
	}
}

func TestNotApplied(t *testing.T) { eachStore(t, testNotApplied) }

func testNotApplied(t *testing.T) {
	e := newEnv(t, Options{})
	id := e.addCredit(1500)
	li, _ := e.authorize(id, 1500)
	// The card left before CREDIT FOR LOAD; the terminal probes it.
	probe := e.initLoad(1500)
	// A forged probe is refused and changes nothing.
	bad := probeRequest(id, li.OnlineCounter, probe, 1500)
	bad.ProbeMAC1 = flip(bad.ProbeMAC1)
	e.wantRefusal(hostapi.PathLoadComplete, bad, http.StatusConflict, hostapi.CodeMACInvalid)
	if got := e.authStates(id); strings.Join(got, ",") != "open" {
		t.Fatalf("a forged probe changed the authorization: %v", got)
	}
	var done hostapi.LoadCompleteResponse
	e.mustCall(hostapi.PathLoadComplete, probeRequest(id, li.OnlineCounter, probe, 1500), &done)
	if done.State != hostapi.CreditPending || e.creditState(id) != "pending" {
		t.Fatalf("not applied: %q, credit %s", done.State, e.creditState(id))
	}
	if got := e.authStates(id); strings.Join(got, ",") != "void" {
		t.Fatalf("authorizations %v, want [void]", got)
	}
	// The same proof again changes nothing.
	e.mustCall(hostapi.PathLoadComplete, probeRequest(id, li.OnlineCounter, probe, 1500), &done)
	if done.State != hostapi.CreditPending || e.count("ledger", "event = 'voided'") != 1 {
		t.Fatalf("second not-applied: %q", done.State)
	}

	// The credit loads normally afterwards.
	li2, resp := e.authorize(id, 1500)
	tac := e.credit(resp)
	// A probe taken after the counter moved cannot pass for "not applied".
	moved := e.initLoad(0)
	apiErr := e.wantRefusal(hostapi.PathLoadComplete, probeRequest(id, li2.OnlineCounter, moved, 0), http.StatusConflict, hostapi.CodeCounterMismatch)
	if !strings.Contains(apiErr.Reason, "GET TRANSACTION PROVE") {
		t.Fatalf("reason %q does not say what to do", apiErr.Reason)
	}
	if e.creditState(id) != "pending" || strings.Join(e.authStates(id), ",") != "void,open" {
		t.Fatalf("a refused probe changed the credit: %s %v", e.creditState(id), e.authStates(id))
	}
	e.mustCall(hostapi.PathLoadComplete, tacRequest(id, li2.OnlineCounter, tac), &done)
	if done.State != hostapi.CreditConsumed || e.balance() != 11500 {
		t.Fatalf("after the TAC: %q, balance %d", done.State, e.balance())
	}
	// Now nothing can un-apply it.
	e.wantRefusal(hostapi.PathLoadComplete, probeRequest(id, li2.OnlineCounter, moved, 0), http.StatusConflict, hostapi.CodeCreditConsumed)
}

func TestBadMAC1RecordsNothing(t *testing.T) { eachStore(t, testBadMAC1RecordsNothing) }

func testBadMAC1RecordsNothing(t *testing.T) {
	e := newEnv(t, Options{})
	id := e.addCredit(1000)
	li := e.initLoad(1000)
	req := authorizeRequest(id, li, 1000, loadTime())
	req.MAC1 = flip(req.MAC1)
	e.wantRefusal(hostapi.PathLoadAuthorize, req, http.StatusConflict, hostapi.CodeMACInvalid)
	// A MAC1 from another terminal's INIT does not verify for this one.
	other := authorizeRequest(id, li, 1000, loadTime())
	other.OldBalanceFen++
	e.wantRefusal(hostapi.PathLoadAuthorize, other, http.StatusConflict, hostapi.CodeMACInvalid)
	if n := e.count("authorizations", "TRUE"); n != 0 {
		t.Fatalf("%d authorizations recorded", n)
	}
	if n := e.count("purse_counters", "TRUE"); n != 0 {
		t.Fatalf("%d counters recorded", n)
	}
	if n := e.count("ledger", "event NOT IN ('issued', 'added')"); n != 0 {
		t.Fatalf("%d ledger rows recorded", n)
	}
}

func TestWrongTAC(t *testing.T) { eachStore(t, testWrongTAC) }

func testWrongTAC(t *testing.T) {
	e := newEnv(t, Options{})
	id := e.addCredit(1000)
	li, resp := e.authorize(id, 1000)
	tac := e.credit(resp)
	bad := tacRequest(id, li.OnlineCounter, tac)
	bad.TAC = flip(bad.TAC)
	e.wantRefusal(hostapi.PathLoadComplete, bad, http.StatusConflict, hostapi.CodeTACInvalid)
	if e.creditState(id) != "pending" || strings.Join(e.authStates(id), ",") != "open" {
		t.Fatal("a wrong TAC changed the credit")
	}
	// A TAC for a counter with no authorization.
	e.wantRefusal(hostapi.PathLoadComplete, tacRequest(id, li.OnlineCounter+1, tac), http.StatusConflict, hostapi.CodeCounterMismatch)
	e.mustCall(hostapi.PathLoadComplete, tacRequest(id, li.OnlineCounter, tac), nil)
	if e.creditState(id) != "consumed" {
		t.Fatal("the right TAC did not consume the credit")
	}
}

func TestRefusals(t *testing.T) { eachStore(t, testRefusals) }

func testRefusals(t *testing.T) {
	e := newEnv(t, Options{BalanceCap: 12000})
	id := e.addCredit(5000)
	li := e.initLoad(5000)
	apiErr := e.wantRefusal(hostapi.PathLoadAuthorize, authorizeRequest(id, li, 5000, loadTime()), http.StatusConflict, hostapi.CodeBalanceCap)
	if !strings.Contains(apiErr.Reason, "120.00") {
		t.Fatalf("reason %q does not name the cap", apiErr.Reason)
	}

	small := e.addCredit(1000)
	// The amount must be the credit's.
	e.wantRefusal(hostapi.PathLoadAuthorize, authorizeRequest(small, e.initLoad(999), 999, loadTime()), http.StatusBadRequest, hostapi.CodeBadRequest)
	e.wantRefusal(hostapi.PathLoadAuthorize, authorizeRequest("cr-nope", e.initLoad(1000), 1000, loadTime()), http.StatusNotFound, hostapi.CodeNotFound)
	// A time far from the host's clock.
	e.wantRefusal(hostapi.PathLoadAuthorize, authorizeRequest(small, e.initLoad(1000), 1000, loadTime().Add(-48*time.Hour)), http.StatusBadRequest, hostapi.CodeBadRequest)
	bad := authorizeRequest(small, e.initLoad(1000), 1000, loadTime())
	bad.Time = "2026-01-02 10:00"
	e.wantRefusal(hostapi.PathLoadAuthorize, bad, http.StatusBadRequest, hostapi.CodeBadRequest)

	if _, err := e.st.Deny(context.Background(), testNumber, "lost", "operator test", time.Now()); err != nil {
		t.Fatal(err)
	}
	e.wantRefusal(hostapi.PathLoadAuthorize, authorizeRequest(small, e.initLoad(1000), 1000, loadTime()), http.StatusConflict, hostapi.CodeCardDenied)
	var cc hostapi.CardCreditsResponse
	e.mustCall(hostapi.PathCardCredits, hostapi.CardCreditsRequest{Card: testNumber}, &cc)
	if !cc.Denied || cc.Reason != "lost" || len(cc.Credits) != 2 || cc.Credits[0].ID != id {
		t.Fatalf("card credits of a denied card: %+v", cc)
	}
	if e.count("authorizations", "TRUE") != 0 {
		t.Fatal("a refused authorization was recorded")
	}
	e.wantRefusal(hostapi.PathCardCredits, hostapi.CardCreditsRequest{Card: "3101000000000000"}, http.StatusNotFound, hostapi.CodeNotFound)
}

// TestHeldBackINITAnswers plays a lying terminal that keeps INIT answers
// from before a load and sends them after it, to make the host believe the
// load never happened. It must never get a MAC2 the card can use twice.
func TestHeldBackINITAnswers(t *testing.T) { eachStore(t, testHeldBackINITAnswers) }

func testHeldBackINITAnswers(t *testing.T) {
	e := newEnv(t, Options{})
	id := e.addCredit(2000)
	held1 := e.initLoad(2000) // kept, never used on the card
	held2 := e.initLoad(2000)
	li, resp := e.authorize(id, 2000)
	tac := e.credit(resp) // the card is loaded; the terminal hides the TAC

	// The held answer is at the same counter and the host has not seen the
	// card since: it believes the card did not move, voids the real
	// authorization and issues a MAC2 for a session the card no longer has.
	var r2 hostapi.LoadAuthorizeResponse
	e.mustCall(hostapi.PathLoadAuthorize, authorizeRequest(id, held1, 2000, loadTime()), &r2)
	// Then a "not applied" proof from the second held answer.
	var done hostapi.LoadCompleteResponse
	e.mustCall(hostapi.PathLoadComplete, probeRequest(id, li.OnlineCounter, held2, 2000), &done)
	if done.State != hostapi.CreditPending {
		t.Fatalf("state %q", done.State)
	}
	// Every authorization at counter 0 is void, yet the card is at 1: the
	// host must notice and refuse, not load the credit a second time.
	fresh := e.initLoad(2000)
	apiErr := e.wantRefusal(hostapi.PathLoadAuthorize, authorizeRequest(id, fresh, 2000, loadTime()), http.StatusConflict, hostapi.CodeCounterMismatch)
	if !strings.Contains(apiErr.Reason, "voided") || e.count("ledger", "event = 'alarm'") != 1 {
		t.Fatalf("no alarm: %q", apiErr.Reason)
	}
	// Retries are refused alike, with one alarm in the ledger.
	e.wantRefusal(hostapi.PathLoadAuthorize, authorizeRequest(id, e.initLoad(2000), 2000, loadTime()), http.StatusConflict, hostapi.CodeCounterMismatch)
	if n := e.count("ledger", "event = 'alarm'"); n != 1 {
		t.Fatalf("%d alarms after a retry", n)
	}
	if e.balance() != 12000 {
		t.Fatalf("balance %d: loaded twice", e.balance())
	}
	// Now the card is known at counter 1: held answers at 0 are stale.
	e.wantRefusal(hostapi.PathLoadAuthorize, authorizeRequest(id, held1, 2000, loadTime()), http.StatusConflict, hostapi.CodeCounterMismatch)
	// The card's TAC is believed even for a voided authorization.
	e.mustCall(hostapi.PathLoadComplete, tacRequest(id, li.OnlineCounter, tac), &done)
	if done.State != hostapi.CreditConsumed || e.creditState(id) != "consumed" {
		t.Fatalf("the real TAC: %q, credit %s", done.State, e.creditState(id))
	}
	l, err := e.st.Ledger(context.Background(), testNumber)
	if err != nil {
		t.Fatal(err)
	}
	if l.LoadedFen != 2000 || l.Alarms != 2 {
		t.Fatalf("ledger: loaded %d, %d alarms", l.LoadedFen, l.Alarms)
	}
}

func TestTwoCreditsOneCounter(t *testing.T) { eachStore(t, testTwoCreditsOneCounter) }

func testTwoCreditsOneCounter(t *testing.T) {
	e := newEnv(t, Options{})
	a, b := e.addCredit(100), e.addCredit(200)
	e.authorize(a, 100) // CREDIT sent, answer lost, not applied: a's row is unknown
	// Another tap loads b at the same counter: a's session is gone.
	li, resp := e.authorize(b, 200)
	if got := e.authStates(a); strings.Join(got, ",") != "void" {
		t.Fatalf("a's authorizations %v, want [void]", got)
	}
	tac := e.credit(resp)
	e.mustCall(hostapi.PathLoadComplete, tacRequest(b, li.OnlineCounter, tac), nil)
	// a's terminal sees the counter moved and fetches the card's last TAC,
	// which is b's: the host tells it a was not loaded.
	var done hostapi.LoadCompleteResponse
	e.mustCall(hostapi.PathLoadComplete, tacRequest(a, li.OnlineCounter, tac), &done)
	if done.State != hostapi.CreditPending || e.creditState(a) != "pending" {
		t.Fatalf("b's TAC for a: %q, a %s", done.State, e.creditState(a))
	}
	// Its probe from the moved card answers the same.
	e.mustCall(hostapi.PathLoadComplete, probeRequest(a, li.OnlineCounter, e.initLoad(0), 0), &done)
	if done.State != hostapi.CreditPending {
		t.Fatalf("probe for a's void authorization: %q", done.State)
	}
	// a loads at the next counter.
	li2, r2 := e.authorize(a, 100)
	e.mustCall(hostapi.PathLoadComplete, tacRequest(a, li2.OnlineCounter, e.credit(r2)), nil)
	if e.creditState(a) != "consumed" || e.creditState(b) != "consumed" || e.balance() != 10300 {
		t.Fatalf("a %s, b %s, balance %d", e.creditState(a), e.creditState(b), e.balance())
	}
}

func TestCancel(t *testing.T) { eachStore(t, testCancel) }

func testCancel(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	id := e.addCredit(700)
	li, _ := e.authorize(id, 700)
	if err := e.st.CancelCredit(ctx, id, "operator test", time.Now()); err == nil {
		t.Fatal("cancelled a credit with an open authorization")
	}
	e.mustCall(hostapi.PathLoadComplete, probeRequest(id, li.OnlineCounter, e.initLoad(0), 0), nil)
	if err := e.st.CancelCredit(ctx, id, "operator test", time.Now()); err != nil {
		t.Fatal(err)
	}
	e.wantRefusal(hostapi.PathLoadAuthorize, authorizeRequest(id, e.initLoad(700), 700, loadTime()), http.StatusNotFound, hostapi.CodeNotFound)
}

// TestConcurrentRetries sends the same authorization and the same TAC from
// many goroutines at once, as a terminal's retries can overlap: one MAC2,
// one authorization, one consumption.
func TestConcurrentRetries(t *testing.T) { eachStore(t, testConcurrentRetries) }

func testConcurrentRetries(t *testing.T) {
	e := newEnv(t, Options{})
	id := e.addCredit(800)
	li := e.initLoad(800)
	authReq := authorizeRequest(id, li, 800, loadTime())
	const n = 8
	post := func(path string, body any) (int, []byte) {
		b, _ := json.Marshal(body)
		r, _ := http.NewRequest(http.MethodPost, e.srv.URL+path, bytes.NewReader(b))
		hostapi.Sign(r, testTerm, []byte(e.secret), b, time.Now(), newNonce())
		res, err := e.srv.Client().Do(r)
		if err != nil {
			return 0, []byte(err.Error())
		}
		defer res.Body.Close()
		out, _ := io.ReadAll(res.Body)
		return res.StatusCode, out
	}
	answers := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			status, b := post(hostapi.PathLoadAuthorize, authReq)
			if status != http.StatusOK {
				t.Errorf("authorize %d: %d %s", i, status, b)
			}
			answers[i] = string(b)
		}()
	}
	wg.Wait()
	for i := range answers {
		if answers[i] != answers[0] {
			t.Fatalf("answers differ: %s and %s", answers[0], answers[i])
		}
	}
	if got := e.count("authorizations", "TRUE"); got != 1 {
		t.Fatalf("%d authorizations for one INIT answer", got)
	}
	var resp hostapi.LoadAuthorizeResponse
	json.Unmarshal([]byte(answers[0]), &resp)
	tac := e.credit(resp)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			status, b := post(hostapi.PathLoadComplete, tacRequest(id, li.OnlineCounter, tac))
			if status != http.StatusOK || !strings.Contains(string(b), hostapi.CreditConsumed) {
				t.Errorf("complete %d: %d %s", i, status, b)
			}
		}()
	}
	wg.Wait()
	if got := e.count("ledger", "event = 'consumed'"); got != 1 {
		t.Fatalf("%d consumptions", got)
	}
	if e.balance() != 10800 {
		t.Fatalf("balance %d", e.balance())
	}
}

// TestInFlightSettledUnderAnotherCredit is the terminal's settle-in-flight
// step as tap/load.go does it: refused with credit_in_flight while loading
// credit b, it sends the card's last TAC under b's id. The TAC proves a's
// load, so a is consumed and b, untouched, is still pending.
func TestInFlightSettledUnderAnotherCredit(t *testing.T) {
	eachStore(t, testInFlightSettledUnderAnotherCredit)
}

func testInFlightSettledUnderAnotherCredit(t *testing.T) {
	e := newEnv(t, Options{})
	a, b := e.addCredit(400), e.addCredit(600)
	li, resp := e.authorize(a, 400)
	e.credit(resp) // the answer is lost
	moved := e.initLoad(600)
	e.wantRefusal(hostapi.PathLoadAuthorize, authorizeRequest(b, moved, 600, loadTime()), http.StatusConflict, hostapi.CodeCreditPending)
	_, tac, err := epurse.GetTransactionProve(e.card, epurse.TxEPLoad, moved.OnlineCounter)
	if err != nil {
		t.Fatal(err)
	}
	var done hostapi.LoadCompleteResponse
	e.mustCall(hostapi.PathLoadComplete, tacRequest(b, moved.OnlineCounter-1, tac), &done)
	if done.State != hostapi.CreditPending || e.creditState(a) != "consumed" || e.creditState(b) != "pending" {
		t.Fatalf("answer %q; a %s, b %s", done.State, e.creditState(a), e.creditState(b))
	}
	// Sent again, under either id, nothing more happens.
	e.mustCall(hostapi.PathLoadComplete, tacRequest(b, li.OnlineCounter, tac), &done)
	e.mustCall(hostapi.PathLoadComplete, tacRequest(a, li.OnlineCounter, tac), &done)
	if done.State != hostapi.CreditConsumed || e.count("ledger", "event = 'consumed'") != 1 {
		t.Fatalf("repeat: %q, %d consumptions", done.State, e.count("ledger", "event = 'consumed'"))
	}
	// A TAC for a counter where b has nothing and nothing verifies.
	e.wantRefusal(hostapi.PathLoadComplete, tacRequest(b, li.OnlineCounter, [4]byte{1, 2, 3, 4}), http.StatusConflict, hostapi.CodeCounterMismatch)
	_, r2 := e.authorize(b, 600)
	e.credit(r2)
	if e.balance() != 11000 {
		t.Fatalf("balance %d", e.balance())
	}
}
