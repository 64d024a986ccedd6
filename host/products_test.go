package host

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cardd/cardd/apdu/epurse"
	"github.com/cardd/cardd/hostapi"
)

// TestProductCapAtAuthorize: a card's product holds its loads to the
// product's cap, below the host's own (10,000.00 here). The card holds
// 100.00: as a named card (cap 5,000.00) it may take 1,500.00; made
// anonymous (cap 1,000.00) a load to 1,000.01 is refused with the
// product's name and cap in the reason and nothing recorded, and one
// landing exactly on 1,000.00 is authorized and loaded.
func TestProductCapAtAuthorize(t *testing.T) { eachStore(t, testProductCapAtAuthorize) }

func testProductCapAtAuthorize(t *testing.T) {
	e := newEnv(t, Options{BalanceCap: 1000000})
	ctx := context.Background()
	if p, err := e.st.CardProduct(ctx, testNumber); err != nil || p.Name != hostapi.ProductNamed || p.CapFen != 500000 || !p.Replaceable || !p.Refundable {
		t.Fatalf("a card with a holder has product %+v (%v); want named, 5000.00, replaceable, refundable", p, err)
	}
	big := e.addCredit(150000)
	// Within the named cap, not loaded: only its authorization is asked.
	if _, auth := e.authorize(big, 150000); auth.MAC2 == "" {
		t.Fatalf("a named card's 1500.00 load got no MAC2: %+v", auth)
	}

	e2 := newEnv(t, Options{BalanceCap: 1000000})
	if changed, err := e2.st.SetCardProduct(ctx, testNumber, hostapi.ProductAnonymous, "operator test", time.Now()); err != nil || !changed {
		t.Fatalf("SetCardProduct: %v, %v", changed, err)
	}
	over := e2.addCredit(90001)
	apiErr := e2.wantRefusal(hostapi.PathLoadAuthorize, authorizeRequest(over, e2.initLoad(90001), 90001, loadTime()), http.StatusConflict, hostapi.CodeBalanceCap)
	if want := "anonymous card: balance 100.00 + 900.01 = 1000.01 would exceed its cap of 1000.00"; apiErr.Reason != want {
		t.Fatalf("refusal reason %q, want %q", apiErr.Reason, want)
	}
	if n := e2.count("authorizations", "TRUE"); n != 0 {
		t.Fatalf("%d authorizations after a load over the product's cap, want none", n)
	}
	exact := e2.addCredit(90000)
	li, auth := e2.authorize(exact, 90000)
	var done hostapi.LoadCompleteResponse
	e2.mustCall(hostapi.PathLoadComplete, tacRequest(exact, li.OnlineCounter, e2.credit(auth)), &done)
	if done.State != hostapi.CreditConsumed || e2.balance() != 100000 {
		t.Fatalf("load onto the anonymous cap: credit %q, card holds %d, want consumed and 100000", done.State, e2.balance())
	}
}

// TestProductHostCapStillBinds: the host's --balance-cap is a ceiling
// over every product: below a named card's 5,000.00 it is the cap a load
// is refused at, and the reason names it, not the product.
func TestProductHostCapStillBinds(t *testing.T) { eachStore(t, testProductHostCapStillBinds) }

func testProductHostCapStillBinds(t *testing.T) {
	e := newEnv(t, Options{BalanceCap: 20000})
	id := e.addCredit(10001)
	apiErr := e.wantRefusal(hostapi.PathLoadAuthorize, authorizeRequest(id, e.initLoad(10001), 10001, loadTime()), http.StatusConflict, hostapi.CodeBalanceCap)
	if want := "balance 100.00 + 100.01 = 200.01 would exceed the cap of 200.00"; apiErr.Reason != want {
		t.Fatalf("refusal reason %q, want %q", apiErr.Reason, want)
	}
}

// TestProductExpiredRefusesLoad: a product past its last valid day
// authorizes no load (409 product_expired, saying until when); moved on,
// the same credit loads.
func TestProductExpiredRefusesLoad(t *testing.T) { eachStore(t, testProductExpiredRefusesLoad) }

