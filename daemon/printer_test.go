package daemon

import (
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/cardd/cardd/apdu/epurse"
	"github.com/cardd/cardd/config"
	"github.com/cardd/cardd/printer"
	"github.com/cardd/cardd/printer/spool"
	"github.com/cardd/cardd/tap"
)

// TestRendererFourByte: printer.four_byte "image" reaches the renderer with
// the font loaded, in the gb18030 mode; "text" loads no font.
func TestRendererFourByte(t *testing.T) {
	const font = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"
	if _, err := os.Stat(font); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%v: install the Debian package fonts-noto-cjk", err)
		}
		t.Skipf("%v: install the Debian package fonts-noto-cjk", err)
	}
	cfg := config.Default()
	r, err := Renderer(&cfg)
	if err != nil || r.Options.FourByte != printer.FourByteText || r.Options.Font != nil {
		t.Fatalf("default: %+v, %v", r.Options, err)
	}
	cfg.Printer.FourByte, cfg.Printer.FontFile = "image", font
	r, err = Renderer(&cfg)
	if err != nil || r.Options.FourByte != printer.FourByteImage || r.Options.Font == nil || r.Options.Mode != printer.TextGB18030 {
		t.Fatalf("four_byte image: %+v, %v", r.Options, err)
	}
}

// TestBalanceSlipStatement: the balance slip carries the card's newest
// transactions from the tap's read, newest first, at most
// receipt.statement_lines, each signed, named and with its terminal.
func TestBalanceSlipStatement(t *testing.T) {
	at := func(d int) time.Time { return time.Date(2026, 11, 20+d, 12, 0, 0, 0, time.UTC) }
	term := [6]byte{0, 0, 0, 0, 0, 0xA2}
	cr := &tap.CardRead{Info: epurse.IssuerInfo{CardNumber: "3101000000800001"}, Balance: 12345, Log: []epurse.LogRecord{
		{Amount: 5000, Type: epurse.TxEPLoad, TerminalID: term, Time: at(3)},
		{Amount: 559, Type: epurse.TxEPPurchase, TerminalID: term, Time: at(2)},
		{Amount: 100, Type: epurse.TxComposite, TerminalID: term, Time: at(1)},
		{Amount: 7, Type: epurse.TxType(0x03), TerminalID: term, Time: at(0)},
	}}
	cfg := &config.Config{}
	cfg.Terminal.ID = "000000000001"
	for _, n := range []int{0, 3, 5} {
		cfg.Receipt.StatementLines = n
		nr, err := balanceReceipt(cfg)(cr)
		if err != nil {
			t.Fatal(err)
		}
		var f spool.Facts
		if err := json.Unmarshal(nr.Body, &f); err != nil {
			t.Fatal(err)
		}
		want := []spool.StatementLine{
			{Time: at(3), Kind: spool.TxLoad, AmountFen: 5000, Terminal: "0000000000A2"},
			{Time: at(2), Kind: spool.TxPurchase, AmountFen: -559, Terminal: "0000000000A2"},
			{Time: at(1), Kind: spool.TxComposite, AmountFen: -100, Terminal: "0000000000A2"},
			{Time: at(0), Kind: epurse.TxType(0x03).String(), AmountFen: -7, Terminal: "0000000000A2"},
		}[:min(n, 4)]
		if len(f.Transactions) != len(want) {
			t.Fatalf("statement_lines %d: %d transactions, want %d", n, len(f.Transactions), len(want))
		}
		for i := range want {
			if g := f.Transactions[i]; !g.Time.Equal(want[i].Time) || g.Kind != want[i].Kind || g.AmountFen != want[i].AmountFen || g.Terminal != want[i].Terminal {
				t.Errorf("statement_lines %d, line %d: %+v, want %+v", n, i, g, want[i])
			}
		}
	}
}
