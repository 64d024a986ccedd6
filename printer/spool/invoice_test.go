package spool

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cardd/cardd/offline"
	"github.com/cardd/cardd/printer"
)

// TestInvoiceSlipThroughPTY: the kiosk's invoice slip for 王𠮷's top-up,
// on a virtual printer that knows 2-byte codes only and is set to draw a
// 4-byte line as an image (printer.four_byte image), with printer.code
// none: the slip names the order and the amount, the holder's line is a
// picture with no printer error, and the QR code holds the invoicing URL
// with 4 modules of blank paper on every side, at 58 and 80 mm.
func TestInvoiceSlipThroughPTY(t *testing.T) {
	font := cjkFont(t)
	const url = "https://fapiao.example.cn/k?o=TU-20261203-0001&a=100.00"
	f := Facts{Kind: KindInvoice, Time: time.Date(2026, 12, 3, 19, 30, 0, 0, beijing), TerminalID: "000000000001",
		Card: "3101000000800001", Holder: "王𠮷", AmountFen: 10000, Reference: "TU-20261203-0001", Link: url}
	nr, err := f.NewReceipt()
	if err != nil {
		t.Fatal(err)
	}
	q := offline.Receipt{Body: nr.Body}
	for _, layout := range []printer.Layout{printer.Layout58, printer.Layout80} {
		p, line := twoBytePrinter(t, layout)
		r := renderer
		r.Options.Layout, r.Options.Symbol, r.Options.FourByte, r.Options.Font = layout, printer.SymbolNone, printer.FourByteImage, font
		pr, err := r.Receipt(q)
		if err != nil {
			t.Fatal(err)
		}
		want := printer.Text(pr, layout.Cols)
		at := slices.IndexFunc(want, func(s string) bool { return strings.HasPrefix(s, printer.LabelHolder) })
		data, err := r.Render(q)
		if err != nil {
			t.Fatal(err)
		}
		rc, lines := printOne(t, line, p, 1, data)
		if rest := slices.Delete(slices.Clone(want), at, at+1); !slices.Equal(lines, rest) || rc.ErrorCount != 0 {
			t.Errorf("%d columns: text %q, errors %q; want %q", layout.Cols, lines, rc.Errors, rest)
		}
		if len(rc.Images) != 1 || rc.Images[0].Line != at {
			t.Errorf("%d columns: %d images; want the holder's line drawn before line %d", layout.Cols, len(rc.Images), at)
		}
		joined := strings.Join(lines, "\n")
		for _, s := range []string{"扫码开票", printer.LabelOrder, "TU-20261203-0001", "100.00", "2026-12-03 19:30:00"} {
			if !strings.Contains(joined, s) {
				t.Errorf("%d columns: the slip lacks %q:\n%s", layout.Cols, s, joined)
			}
		}
		if len(rc.QRCodes) != 1 {
			t.Fatalf("%d columns: %d QR codes, want the invoice's", layout.Cols, len(rc.QRCodes))
		}
		qr := rc.QRCodes[0]
		top, right, bottom, left := qr.QuietZone()
		if qr.Data != url || qr.Version == 0 || min(top, right, bottom, left) < 4 {
			t.Errorf("%d columns: QR %q version %d, quiet zone %d %d %d %d modules; want %q with at least 4 each",
				layout.Cols, qr.Data, qr.Version, top, right, bottom, left, url)
		}
	}
}
