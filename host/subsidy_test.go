package host

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cardd/cardd/apdu/epurse"
	"github.com/cardd/cardd/hostapi"
)

var subsidyCards = []string{testNumber, "3101000000200001", "3101000000200002"}

// subsidyEnv is an env whose host clock the test moves, with the two other
// cards of subsidyCards issued.
func subsidyEnv(t *testing.T) (*env, *time.Time) {
	t.Helper()
	now := time.Now().Truncate(time.Second)
	e := newEnv(t, Options{Now: func() time.Time { return now }})
	for _, n := range subsidyCards[1:] {
		req := IssueRequest{Number: n, Holder: "李四", BalanceFen: 0, Start: epurse.Date{Year: 2026, Month: 1, Day: 1}, Expiry: epurse.Date{Year: 2030, Month: 1, Day: 1}}
		if _, err := e.st.IssueCard(context.Background(), e.keys, req, filepath.Join(e.dir, n+".json"), "operator test", now); err != nil {
			t.Fatal(err)
		}
	}
	return e, &now
}

func (e *env) addSubsidy(n NewSubsidy, now time.Time) (Subsidy, bool) {
	e.t.Helper()
	b, added, err := e.st.AddSubsidy(context.Background(), n, "operator test", now)
	if err != nil {
		e.t.Fatal(err)
	}
	return b, added
}

// subsidyCredit is card number's credit of batch id.
func (e *env) subsidyCredit(batch, number string) string {
	e.t.Helper()
	var id string
	if err := e.st.db.QueryRow(`SELECT id FROM credits WHERE subsidy = ? AND card = ?`, batch, number).Scan(&id); err != nil {
		e.t.Fatal(err)
	}
	return id
}

func TestSubsidyBatchOncePerCard(t *testing.T) { eachStore(t, testSubsidyBatchOncePerCard) }

