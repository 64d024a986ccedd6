package host

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cardd/cardd/apdu/epurse"
	"github.com/cardd/cardd/hostapi"
)

// TestAuthorizeRequestFieldsInOrder pins which refusal a request with
// several bad fields gets: the first bad field in the order Authorize checks
// them (purse, card, random, mac1, amount, old balance, time), each with its
// own reason, and nothing recorded.
func TestAuthorizeRequestFieldsInOrder(t *testing.T) { eachStore(t, testAuthorizeRequestFieldsInOrder) }

func testAuthorizeRequestFieldsInOrder(t *testing.T) {
	e := newEnv(t, Options{})
	id := e.addCredit(1000)
	good := authorizeRequest(id, e.initLoad(1000), 1000, loadTime())
	steps := []struct {
		name   string
		break_ func(*hostapi.LoadAuthorizeRequest)
		reason string
	}{
		{"purse", func(r *hostapi.LoadAuthorizeRequest) { r.Purse = "XX" }, `purse "XX": want EP or ED`},
		{"card", func(r *hostapi.LoadAuthorizeRequest) { r.Card = "3101x00000123456" }, "card 3101********3456: "},
		{"random", func(r *hostapi.LoadAuthorizeRequest) { r.Random = "0102030G" }, `random "0102030G": want 4 bytes as 8 hex digits`},
		{"mac1", func(r *hostapi.LoadAuthorizeRequest) { r.MAC1 = "010203" }, `mac1 "010203": want 4 bytes as 8 hex digits`},
		{"amount", func(r *hostapi.LoadAuthorizeRequest) { r.AmountFen = 0 }, fmt.Sprintf("amount_fen 0: want 1 to %d fen", int64(epurse.MaxAmount))},
		{"old balance", func(r *hostapi.LoadAuthorizeRequest) { r.OldBalanceFen = -1 }, fmt.Sprintf("old_balance_fen -1: want 0 to %d fen", int64(epurse.MaxAmount))},
		{"time", func(r *hostapi.LoadAuthorizeRequest) { r.Time = "20260102" }, `time "20260102": want the terminal's wall clock as YYYYMMDDhhmmss`},
	}
	// Break every field, then mend them one at a time, first to last: each
	// time the first field still broken answers.
	req := good
	for _, s := range steps {
		s.break_(&req)
	}
	for i, s := range steps {
		apiErr := e.wantRefusal(hostapi.PathLoadAuthorize, req, http.StatusBadRequest, hostapi.CodeBadRequest)
		if !strings.HasPrefix(apiErr.Reason, s.reason) {
			t.Errorf("with fields %d.. broken: reason %q, want the %s's %q", i, apiErr.Reason, s.name, s.reason)
		}
		mended := good
		for _, later := range steps[i+1:] {
			later.break_(&mended)
		}
		req = mended
	}
	e.mustCall(hostapi.PathLoadAuthorize, req, nil)
	if n := e.count("authorizations", "TRUE"); n != 1 {
		t.Fatalf("%d authorizations, want the one the good request got", n)
	}
}

// TestAuthorizeRulesInOrder pins the order of rules 1 to 4 of Authorize
// when more than one fails: a denied card before the balance cap, the cap
// before MAC1, MAC1 before the known counter.
func TestAuthorizeRulesInOrder(t *testing.T) { eachStore(t, testAuthorizeRulesInOrder) }

