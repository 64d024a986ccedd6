package spool

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.bug.st/serial"

	"github.com/cardd/cardd/offline"
	"github.com/cardd/cardd/printer"
	"github.com/cardd/cardd/printer/sim"
)

// TestFourByteHolderThroughPTY: a balance slip for 王𠮷 goes through
// go.bug.st/serial to a virtual printer whose font knows 2-byte codes only.
// As text the holder's line comes out as 王 and stray digits, with the
// printer's error; with printer.four_byte image it is a picture of exactly
// that line, and the rest of the slip is its text, at 58 and 80 mm.
func TestFourByteHolderThroughPTY(t *testing.T) {
	font := cjkFont(t)
	f := statementFacts()
	f.Holder, f.Transactions = "王𠮷", nil
	nr, err := f.NewReceipt()
	if err != nil {
		t.Fatal(err)
	}
	q := offline.Receipt{Body: nr.Body}
	for _, layout := range []printer.Layout{printer.Layout58, printer.Layout80} {
		p, line := twoBytePrinter(t, layout)
		r := renderer
		r.Options.Layout = layout
		pr, _ := r.Receipt(q)
		want := printer.Text(pr, layout.Cols)
		at := slices.IndexFunc(want, func(s string) bool { return strings.HasPrefix(s, printer.LabelHolder) })

		data, err := r.Render(q)
		if err != nil {
			t.Fatal(err)
		}
		rc, lines := printOne(t, line, p, 1, data)
		if lines[at] == want[at] || !strings.Contains(lines[at], "王\uFFFD4\uFFFD5") || rc.ErrorCount != 1 {
			t.Errorf("%d columns, as text: holder line %q, errors %q; want stray digits and an error", layout.Cols, lines[at], rc.Errors)
		}

		r.Options.FourByte, r.Options.Font = printer.FourByteImage, font
		if data, err = r.Render(q); err != nil {
			t.Fatal(err)
		}
		rc, lines = printOne(t, line, p, 2, data)
		img, err := font.Render(printer.Lines(pr, layout.Cols)[at:at+1], layout)
		if err != nil {
			t.Fatal(err)
		}
		if rest := slices.Delete(slices.Clone(want), at, at+1); !slices.Equal(lines, rest) || rc.ErrorCount != 0 {
			t.Errorf("%d columns, as an image: text %q, errors %q; want %q", layout.Cols, lines, rc.Errors, rest)
		}
		if len(rc.Images) != 1 || rc.Images[0].Line != at || rc.Images[0].Height != img.Height || string(rc.Images[0].Bits) != string(img.Pix) {
			t.Errorf("%d columns, as an image: %d images; want the holder's line drawn before line %d", layout.Cols, len(rc.Images), at)
		}
	}
}

// cjkFont is Noto Sans CJK, which has 𠮷 (wqy-zenhei has not): a test that
// draws a 4-byte line needs it, and under CI=true fails without it.
func cjkFont(t *testing.T) *printer.Font {
	t.Helper()
	const fontPath = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"
	if _, err := os.Stat(fontPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%v: install the Debian package fonts-noto-cjk", err)
		}
		t.Skipf("%v: install the Debian package fonts-noto-cjk", err)
	}
	font, err := printer.LoadFont(fontPath)
	if err != nil {
		t.Fatal(err)
	}
	return font
}

// twoBytePrinter is a virtual printer of layout's width on a pty whose
// font knows 2-byte codes only, and the line to it at 115200 baud.
func twoBytePrinter(t *testing.T, layout printer.Layout) (*sim.Printer, *Line) {
	t.Helper()
	link := filepath.Join(t.TempDir(), "printer")
	p := openSim(t, link, sim.Options{Model: sim.Model{TwoByteOnly: true, Dots: layout.Dots}})
	line := &Line{Port: link, Mode: serial.Mode{BaudRate: 115200, DataBits: 8}}
	t.Cleanup(func() { line.Close() })
	return p, line
}
