package daemon

import (
	"strings"
	"testing"

	"github.com/cardd/cardd/config"
	"github.com/cardd/cardd/offline"
	"github.com/cardd/cardd/printer"
)

// TestSplitPurchaseReceipt: the receipt of a split sale's card part shows
// the whole sale, the card's part and the rest to collect, from the terms
// the journal row carries; a sale the card paid alone shows 消费金额 only.
func TestSplitPurchaseReceipt(t *testing.T) {
	cfg := &config.Config{}
	cfg.Terminal.ID = "000000000001"
	row := offline.Row{ID: "000000000001-7", Kind: offline.KindPurchase, Card: "3101000000800001", BalanceFen: 1840, AmountFen: 1840,
		Detail: "recovered: the card's log holds this purchase; split: sale_fen=3000 cap_fen=0 card_fen=1840 collect_fen=1160"}
	text := func(row offline.Row) string { return receiptText(t, cfg, row) }
	got := text(row)
	for _, want := range []string{"应付 TOTAL                 30.00", "卡付 CARD                  18.40", "待收 DUE                   11.60", "余额                        0.00"} {
		if !strings.Contains(got, want) {
			t.Errorf("split receipt lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, printer.LabelPurchase) {
		t.Errorf("split receipt shows 消费金额 too:\n%s", got)
	}
	row.Detail, row.BalanceFen, row.AmountFen = "", 5000, 3000
	got = text(row)
	if !strings.Contains(got, printer.LabelPurchase) || strings.Contains(got, printer.LabelSplitCollect) {
		t.Errorf("whole sale's receipt:\n%s", got)
	}
}
