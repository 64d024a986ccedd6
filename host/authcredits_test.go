package host

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/cardd/cardd/apdu/epurse"
	"github.com/cardd/cardd/hostapi"
)

// creditIDs are the ids of a list of credits, in order.
func creditIDs(cs []hostapi.Credit) []string {
	out := []string{}
	for _, c := range cs {
		out = append(out, c.ID)
	}
	return out
}

// wantOthers checks an authorization's credits: exactly the card's
// pending credits but the one authorized, in the order and shape
// /v1/card/credits gives them, and the ids want.
func (e *env) wantOthers(what string, resp hostapi.LoadAuthorizeResponse, authorized string, want ...string) {
	e.t.Helper()
	if got := creditIDs(resp.Credits); !slices.Equal(got, want) {
		e.t.Fatalf("%s: credits %v, want %v", what, got, want)
	}
	if resp.Credits == nil {
		e.t.Fatalf("%s: no credits field: a host that knows it always sends it", what)
	}
	var cc hostapi.CardCreditsResponse
	e.mustCall(hostapi.PathCardCredits, hostapi.CardCreditsRequest{Card: testNumber}, &cc)
	same := slices.DeleteFunc(cc.Credits, func(c hostapi.Credit) bool { return c.ID == authorized })
	if !reflect.DeepEqual(resp.Credits, same) {
		e.t.Fatalf("%s: credits %+v, the card's credits say %+v", what, resp.Credits, same)
	}
}

// TestAuthorizeAnswersOtherCredits: a MAC2 comes with the card's other
// pending credits, oldest first, as /v1/card/credits gives them, so that a
// terminal loads them on the same tap without asking first (issue 13 item
// 2); the same request again gets them again; a consumed or cancelled
// credit leaves the list; another card's never enter it; a refusal carries
// none.
func TestAuthorizeAnswersOtherCredits(t *testing.T) { eachStore(t, testAuthorizeAnswersOtherCredits) }

func testAuthorizeAnswersOtherCredits(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	// Another card with credits of its own, older and newer than ours.
	const otherNumber = "3101000000654321"
	req := IssueRequest{Number: otherNumber, BalanceFen: 0, Start: epurse.Date{Year: 2026, Month: 1, Day: 1}, Expiry: epurse.Date{Year: 2030, Month: 1, Day: 1}}
	if _, err := e.st.IssueCard(ctx, e.keys, req, filepath.Join(e.dir, "other.json"), "operator test", time.Now()); err != nil {
		t.Fatal(err)
	}
	addOther := func() {
		if _, err := e.st.AddCredit(ctx, otherNumber, 900, "", "operator test", time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	addOther()
	first, second := e.addCredit(100), e.addCredit(200)
	addOther()
	third := e.addCredit(300)
	addOther()

	li := e.initLoad(100)
	authReq := authorizeRequest(first, li, 100, loadTime())
	var resp hostapi.LoadAuthorizeResponse
	e.mustCall(hostapi.PathLoadAuthorize, authReq, &resp)
	e.wantOthers("the first credit", resp, first, second, third)
	// The same INIT answer again (the first answer was lost): the same
	// MAC2, and the list again.
	var again hostapi.LoadAuthorizeResponse
	e.mustCall(hostapi.PathLoadAuthorize, authReq, &again)
	if !reflect.DeepEqual(again, resp) {
		t.Fatalf("a retry got %+v, the first answer %+v", again, resp)
	}
	e.mustCall(hostapi.PathLoadComplete, tacRequest(first, li.OnlineCounter, e.credit(resp)), nil)

	li, resp = e.authorize(second, 200)
	e.wantOthers("the second credit", resp, second, third)

	// The card leaves before CREDIT FOR LOAD; its proof voids the
	// authorization, and the third credit is cancelled meanwhile: the
	// next authorization of the second lists nothing, as an empty list.
	e.mustCall(hostapi.PathLoadComplete, probeRequest(second, li.OnlineCounter, e.initLoad(0), 0), nil)
	if err := e.st.CancelCredit(ctx, third, "operator test", time.Now()); err != nil {
		t.Fatal(err)
	}
	li = e.initLoad(200)
	status, body := e.send(e.signed(hostapi.PathLoadAuthorize, authorizeRequest(second, li, 200, loadTime()), testTerm, e.secret, time.Now()))
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); status != http.StatusOK || err != nil {
		t.Fatalf("authorize after the cancel: %d %s", status, body)
	}
	if string(raw["credits"]) != "[]" {
		t.Fatalf("authorize after the cancel: credits %s, want []", raw["credits"])
	}

	// A refusal (the first credit is consumed) carries no credits.
	status, body = e.send(e.signed(hostapi.PathLoadAuthorize, authorizeRequest(first, e.initLoad(100), 100, loadTime()), testTerm, e.secret, time.Now()))
	raw = nil
	if err := json.Unmarshal(body, &raw); status != http.StatusConflict || err != nil {
		t.Fatalf("authorize a consumed credit: %d %s", status, body)
	}
	if _, ok := raw["credits"]; ok {
		t.Fatalf("a refusal carries credits: %s", body)
	}
}

// TestM1AuthorizeAnswersOtherCredits: an M1 wallet's authorization, and its
// retry, come with the wallet's other pending credits like an e-purse's.
func TestM1AuthorizeAnswersOtherCredits(t *testing.T) {
	eachStore(t, testM1AuthorizeAnswersOtherCredits)
}

func testM1AuthorizeAnswersOtherCredits(t *testing.T) {
	e, _ := m1Env(t)
	first, second := e.addM1Credit(100), e.addM1Credit(200)
	e.addCredit(300) // the e-purse card's, never the wallet's
	var resp, again hostapi.LoadAuthorizeResponse
	e.mustCall(hostapi.PathLoadAuthorize, m1Authorize(first, ref1, 1000, 100), &resp)
	if got := creditIDs(resp.Credits); !slices.Equal(got, []string{second}) || resp.Credits[0].Card != testUID || resp.Credits[0].AmountFen != 200 {
		t.Fatalf("credits %+v, want the wallet's second credit alone", resp.Credits)
	}
	e.mustCall(hostapi.PathLoadAuthorize, m1Authorize(first, ref1, 1000, 100), &again)
	if !reflect.DeepEqual(again, resp) {
		t.Fatalf("a retry got %+v, the first answer %+v", again, resp)
	}
}
