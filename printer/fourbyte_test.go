package printer

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/cardd/cardd/printer/sim"
)

// TestFourByteImage: a holder named 王𠮷 (𠮷 is U+20BB7, a 4-byte code in
// GB18030 and none in GBK) on a virtual printer whose font knows 2-byte
// codes only. Sent as text, the name prints as 王 and stray characters, and
// the printer says so. With FourByteImage the holder's line, and only it, is
// a raster image, exactly that line drawn with the font, and every other
// line is the receipt's text, in both Chinese modes, at 58 and 80 mm.
func TestFourByteImage(t *testing.T) {
	font := testRareFont(t)
	r := sample(KindBalance)
	r.Holder = "王𠮷"
	for _, lay := range []Layout{Layout58, Layout80} {
		model := sim.Model{TwoByteOnly: true, Dots: lay.Dots}
		text := Text(r, lay.Cols)
		at := slices.IndexFunc(text, func(s string) bool { return strings.HasPrefix(s, LabelHolder) })

		b, err := Encode(r, Options{Layout: lay, Symbol: SymbolQR})
		if err != nil {
			t.Fatal(err)
		}
		dec := sim.Decoder{Model: model}
		rs := dec.Feed(b)
		if got := rs[0].Lines[at]; got == text[at] || !strings.Contains(got, "王\uFFFD") || rs[0].ErrorCount == 0 {
			t.Errorf("%d columns, as text: the holder's line printed as %q with errors %q; want stray characters and an error", lay.Cols, got, rs[0].Errors)
		}

		for _, m := range []TextMode{TextGB18030, TextGBK} {
			b, err := Encode(r, Options{Layout: lay, Mode: m, Symbol: SymbolQR, FourByte: FourByteImage, Font: font})
			if err != nil {
				t.Fatalf("%d columns, %v, as an image: %v", lay.Cols, m, err)
			}
			dec := sim.Decoder{Model: model}
			rs := dec.Feed(b)
			if len(rs) != 1 {
				t.Fatalf("%d receipts", len(rs))
			}
			p := rs[0]
			want := slices.Delete(slices.Clone(text), at, at+1)
			if got := trimFeed(p.Lines); !slices.Equal(got, want) || p.ErrorCount != 0 {
				t.Errorf("%d columns, %v: text\n%s\nerrors %q; want\n%s", lay.Cols, m, strings.Join(got, "\n"), p.Errors, strings.Join(want, "\n"))
			}
			img, err := font.Render(Lines(r, lay.Cols)[at:at+1], lay)
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Images) != 1 || p.Images[0].Line != at || p.Images[0].Width() != img.Width || p.Images[0].Height != img.Height || !bytes.Equal(p.Images[0].Bits, img.Pix) {
				t.Errorf("%d columns, %v: images %d, want one of %dx%d before line %d, the holder's line drawn", lay.Cols, m, len(p.Images), img.Width, img.Height, at)
			}
		}
	}
	// Without a font the setting cannot draw anything: an error, not text.
	if _, err := Encode(r, Options{Layout: Layout58, FourByte: FourByteImage}); err == nil {
		t.Error("FourByteImage without a font: no error")
	}
	// wqy-zenhei has no 𠮷: the line is refused by name, not drawn with a gap.
	if _, err := Encode(r, Options{Layout: Layout58, FourByte: FourByteImage, Font: testFont(t)}); !errors.Is(err, ErrUnencodable) || !strings.Contains(err.Error(), "U+20BB7") {
		t.Errorf("a glyph missing from the font: %v; want ErrUnencodable naming U+20BB7", err)
	}
}

func TestParseFourByte(t *testing.T) {
	for _, f := range []FourByte{FourByteText, FourByteImage} {
		if g, err := ParseFourByte(f.String()); err != nil || g != f {
			t.Errorf("ParseFourByte(%q) = %v, %v", f.String(), g, err)
		}
	}
	if _, err := ParseFourByte("picture"); err == nil {
		t.Error("ParseFourByte(picture): no error")
	}
}
