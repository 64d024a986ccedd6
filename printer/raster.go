package printer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"

	"golang.org/x/image/font"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/font/sfnt"
	"golang.org/x/image/math/fixed"
)

// Font is a TrueType or OpenType font for raster text mode. It is safe for
// concurrent use: each Render makes its own faces.
type Font struct {
	f    *opentype.Font
	name string
}

// LoadFont reads a .ttf, .otf, .ttc or .otc file. Of a collection it takes
// the first font (for fonts-wqy-zenhei's wqy-zenhei.ttc that is "WenQuanYi
// Zen Hei"; its Latin letters are proportional, which Render copes with).
func LoadFont(path string) (*Font, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("printer: font: %w", err)
	}
	f, err := ParseFont(data)
	if err != nil {
		return nil, fmt.Errorf("printer: font %s: %w", path, err)
	}
	return f, nil
}

// ParseFont reads a font file's bytes; see LoadFont.
func ParseFont(data []byte) (*Font, error) {
	one, err := firstFont(data)
	if err != nil {
		return nil, err
	}
	f, err := opentype.Parse(one)
	if err != nil {
		return nil, err
	}
	name, err := f.Name(nil, sfnt.NameIDFull)
	if err != nil {
		name = "(unnamed)"
	}
	return &Font{f: f, name: name}, nil
}

// Name is the font's full name, such as "WenQuanYi Zen Hei".
func (f *Font) Name() string { return f.name }

var errBadFont = errors.New("not a TrueType/OpenType font or collection")

// firstFont copies the first font of a collection, or the only font of a
// plain file, into a standalone font file whose tables start on 4-byte
// boundaries. golang.org/x/image/font/sfnt insists on that alignment (the
// OpenType spec asks for it) and refuses wqy-zenhei.ttc, the most common
// Chinese font on Debian, whose tables are not aligned.
//
// The copy is at most as large as the input plus padding: a table directory
// whose tables add up to more than the file (overlapping tables, a crafted
// file) is refused rather than allowed to multiply memory.
func firstFont(data []byte) ([]byte, error) {
	n := len(data)
	off := 0
	if n >= 4 && string(data[:4]) == "ttcf" {
		if n < 16 || binary.BigEndian.Uint32(data[8:12]) == 0 {
			return nil, fmt.Errorf("%w: collection header of %d bytes lists no font", errBadFont, n)
		}
		o := binary.BigEndian.Uint32(data[12:16])
		if uint64(o) > uint64(n) {
			return nil, fmt.Errorf("%w: first font at %d, past the end (%d bytes)", errBadFont, o, n)
		}
		off = int(o)
	}
	if n-off < 12 {
		return nil, fmt.Errorf("%w: %d bytes", errBadFont, n)
	}
	numTables := int(binary.BigEndian.Uint16(data[off+4:]))
	if numTables == 0 || numTables > 256 {
		return nil, fmt.Errorf("%w: %d tables", errBadFont, numTables)
	}
	dir := data[off+12:]
	if len(dir) < 16*numTables {
		return nil, fmt.Errorf("%w: table directory cut short", errBadFont)
	}
	dir = dir[:16*numTables]
	hdr := 12 + 16*numTables
	total := 0
	for i := 0; i < numTables; i++ {
		o := uint64(binary.BigEndian.Uint32(dir[16*i+8:]))
		l := uint64(binary.BigEndian.Uint32(dir[16*i+12:]))
		if o+l > uint64(n) {
			return nil, fmt.Errorf("%w: table %q at %d+%d, past the end (%d bytes)", errBadFont, dir[16*i:16*i+4], o, l, n)
		}
		total += int(l+3) &^ 3
		if total > n+4*numTables {
			return nil, fmt.Errorf("%w: tables add up to more than the file", errBadFont)
		}
	}
	out := make([]byte, hdr, hdr+total)
	copy(out, data[off:off+12])
	copy(out[12:], dir)
	for i := 0; i < numTables; i++ {
		rec := out[12+16*i:]
		o := binary.BigEndian.Uint32(rec[8:])
		l := binary.BigEndian.Uint32(rec[12:])
		binary.BigEndian.PutUint32(rec[8:], uint32(len(out)))
		out = append(out, data[o:o+l]...)
		for len(out)%4 != 0 {
			out = append(out, 0)
		}
	}
	return out, nil
}

// Raster line geometry, for 12-dot columns: a 24-dot em (the size of the
// printers' own Chinese font) on a 32-row line (4 mm at 203 dpi, about the
// printers' default line spacing). Other column widths scale with it.
const (
	emPerCol   = 2 // em = 2 columns: a wide character is one em
	lineNumer  = 4 // line height = em × 4/3
	lineDenom  = 3
	inkOpacity = 0x8000 // a glyph pixel at least half covered is printed
)

