package offline

import (
	"context"
	"testing"
)

// TestCloses: a pulled close is kept per card; the closing row is the
// card's purchase or read naming the close id, never a failed one.
func TestCloses(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	const card, id = "3101000000700028", "close-3101000000700028"
	if err := s.ApplyPage(ctx, PullPage{Closes: []CloseChange{{Card: card, ID: id}}, Cursor: "1"}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.CloseOf(ctx, card); err != nil || got != id {
		t.Fatalf("close of the card: %q, %v", got, err)
	}
	if got, _ := s.CloseOf(ctx, "3101000000700036"); got != "" {
		t.Fatalf("close of another card: %q", got)
	}
	if err := s.ApplyPage(ctx, PullPage{Closes: []CloseChange{{Card: card}}, Cursor: "2"}); err == nil {
		t.Fatal("a close without its id was applied")
	}
	if _, found, err := s.ClosingRow(ctx, id); err != nil || found {
		t.Fatalf("closing row before any: %v, %v", found, err)
	}
	failed, err := s.Begin(ctx, Row{Kind: KindPurchase, Card: card, Purse: "EP", AmountFen: 4560, CreditID: id, Time: "20261204090000"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Finish(ctx, failed.ID, StateFailed, "", "did not happen"); err != nil {
		t.Fatal(err)
	}
	if _, found, _ := s.ClosingRow(ctx, id); found {
		t.Fatal("a failed closing debit counts as the closing row")
	}
	debit, err := s.Begin(ctx, Row{Kind: KindPurchase, Card: card, Purse: "EP", AmountFen: 4560, CreditID: id, Time: "20261204090001"})
	if err != nil {
		t.Fatal(err)
	}
	row, found, err := s.ClosingRow(ctx, id)
	if err != nil || !found || row.ID != debit.ID || row.State != StateIntent {
		t.Fatalf("closing row %+v, %v, %v; want %s in intent", row, found, err, debit.ID)
	}
}
