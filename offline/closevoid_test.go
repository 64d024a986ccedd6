package offline

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cardd/cardd/hostapi"
)

// A closing debit (销户) is no sale: its money is the card's refund due at
// the host, and a void would journal a refund owed on top of it. Named or
// as "the last", it is refused, and no void is recorded.
func TestClosingDebitNotVoidable(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	r := mustBegin(t, s, Row{Kind: KindPurchase, Card: cardA, Purse: "EP", AmountFen: 5000, BalanceFen: 5000,
		PSAMTerminal: "0000000000AA", CreditID: hostapi.CloseID(cardA)})
	if err := s.Finish(ctx, r.ID, StateDone, "0A0B0C0D", ""); err != nil {
		t.Fatal(err)
	}
	for _, req := range []VoidRequest{{SaleID: r.ID, Window: time.Hour}, {Window: time.Hour}} {
		if _, err := s.RecordVoid(ctx, req); !errors.Is(err, ErrNotVoidable) {
			t.Errorf("void %+v of the closing debit: %v; want ErrNotVoidable", req, err)
		}
	}
	if n, _, _ := s.VoidsBetween(ctx, time.Time{}, time.Now().Add(time.Hour)); n != 0 {
		t.Fatalf("%d voids recorded", n)
	}
}
