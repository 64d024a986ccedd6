package host

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/internal/cardtest"
)

const tunionNumber = cardtest.TUnion

// TestNineteenDigitCard: a card whose number has 19 digits goes through
// every part of the host API as a 16-digit one does: its credits asked on
// tap, a load authorized and completed, a journal row, the deny list and
// the pull that carries it, and the card's ledger.
func TestNineteenDigitCard(t *testing.T) { eachStore(t, testNineteenDigitCard) }

func testNineteenDigitCard(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	// Writing a T-Union card's file is the e-purse package's business; the
	// host's side of the card is its row. The simulated card keeps its keys,
	// which derive from its application serial, not from its number.
	for _, table := range []string{"cards SET number", "ledger SET card"} {
		if _, err := e.st.db.Exec(`UPDATE `+table+` = ?`, tunionNumber); err != nil {
			t.Fatal(err)
		}
	}
	cr, err := e.st.AddCredit(ctx, tunionNumber, 2000, "wechat", "operator test", time.Now())
	if err != nil {
		t.Fatalf("credit for a 19-digit card: %v", err)
	}
	var cc hostapi.CardCreditsResponse
	e.mustCall(hostapi.PathCardCredits, hostapi.CardCreditsRequest{Card: tunionNumber}, &cc)
	if len(cc.Credits) != 1 || cc.Credits[0].ID != cr.ID || cc.Credits[0].Card != tunionNumber {
		t.Fatalf("card credits: %+v", cc)
	}

	li := e.initLoad(2000)
	auth := authorizeRequest(cr.ID, li, 2000, loadTime())
	auth.Card = tunionNumber
	var resp hostapi.LoadAuthorizeResponse
	e.mustCall(hostapi.PathLoadAuthorize, auth, &resp)
	tac := e.credit(resp)
	complete := tacRequest(cr.ID, li.OnlineCounter, tac)
	complete.Card = tunionNumber
	var done hostapi.LoadCompleteResponse
	e.mustCall(hostapi.PathLoadComplete, complete, &done)
	if done.State != hostapi.CreditConsumed {
		t.Fatalf("complete: %q, want consumed", done.State)
	}

	row := purchaseRow("tunion")
	row.Card = tunionNumber
	if up := e.upload(row); len(up.Acked) != 1 {
		t.Fatalf("journal row of a 19-digit card refused: %+v", up.Refused)
	}
	if got := e.storedJournal(row.ID).Card; got != tunionNumber {
		t.Fatalf("journal row stored with card %q", got)
	}

	if changed, err := e.st.Deny(ctx, tunionNumber, "lost", "operator test", time.Now()); err != nil || !changed {
		t.Fatalf("deny a 19-digit card: %v, %v", changed, err)
	}
	var pull hostapi.PullResponse
	e.mustCall(hostapi.PathPull, hostapi.PullRequest{}, &pull)
	if len(pull.Deny) != 1 || pull.Deny[0].Card != tunionNumber || !pull.Deny[0].Denied {
		t.Fatalf("pull: deny changes %+v", pull.Deny)
	}

	l, err := e.st.Ledger(ctx, tunionNumber)
	if err != nil {
		t.Fatal(err)
	}
	names := func(evs []LedgerEvent) string {
		var s []string
		for _, ev := range evs {
			s = append(s, ev.Event)
		}
		return strings.Join(s, ",")
	}
	if l.LoadedFen != 2000 || !l.Denied || names(l.Events) != "issued,denied" ||
		len(l.Credits) != 1 || names(l.Credits[0].Events) != "added,authorized,consumed" {
		t.Fatalf("ledger: %+v", l)
	}
}

// TestCardNumberRefusedAtEveryEndpoint: a number of 7 or 21 digits, or one
// dressed up (spaces, a sign, Arabic-Indic digits) so that a lax parser
// would take it for a good one, is refused by each endpoint that takes a
// card with 400 and the reason, the number masked, and changes nothing;
// the deny list (an operator's command) refuses it naming it in full.
func TestCardNumberRefusedAtEveryEndpoint(t *testing.T) {
	eachStore(t, testCardNumberRefusedAtEveryEndpoint)
}

func testCardNumberRefusedAtEveryEndpoint(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	id := e.addCredit(1000)
	li := e.initLoad(1000)
	for n, reason := range cardtest.Refused {
		check := func(what, got string) {
			t.Helper()
			if !strings.Contains(got, reason) {
				t.Errorf("%s of card %+q: reason %q, want %q", what, n, got, reason)
			}
			// What the host answers it also logs.
			if what != "deny" && strings.Contains(got, strings.TrimSpace(n)) {
				t.Errorf("%s of card %+q: reason %q shows the number unmasked", what, n, got)
			}
		}
		row := purchaseRow("bad")
		row.Card = n
		up := e.upload(row)
		if len(up.Refused) != 1 || up.Refused[0].Status != http.StatusBadRequest || up.Refused[0].Code != hostapi.CodeBadRow {
			t.Fatalf("journal row of card %+q: %+v", n, up)
		}
		check("journal row", up.Refused[0].Reason)

		check("card credits", e.wantRefusal(hostapi.PathCardCredits, hostapi.CardCreditsRequest{Card: n}, http.StatusBadRequest, hostapi.CodeBadRequest).Reason)
		auth := authorizeRequest(id, li, 1000, loadTime())
		auth.Card = n
		check("load authorize", e.wantRefusal(hostapi.PathLoadAuthorize, auth, http.StatusBadRequest, hostapi.CodeBadRequest).Reason)
		complete := probeRequest(id, li.OnlineCounter, li, 0)
		complete.Card = n
		check("load complete", e.wantRefusal(hostapi.PathLoadComplete, complete, http.StatusBadRequest, hostapi.CodeBadRequest).Reason)

		if _, err := e.st.Deny(ctx, n, "lost", "operator test", time.Now()); err == nil {
			t.Errorf("deny of card %+q: accepted", n)
		} else {
			check("deny", err.Error())
		}
	}
	if n := e.count("journal", "TRUE") + e.count("deny", "TRUE") + e.count("changes", "kind = 'deny'") + e.count("authorizations", "TRUE"); n != 0 {
		t.Fatalf("%d rows written by refused requests", n)
	}
}
