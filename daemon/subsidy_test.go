package daemon

import (
	"strings"
	"testing"

	"github.com/cardd/cardd/config"
	"github.com/cardd/cardd/offline"
	"github.com/cardd/cardd/printer"
	"github.com/cardd/cardd/printer/spool"
)

// TestSubsidyLoadReceipt: the receipt of a subsidy's load (its row names
// the batch) is titled 补助到账 with 补助金额; a top-up's stays 充值成功.
func TestSubsidyLoadReceipt(t *testing.T) {
	cfg := &config.Config{}
	cfg.Terminal.ID = "000000000001"
	row := offline.Row{ID: "000000000001-9", Kind: offline.KindLoad, Card: "3101000000800001", Purse: "EP", BalanceFen: 500, AmountFen: 1200,
		Detail: "recovered: the card's counter moved; subsidy=2026-12-lunch"}
	text := func(row offline.Row) string {
		nr, err := loadReceipt(cfg)(nil, row)
		if err != nil {
			t.Fatal(err)
		}
		r, err := spool.Renderer{}.Receipt(offline.Receipt{ID: 1, Kind: nr.Kind, Body: nr.Body})
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(printer.Text(r, printer.Layout58.Cols), "\n")
	}
	got := text(row)
	for _, want := range []string{"补助到账", printer.LabelSubsidy, "12.00", "17.00"} {
		if !strings.Contains(got, want) {
			t.Errorf("subsidy receipt lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "充值成功") || strings.Contains(got, printer.LabelTopUp) {
		t.Errorf("subsidy receipt calls it a top-up:\n%s", got)
	}
	row.Detail = ""
	if got := text(row); !strings.Contains(got, "充值成功") || strings.Contains(got, "补助") {
		t.Errorf("top-up receipt:\n%s", got)
	}
}
