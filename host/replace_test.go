package host

import (
	"encoding/json"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cardd/cardd/apdu/epurse"
	"github.com/cardd/cardd/hostapi"
)

const (
	testNewNumber  = "3101000000654321"
	testAnonNumber = "3101000000111111"
)

// issueAnother issues one more card with the env's masters.
func (e *env) issueAnother(number, holder string, balance int64) {
	e.t.Helper()
	req := IssueRequest{Number: number, Holder: holder, BalanceFen: balance, Start: epurse.Date{Year: 2026, Month: 1, Day: 1}, Expiry: epurse.Date{Year: 2030, Month: 1, Day: 1}}
	if _, err := e.st.IssueCard(e.t.Context(), e.keys, req, filepath.Join(e.dir, number+".json"), "operator test", time.Now()); err != nil {
		e.t.Fatal(err)
	}
}

// lostCard83 makes the test card a named card of 83.20 as the host knows it
// (a sale of 16.80 of its 100.00 uploaded), reported lost, replaced by
// testNewNumber with a window of an hour. It returns terminal B's secret.
func (e *env) lostCard83() string {
	e.t.Helper()
	secretB := e.addTerminalB()
	e.issueAnother(testNewNumber, "张三", 0)
	e.upload(e.sale("1", 0, 1, 10000, 1680, 1))
	ctx := e.t.Context()
	if _, err := e.st.Replace(ctx, ReplaceRequest{Old: testNumber, New: testNewNumber, Settle: time.Hour}, "operator a", time.Now()); !errors.Is(err, ErrNotReplaceable) {
		e.e(err, "replacing a card not reported lost")
	}
	if _, err := e.st.Deny(ctx, testNumber, "lost", "operator a", time.Now()); err != nil {
		e.t.Fatal(err)
	}
	pending := e.addCredit(500)
	if _, err := e.st.Replace(ctx, ReplaceRequest{Old: testNumber, New: testNewNumber, Settle: time.Hour}, "operator a", time.Now()); !errors.Is(err, ErrNotReplaceable) {
		e.e(err, "replacing a card with a pending credit")
	}
	if err := e.st.CancelCreditWithReason(ctx, pending, "operator a", "card lost", time.Now()); err != nil {
		e.t.Fatal(err)
	}
	r, err := e.st.Replace(ctx, ReplaceRequest{Old: testNumber, New: testNewNumber, Settle: time.Hour, Reason: "holder came to the desk"}, "operator a", time.Now())
	if err != nil || r.ReportedFen != 8320 || r.State != replaceSettling {
		e.t.Fatalf("replace: %+v, %v; want settling with 83.20 known", r, err)
	}
	return secretB
}

func (e *env) e(err error, what string) {
	e.t.Helper()
	e.t.Fatalf("%s: %v; want it refused as not replaceable", what, err)
}

// newCardCredits lists the credits of the replacement card.
func (e *env) newCardCredits() []CreditInfo {
	e.t.Helper()
	list, err := e.st.Credits(e.t.Context(), testNewNumber)
	if err != nil {
		e.t.Fatal(err)
	}
	return list
}

// TestReplaceCarriesBalance: a named card of 83.20 reported lost and
// replaced; two terminals upload 12.00 of its purchases within the settle
// window; when the window ends the new card has one credit of 71.20,
// pullable at once though above the approval threshold (the holder's own
// money), and never a second however often the settlement runs. A purchase
// of the old card uploaded after the credit is debt of the replacement
// with one alarm, once. Replacing it again, or onto a card that is a
// replacement already, is refused; lifting its deny is refused.
func TestReplaceCarriesBalance(t *testing.T) { eachStore(t, testReplaceCarriesBalance) }

