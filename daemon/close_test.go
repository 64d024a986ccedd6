package daemon

import (
	"strings"
	"testing"

	"github.com/cardd/cardd/config"
	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/offline"
	"github.com/cardd/cardd/printer"
)

// TestClosingReceipt: the slip of a card's closing debit (its row naming
// the close) is titled as a close and says the refund due, not a sale; a
// sale's slip is unchanged.
func TestClosingReceipt(t *testing.T) {
	cfg := &config.Config{}
	row := offline.Row{ID: "000000000001-7", Kind: offline.KindPurchase, State: offline.StateDone, Card: "3101000000830007",
		Purse: "EP", BalanceFen: 4560, AmountFen: 4560, CreditID: hostapi.CloseID("3101000000830007"), Time: "20261204093000"}
	text := receiptText(t, cfg, row)
	if !strings.Contains(text, printer.TitleClose) || !strings.Contains(text, printer.LabelCloseRefund) || !strings.Contains(text, "45.60") ||
		strings.Contains(text, printer.LabelPurchase) {
		t.Fatalf("closing slip:\n%s", text)
	}
	row.CreditID = ""
	if text := receiptText(t, cfg, row); strings.Contains(text, printer.LabelCloseRefund) || !strings.Contains(text, printer.LabelPurchase) {
		t.Fatalf("sale slip:\n%s", text)
	}
}