// Render draws lines as a Layout.Dots wide bitmap, on the same column grid
// as the text modes: every character sits in its own cells (one column for
// narrow, two for wide, twice that for Double lines), so Text describes
// raster receipts too. A glyph wider than its cells (the proportional "W" of
// WenQuanYi Zen Hei is 20 dots, a column 12) is condensed to fit rather than
// allowed to push the rest of the line out of the grid. Bold is drawn by
// thickening strokes one dot to the right.
//
// A character the font has no glyph for is an error wrapping ErrUnencodable:
// the font's empty box would hide it.
func (f *Font) Render(lines []Line, l Layout) (*Bitmap, error) {
	if err := l.validate(); err != nil {
		return nil, err
	}
	cw := l.Dots / l.Cols
	var buf sfnt.Buffer
	for _, ln := range lines {
		for _, r := range ln.Text {
			if r == ' ' {
				continue
			}
			if i, err := f.f.GlyphIndex(&buf, r); err != nil || i == 0 {
				return nil, fmt.Errorf("%w: %q (%U) has no glyph in font %s, in %q", ErrUnencodable, r, r, f.name, ln.Text)
			}
		}
	}
	var faces [3]font.Face // by scale: 1 normal, 2 double
	for s := 1; s <= 2; s++ {
		face, err := opentype.NewFace(f.f, &opentype.FaceOptions{
			Size: float64(emPerCol * cw * s), DPI: 72, Hinting: font.HintingFull,
		})
		if err != nil {
			return nil, fmt.Errorf("printer: font %s: %w", f.name, err)
		}
		defer face.Close()
		faces[s] = face
	}
	lineH := func(s int) int { return emPerCol * cw * s * lineNumer / lineDenom }
	h := 0
	for _, ln := range lines {
		h += lineH(scale(ln))
	}
	b := NewBitmap(l.Dots, h)
	top := 0
	for _, ln := range lines {
		s := scale(ln)
		face, lh, cell := faces[s], lineH(s), cw*s
		m := face.Metrics()
		asc, desc := m.Ascent.Ceil(), m.Descent.Ceil()
		base := min(max((lh-asc-desc)/2+asc, 1), lh)
		x := 0
		if ln.Center {
			x = max((l.Dots-Width(ln.Text)*cell)/2, 0)
		}
		for _, r := range ln.Text {
			span := runeWidth(r) * cell
			if r != ' ' {
				drawGlyph(b, face, r, x, top, span, lh, base)
			}
			x += span
		}
		if ln.Bold {
			for y := top; y < top+lh; y++ {
				for x := l.Dots - 1; x > 0; x-- {
					if b.Black(x-1, y) {
						b.Set(x, y, true)
					}
				}
			}
		}
		top += lh
	}
	return b, nil
}

func scale(l Line) int {
	if l.Double {
		return 2
	}
	return 1
}

// drawGlyph draws r into the cells [x, x+span) of the line whose top row is
// top, lh rows tall, baseline base rows down: centered by its advance when it
// fits, condensed onto the cells when it does not. Nothing is drawn outside
// the line's rows.
func drawGlyph(b *Bitmap, face font.Face, r rune, x, top, span, lh, base int) {
	dr, mask, mp, adv, ok := face.Glyph(fixed.P(0, base), r)
	if !ok || dr.Empty() {
		return // checked by Render; a space-like glyph has no ink
	}
	x0, x1 := min(0, dr.Min.X), max(adv.Ceil(), dr.Max.X)
	ink := func(px, py int) bool {
		if px < dr.Min.X || px >= dr.Max.X {
			return false
		}
		_, _, _, a := mask.At(mp.X+px-dr.Min.X, mp.Y+py-dr.Min.Y).RGBA()
		return a >= inkOpacity
	}
	for py := max(dr.Min.Y, 0); py < min(dr.Max.Y, lh); py++ {
		if x1-x0 <= span {
			shift := x + (span-adv.Round())/2
			for px := dr.Min.X; px < dr.Max.X; px++ {
				if ink(px, py) {
					b.Set(shift+px, top+py, true)
				}
			}
			continue
		}
		// Condense: each destination dot takes the darkest of the source
		// columns it covers, so thin strokes survive.
		w := x1 - x0
		for dx := 0; dx < span; dx++ {
			for px := x0 + dx*w/span; px < x0+(dx+1)*w/span; px++ {
				if ink(px, py) {
					b.Set(x+dx, top+py, true)
					break
				}
			}
		}
	}
}
