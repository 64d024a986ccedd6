package host

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cardd/cardd/apdu/epurse"
	"github.com/cardd/cardd/hostapi"
)

func TestCardClose(t *testing.T) { eachStore(t, testCardClose) }

// testCardClose: closing a named card cancels its pending credit, reaches
// the pull as a close, and waits; the uploaded closing debit (a purchase
// whose credit_id is the close id, its TAC verified) records the refund
// due with the holder and puts the card on the deny list; the same upload
// again changes nothing; a further closing debit adds to the refund due;
// asking again is ErrExists.
func testCardClose(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	credit := e.addCredit(500)
	var p hostapi.PullResponse
	e.mustCall(hostapi.PathPull, hostapi.PullRequest{}, &p)
	cursor := p.NextCursor

	changed, err := e.st.CloseCard(ctx, testNumber, "operator alice", "graduated", time.Now())
	if err != nil || !changed {
		t.Fatalf("close: %v, %v", changed, err)
	}
	if changed, err := e.st.CloseCard(ctx, testNumber, "operator alice", "graduated", time.Now()); err != nil || changed {
		t.Fatalf("close again while pending: %v, %v; want nothing changed", changed, err)
	}
	if s := e.creditState(credit); s != hostapi.CreditCancelled {
		t.Fatalf("pending credit %s after the close; want cancelled", s)
	}
	p = hostapi.PullResponse{}
	e.mustCall(hostapi.PathPull, hostapi.PullRequest{Cursor: cursor}, &p)
	want := []hostapi.CloseChange{{Card: testNumber, ID: hostapi.CloseID(testNumber)}}
	if !slices.Equal(p.Closes, want) || len(p.Credits) != 1 || p.Credits[0].State != hostapi.CreditCancelled {
		t.Fatalf("pull after the close: closes %+v, credits %+v", p.Closes, p.Credits)
	}
	if list, _ := e.st.Closes(ctx, ClosePending); len(list) != 1 || list[0].Holder != "张三" || list[0].RefundFen != nil {
		t.Fatalf("pending closes %+v", list)
	}

	// A forged closing debit closes nothing.
	forged := e.sale("1", 0, 1, 10000, 10000, 1)
	forged.CreditID = hostapi.CloseID(testNumber)
	forged.TAC = flip(forged.TAC)
	if up := e.upload(forged); len(up.Acked) != 1 {
		t.Fatalf("forged upload: %+v", up)
	}
	if list, _ := e.st.Closes(ctx, CloseClosed); len(list) != 0 {
		t.Fatalf("a forged closing debit closed the card: %+v", list)
	}

	debit := e.sale("2", 0, 2, 10000, 10000, 2)
	debit.CreditID = hostapi.CloseID(testNumber)
	for range 2 {
		if up := e.upload(debit); len(up.Acked) != 1 {
			t.Fatalf("upload: %+v", up)
		}
	}
	list, err := e.st.Closes(ctx, CloseClosed)
	if err != nil || len(list) != 1 {
		t.Fatalf("closed: %+v, %v", list, err)
	}
	c := list[0]
	// The 5.00 credit the close cancelled goes back with the refund.
	if c.RefundFen == nil || *c.RefundFen != 10500 || c.CreditsFen != 500 || c.Holder != "张三" || c.Operator != "operator alice" || c.JournalID != debit.ID || c.TACCheck != tacOK {
		t.Fatalf("close %+v; want 105.00 due to 张三 (100.00 debited, 5.00 cancelled), row %s, TAC ok", c, debit.ID)
	}
	if denied, reason, _ := denyState(e.st.db, testNumber); !denied || reason != DenyReasonClosed {
		t.Fatalf("deny %v %q; want closed", denied, reason)
	}
	if n := e.count("ledger", "event = ? AND card = ?", EventClosed, testNumber); n != 1 {
		t.Fatalf("%d closed ledger rows; want 1", n)
	}
	if n := e.count("changes", "kind = 'deny' AND card = ?", testNumber); n != 1 {
		t.Fatalf("%d deny changes; want 1", n)
	}
	// A further closing debit (a second terminal had pulled the close
	// too) took money all the same: it adds to the refund due, once; a
	// closing read of the empty card adds nothing.
	further := e.sale("3", 1, 3, 500, 500, 3)
	further.CreditID = hostapi.CloseID(testNumber)
	empty := hostapi.JournalRow{ID: testTerm + "-4", Kind: "read", State: "done", Card: testNumber, Purse: "EP",
		CreditID: hostapi.CloseID(testNumber), Time: time.Now().Format(time.RFC3339)}
	for range 2 {
		if up := e.upload(further, empty, debit); len(up.Acked) != 3 {
			t.Fatalf("upload: %+v", up)
		}
	}
	if list, _ := e.st.Closes(ctx, CloseClosed); len(list) != 1 || *list[0].RefundFen != 11000 || list[0].JournalID != debit.ID {
		t.Fatalf("after a further closing debit: %+v; want 110.00 due, closed by row %s", list, debit.ID)
	}
	if n := e.count("ledger", "event = ? AND card = ?", EventClosed, testNumber); n != 2 {
		t.Fatalf("%d closed ledger rows; want 2", n)
	}
	if _, err := e.st.CloseCard(ctx, testNumber, "operator alice", "again", time.Now()); !errors.Is(err, ErrExists) {
		t.Fatalf("closing a closed card: %v, want ErrExists", err)
	}
}

