package tap

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/cardd/cardd/money"
	"github.com/cardd/cardd/offline"
)

// pullProduct gives w's card the product name with cap capFen, valid
// until until, as a pull from the host does.
func (w *loadWorld) pullProduct(t *testing.T, name string, capFen int64, until string) {
	t.Helper()
	page := offline.PullPage{Products: []offline.Product{{Name: name, CapFen: capFen, ValidUntil: until}},
		CardProducts: []offline.ProductChange{{Card: w.card.File().Info.CardNumber, Product: name}}}
	if err := w.store.ApplyPage(context.Background(), page); err != nil {
		t.Fatal(err)
	}
}

// TestLoadProductCap: with the terminal's own cap far above, the card's
// product (pulled from the host) holds it to the product's cap: a credit
// past it waits, with the product and its cap in the reason, and nothing
// reaches the card for it; one landing exactly on it is loaded.
func TestLoadProductCap(t *testing.T) {
	w := newLoadWorld(t, 1001, 1000)
	start := w.card.File().EPBalance
	w.l.BalanceCap = 10000000
	w.pullProduct(t, "anonymous", start+1000, "")
	rec := &recorder{t: w.card}
	rep, err := w.tap(t, rec)
	if err != nil || len(rep.Loads) != 2 {
		t.Fatalf("Apply = %+v, %v", rep, err)
	}
	want := "anonymous card: balance " + money.Format(start) + " + 10.01 = " + money.Format(start+1001) + " would exceed its cap of " + money.Format(start+1000)
	if over := rep.Loads[0]; over.Applied || over.Refused != want {
		t.Fatalf("credit over the product's cap: %+v, want it waiting: %q", over, want)
	}
	if on := rep.Loads[1]; !on.Applied {
		t.Fatalf("credit landing on the product's cap: %+v, want it loaded", on)
	}
	inits := 0
	for _, c := range rec.cmds {
		if c.INS == insInitialize {
			inits++
		}
	}
	if inits != 1 || w.card.File().EPBalance != start+1000 {
		t.Fatalf("%d INITIALIZE commands, card holds %d: want one, and %d", inits, w.card.File().EPBalance, start+1000)
	}
}

// TestLoadProductExpired: a card whose product's last valid day has
// passed (the terminal's clock says 2026-11-23) is refused as an expired
// card, saying until when: its credit is not loaded; a product edited to
// end that day loads again.
func TestLoadProductExpired(t *testing.T) {
	w := newLoadWorld(t, 1000)
	start := w.card.File().EPBalance
	w.pullProduct(t, "gift", 100000, "2026-11-22")
	rep, err := w.tap(t, w.card)
	if !errors.Is(err, ErrCardExpired) || !strings.Contains(err.Error(), "its product gift was valid until 2026-11-22") || len(rep.Loads) != 0 {
		t.Fatalf("Apply = %+v, %v; want the card refused as expired by its product", rep, err)
	}
	if w.card.File().EPBalance != start {
		t.Fatalf("card holds %d, want %d", w.card.File().EPBalance, start)
	}
	w.pullProduct(t, "gift", 100000, "2026-11-23")
	if rep, err = w.tap(t, w.card); err != nil || len(rep.Loads) != 1 || !rep.Loads[0].Applied {
		t.Fatalf("Apply on the product's last day = %+v, %v; want it loaded", rep, err)
	}
}

// TestPurchaseProductExpired: at a POS, a card of a product past its last
// valid day pays nothing: the tap ends card_expired, no DEBIT reaches the
// card and the sale stays armed.
func TestPurchaseProductExpired(t *testing.T) {
	card := newTestCard(t, "王小明", 3, nil)
	before := card.File().EPBalance
	b := floorBench(t, card, 1250)
	page := offline.PullPage{Products: []offline.Product{{Name: "gift", CapFen: 100000, ValidUntil: "2026-11-22"}},
		CardProducts: []offline.ProductChange{{Card: card.File().Info.CardNumber, Product: "gift"}}}
	if err := b.store.ApplyPage(context.Background(), page); err != nil {
		t.Fatal(err)
	}
	res := b.tap()
	if res.Outcome() != OutcomeExpired || card.File().EPBalance != before {
		t.Fatalf("tap: %s; card holds %d, want card_expired and %d", summary(res), card.File().EPBalance, before)
	}
	for _, c := range cardCommands(b.trace) {
		if strings.HasPrefix(c, "8054") {
			t.Fatalf("DEBIT sent to a card of an expired product:\n%s", strings.Join(b.trace, "\n"))
		}
	}
}

// TestM1LoadProductCap: an M1 wallet's product holds its loads too: at
// 50.00 with a product cap of 70.00, a 20.00 credit lands on the cap and
// the 3.00 after it waits, naming the product.
func TestM1LoadProductCap(t *testing.T) {
	b := newTapBench(t)
	card := m1BenchCard(t, 5000)
	host := newFakeM1Host(t, 2000, 300)
	b.card, b.r.Loader, b.r.Purchaser = card, b.loader(host), b.pos(0, true)
	page := offline.PullPage{Products: []offline.Product{{Name: "anonymous", CapFen: 7000}},
		CardProducts: []offline.ProductChange{{Card: "uid:04A1B2C3", Product: "anonymous"}}}
	if err := b.store.ApplyPage(context.Background(), page); err != nil {
		t.Fatal(err)
	}
	res := b.tap()
	if res.Err != nil || res.Load == nil || len(res.Load.Loads) != 2 || !res.Load.Loads[0].Applied {
		t.Fatalf("tap: %s", summary(res))
	}
	if over := res.Load.Loads[1]; over.Applied || over.Refused != "anonymous card: balance 70.00 + 3.00 = 73.00 would exceed its cap of 70.00" {
		t.Fatalf("the load over the product's cap: %+v", over)
	}
	if got := walletBalance(t, card); got != 7000 {
		t.Fatalf("wallet holds %d, want 7000", got)
	}
}
