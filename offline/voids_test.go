package offline

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// doneSale journals a purchase of amount on cardA and finishes it done.
func doneSale(t *testing.T, s *Store, amount int64) Row {
	t.Helper()
	r := mustBegin(t, s, Row{Kind: KindPurchase, Card: cardA, Purse: "EP", AmountFen: amount, BalanceFen: 10000, PSAMTerminal: "0000000000AA"})
	if err := s.Finish(context.Background(), r.ID, StateDone, "0A0B0C0D", ""); err != nil {
		t.Fatal(err)
	}
	return mustGet(t, s, r.ID)
}

// A void of the last sale is journaled once, with its receipt; a second
// void of the same sale, named or as "the last", is refused and changes
// nothing.
func TestVoidOnce(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	doneSale(t, s, 100)
	sale := doneSale(t, s, 1250)
	receipt := func(v Void, sale Row) (NewReceipt, error) {
		return NewReceipt{Kind: "void", Body: []byte(v.ID + " " + sale.ID)}, nil
	}
	v, err := s.RecordVoid(ctx, VoidRequest{Window: time.Minute, Cashier: "c7", Receipt: receipt})
	if err != nil {
		t.Fatal(err)
	}
	if v.SaleID != sale.ID || v.AmountFen != 1250 || v.Card != cardA || v.State != VoidOwed || v.Cashier != "c7" {
		t.Fatalf("void %+v; want the last sale %s, 12.50, owed", v, sale.ID)
	}
	if got, err := s.GetVoid(ctx, v.ID); err != nil || got.ID != v.ID || got.SaleID != sale.ID {
		t.Fatalf("GetVoid: %+v %v", got, err)
	}
	if r, err := s.LastReceipt(ctx); err != nil || r.Kind != "void" || string(r.Body) != v.ID+" "+sale.ID {
		t.Fatalf("receipt: %+v %v; want the void's", r, err)
	}
	for _, req := range []VoidRequest{{Window: time.Minute}, {SaleID: sale.ID, Window: time.Minute, AmountFen: 1}} {
		if _, err := s.RecordVoid(ctx, req); !errors.Is(err, ErrVoided) {
			t.Errorf("second void %+v: %v; want ErrVoided", req, err)
		}
	}
	if n, sum, err := s.VoidsBetween(ctx, time.Now().Add(-time.Hour), time.Now().Add(time.Hour)); err != nil || n != 1 || sum != 1250 {
		t.Fatalf("VoidsBetween: %d %d %v; want 1 void of 1250", n, sum, err)
	}
	owed, err := s.OwedVoids(ctx, 10)
	if err != nil || len(owed) != 1 || owed[0].ID != v.ID {
		t.Fatalf("OwedVoids: %+v %v", owed, err)
	}
}

// Two voids of one sale asked at once make one.
func TestVoidRace(t *testing.T) {
	s, _ := newStore(t)
	sale := doneSale(t, s, 500)
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() {
			_, errs[i] = s.RecordVoid(context.Background(), VoidRequest{SaleID: sale.ID, Window: time.Minute})
		})
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, ErrVoided):
			t.Errorf("unexpected refusal: %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d voids recorded; want 1", ok)
	}
}