func TestCardCloseRefused(t *testing.T) { eachStore(t, testCardCloseRefused) }

// testCardCloseRefused: an anonymous card, a card on the deny list, a card
// with a credit a terminal holds a MAC2 for, an M1 wallet and a card never
// issued are refused, and nothing changes; a closing row for a card no
// close was asked for records nothing; a card that held nothing closes on
// its closing read with refund 0.
func testCardCloseRefused(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	anon := IssueRequest{Number: "3101000000654321", BalanceFen: 100,
		Start: epurse.Date{Year: 2026, Month: 1, Day: 1}, Expiry: epurse.Date{Year: 2030, Month: 1, Day: 1}}
	if _, err := e.st.IssueCard(ctx, e.keys, anon, filepath.Join(e.dir, "anon.json"), "operator test", time.Now()); err != nil {
		t.Fatal(err)
	}
	var refused *CloseRefusedError
	if _, err := e.st.CloseCard(ctx, anon.Number, "operator a", "left", time.Now()); !errors.As(err, &refused) {
		t.Fatalf("anonymous card: %v, want refused", err)
	}
	held := e.addCredit(300)
	e.authorize(held, 300)
	if _, err := e.st.CloseCard(ctx, testNumber, "operator a", "left", time.Now()); !errors.As(err, &refused) {
		t.Fatalf("a credit held by an authorization: %v, want refused", err)
	}
	if s := e.creditState(held); s != hostapi.CreditPending {
		t.Fatalf("credit %s after the refused close; want still pending", s)
	}
	if _, err := e.st.CloseCard(ctx, "3101000000999999", "operator a", "left", time.Now()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a card never issued: %v", err)
	}
	if _, err := e.st.CloseCard(ctx, testNumber, "operator a", "", time.Now()); err == nil {
		t.Fatal("a close without a reason")
	}
	m1, err := e.st.RegisterM1(ctx, "04A1B2C3", "李四", "operator a", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.CloseCard(ctx, m1.Number, "operator a", "left", time.Now()); err == nil {
		t.Fatal("an M1 wallet closed")
	}
	if n := e.count("closes", "1 = 1"); n != 0 {
		t.Fatalf("%d closes after refusals", n)
	}

	// Named, no credits, on the deny list: refused too.
	named := anon
	named.Number, named.Holder = "3101000000654339", "王五"
	if _, err := e.st.IssueCard(ctx, e.keys, named, filepath.Join(e.dir, "named.json"), "operator test", time.Now()); err != nil {
		t.Fatal(err)
	}
	read := hostapi.JournalRow{ID: testTerm + "-50", Kind: "read", State: "done", Card: named.Number, Purse: "EP",
		CreditID: hostapi.CloseID(named.Number), Time: time.Now().Format(time.RFC3339)}
	if up := e.upload(read); len(up.Acked) != 1 {
		t.Fatalf("closing read of a card not asked to close: %+v", up)
	}
	if n := e.count("closes", "1 = 1"); n != 0 {
		t.Fatalf("a closing row of a card not asked to close recorded %d closes", n)
	}
	if _, err := e.st.CloseCard(ctx, named.Number, "operator a", "left", time.Now()); err != nil {
		t.Fatal(err)
	}
	read.ID = testTerm + "-51"
	if up := e.upload(read); len(up.Acked) != 1 {
		t.Fatalf("closing read: %+v", up)
	}
	list, _ := e.st.Closes(ctx, CloseClosed)
	if len(list) != 1 || list[0].RefundFen == nil || *list[0].RefundFen != 0 {
		t.Fatalf("closed %+v; want the card that held nothing, refund 0", list)
	}
	// Another card's close id, or a load's kind, is malformed.
	bad := read
	bad.ID, bad.CreditID = testTerm+"-52", hostapi.CloseID(testNumber)
	if up := e.upload(bad); len(up.Refused) != 1 {
		t.Fatalf("a row naming another card's close: %+v", up)
	}
	if _, err := e.st.Deny(ctx, testNumber, "lost", "operator a", time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.CloseCard(ctx, testNumber, "operator a", "left", time.Now()); !errors.As(err, &refused) {
		t.Fatalf("a denied card: %v, want refused", err)
	}
}

func TestHeldPullAnswersClose(t *testing.T) { eachStore(t, testHeldPullAnswersClose) }

// testHeldPullAnswersClose: a held pull answers a close at once, as any
// change, instead of holding it until its wait is over.
func testHeldPullAnswersClose(t *testing.T) {
	e := newEnv(t, Options{})
	var p hostapi.PullResponse
	e.mustCall(hostapi.PathPull, hostapi.PullRequest{}, &p)
	if _, err := e.st.CloseCard(context.Background(), testNumber, "operator alice", "graduated", time.Now()); err != nil {
		t.Fatal(err)
	}
	got := make(chan hostapi.PullResponse, 1)
	go func() {
		var r hostapi.PullResponse
		e.call(hostapi.PathPull, hostapi.PullRequest{Cursor: p.NextCursor, WaitMS: 20000}, &r)
		got <- r
	}()
	select {
	case r := <-got:
		if len(r.Closes) != 1 {
			t.Fatalf("held pull answered %+v; want the close", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a held pull did not answer a close within 10 s of its 20 s wait")
	}
}

func TestCardCloseFollowsProduct(t *testing.T) { eachStore(t, testCardCloseFollowsProduct) }

// testCardCloseFollowsProduct: the card's product decides whether its
// balance is refunded on closing, not whether it has a holder.
func testCardCloseFollowsProduct(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	now := time.Now()
	if err := e.st.AddProduct(ctx, hostapi.Product{Name: "visitor", CapFen: 50000}, "operator a", now); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.SetCardProduct(ctx, testNumber, "visitor", "operator a", now); err != nil {
		t.Fatal(err)
	}
	var refused *CloseRefusedError
	if _, err := e.st.CloseCard(ctx, testNumber, "operator a", "left", now); !errors.As(err, &refused) || !strings.Contains(err.Error(), "visitor card: balance not refundable") {
		t.Fatalf("a named card of a product without refund: %v, want refused", err)
	}
	if n := e.count("closes", "1 = 1"); n != 0 {
		t.Fatalf("%d closes recorded after a refusal", n)
	}
	anon := IssueRequest{Number: "3101000000654321", BalanceFen: 100,
		Start: epurse.Date{Year: 2026, Month: 1, Day: 1}, Expiry: epurse.Date{Year: 2030, Month: 1, Day: 1}}
	if _, err := e.st.IssueCard(ctx, e.keys, anon, filepath.Join(e.dir, "anon.json"), "operator test", now); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.SetCardProduct(ctx, anon.Number, hostapi.ProductNamed, "operator a", now); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.CloseCard(ctx, anon.Number, "operator a", "left", now); err != nil {
		t.Fatalf("a card without a holder moved to the named product: %v", err)
	}
}