func testReplaceCarriesBalance(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := t.Context()
	if err := e.st.SetApprovalThreshold(ctx, 5000, "operator a", time.Now()); err != nil {
		t.Fatal(err)
	}
	secretB := e.lostCard83()
	e.upload(e.sale("2", 1, 2, 8320, 750, 2))
	fromB := e.sale("3", 2, 3, 7570, 450, 3)
	fromB.ID = testTermB + "-1"
	e.uploadAs(testTermB, secretB, fromB)

	if done, _, err := e.st.SettleReplacements(ctx, time.Now()); err != nil || len(done) != 0 || len(e.newCardCredits()) != 0 {
		t.Fatalf("within the window, terminals silent: settled %q, %v; credits %+v", done, err, e.newCardCredits())
	}
	for i := range 3 {
		if _, _, err := e.st.SettleReplacements(ctx, time.Now().Add(2*time.Hour+time.Duration(i)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	credits := e.newCardCredits()
	if len(credits) != 1 || credits[0].AmountFen != 7120 || credits[0].State != hostapi.CreditPending || credits[0].Approval != "" {
		t.Fatalf("after the window: credits %+v; want one pending 71.20, not awaiting approval", credits)
	}
	var pull hostapi.PullResponse
	e.mustCall(hostapi.PathPull, hostapi.PullRequest{}, &pull)
	found := false
	for _, c := range pull.Credits {
		found = found || c.ID == credits[0].ID
	}
	if !found {
		t.Fatalf("pull %+v: the carried credit %s is not there", pull.Credits, credits[0].ID)
	}
	r, err := e.st.Replacement(ctx, testNumber)
	if err != nil || r.State != replaceSettled || r.SettledWhy != settledWindow || r.CreditedFen != 7120 || r.Credit != credits[0].ID {
		t.Fatalf("replacement %+v, %v", r, err)
	}
	e.wantOpenAlarms("no late row")

	late := e.sale("4", 3, 4, 7120, 500, 4)
	for range 2 {
		e.upload(late)
	}
	e.wantOpenAlarms("a late row", "owed by the replacement")
	if a := e.openAlarms()[0]; a.Card != testNewNumber {
		t.Fatalf("alarm on card %s; want the replacement's", a.Card)
	}
	l, err := e.st.Ledger(ctx, testNewNumber)
	if err != nil {
		t.Fatal(err)
	}
	var debts []int64
	for _, ev := range l.Events {
		if ev.Event == EventReplacementDebt {
			debts = append(debts, *ev.AmountFen)
		}
	}
	if len(debts) != 1 || debts[0] != -500 || l.Replacement == nil || l.Replacement.DebtFen != 500 {
		t.Fatalf("ledger of the new card: debts %v, replacement %+v; want one of -5.00", debts, l.Replacement)
	}
	if len(e.newCardCredits()) != 1 {
		t.Fatalf("credits %+v after the late row; want still one", e.newCardCredits())
	}

	e.issueAnother("3101000000777777", "张三", 0)
	if _, err := e.st.Replace(ctx, ReplaceRequest{Old: testNumber, New: "3101000000777777"}, "operator a", time.Now()); !errors.Is(err, ErrExists) {
		t.Fatalf("replacing a replaced card: %v; want ErrExists", err)
	}
	e.issueAnother("3101000000888888", "李四", 0)
	if _, err := e.st.Deny(ctx, "3101000000888888", "lost", "operator a", time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.Replace(ctx, ReplaceRequest{Old: "3101000000888888", New: testNewNumber}, "operator a", time.Now()); !errors.Is(err, ErrExists) {
		t.Fatalf("replacing onto a replacement card: %v; want ErrExists", err)
	}
	if err := e.st.Undeny(ctx, testNumber, "operator a", time.Now()); !errors.Is(err, ErrReplacedCard) {
		t.Fatalf("lifting the deny of a replaced card: %v; want ErrReplacedCard", err)
	}
	if denied, _, _ := denyState(e.st.db, testNumber); !denied {
		t.Fatal("the replaced card left the deny list")
	}
}

// TestReplaceAnonymousRefused: a card without a holder cannot be
// replaced, and nothing is recorded.
func TestReplaceAnonymousRefused(t *testing.T) { eachStore(t, testReplaceAnonymousRefused) }

func testReplaceAnonymousRefused(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := t.Context()
	e.issueAnother(testAnonNumber, "", 5000)
	e.issueAnother(testNewNumber, "", 0)
	if _, err := e.st.Deny(ctx, testAnonNumber, "lost", "operator a", time.Now()); err != nil {
		t.Fatal(err)
	}
	_, err := e.st.Replace(ctx, ReplaceRequest{Old: testAnonNumber, New: testNewNumber}, "operator a", time.Now())
	if !errors.Is(err, ErrNotReplaceable) || !strings.Contains(err.Error(), "anonymous card cannot be replaced") {
		t.Fatalf("replacing an anonymous card: %v", err)
	}
	if n := e.count("replacements", "1 = 1"); n != 0 {
		t.Fatalf("%d replacements recorded", n)
	}
}

// TestReplaceFollowsProduct: the card's product decides, not its holder: a
// named card moved to an operator's product that is not replaceable is
// refused, and a card without a holder moved to the named product is not.
func TestReplaceFollowsProduct(t *testing.T) { eachStore(t, testReplaceFollowsProduct) }

func testReplaceFollowsProduct(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := t.Context()
	now := time.Now()
	e.issueAnother(testAnonNumber, "", 5000)
	e.issueAnother(testNewNumber, "", 0)
	if err := e.st.AddProduct(ctx, hostapi.Product{Name: "visitor", CapFen: 50000}, "operator a", now); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.SetCardProduct(ctx, testNumber, "visitor", "operator a", now); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{testNumber, testAnonNumber} {
		if _, err := e.st.Deny(ctx, n, "lost", "operator a", now); err != nil {
			t.Fatal(err)
		}
	}
	_, err := e.st.Replace(ctx, ReplaceRequest{Old: testNumber, New: testNewNumber}, "operator a", now)
	if !errors.Is(err, ErrNotReplaceable) || !strings.Contains(err.Error(), "visitor card cannot be replaced") {
		t.Fatalf("replacing a named card of a product that is not replaceable: %v", err)
	}
	if _, err := e.st.SetCardProduct(ctx, testAnonNumber, hostapi.ProductNamed, "operator a", now); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.Replace(ctx, ReplaceRequest{Old: testAnonNumber, New: testNewNumber}, "operator a", now); err != nil {
		t.Fatalf("replacing a card moved to the named product: %v", err)
	}
}

// TestReplaceCertainEarly: the window closes before its end once every
// registered terminal has pulled past the deny and then reported an empty
// queue; not while one has not, nor on a heartbeat with rows queued.
func TestReplaceCertainEarly(t *testing.T) { eachStore(t, testReplaceCertainEarly) }

func testReplaceCertainEarly(t *testing.T) {
	e := newEnv(t, Options{})
	secretB := e.lostCard83()
	e.upload(e.sale("2", 1, 2, 8320, 750, 2))
	fromB := e.sale("3", 2, 3, 7570, 450, 3)
	fromB.ID = testTermB + "-1"
	e.uploadAs(testTermB, secretB, fromB)

	// syncB pulls twice as terminal B (the second pull's cursor says
	// what it applied) and sends a heartbeat with depth queued rows.
	sync := func(term, secret string, depth int) {
		t.Helper()
		var cursor string
		for range 2 {
			status, b := e.send(e.signed(hostapi.PathPull, hostapi.PullRequest{Cursor: cursor}, term, secret, time.Now()))
			var p hostapi.PullResponse
			if status != http.StatusOK || json.Unmarshal(b, &p) != nil {
				t.Fatalf("pull as %s: %d %s", term, status, b)
			}
			cursor = p.NextCursor
		}
		status, b := e.send(e.signed(hostapi.PathHeartbeat, hostapi.HeartbeatRequest{QueueDepth: depth}, term, secret, time.Now()))
		if status != http.StatusOK {
			t.Fatalf("heartbeat as %s: %d %s", term, status, b)
		}
	}
	sync(testTerm, e.secret, 0)
	sync(testTermB, secretB, 2)
	if c := e.newCardCredits(); len(c) != 0 {
		t.Fatalf("B still has rows queued: credits %+v", c)
	}
	sync(testTermB, secretB, 0)
	credits := e.newCardCredits()
	if len(credits) != 1 || credits[0].AmountFen != 7120 {
		t.Fatalf("every terminal synced after the deny: credits %+v; want one of 71.20", credits)
	}
	if r, err := e.st.Replacement(t.Context(), testNewNumber); err != nil || r.SettledWhy != settledCertain {
		t.Fatalf("replacement %+v, %v; want settled as certain", r, err)
	}
	sync(testTerm, e.secret, 0)
	if c := e.newCardCredits(); len(c) != 1 {
		t.Fatalf("another heartbeat: credits %+v; want still one", c)
	}
}

// TestReplaceNewCardCap: the new card's product must hold the balance
// carried with what the card holds already: a credit over its cap would
// wait at every tap, refused by the authorization's cap check, and the
// holder's money with it. The refusal records nothing; once the new card
// is moved to a product that holds it, the replacement goes.
func TestReplaceNewCardCap(t *testing.T) { eachStore(t, testReplaceNewCardCap) }

func testReplaceNewCardCap(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := t.Context()
	now := time.Now()
	e.issueAnother(testNewNumber, "张三", 3000)
	if err := e.st.AddProduct(ctx, hostapi.Product{Name: "small", CapFen: 10000, Replaceable: true}, "operator a", now); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.SetCardProduct(ctx, testNewNumber, "small", "operator a", now); err != nil {
		t.Fatal(err)
	}
	e.upload(e.sale("1", 0, 1, 10000, 1680, 1)) // the old card holds 83.20
	if _, err := e.st.Deny(ctx, testNumber, "lost", "operator a", now); err != nil {
		t.Fatal(err)
	}
	_, err := e.st.Replace(ctx, ReplaceRequest{Old: testNumber, New: testNewNumber}, "operator a", now)
	if !errors.Is(err, ErrNotReplaceable) || !strings.Contains(err.Error(), "cap of 100.00") {
		t.Fatalf("replacing 83.20 onto a card holding 30.00 whose product holds 100.00: %v; want refused over the cap", err)
	}
	if n := e.count("replacements", "1 = 1"); n != 0 {
		t.Fatalf("%d replacements recorded by a refusal", n)
	}
	if _, err := e.st.SetCardProduct(ctx, testNewNumber, hostapi.ProductNamed, "operator a", now); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.Replace(ctx, ReplaceRequest{Old: testNumber, New: testNewNumber}, "operator a", now); err != nil {
		t.Fatalf("replacing onto a named card: %v", err)
	}
}

// TestReplaceIgnoresForgedRows: a purchase of the lost card whose TAC the
// card's key does not give (a terminal's invention, alarmed) neither takes
// the holder's money off the balance carried nor adds to it: the credit is
// the balance of the card's own rows, 71.20, and a forged row uploaded
// after the credit is no debt of the replacement.
func TestReplaceIgnoresForgedRows(t *testing.T) { eachStore(t, testReplaceIgnoresForgedRows) }

func testReplaceIgnoresForgedRows(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := t.Context()
	secretB := e.lostCard83()
	e.upload(e.sale("2", 1, 2, 8320, 750, 2))
	fromB := e.sale("3", 2, 3, 7570, 450, 3)
	fromB.ID = testTermB + "-1"
	e.uploadAs(testTermB, secretB, fromB)
	drain := e.sale("4", 3, 4, 7120, 7120, 4) // the whole balance, to nobody the card paid
	drain.TAC = flip(drain.TAC)
	e.upload(drain)
	if _, _, err := e.st.SettleReplacements(ctx, time.Now().Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if c := e.newCardCredits(); len(c) != 1 || c[0].AmountFen != 7120 {
		t.Fatalf("credits %+v after a forged purchase of 71.20; want one of 71.20", c)
	}
	inflate := e.sale("5", 4, 5, 900000, 100, 5) // a balance the card never had
	inflate.TAC = flip(inflate.TAC)
	late := e.sale("6", 5, 6, 7120, 7000, 6)
	late.TAC = flip(late.TAC)
	e.upload(inflate, late)
	if r, err := e.st.Replacement(ctx, testNumber); err != nil || r.CreditedFen != 7120 || r.DebtFen != 0 {
		t.Fatalf("replacement %+v, %v; want 71.20 carried, no debt", r, err)
	}
}
