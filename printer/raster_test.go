package printer

import (
	"bytes"
	"encoding/binary"
	"errors"
	"image"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// cjkFont is the font the raster tests draw with, from the Debian package
// fonts-wqy-zenhei (scripts/lib.sh installs it). Without it the tests skip,
// except under CI=true, where a missing font must not pass as green.
const cjkFont = "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"

var loadTestFont = sync.OnceValues(func() (*Font, error) { return LoadFont(cjkFont) })

func testFont(t *testing.T) *Font {
	t.Helper()
	return fontFrom(t, cjkFont, "fonts-wqy-zenhei", loadTestFont)
}

// rareFont is a font with the characters of CJK Extension B (𠮷, U+20BB7),
// which wqy-zenhei lacks: Noto Sans CJK, from the Debian package
// fonts-noto-cjk (scripts/lib.sh installs it).
const rareFont = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"

var loadRareFont = sync.OnceValues(func() (*Font, error) { return LoadFont(rareFont) })

func testRareFont(t *testing.T) *Font {
	t.Helper()
	return fontFrom(t, rareFont, "fonts-noto-cjk", loadRareFont)
}

// fontFrom loads the font at path, from Debian package pkg: it skips the
// test without the file, except under CI=true, where a missing font must
// not pass as green.
func fontFrom(t *testing.T, path, pkg string, load func() (*Font, error)) *Font {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%v: install the Debian package %s", err, pkg)
		}
		t.Skipf("%v: install the Debian package %s to run the raster tests", err, pkg)
	}
	f, err := load()
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// inkBox is the smallest rectangle holding the black dots of rows [y0, y1).
func inkBox(b *Bitmap, y0, y1 int) image.Rectangle {
	r := image.Rectangle{}
	for y := y0; y < y1; y++ {
		for x := 0; x < b.Width; x++ {
			if b.Black(x, y) {
				r = r.Union(image.Rect(x, y, x+1, y+1))
			}
		}
	}
	return r
}

func countInk(b *Bitmap) int {
	n := 0
	for _, p := range b.Pix {
		for ; p != 0; p &= p - 1 {
			n++
		}
	}
	return n
}

func TestLoadFont(t *testing.T) {
	f := testFont(t)
	if f.Name() != "WenQuanYi Zen Hei" {
		t.Errorf("font 0 of %s is %q, want WenQuanYi Zen Hei", cjkFont, f.Name())
	}
	if _, err := LoadFont("/nonexistent/font.ttf"); err == nil {
		t.Error("LoadFont of a missing file: no error")
	}
}

// TestRenderGrid checks that every character lands in its own cells.
func TestRenderGrid(t *testing.T) {
	f := testFont(t)
	lines := []Line{
		{Text: "中"},                             // rows 0-31, cells 0-1: dots 0-23
		{Text: strings.Repeat(" ", 31) + "A"},   // rows 32-63, last cell: dots 372-383
		{Text: "W"},                             // rows 64-95, 20 dots wide in this font: condensed into 0-11
		{Text: "中", Center: true, Double: true}, // rows 96-159, 48 dots centered: 168-215
		{Text: "一二三"},                           // rows 160-191
		{Text: "一二三", Bold: true},               // rows 192-223
	}
	b, err := f.Render(lines, Layout58)
	if err != nil {
		t.Fatal(err)
	}
	if b.Width != 384 || b.Height != 5*32+64 {
		t.Fatalf("bitmap %dx%d, want 384x224", b.Width, b.Height)
	}
	for _, tc := range []struct {
		y0, y1 int
		within image.Rectangle
		minW   int
	}{
		{0, 32, image.Rect(0, 0, 24, 32), 16},
		{32, 64, image.Rect(372, 32, 384, 64), 9},
		{64, 96, image.Rect(0, 64, 12, 96), 10},
		{96, 160, image.Rect(168, 96, 216, 160), 32},
	} {
		box := inkBox(b, tc.y0, tc.y1)
		if box.Empty() || !box.In(tc.within) || box.Dx() < tc.minW {
			t.Errorf("rows %d-%d: ink at %v, want within %v and at least %d dots wide", tc.y0, tc.y1, box, tc.within, tc.minW)
		}
	}
	if box := inkBox(b, 96, 160); box.Dy() < 32 {
		t.Errorf("double-size glyph only %d rows tall", box.Dy())
	}
	plain, bold := 0, 0
	for y := 160; y < 192; y++ {
		for x := 0; x < 384; x++ {
			if b.Black(x, y) {
				plain++
			}
			if b.Black(x, y+32) {
				bold++
			}
		}
	}
	if bold <= plain {
		t.Errorf("bold line has %d dots, plain %d", bold, plain)
	}
}