func testProductExpiredRefusesLoad(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	yesterday := time.Now().AddDate(0, 0, -1).Format(hostapi.DateLayout)
	if _, err := e.st.SetProduct(ctx, hostapi.ProductNamed, ProductEdit{ValidUntil: &yesterday}, "operator test", time.Now()); err != nil {
		t.Fatal(err)
	}
	id := e.addCredit(1000)
	apiErr := e.wantRefusal(hostapi.PathLoadAuthorize, authorizeRequest(id, e.initLoad(1000), 1000, loadTime()), http.StatusConflict, hostapi.CodeProductExpired)
	if !strings.Contains(apiErr.Reason, "named card: its product was valid until "+yesterday) {
		t.Fatalf("refusal reason %q", apiErr.Reason)
	}
	today := time.Now().Format(hostapi.DateLayout)
	if _, err := e.st.SetProduct(ctx, hostapi.ProductNamed, ProductEdit{ValidUntil: &today}, "operator test", time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, auth := e.authorize(id, 1000); auth.MAC2 == "" {
		t.Fatalf("a load on the product's last valid day got no MAC2: %+v", auth)
	}
}

// TestProductDefaultsAndEdits: an anonymous card is issued as one, an
// operator's product is added and refused when bad (nothing changed), a
// card is moved onto it, and both the move and an edit of the product
// reach a terminal's pull.
func TestProductDefaultsAndEdits(t *testing.T) { eachStore(t, testProductDefaultsAndEdits) }

func testProductDefaultsAndEdits(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	const anon = "3101000000123464"
	req := IssueRequest{Number: anon, BalanceFen: 500, Start: epurse.Date{Year: 2026, Month: 1, Day: 1}, Expiry: epurse.Date{Year: 2030, Month: 1, Day: 1}}
	if _, err := e.st.IssueCard(ctx, e.keys, req, filepath.Join(e.dir, "anon.json"), "operator test", time.Now()); err != nil {
		t.Fatal(err)
	}
	if p, err := e.st.CardProduct(ctx, anon); err != nil || p.Name != hostapi.ProductAnonymous || p.CapFen != 100000 || p.Replaceable || p.Refundable {
		t.Fatalf("a card without a holder has product %+v (%v); want anonymous, 1000.00, neither replaceable nor refundable", p, err)
	}
	over := req
	over.Number, over.BalanceFen = "3101000000123472", 100001
	if _, err := e.st.IssueCard(ctx, e.keys, over, filepath.Join(e.dir, "over.json"), "operator test", time.Now()); err == nil || !errors.Is(err, ErrOverProductCap) || !strings.Contains(err.Error(), "over the anonymous product's cap of 1000.00") {
		t.Fatalf("issuing an anonymous card with 1000.01: %v", err)
	}
	if _, err := e.st.CardProduct(ctx, over.Number); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the refused card: %v, want not found", err)
	}

	gift := hostapi.Product{Name: "gift", CapFen: 50000, ValidUntil: "2027-12-31"}
	for _, bad := range []hostapi.Product{{Name: "Gift", CapFen: 50000}, {Name: "gift", CapFen: 0}, {Name: "gift", CapFen: 50000, ValidUntil: "2027-13-01"}} {
		if err := e.st.AddProduct(ctx, bad, "operator test", time.Now()); err == nil {
			t.Fatalf("AddProduct %+v: no error", bad)
		}
	}
	if err := e.st.AddProduct(ctx, gift, "operator test", time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := e.st.AddProduct(ctx, gift, "operator test", time.Now()); !errors.Is(err, ErrExists) {
		t.Fatalf("adding gift twice: %v", err)
	}
	if _, err := e.st.SetCardProduct(ctx, anon, "nosuch", "operator test", time.Now()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a card onto a product that does not exist: %v", err)
	}
	var start hostapi.PullResponse
	e.mustCall(hostapi.PathPull, hostapi.PullRequest{}, &start)
	if changed, err := e.st.SetCardProduct(ctx, anon, "gift", "operator test", time.Now()); err != nil || !changed {
		t.Fatalf("SetCardProduct: %v, %v", changed, err)
	}
	if changed, err := e.st.SetCardProduct(ctx, anon, "gift", "operator test", time.Now()); err != nil || changed {
		t.Fatalf("SetCardProduct again: %v, %v; want no change", changed, err)
	}
	capFen := int64(30000)
	if _, err := e.st.SetProduct(ctx, "gift", ProductEdit{CapFen: &capFen}, "operator test", time.Now()); err != nil {
		t.Fatal(err)
	}
	zero := int64(0)
	if _, err := e.st.SetProduct(ctx, "gift", ProductEdit{CapFen: &zero}, "operator test", time.Now()); err == nil {
		t.Fatal("SetProduct to a zero cap: no error")
	}
	var p hostapi.PullResponse
	e.mustCall(hostapi.PathPull, hostapi.PullRequest{Cursor: start.NextCursor}, &p)
	if len(p.CardProducts) != 1 || p.CardProducts[0] != (hostapi.ProductChange{Card: anon, Product: "gift"}) {
		t.Fatalf("pull: card products %+v, want %s onto gift", p.CardProducts, anon)
	}
	found := false
	for _, pr := range p.Products {
		if pr.Name == "gift" {
			found = pr.CapFen == 30000 && pr.ValidUntil == "2027-12-31" && !pr.Replaceable
		}
	}
	if !found || len(p.Products) != 3 {
		t.Fatalf("pull: products %+v, want anonymous, gift at 300.00 until 2027-12-31, named", p.Products)
	}
	if n := e.count("ledger", "event = ? AND card = ?", EventProductSet, anon); n != 1 {
		t.Fatalf("%d product ledger rows for the card, want 1", n)
	}
	// A credit pulled says its card's product.
	id, err := e.st.AddCredit(ctx, anon, 100, "wechat", "operator test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	e.mustCall(hostapi.PathPull, hostapi.PullRequest{Cursor: p.NextCursor}, &p)
	if len(p.Credits) != 1 || p.Credits[0].ID != id.ID || p.Credits[0].CardProduct != "gift" {
		t.Fatalf("pull: credits %+v, want %s of a gift card", p.Credits, id.ID)
	}
}

// TestProductCapAtTopupOrder: a kiosk top-up order the card's product
// could never load is refused before it is paid, with the product in the
// reason: the card holds 100.00 and the host's cap is 500.00, and once the
// card is made a product capped at 200.00, 100.01 more is refused and 100.00
// is an order.
func TestProductCapAtTopupOrder(t *testing.T) { eachStore(t, testProductCapAtTopupOrder) }

func testProductCapAtTopupOrder(t *testing.T) {
	e := newTopupEnv(t)
	ctx := context.Background()
	if err := e.st.AddProduct(ctx, hostapi.Product{Name: "gift", CapFen: 20000}, "operator test", time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.SetCardProduct(ctx, testNumber, "gift", "operator test", time.Now()); err != nil {
		t.Fatal(err)
	}
	apiErr := e.wantRefusal(hostapi.PathTopupOrder, hostapi.TopupOrderRequest{Card: testNumber, AmountFen: 10001, BalanceFen: 10000, Key: "k1"}, http.StatusConflict, hostapi.CodeBalanceCap)
	if want := "gift card: balance 100.00 + 100.01 = 200.01 would exceed its cap of 200.00"; apiErr.Reason != want {
		t.Fatalf("refusal reason %q, want %q", apiErr.Reason, want)
	}
	if o := e.order("k2", 10000); o.State != hostapi.TopupUnpaid {
		t.Fatalf("an order landing on the product's cap: %+v", o)
	}
}

// TestM1ProductCap: an M1 wallet's product holds its loads as an
// e-purse's: registered without a holder it is anonymous; put on a
// product capped at 500.00, a load to 500.01 is refused naming it and
// one landing on 500.00 is authorized.
func TestM1ProductCap(t *testing.T) { eachStore(t, testM1ProductCap) }

func testM1ProductCap(t *testing.T) {
	e, _ := m1Env(t)
	ctx := context.Background()
	anon, err := e.st.RegisterM1(ctx, "04D1E2F3", "", "operator test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if p, err := e.st.CardProduct(ctx, anon.Number); err != nil || p.Name != hostapi.ProductAnonymous {
		t.Fatalf("a wallet without a holder: %+v, %v; want anonymous", p, err)
	}
	if err := e.st.AddProduct(ctx, hostapi.Product{Name: "gift", CapFen: 50000}, "operator test", time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.SetCardProduct(ctx, testUID, "gift", "operator test", time.Now()); err != nil {
		t.Fatal(err)
	}
	id := e.addM1Credit(5000)
	apiErr := e.wantRefusal(hostapi.PathLoadAuthorize, m1Authorize(id, ref1, 45001, 5000), http.StatusConflict, hostapi.CodeBalanceCap)
	if want := "gift card: balance 450.01 + 50.00 = 500.01 would exceed its cap of 500.00"; apiErr.Reason != want {
		t.Fatalf("refusal reason %q, want %q", apiErr.Reason, want)
	}
	var auth hostapi.LoadAuthorizeResponse
	e.mustCall(hostapi.PathLoadAuthorize, m1Authorize(id, ref1, 45000, 5000), &auth)
	if auth.Time == "" {
		t.Fatalf("a wallet load landing on its product's cap was not authorized: %+v", auth)
	}
}

func TestProductMigration(t *testing.T) { eachStore(t, testProductMigration) }

// testProductMigration: a store made before products, with a card with a
// holder and one without and a deny change in its feed, migrates: the
// first card is named, the second anonymous, the feed's seqs numbered on
// (the next change after the deny's), and a product change then on it.
func testProductMigration(t *testing.T) {
	steps := &migrations
	if onPostgres(t) {
		steps = &postgresMigrations
	}
	all := *steps
	i := slices.IndexFunc(all, func(s string) bool { return strings.Contains(s, "CREATE TABLE products") })
	if i < 0 {
		t.Fatal("no migration adds products")
	}
	*steps = all[:i]
	defer func() { *steps = all }()
	dsn := storeDSN(t, t.TempDir())
	st, err := Open(dsn)
	if err != nil {
		t.Fatal(err)
	}
	now := dbTime(time.Now())
	const named, anon = "3101000000123456", "3101000000123464"
	for card, holder := range map[string]string{named: "张三", anon: ""} {
		mustExec(t, st.db, `INSERT INTO cards (number, app_serial, holder, issued, initial_balance_fen, start_date, expiry_date)
			VALUES (?, '00000000000000000001', ?, ?, 0, '20260101', '20300101')`, card, holder, now)
	}
	mustExec(t, st.db, `INSERT INTO changes (kind, card, denied, reason, time) VALUES ('deny', ?, 1, 'lost', ?)`, "3101000000999999", now)
	st.Close()

	*steps = all
	if st, err = Open(dsn); err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	for card, want := range map[string]string{named: hostapi.ProductNamed, anon: hostapi.ProductAnonymous} {
		if p, err := st.CardProduct(ctx, card); err != nil || p.Name != want {
			t.Fatalf("card %s after the migration: %+v, %v; want %s", card, p, err, want)
		}
	}
	if _, err := st.SetCardProduct(ctx, anon, hostapi.ProductNamed, "operator test", time.Now()); err != nil {
		t.Fatal(err)
	}
	r, err := st.pull(ctx, 0, 10)
	if err != nil || len(r.Deny) != 1 || len(r.CardProducts) != 1 || r.CardProducts[0].Card != anon || r.NextCursor != "2" || len(r.Products) != 2 {
		t.Fatalf("the feed after the migration: %+v, %v", r, err)
	}
}

func TestProductEditWakesHeldPull(t *testing.T) { eachStore(t, testProductEditWakesHeldPull) }

// testProductEditWakesHeldPull: a held pull answers on a product's edit,
// which has no list of its own in the answer (the products carry it), as
// on a credit: a terminal learns a new cap at once, not at the hold's end.
func testProductEditWakesHeldPull(t *testing.T) {
	e := newEnv(t, Options{})
	var p hostapi.PullResponse
	e.mustCall(hostapi.PathPull, hostapi.PullRequest{}, &p)
	done := make(chan hostapi.PullResponse, 1)
	go func() {
		var held hostapi.PullResponse
		if code, herr := e.call(hostapi.PathPull, hostapi.PullRequest{Cursor: p.NextCursor, WaitMS: 20000}, &held); code != http.StatusOK {
			t.Errorf("held pull: %d %+v", code, herr)
		}
		done <- held
	}()
	time.Sleep(200 * time.Millisecond)
	capFen := int64(80000)
	if _, err := e.st.SetProduct(context.Background(), hostapi.ProductAnonymous, ProductEdit{CapFen: &capFen}, "operator test", time.Now()); err != nil {
		t.Fatal(err)
	}
	select {
	case held := <-done:
		if !held.Held || held.NextCursor == p.NextCursor || !slices.ContainsFunc(held.Products, func(p hostapi.Product) bool { return p.Name == hostapi.ProductAnonymous && p.CapFen == 80000 }) {
			t.Fatalf("held pull answered %+v; want the anonymous cap at 800.00", held)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a held pull did not answer on a product edit within 10 s")
	}
}