// Each refusal has its reason and records nothing.
func TestVoidRefusals(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	if _, err := s.RecordVoid(ctx, VoidRequest{Window: time.Minute}); !errors.Is(err, ErrNotFound) {
		t.Errorf("void with no sale: %v; want ErrNotFound", err)
	}
	old := doneSale(t, s, 300)
	unknown := mustBegin(t, s, Row{Kind: KindPurchase, Card: cardA, Purse: "EP", AmountFen: 200})
	if err := s.Finish(ctx, unknown.ID, StateUnknown, "", "torn"); err != nil {
		t.Fatal(err)
	}
	intent := mustBegin(t, s, Row{Kind: KindPurchase, Card: cardA, Purse: "EP", AmountFen: 200})
	load := mustBegin(t, s, Row{Kind: KindLoad, Card: cardA, Purse: "EP", AmountFen: 200, CreditID: "cr-1"})
	fresh := doneSale(t, s, 400)
	m1 := mustBegin(t, s, Row{Kind: KindPurchase, Card: cardA, Purse: "M1", AmountFen: 200, BalanceFen: 1000})
	if err := s.Finish(ctx, m1.ID, StateDone, "", ""); err != nil {
		t.Fatal(err)
	}
	noTAC := mustBegin(t, s, Row{Kind: KindPurchase, Card: cardA, Purse: "EP", AmountFen: 200, BalanceFen: 1000, PSAMTerminal: "0000000000AA"})
	if err := s.Finish(ctx, noTAC.ID, StateDone, "", ""); err != nil {
		t.Fatal(err)
	}
	noPSAM := mustBegin(t, s, Row{Kind: KindPurchase, Card: cardA, Purse: "EP", AmountFen: 200, BalanceFen: 1000})
	if err := s.Finish(ctx, noPSAM.ID, StateDone, "0A0B0C0D", ""); err != nil {
		t.Fatal(err)
	}
	s.now = func() time.Time { return time.Now().Add(90 * time.Second) }
	for _, tc := range []struct {
		req  VoidRequest
		want error
	}{
		{VoidRequest{SaleID: old.ID, Window: time.Minute}, ErrVoidWindow},
		{VoidRequest{SaleID: unknown.ID, Window: time.Hour}, ErrNotVoidable},
		{VoidRequest{SaleID: intent.ID, Window: time.Hour}, ErrNotVoidable},
		{VoidRequest{SaleID: load.ID, Window: time.Hour}, ErrNotVoidable},
		{VoidRequest{SaleID: m1.ID, Window: time.Hour}, ErrNotVoidable},
		{VoidRequest{SaleID: noTAC.ID, Window: time.Hour}, ErrNotVoidable},
		{VoidRequest{SaleID: noPSAM.ID, Window: time.Hour}, ErrNotVoidable},
		{VoidRequest{SaleID: fresh.ID, Window: time.Hour, AmountFen: 401}, ErrVoidAmount},
		{VoidRequest{SaleID: fresh.ID, Window: time.Hour, AmountFen: -1}, ErrVoidAmount},
		{VoidRequest{SaleID: "000000000002-1", Window: time.Hour}, ErrNotFound},
		{VoidRequest{SaleID: "000000000001-999", Window: time.Hour}, ErrNotFound},
	} {
		if _, err := s.RecordVoid(ctx, tc.req); !errors.Is(err, tc.want) {
			t.Errorf("%+v: %v; want %v", tc.req, err, tc.want)
		}
	}
	if n, _, _ := s.VoidsBetween(ctx, time.Time{}, time.Now().Add(time.Hour)); n != 0 {
		t.Fatalf("%d voids recorded by refusals", n)
	}
	// Part of a sale may be voided, once.
	v, err := s.RecordVoid(ctx, VoidRequest{SaleID: fresh.ID, Window: time.Hour, AmountFen: 150})
	if err != nil || v.AmountFen != 150 {
		t.Fatalf("partial void: %+v %v", v, err)
	}
}

// The host's answer settles a void once: refunded with its credit, or
// refused with the reason; an owed void is no longer owed after either.
func TestVoidAnswers(t *testing.T) {
	s, path := newStore(t)
	ctx := context.Background()
	a, _ := s.RecordVoid(ctx, VoidRequest{SaleID: doneSale(t, s, 100).ID, Window: time.Minute})
	b, _ := s.RecordVoid(ctx, VoidRequest{SaleID: doneSale(t, s, 200).ID, Window: time.Minute})
	if err := s.VoidRefunded(ctx, a.ID, "rf-1"); err != nil {
		t.Fatal(err)
	}
	if err := s.VoidRefunded(ctx, a.ID, "rf-1"); err != nil {
		t.Fatalf("same answer again: %v", err)
	}
	if err := s.VoidRefunded(ctx, a.ID, "rf-2"); !errors.Is(err, ErrFinal) {
		t.Fatalf("another credit: %v; want ErrFinal", err)
	}
	if err := s.VoidRefusedByHost(ctx, b.ID, "sale_voided: no"); err != nil {
		t.Fatal(err)
	}
	s = reopen(t, s, path)
	if owed, err := s.OwedVoids(ctx, 10); err != nil || len(owed) != 0 {
		t.Fatalf("owed after answers: %+v %v", owed, err)
	}
	if got, _ := s.GetVoid(ctx, a.ID); got.State != VoidRefunded || got.CreditID != "rf-1" {
		t.Fatalf("void a: %+v", got)
	}
	if got, _ := s.GetVoid(ctx, b.ID); got.State != VoidRefused || got.HostReason != "sale_voided: no" {
		t.Fatalf("void b: %+v", got)
	}
	if _, err := s.GetVoid(ctx, "000000000001-7"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a journal id as a void id: %v", err)
	}
}

// A purchase keeps the PSAM terminal id it was made with, across a reopen,
// for its void (the host verifies the sale's TAC with it); one that is not
// 6 bytes of upper-case hex is refused before the card sees anything.
func TestPurchaseKeepsPSAMTerminal(t *testing.T) {
	s, path := newStore(t)
	r := mustBegin(t, s, Row{Kind: KindPurchase, Card: cardA, Purse: "EP", AmountFen: 100, BalanceFen: 10000, PSAMTerminal: "000000002002"})
	s = reopen(t, s, path)
	if got := mustGet(t, s, r.ID); got.PSAMTerminal != "000000002002" {
		t.Fatalf("PSAM terminal %q after a reopen; want 000000002002", got.PSAMTerminal)
	}
	for _, bad := range []string{"2002", "00000000200g", "00000000200a"} {
		if _, err := s.Begin(context.Background(), Row{Kind: KindPurchase, Card: cardA, Purse: "EP", AmountFen: 100, PSAMTerminal: bad}); err == nil {
			t.Errorf("a purchase with PSAM terminal %q was journaled", bad)
		}
	}
}