func TestRenderMissingGlyph(t *testing.T) {
	f := testFont(t)
	_, err := f.Render([]Line{{Text: "张三😀"}}, Layout58)
	if !errors.Is(err, ErrUnencodable) || !strings.Contains(err.Error(), "U+1F600") || !strings.Contains(err.Error(), f.Name()) {
		t.Errorf("error %v; want ErrUnencodable naming U+1F600 and the font", err)
	}
	if _, err := f.Render([]Line{{Text: "x"}}, Layout{}); err == nil {
		t.Error("Render with a zero layout: no error")
	}
}

// TestEncodeRaster checks that raster receipts are the same lines as text
// receipts, drawn: the decoded images are Render's, in bands, around the QR
// code, and no text or Chinese mode is sent.
func TestEncodeRaster(t *testing.T) {
	f := testFont(t)
	for _, lay := range []Layout{Layout58, Layout80} {
		for _, k := range kinds {
			r := sample(k)
			b, err := Encode(r, Options{Layout: lay, Mode: TextRaster, Font: f, Symbol: SymbolQR})
			if err != nil {
				t.Fatalf("%v %d: %v", k, lay.Cols, err)
			}
			d, err := decode(b)
			if err != nil {
				t.Fatalf("%v %d: decode: %v", k, lay.Cols, err)
			}
			if len(d.lines) != 0 || d.chinese {
				t.Errorf("%v %d: text in raster mode: %+v", k, lay.Cols, d.lines)
			}
			if want := []string{"image", "qr", "image", "feed", "cut"}; !reflect.DeepEqual(d.items, want) {
				t.Fatalf("%v %d: items %v, want %v", k, lay.Cols, d.items, want)
			}
			lines, at := layout(r, lay.Cols)
			for i, part := range [][]Line{lines[:at], lines[at:]} {
				want, err := f.Render(part, lay)
				if err != nil {
					t.Fatal(err)
				}
				got := d.images[i]
				if got.Width != lay.Dots || got.Height != want.Height || !bytes.Equal(got.Pix, want.Pix) {
					t.Errorf("%v %d: image %d is %dx%d and differs from Render's %dx%d", k, lay.Cols, i, got.Width, got.Height, want.Width, want.Height)
				}
				if countInk(got) == 0 {
					t.Errorf("%v %d: image %d is blank", k, lay.Cols, i)
				}
			}
			for _, n := range d.bands {
				if n > RasterBandRows {
					t.Errorf("band of %d rows", n)
				}
			}
		}
	}
	r := sample(KindTopUp)
	r.Holder = "张三😀"
	if _, err := Encode(r, Options{Layout: Layout58, Mode: TextRaster, Font: f}); !errors.Is(err, ErrUnencodable) {
		t.Errorf("a character without a glyph: %v", err)
	}
}

// sfntBytes builds a font file with the given tables, each at the offset
// given (0 = right after the previous), so tests can make misaligned ones.
func sfntBytes(tags []string, data [][]byte, misalign int) []byte {
	n := len(tags)
	out := make([]byte, 12+16*n)
	binary.BigEndian.PutUint32(out, 0x00010000)
	binary.BigEndian.PutUint16(out[4:], uint16(n))
	out = append(out, make([]byte, misalign)...)
	for i := range tags {
		rec := out[12+16*i:]
		copy(rec, tags[i])
		binary.BigEndian.PutUint32(rec[8:], uint32(len(out)))
		binary.BigEndian.PutUint32(rec[12:], uint32(len(data[i])))
		out = append(out, data[i]...)
	}
	return out
}