func testSubsidyBatchOncePerCard(t *testing.T) {
	e, now := subsidyEnv(t)
	n := NewSubsidy{ID: "2026-12-lunch", AmountFen: 1200, Purse: epurse.PurseEP, NotBefore: *now, Expires: now.Add(24 * time.Hour),
		Note: "十二月午餐补助", Cards: append(append([]string{}, subsidyCards...), testNumber)} // one card listed twice
	b, added := e.addSubsidy(n, *now)
	if !added || b.Cards != 3 || b.Pending != 3 || b.Delivered != 0 || b.Withdrawn != 0 {
		t.Fatalf("first add: added %v, %+v; want 3 cards pending", added, b)
	}
	for _, c := range subsidyCards {
		if got := e.count("credits", "subsidy = ? AND card = ?", b.ID, c); got != 1 {
			t.Fatalf("card %s has %d credits of the batch, want 1", c, got)
		}
	}
	credits, ledger, changes := e.count("credits", "1 = 1"), e.count("ledger", "1 = 1"), e.count("changes", "1 = 1")

	// The same id again, even with other terms and cards: nothing changes.
	again := n
	again.AmountFen, again.Cards = 5000, subsidyCards[:1]
	b2, added := e.addSubsidy(again, now.Add(time.Minute))
	if added || b2 != b {
		t.Fatalf("second add: added %v, %+v; want the first batch unchanged %+v", added, b2, b)
	}
	if c, l, ch := e.count("credits", "1 = 1"), e.count("ledger", "1 = 1"), e.count("changes", "1 = 1"); c != credits || l != ledger || ch != changes {
		t.Fatalf("second add wrote rows: credits %d→%d, ledger %d→%d, changes %d→%d", credits, c, ledger, l, changes, ch)
	}

	// A batch naming a card never issued is refused whole.
	_, _, err := e.st.AddSubsidy(context.Background(), NewSubsidy{ID: "bad", AmountFen: 100, Purse: epurse.PurseEP, NotBefore: *now, Expires: now.Add(time.Hour),
		Cards: []string{testNumber, "3101000000999999"}}, "operator test", *now)
	if err == nil {
		t.Fatal("a batch with an unknown card was added")
	}
	if got := e.count("subsidies", "id = 'bad'") + e.count("credits", "subsidy = 'bad'"); got != 0 {
		t.Fatalf("a refused batch left %d rows", got)
	}

	// The card's credit carries the batch's purse and window, to
	// /v1/card/credits and the pull alike.
	var cc hostapi.CardCreditsResponse
	e.mustCall(hostapi.PathCardCredits, hostapi.CardCreditsRequest{Card: testNumber}, &cc)
	if len(cc.Credits) != 1 {
		t.Fatalf("card credits %+v, want the subsidy", cc.Credits)
	}
	want := hostapi.Credit{Kind: hostapi.CreditSubsidy, Subsidy: b.ID, Purse: "EP", NotBefore: now.UTC().Format(time.RFC3339), Expires: now.Add(24 * time.Hour).UTC().Format(time.RFC3339)}
	if c := cc.Credits[0]; c.Kind != want.Kind || c.Subsidy != want.Subsidy || c.Purse != want.Purse || c.NotBefore != want.NotBefore || c.Expires != want.Expires || c.AmountFen != 1200 {
		t.Fatalf("card credit %+v, want kind, batch, purse and window %+v", c, want)
	}
	var p hostapi.PullResponse
	e.mustCall(hostapi.PathPull, hostapi.PullRequest{}, &p)
	seen := 0
	for _, c := range p.Credits {
		if c.Subsidy == b.ID {
			seen++
			if c.Kind != hostapi.CreditSubsidy || c.Purse != "EP" || c.NotBefore != want.NotBefore || c.Expires != want.Expires {
				t.Fatalf("pulled %+v, want kind, purse and window %+v", c, want)
			}
		}
	}
	if seen != 3 {
		t.Fatalf("pull carried %d credits of the batch, want 3", seen)
	}

	// Loaded once, the card's credit is delivered; a second load is refused.
	id := e.subsidyCredit(b.ID, testNumber)
	li, resp := e.authorize(id, 1200)
	tac := e.credit(resp)
	e.mustCall(hostapi.PathLoadComplete, tacRequest(id, li.OnlineCounter, tac), nil)
	e.initLoad(1200)
	li = e.initLoad(1200)
	e.wantRefusal(hostapi.PathLoadAuthorize, authorizeRequest(id, li, 1200, loadTime()), http.StatusConflict, hostapi.CodeCreditConsumed)
	if got := e.balance(); got != 10000+1200 {
		t.Fatalf("balance %d, want 11200", got)
	}
	list, err := e.st.Subsidies(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Delivered != 1 || list[0].Pending != 2 {
		t.Fatalf("subsidies %+v, want one batch with 1 delivered and 2 pending", list)
	}
}

func TestSubsidyWindow(t *testing.T) { eachStore(t, testSubsidyWindow) }

func testSubsidyWindow(t *testing.T) {
	e, now := subsidyEnv(t)
	// Within the 5 min the signatures allow between host and terminal clocks.
	start := now.Add(3 * time.Minute)
	b, _ := e.addSubsidy(NewSubsidy{AmountFen: 500, Purse: epurse.PurseEP, NotBefore: start, Expires: start.Add(time.Minute), Cards: subsidyCards}, *now)
	ed, _ := e.addSubsidy(NewSubsidy{AmountFen: 700, Purse: epurse.PurseED, NotBefore: *now, Expires: now.Add(time.Hour), Cards: subsidyCards}, *now)
	if !strings.HasPrefix(b.ID, "sb-") {
		t.Fatalf("batch id %q, want one made by the host", b.ID)
	}
	id, edID := e.subsidyCredit(b.ID, testNumber), e.subsidyCredit(ed.ID, testNumber)

	// Before the window.
	li := e.initLoad(500)
	e.wantRefusal(hostapi.PathLoadAuthorize, authorizeRequest(id, li, 500, loadTime()), http.StatusConflict, hostapi.CodeCreditNotYet)
	// The ED subsidy onto the EP.
	li = e.initLoad(700)
	e.wantRefusal(hostapi.PathLoadAuthorize, authorizeRequest(edID, li, 700, loadTime()), http.StatusConflict, hostapi.CodeCreditPurse)
	if n := e.count("authorizations", "1 = 1"); n != 0 {
		t.Fatalf("%d authorizations issued outside the window or purse", n)
	}

	// The ED subsidy onto the ED: loads.
	e.card.Reset()
	if _, err := epurse.Select(e.card); err != nil {
		t.Fatal(err)
	}
	edInit, err := epurse.InitLoad(e.card, epurse.PurseED, 1, 700, e.termID)
	if err != nil {
		t.Fatal(err)
	}
	req := authorizeRequest(edID, edInit, 700, loadTime())
	req.Purse = "ED"
	var resp hostapi.LoadAuthorizeResponse
	e.mustCall(hostapi.PathLoadAuthorize, req, &resp)
	tac := e.credit(resp)
	e.mustCall(hostapi.PathLoadComplete, tacRequest(edID, edInit.OnlineCounter, tac), nil)
	if got := e.card.File().EDBalance; got != edInit.OldBalance+700 {
		t.Fatalf("ED balance %d, want %d", got, edInit.OldBalance+700)
	}

	// Within the window (by the host's clock, not the terminal's).
	*now = start
	li = e.initLoad(500)
	var ok hostapi.LoadAuthorizeResponse
	e.mustCall(hostapi.PathLoadAuthorize, authorizeRequest(id, li, 500, start), &ok)
	if ok.MAC2 == "" {
		t.Fatal("no MAC2 within the window")
	}
}

func TestSubsidyExpiryWithdraws(t *testing.T) { eachStore(t, testSubsidyExpiryWithdraws) }

func testSubsidyExpiryWithdraws(t *testing.T) {
	e, now := subsidyEnv(t)
	ctx := context.Background()
	expires := now.Add(3 * time.Minute) // within the 5 min the signatures allow
	b, _ := e.addSubsidy(NewSubsidy{ID: "b1", AmountFen: 800, Purse: epurse.PurseEP, NotBefore: *now, Expires: expires, Cards: subsidyCards}, *now)
	held := e.subsidyCredit(b.ID, testNumber)
	other := e.subsidyCredit(b.ID, subsidyCards[1])
	delivered := e.subsidyCredit(b.ID, subsidyCards[2])
	if _, err := e.st.db.Exec(`UPDATE credits SET state = 'consumed' WHERE id = ?`, delivered); err != nil { // as a verified TAC would
		t.Fatal(err)
	}
	// A terminal pulled the batch: its cursor is here.
	var p hostapi.PullResponse
	e.mustCall(hostapi.PathPull, hostapi.PullRequest{}, &p)
	cursor := p.NextCursor

	// Before the expiry nothing is withdrawn.
	if n, err := e.st.WithdrawExpiredSubsidies(ctx, "host", expires.Add(-time.Second)); err != nil || n != 0 {
		t.Fatalf("withdrew %d (%v) before the expiry", n, err)
	}
	// A MAC2 out for the card's credit: the job must leave it.
	li, _ := e.authorize(held, 800)

	// Past the expiry, before the job: the host refuses a new load.
	*now = expires
	e.card.Reset()
	if _, err := epurse.Select(e.card); err != nil {
		t.Fatal(err)
	}
	if _, err := epurse.InitLoad(e.card, epurse.PurseEP, 1, 800, e.termID); err != nil {
		t.Fatal(err)
	}
	var cc hostapi.CardCreditsResponse
	e.mustCall(hostapi.PathCardCredits, hostapi.CardCreditsRequest{Card: subsidyCards[1]}, &cc)

	n, err := e.st.WithdrawExpiredSubsidies(ctx, "host", *now)
	if err != nil || n != 1 {
		t.Fatalf("withdrew %d (%v), want the one undelivered credit no terminal holds", n, err)
	}
	if got := e.creditState(other); got != hostapi.CreditCancelled {
		t.Fatalf("expired credit is %s, want cancelled", got)
	}
	if got := e.count("ledger", "credit = ? AND event = ?", other, EventWithdrawn); got != 1 {
		t.Fatalf("%d withdrawn lines in the ledger, want 1", got)
	}
	if e.creditState(held) != hostapi.CreditPending || e.creditState(delivered) != hostapi.CreditConsumed {
		t.Fatal("the job touched a held or a delivered credit")
	}
	// The terminal's next pull drops it from its cache.
	e.mustCall(hostapi.PathPull, hostapi.PullRequest{Cursor: cursor}, &p)
	if len(p.Credits) != 1 || p.Credits[0].ID != other || p.Credits[0].State != hostapi.CreditCancelled {
		t.Fatalf("pull after withdrawal %+v, want the credit cancelled", p.Credits)
	}

	// The held MAC2 was never used: the card's proof settles it, and the
	// next run withdraws the credit.
	e.card.Reset()
	if _, err := epurse.Select(e.card); err != nil {
		t.Fatal(err)
	}
	probe, err := epurse.InitLoad(e.card, epurse.PurseEP, 1, 800, e.termID)
	if err != nil {
		t.Fatal(err)
	}
	e.mustCall(hostapi.PathLoadComplete, probeRequest(held, li.OnlineCounter, probe, 800), nil)
	if n, err := e.st.WithdrawExpiredSubsidies(ctx, "host", *now); err != nil || n != 1 {
		t.Fatalf("second run withdrew %d (%v), want the credit whose MAC2 was settled", n, err)
	}

	// A terminal that still has either cached gets no MAC2: a withdrawn
	// credit is cancelled, 404, which drops it from the terminal's cache.
	for _, id := range []string{held, other} {
		req := authorizeRequest(id, e.initLoad(800), 800, loadTime())
		req.Card = e.st.cardOfCredit(ctx, id)
		e.wantRefusal(hostapi.PathLoadAuthorize, req, http.StatusNotFound, hostapi.CodeNotFound)
	}
	list, err := e.st.Subsidies(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Delivered != 1 || list[0].Withdrawn != 2 || list[0].Pending != 0 {
		t.Fatalf("subsidies %+v, want 1 delivered and 2 withdrawn", list)
	}
	if e.balance() != 10000 {
		t.Fatalf("balance %d: a withdrawn subsidy loaded", e.balance())
	}
}

// TestSubsidyRefusedAfterExpiryBeforeJob shows the host's own check: a
// terminal with the credit cached gets no MAC2 once the batch expired, even
// though no job has withdrawn it yet.
func TestSubsidyRefusedAfterExpiryBeforeJob(t *testing.T) {
	eachStore(t, testSubsidyRefusedAfterExpiryBeforeJob)
}

func testSubsidyRefusedAfterExpiryBeforeJob(t *testing.T) {
	e, now := subsidyEnv(t)
	expires := now.Add(time.Minute)
	b, _ := e.addSubsidy(NewSubsidy{AmountFen: 300, Purse: epurse.PurseEP, NotBefore: *now, Expires: expires, Cards: subsidyCards[:1]}, *now)
	id := e.subsidyCredit(b.ID, testNumber)
	*now = expires
	li := e.initLoad(300)
	e.wantRefusal(hostapi.PathLoadAuthorize, authorizeRequest(id, li, 300, loadTime()), http.StatusNotFound, hostapi.CodeNotFound)
	if e.creditState(id) != hostapi.CreditPending || e.count("authorizations", "1 = 1") != 0 {
		t.Fatal("the refusal changed the credit or issued an authorization")
	}
}

func TestSubsidyAddRefusesBadBatch(t *testing.T) {
	e, now := subsidyEnv(t)
	if _, err := e.st.RegisterM1(context.Background(), "04A1B2C3", "王五", "operator test", *now); err != nil {
		t.Fatal(err)
	}
	good := NewSubsidy{AmountFen: 100, Purse: epurse.PurseEP, NotBefore: *now, Expires: now.Add(time.Hour), Cards: subsidyCards}
	for name, mod := range map[string]func(*NewSubsidy){
		"zero amount":   func(n *NewSubsidy) { n.AmountFen = 0 },
		"no cards":      func(n *NewSubsidy) { n.Cards = nil },
		"bad card":      func(n *NewSubsidy) { n.Cards = []string{"12"} },
		"M1 wallet":     func(n *NewSubsidy) { n.Cards = []string{"uid:04A1B2C3"} },
		"window":        func(n *NewSubsidy) { n.Expires = n.NotBefore },
		"expired":       func(n *NewSubsidy) { n.NotBefore, n.Expires = now.Add(-2*time.Hour), now.Add(-time.Hour) },
		"id":            func(n *NewSubsidy) { n.ID = "no spaces" },
		"purse":         func(n *NewSubsidy) { n.Purse = 9 },
		"note too long": func(n *NewSubsidy) { n.Note = strings.Repeat("补", maxNoteLen+1) },
	} {
		n := good
		mod(&n)
		if _, _, err := e.st.AddSubsidy(context.Background(), n, "operator test", *now); err == nil {
			t.Errorf("%s: added", name)
		}
	}
	if got := e.count("subsidies", "1 = 1") + e.count("credits", "1 = 1"); got != 0 {
		t.Fatalf("refused batches left %d rows", got)
	}
}