func testAuthorizeRulesInOrder(t *testing.T) {
	e := newEnv(t, Options{BalanceCap: 10500})
	id := e.addCredit(1000)
	li := e.initLoad(1000)
	forged := authorizeRequest(id, li, 1000, loadTime())
	forged.MAC1 = flip(forged.MAC1)
	// Over the cap (100.00 + 10.00 > 105.00) and a forged MAC1: the cap.
	apiErr := e.wantRefusal(hostapi.PathLoadAuthorize, forged, http.StatusConflict, hostapi.CodeBalanceCap)
	if want := "balance 100.00 + 10.00 = 110.00 would exceed the cap of 105.00"; apiErr.Reason != want {
		t.Fatalf("reason %q, want %q", apiErr.Reason, want)
	}
	// Denied as well: the deny list.
	if _, err := e.st.Deny(context.Background(), testNumber, "lost", "operator test", time.Now()); err != nil {
		t.Fatal(err)
	}
	apiErr = e.wantRefusal(hostapi.PathLoadAuthorize, forged, http.StatusConflict, hostapi.CodeCardDenied)
	if want := "card 3101********3456 is on the deny list (lost)"; apiErr.Reason != want {
		t.Fatalf("reason %q, want %q", apiErr.Reason, want)
	}
	if n := e.count("authorizations", "TRUE") + e.count("purse_counters", "TRUE"); n != 0 {
		t.Fatalf("%d rows written by refusals", n)
	}

	// A card known past counter 0, and an INIT answer from counter 0 with
	// a forged MAC1: MAC1 answers, since an unverified answer proves nothing.
	e = newEnv(t, Options{})
	id = e.addCredit(1000)
	held := e.initLoad(1000)
	li, resp := e.authorize(id, 1000)
	e.mustCall(hostapi.PathLoadComplete, tacRequest(id, li.OnlineCounter, e.credit(resp)), nil)
	other := e.addCredit(1000)
	stale := authorizeRequest(other, held, 1000, loadTime())
	stale.MAC1 = flip(stale.MAC1)
	apiErr = e.wantRefusal(hostapi.PathLoadAuthorize, stale, http.StatusConflict, hostapi.CodeMACInvalid)
	if !strings.HasPrefix(apiErr.Reason, "MAC1 "+stale.MAC1+" does not verify for card 3101********3456, EP purse, counter 0, random "+stale.Random) {
		t.Fatalf("reason %q", apiErr.Reason)
	}
	stale.MAC1 = flip(stale.MAC1)
	apiErr = e.wantRefusal(hostapi.PathLoadAuthorize, stale, http.StatusConflict, hostapi.CodeCounterMismatch)
	if want := "the card's EP counter is known to have reached 1; an INIT answer at counter 0 is an old one: run INITIALIZE FOR LOAD again"; apiErr.Reason != want {
		t.Fatalf("reason %q, want %q", apiErr.Reason, want)
	}
}

// TestAuthorizeOtherPurse: a credit with an open authorization for one
// purse is refused for the other until that one is settled, and the refusal
// still records the counter the card proved for the other purse.
func TestAuthorizeOtherPurse(t *testing.T) { eachStore(t, testAuthorizeOtherPurse) }

func testAuthorizeOtherPurse(t *testing.T) {
	e := newEnv(t, Options{})
	id := e.addCredit(1000)
	e.authorize(id, 1000) // open for the EP at counter 0

	e.card.Reset()
	if _, err := epurse.Select(e.card); err != nil {
		t.Fatal(err)
	}
	ed, err := epurse.InitLoad(e.card, epurse.PurseED, 1, 1000, e.termID)
	if err != nil {
		t.Fatal(err)
	}
	req := authorizeRequest(id, ed, 1000, loadTime())
	req.Purse = "ED"
	req.Random, req.MAC1 = strings.ToUpper(hex.EncodeToString(ed.Random[:])), strings.ToUpper(hex.EncodeToString(ed.MAC1[:]))
	apiErr := e.wantRefusal(hostapi.PathLoadAuthorize, req, http.StatusConflict, hostapi.CodeCreditPending)
	want := fmt.Sprintf("credit %s is authorized for the EP purse at counter 0: complete authorization at counter 0 with the card's proof first", id)
	if apiErr.Reason != want {
		t.Fatalf("reason %q, want %q", apiErr.Reason, want)
	}
	if n := e.count("purse_counters", "purse = 'ED'"); n != 1 {
		t.Fatalf("%d ED counters recorded, want the one the card proved", n)
	}
	if got := strings.Join(e.authStates(id), ","); got != "open" {
		t.Fatalf("authorizations %s, want the EP's open one alone", got)
	}
}