func ttc(font []byte) []byte {
	h := []byte("ttcf\x00\x01\x00\x00\x00\x00\x00\x01\x00\x00\x00\x10")
	b := append(h, font...)
	// Offsets inside a collection are from the start of the file.
	n := int(binary.BigEndian.Uint16(font[4:]))
	for i := 0; i < n; i++ {
		rec := b[16+12+16*i:]
		binary.BigEndian.PutUint32(rec[8:], binary.BigEndian.Uint32(rec[8:])+16)
	}
	return b
}

func checkStandalone(t *testing.T, in, out []byte) {
	t.Helper()
	n := int(binary.BigEndian.Uint16(out[4:]))
	for i := 0; i < n; i++ {
		rec := out[12+16*i:]
		o, l := binary.BigEndian.Uint32(rec[8:]), binary.BigEndian.Uint32(rec[12:])
		if o%4 != 0 {
			t.Errorf("table %q at %d: not aligned", rec[:4], o)
		}
		if int(o+l) > len(out) {
			t.Fatalf("table %q at %d+%d past the end of %d", rec[:4], o, l, len(out))
		}
		if !bytes.Contains(in, out[o:o+l]) {
			t.Errorf("table %q content not from the input", rec[:4])
		}
	}
}

func TestFirstFont(t *testing.T) {
	tags := []string{"aaaa", "bbbb", "cccc"}
	data := [][]byte{[]byte("ABC"), []byte("DEFGH"), []byte("I")}
	plain := sfntBytes(tags, data, 1)
	for name, in := range map[string][]byte{"plain": plain, "collection": ttc(plain)} {
		out, err := firstFont(in)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		checkStandalone(t, in, out)
		for i := range tags {
			rec := out[12+16*i:]
			o, l := binary.BigEndian.Uint32(rec[8:]), binary.BigEndian.Uint32(rec[12:])
			if string(rec[:4]) != tags[i] || !bytes.Equal(out[o:o+l], data[i]) {
				t.Errorf("%s: table %d is %q = %q", name, i, rec[:4], out[o:o+l])
			}
		}
		if want := 12 + 16*3 + 4 + 8 + 4; len(out) != want {
			t.Errorf("%s: %d bytes, want %d", name, len(out), want)
		}
	}
	overlap := sfntBytes([]string{"aaaa", "bbbb", "cccc"}, [][]byte{nil, nil, nil}, 0)
	big := append(overlap, make([]byte, 1000)...)
	for i := 0; i < 3; i++ { // three tables, each the whole file
		binary.BigEndian.PutUint32(big[12+16*i+8:], 0)
		binary.BigEndian.PutUint32(big[12+16*i+12:], uint32(len(big)))
	}
	for name, in := range map[string][]byte{
		"empty":           nil,
		"short":           plain[:11],
		"ttc short":       []byte("ttcf\x00\x01\x00\x00\x00\x00\x00\x01"),
		"ttc no fonts":    []byte("ttcf\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x10"),
		"ttc past end":    []byte("ttcf\x00\x01\x00\x00\x00\x00\x00\x01\xff\x00\x00\x10"),
		"no tables":       sfntBytes(nil, nil, 0),
		"dir cut short":   plain[:12+16*2],
		"table past end":  plain[:len(plain)-1],
		"tables overlap":  big,
		"too many tables": append([]byte{0, 1, 0, 0, 1, 1}, make([]byte, 12+16*257)...),
	} {
		if out, err := firstFont(in); err == nil {
			t.Errorf("%s: no error, % X", name, out)
		}
	}
	if _, err := ParseFont(plain); err == nil {
		t.Error("ParseFont of a font without glyph tables: no error")
	}
}

// FuzzFirstFont checks that no input panics the collection splitter or makes
// it allocate beyond the input's size, and that what it returns is aligned
// and made of the input's bytes; and that x/image does not panic on what it
// passes on (a corrupt font file would otherwise crash the daemon at start).
// Seed corpus: testdata/fuzz/FuzzFirstFont/.
func FuzzFirstFont(f *testing.F) {
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := firstFont(in)
		if err != nil {
			return
		}
		n := int(binary.BigEndian.Uint16(out[4:]))
		if len(out) > len(in)+12+20*n {
			t.Fatalf("%d bytes out of %d in", len(out), len(in))
		}
		checkStandalone(t, in, out)
		ParseFont(in) // must not panic on what firstFont lets through
	})
}
