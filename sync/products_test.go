package sync

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/offline"
)

// TestPullProducts: a pull's card products reach the terminal's store: a
// pending credit's card gets the product the credit names, a product
// change moves a card, the host's product list replaces the terminal's
// (an edited cap, a product gone), and a page without a list (a host
// older than products) leaves it as it was.
func TestPullProducts(t *testing.T) {
	ctx := context.Background()
	st, err := offline.Open(filepath.Join(t.TempDir(), "cardd.db"), "000000000001")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const a, b = "3101000000123456", "3101000000123464"
	apply := func(r hostapi.PullResponse) {
		t.Helper()
		page := offline.PullPage{Cursor: r.NextCursor}
		pageProducts(&page, r)
		if err := st.ApplyPage(ctx, page); err != nil {
			t.Fatal(err)
		}
	}
	want := func(card string, name string, capFen int64, known bool) {
		t.Helper()
		p, ok, err := st.CardProduct(ctx, card)
		if err != nil || ok != known || known && (p.Name != name || p.CapFen != capFen) {
			t.Fatalf("card %s: %+v, %v, %v; want %s at %d (%v)", card, p, ok, err, name, capFen, known)
		}
	}
	apply(hostapi.PullResponse{NextCursor: "2",
		Credits:  []hostapi.Credit{{ID: "cr-1", Card: a, AmountFen: 100, State: hostapi.CreditPending, CardProduct: "anonymous"}},
		Products: []hostapi.Product{{Name: "anonymous", CapFen: 100000}, {Name: "named", CapFen: 500000}, {Name: "gift", CapFen: 20000}}})
	want(a, "anonymous", 100000, true)
	want(b, "", 0, false)
	apply(hostapi.PullResponse{NextCursor: "4",
		CardProducts: []hostapi.ProductChange{{Card: b, Product: "gift"}, {Card: a, Product: "named"}},
		Products:     []hostapi.Product{{Name: "anonymous", CapFen: 100000}, {Name: "named", CapFen: 300000}, {Name: "gift", CapFen: 20000}}})
	want(a, "named", 300000, true)
	want(b, "gift", 20000, true)
	apply(hostapi.PullResponse{NextCursor: "5"})
	want(b, "gift", 20000, true)
	apply(hostapi.PullResponse{NextCursor: "6", Products: []hostapi.Product{{Name: "named", CapFen: 300000}}})
	want(b, "", 0, false) // its product is gone: only the terminal's cap holds
	want(a, "named", 300000, true)
}
