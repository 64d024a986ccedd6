package localapi

import (
	"testing"

	"github.com/cardd/cardd/tap"
)

// card.leave tells a stream client that the card may be removed, with the
// card (masked, after this tap's top-up) and the tap's outcome so far.
func TestStreamCardLeave(t *testing.T) {
	s, srv, _ := newServer(t)
	st := openStream(t, srv)
	if e := st.next(t); e.Type != EventHello {
		t.Fatalf("first event %+v, want hello", e)
	}
	s.Leave(tap.Result{Reader: "R0", Read: sampleRead(), CardAPDUs: 5,
		Load:     &tap.LoadReport{Balance: 18412, Loads: []tap.LoadResult{{CreditID: "cr-1", AmountFen: 5000, Applied: true, NewBalance: 18412}}},
		Purchase: &tap.PurchaseReport{Sale: tap.Sale{ID: "s-1", AmountFen: 1250}, Paid: true, Balance: 17162}})
	e := st.next(t)
	if e.Type != EventCardLeave || e.Reader != "R0" {
		t.Fatalf("event %+v, want card.leave from R0", e)
	}
	if c := e.Card; c == nil || c.Number != "3101********3456" || c.Balance != "171.62" {
		t.Errorf("card %+v; want masked, after the top-up and the sale", c)
	}
	if tv := e.Tap; tv == nil || tv.Outcome != "ok" || len(tv.Loads) != 1 || !tv.Loads[0].Applied || tv.Purchase == nil || !tv.Purchase.Paid {
		t.Errorf("tap %+v; want ok, the top-up and the sale paid", e.Tap)
	}
}
