package daemon

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/cardd/cardd/config"
	"github.com/cardd/cardd/offline"
	"github.com/cardd/cardd/printer"
	"github.com/cardd/cardd/printer/spool"
)

// TestDiscountedPurchaseReceipt: the receipt of a sale discounted for the
// card's class shows the price armed, the percent and the amount paid,
// from the terms the journal row carries.
func TestDiscountedPurchaseReceipt(t *testing.T) {
	cfg := &config.Config{}
	cfg.Terminal.ID = "000000000001"
	row := offline.Row{ID: "000000000001-8", Kind: offline.KindPurchase, Card: "3101000000800001", BalanceFen: 5000, AmountFen: 799,
		Detail: "discount: list_fen=999 percent=80 class=student"}
	got := receiptText(t, cfg, row)
	for _, want := range []string{"原价 LIST                   9.99", "折扣 DISC                    80%", "消费金额                    7.99", "余额                       42.01"} {
		if !strings.Contains(got, want) {
			t.Errorf("discounted receipt lacks %q:\n%s", want, got)
		}
	}
}

// TestClassesOf: every class of pos.classes is known to the till, one
// with no card type too (the host's card records give it).
func TestClassesOf(t *testing.T) {
	cfg := &config.Config{}
	cfg.POS.Classes = map[string][]string{"staff": {"02"}, "visitor": {}}
	c := classesOf(cfg, slog.New(slog.DiscardHandler))
	if !c.Known("visitor") || !c.Known("staff") || c.Known("student") || c.Of(0x0200) != "staff" {
		t.Fatalf("classes %+v", c)
	}
}

// receiptText is the 58 mm text of the receipt of purchase row.
func receiptText(t *testing.T, cfg *config.Config, row offline.Row) string {
	t.Helper()
	nr, err := purchaseReceipt(cfg)(nil, row)
	if err != nil {
		t.Fatal(err)
	}
	r, err := spool.Renderer{}.Receipt(offline.Receipt{ID: 1, Kind: nr.Kind, Body: nr.Body})
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(printer.Text(r, printer.Layout58.Cols), "\n")
}
