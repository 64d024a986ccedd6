// Package printer turns cardd's receipts into ESC/POS bytes for serial
// receipt printers and reads the printer's real-time status answers. This
// file is the command builder; receipt.go lays receipts out in columns,
// raster.go draws text as a bit image for printers without a Chinese font,
// and status.go parses DLE EOT answers. Nothing here does I/O: the serial
// link and the print worker hand these bytes to the port.
//
// Byte sequences follow the Epson ESC/POS reference, which the Chinese
// thermal printers cardd meets (Xprinter, Gprinter, Sunmi, Rongta) also
// follow for the commands used here.
package printer

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/simplifiedchinese"
)

// Control bytes that start ESC/POS commands.
const (
	lf  = 0x0A
	dle = 0x10
	eot = 0x04
	esc = 0x1B
	fs  = 0x1C
	gs  = 0x1D
)

// TextMode is how a printer is sent text: as GB18030 or GBK codes printed
// with its own Chinese font, or as a bit image drawn here with a font file
// (for printers whose font lacks characters, or that have none).
type TextMode int

// Text modes. The zero value is GB18030, which encodes every Unicode
// character, so nothing on a receipt can fail to encode under it (a printer
// with an older GB2312/GBK font prints the rare 4-byte codes as blanks or
// boxes, which is why GBK mode exists: it refuses them instead).
const (
	TextGB18030 TextMode = iota
	TextGBK
	TextRaster
)

var textModeNames = [...]string{TextGB18030: "gb18030", TextGBK: "gbk", TextRaster: "raster"}

// String returns the name ParseTextMode accepts: "gb18030", "gbk" or "raster".
func (m TextMode) String() string {
	if m >= 0 && int(m) < len(textModeNames) {
		return textModeNames[m]
	}
	return fmt.Sprintf("TextMode(%d)", int(m))
}

// ParseTextMode reads a text mode as written in the configuration.
func ParseTextMode(s string) (TextMode, error) {
	for m, name := range textModeNames {
		if s == name {
			return TextMode(m), nil
		}
	}
	return 0, fmt.Errorf("printer: unknown text mode %q: want gb18030, gbk or raster", s)
}

// ErrUnencodable is wrapped by every error about a character that the
// printer's character set (or, in raster mode, the font) cannot show. Such a
// character is never dropped silently: a receipt missing a letter of a name
// is a wrong receipt.
var ErrUnencodable = errors.New("printer: character cannot be printed")

// EncodeText encodes one line of text for mode m (TextGB18030 or TextGBK).
// Control characters are refused rather than passed on: inside text they
// would be read by the printer as commands (a stray GS V cuts the paper), so
// layout happens through Doc's methods only. Private-use characters are
// refused too. Raster text is drawn with
// Font.Render instead, and asking for it here is an error.
func EncodeText(s string, m TextMode) ([]byte, error) {
	var enc *encoding.Encoder
	switch m {
	case TextGB18030:
		enc = simplifiedchinese.GB18030.NewEncoder()
	case TextGBK:
		enc = simplifiedchinese.GBK.NewEncoder()
	default:
		return nil, fmt.Errorf("printer: EncodeText in %v mode: only gb18030 and gbk encode text", m)
	}
	out := make([]byte, 0, len(s)+len(s)/2)
	var one [utf8.UTFMax]byte
	for i, r := range s {
		if r == utf8.RuneError && !validAt(s, i) {
			return nil, fmt.Errorf("%w: invalid UTF-8 at byte %d of %q", ErrUnencodable, i, s)
		}
		if unicode.IsControl(r) {
			return nil, fmt.Errorf("%w: control character %U at byte %d of %q", ErrUnencodable, r, i, s)
		}
		// Private-use characters have no agreed glyph, and x/text's GB18030
		// encodes many of them to codes that read back as others.
		if unicode.Is(unicode.Co, r) {
			return nil, fmt.Errorf("%w: private-use character %U at byte %d of %q", ErrUnencodable, r, i, s)
		}
		if r < utf8.RuneSelf {
			out = append(out, byte(r))
			continue
		}
		// One rune at a time, so that the error can name the character.
		n := utf8.EncodeRune(one[:], r)
		b, err := enc.Bytes(one[:n])
		if err != nil {
			return nil, fmt.Errorf("%w: %q (%U) is not in %s, in %q", ErrUnencodable, r, r, charsetName(m), s)
		}
		// x/text's GBK maps € to the single byte 0x80 (Windows code page
		// 936), which GBK printers print as garbage or swallow.
		if len(b) < 2 {
			return nil, fmt.Errorf("%w: %q (%U) has no double-byte code in %s, in %q", ErrUnencodable, r, r, charsetName(m), s)
		}
		out = append(out, b...)
	}
	return out, nil
}

func charsetName(m TextMode) string {
	if m == TextGBK {
		return "GBK"
	}
	return "GB18030"
}

// validAt reports whether the U+FFFD at byte i of s is really there, rather
// than standing for an invalid byte.
func validAt(s string, i int) bool {
	_, size := utf8.DecodeRuneInString(s[i:])
	return size == 3
}

// Align is a justification for ESC a.
type Align byte

// Justifications (ESC a n).
const (
	AlignLeft   Align = 0
	AlignCenter Align = 1
	AlignRight  Align = 2
)

// QRLevel is a QR code error correction level (GS ( k, function 169).
type QRLevel byte

// QR error correction levels: about 7, 15, 25 and 30 % of the symbol may be
// lost and still read.
const (
	QRLevelL QRLevel = 48
	QRLevelM QRLevel = 49
	QRLevelQ QRLevel = 50
	QRLevelH QRLevel = 51
)

// HRI is where a barcode's human readable interpretation is printed (GS H n).
type HRI byte

// HRI positions.
const (
	HRINone  HRI = 0
	HRIAbove HRI = 1
	HRIBelow HRI = 2
	HRIBoth  HRI = 3
)

// Limits of the commands, from the ESC/POS reference.
const (
	// MaxQRData is the most data GS ( k function 180 stores (pL pH at
	// most 7092, less the 3 bytes "1P0"). Whether it fits a symbol depends
	// on the characters and the error correction; the printer prints no
	// symbol when it does not.
	MaxQRData = 7089
	// MaxRasterRowBytes is the widest GS v 0 image, in bytes (8 dots each).
	MaxRasterRowBytes = 128
	// RasterBandRows is the most rows sent in one GS v 0 command. Epson
	// allows 4095, but many clone firmwares read only yL (so a band must
	// stay below 256 rows) and print nothing until a whole band has arrived
	// in a small receive buffer. 256 rows of 72 bytes is 18 KiB, still
	// large for some; 128 rows (9 KiB at 80 mm, 6 KiB at 58 mm) is a safe
	// size that is a multiple of the raster line height (32 rows), so any
	// seam between bands falls between lines of text.
	RasterBandRows = 128
)

// Doc builds an ESC/POS byte stream. Each method appends one command and
// returns d, so calls chain. The first invalid argument is kept as d's error:
// later calls append nothing, and Bytes returns it, as bufio.Writer does.
type Doc struct {
	buf bytes.Buffer
	err error
}

// Bytes returns the commands appended so far, or the first error.
func (d *Doc) Bytes() ([]byte, error) {
	if d.err != nil {
		return nil, d.err
	}
	return bytes.Clone(d.buf.Bytes()), nil
}

// Err returns the first error, if any.
func (d *Doc) Err() error { return d.err }

func (d *Doc) put(b ...byte) *Doc {
	if d.err == nil {
		d.buf.Write(b)
	}
	return d
}

func (d *Doc) fail(format string, args ...any) *Doc {
	if d.err == nil {
		d.err = fmt.Errorf("printer: "+format, args...)
	}
	return d
}

// Init resets the printer to its power-on settings: ESC @ (1B 40). It
// clears the print buffer and cancels alignment, bold and size left over
// from an earlier, possibly interrupted, job.
func (d *Doc) Init() *Doc { return d.put(esc, '@') }

// Align sets the justification of the lines that follow: ESC a n (1B 61 n).
// It takes effect only at the start of a line.
func (d *Doc) Align(a Align) *Doc {
	if a > AlignRight {
		return d.fail("alignment %d: want 0 (left), 1 (center) or 2 (right)", a)
	}
	return d.put(esc, 'a', byte(a))
}

// Bold turns emphasized printing on or off: ESC E n (1B 45 n).
func (d *Doc) Bold(on bool) *Doc {
	return d.put(esc, 'E', b2n(on))
}

// Size sets the character magnification, width and height each 1 to 8:
// GS ! n (1D 21 n), the width in the high nibble and the height in the low,
// each as the multiplier minus one. Size(2, 2) is 1D 21 11.
func (d *Doc) Size(width, height int) *Doc {
	if width < 1 || width > 8 || height < 1 || height > 8 {
		return d.fail("character size %d×%d: each must be 1 to 8", width, height)
	}
	return d.put(gs, '!', byte(width-1)<<4|byte(height-1))
}

// LF prints the buffered line and moves to the next: LF (0A).
func (d *Doc) LF() *Doc { return d.put(lf) }

// Feed prints the buffer and feeds n lines: ESC d n (1B 64 n).
func (d *Doc) Feed(n int) *Doc {
	if n < 0 || n > 255 {
		return d.fail("feed of %d lines: want 0 to 255", n)
	}
	return d.put(esc, 'd', byte(n))
}

// FeedDots prints the buffer and feeds the paper n dots (motion units,
// 1/203 inch on the printers cardd meets): ESC J n (1B 4A n). Unlike Feed
// it adds no line, so blank paper goes where a line would be wrong.
func (d *Doc) FeedDots(n int) *Doc {
	if n < 0 || n > 255 {
		return d.fail("feed of %d dots: want 0 to 255", n)
	}
	return d.put(esc, 'J', byte(n))
}

// FullCut feeds the paper to the cutter plus n motion units and cuts it
// through: GS V 65 n (1D 56 41 n). The feed is the point of this form over
// GS V 0: the last printed line would otherwise stay above the cutter.
func (d *Doc) FullCut(n byte) *Doc { return d.put(gs, 'V', 65, n) }

// PartialCut is FullCut leaving one point uncut, so the receipt hangs
// from the printer until torn off: GS V 66 n (1D 56 42 n).
func (d *Doc) PartialCut(n byte) *Doc { return d.put(gs, 'V', 66, n) }

// IntlUSA is the international character set USA for ESC R: the twelve
// codes 23 24 40 5B 5C 5D 5E 60 7B 7C 7D 7E print as # $ @ [ \ ] ^ ` { | } ~.
const IntlUSA = 0

// IntlCharset selects the international character set: ESC R n (1B 52 n).
// It decides how twelve ASCII codes print (# $ @ [ \ ] ^ ` { | } ~ are
// £, ¥, Ä, é... in the other sets). ESC @ restores the printer's own
// default, which its DIP switches or memory switches may set to another
// country (Japan prints \ as ¥), so send it after Init.
func (d *Doc) IntlCharset(n byte) *Doc { return d.put(esc, 'R', n) }

// ChineseOn selects Chinese character mode, in which the printer reads
// two-byte (and, if it supports GB18030, four-byte) codes as Chinese
// characters: FS & (1C 26). ESC @ may restore the printer's default, so send
// it after Init.
func (d *Doc) ChineseOn() *Doc { return d.put(fs, '&') }

// ChineseOff cancels Chinese character mode: FS . (1C 2E).
func (d *Doc) ChineseOff() *Doc { return d.put(fs, '.') }

// Text appends s encoded for mode m (see EncodeText). It does not end the
// line: follow it with LF.
func (d *Doc) Text(s string, m TextMode) *Doc {
	if d.err != nil {
		return d
	}
	b, err := EncodeText(s, m)
	if err != nil {
		d.err = err
		return d
	}
	return d.put(b...)
}

// QR prints data as a model 2 QR code with the given module size in dots
// (1 to 16) and error correction level, through the GS ( k functions:
//
//	165 select model 2:   1D 28 6B 04 00 31 41 32 00
//	167 module size:      1D 28 6B 03 00 31 43 n
//	169 error correction: 1D 28 6B 03 00 31 45 n
//	180 store the data:   1D 28 6B pL pH 31 50 30 d1…dk  (pL+256·pH = k+3)
//	181 print it:         1D 28 6B 03 00 31 51 30
//
// The symbol follows the current justification; the printer returns to the
// start of a line after it.
func (d *Doc) QR(data []byte, module byte, level QRLevel) *Doc {
	switch {
	case len(data) == 0 || len(data) > MaxQRData:
		return d.fail("QR code of %d bytes: want 1 to %d", len(data), MaxQRData)
	case module < 1 || module > 16:
		return d.fail("QR module size %d: want 1 to 16 dots", module)
	case level < QRLevelL || level > QRLevelH:
		return d.fail("QR error correction %d: want QRLevelL, M, Q or H", level)
	}
	d.put(gs, '(', 'k', 4, 0, '1', 'A', '2', 0)
	d.put(gs, '(', 'k', 3, 0, '1', 'C', module)
	d.put(gs, '(', 'k', 3, 0, '1', 'E', byte(level))
	n := len(data) + 3
	d.put(gs, '(', 'k', byte(n), byte(n>>8), '1', 'P', '0')
	d.put(data...)
	return d.put(gs, '(', 'k', 3, 0, '1', 'Q', '0')
}

// Code128 prints data as a CODE128 barcode in code set B, bars module dots
// wide (1 to 6; 2 is the narrowest that scanners read well at 203 dpi) and
// height dots tall, with the human readable text at hri:
//
//	GS w module  1D 77 n
//	GS h height  1D 68 n
//	GS H hri     1D 48 n
//	GS k 73 n    1D 6B 49 n 7B 42 d1…  ("{B" selects code set B)
//
// Data must be printable ASCII (code set B); a '{' is sent as "{{", since a
// single one starts a code set change.
func (d *Doc) Code128(data string, module, height byte, hri HRI) *Doc {
	if len(data) == 0 {
		return d.fail("empty CODE128 barcode")
	}
	for i := 0; i < len(data); i++ {
		if c := data[i]; c < 0x20 || c > 0x7E {
			return d.fail("CODE128 code set B cannot hold byte %#02x at %d of %q: printable ASCII only", c, i, data)
		}
	}
	body := make([]byte, 0, 2+len(data))
	body = append(body, '{', 'B')
	for i := 0; i < len(data); i++ {
		if data[i] == '{' {
			body = append(body, '{')
		}
		body = append(body, data[i])
	}
	switch {
	case len(body) > 255:
		return d.fail("CODE128 barcode of %d characters is too long for GS k", len(data))
	case module < 1 || module > 6:
		return d.fail("CODE128 module width %d: want 1 to 6 dots", module)
	case height < 1:
		return d.fail("CODE128 height 0: want 1 to 255 dots")
	case hri > HRIBoth:
		return d.fail("HRI position %d: want 0 to 3", hri)
	}
	d.put(gs, 'w', module)
	d.put(gs, 'h', height)
	d.put(gs, 'H', byte(hri))
	d.put(gs, 'k', 73, byte(len(body)))
	return d.put(body...)
}

// Code128Dots is how wide a CODE128 code set B symbol for data is, in dots,
// with bars module dots wide: a start character, one per data character, a
// check character (11 modules each) and the stop pattern (13 modules). The
// printer prints nothing at all for a barcode wider than the paper, so
// callers check this first.
func Code128Dots(data string, module int) int {
	return (11*(len(data)+2) + 13) * module
}

// Raster prints b as a raster bit image, RasterBandRows rows at a time:
// GS v 0 m xL xH yL yH d1…dk (1D 76 30 00 …) with m = 0 (normal size),
// x = bytes per row, y = rows, k = x·y, and each byte eight dots, the most
// significant bit leftmost, 1 = printed.
func (d *Doc) Raster(b *Bitmap) *Doc {
	if b == nil || b.Width < 1 || b.Height < 1 {
		return d.fail("empty raster image")
	}
	if b.Stride > MaxRasterRowBytes {
		return d.fail("raster image %d dots wide: at most %d", b.Width, 8*MaxRasterRowBytes)
	}
	for y := 0; y < b.Height; y += RasterBandRows {
		rows := min(RasterBandRows, b.Height-y)
		d.put(gs, 'v', '0', 0, byte(b.Stride), byte(b.Stride>>8), byte(rows), byte(rows>>8))
		d.put(b.Pix[y*b.Stride : (y+rows)*b.Stride]...)
	}
	return d
}

func b2n(on bool) byte {
	if on {
		return 1
	}
	return 0
}

// Bitmap is a 1-bit image laid out as GS v 0 wants it: rows of Stride bytes,
// eight dots a byte, the most significant bit leftmost, 1 = black (a dot the
// head burns). It is an image.Image, so tests can save it as a PNG.
type Bitmap struct {
	Width, Height int
	Stride        int // bytes per row: (Width+7)/8
	Pix           []byte
}

var _ image.Image = (*Bitmap)(nil)

// NewBitmap returns a white w×h bitmap.
func NewBitmap(w, h int) *Bitmap {
	w, h = max(w, 0), max(h, 0)
	s := (w + 7) / 8
	return &Bitmap{Width: w, Height: h, Stride: s, Pix: make([]byte, s*h)}
}

// Set makes the dot at (x, y) black or white; outside the bitmap it does
// nothing, so drawing code may overrun the edges.
func (b *Bitmap) Set(x, y int, black bool) {
	if x < 0 || y < 0 || x >= b.Width || y >= b.Height {
		return
	}
	i, m := y*b.Stride+x/8, byte(0x80)>>(x%8)
	if black {
		b.Pix[i] |= m
	} else {
		b.Pix[i] &^= m
	}
}

// Black reports whether the dot at (x, y) is black; outside, it is white.
func (b *Bitmap) Black(x, y int) bool {
	if x < 0 || y < 0 || x >= b.Width || y >= b.Height {
		return false
	}
	return b.Pix[y*b.Stride+x/8]&(0x80>>(x%8)) != 0
}

// ColorModel implements image.Image.
func (b *Bitmap) ColorModel() color.Model { return color.GrayModel }

// Bounds implements image.Image.
func (b *Bitmap) Bounds() image.Rectangle { return image.Rect(0, 0, b.Width, b.Height) }

// At implements image.Image: black or white.
func (b *Bitmap) At(x, y int) color.Color {
	if b.Black(x, y) {
		return color.Gray{}
	}
	return color.Gray{Y: 0xFF}
}

// BitmapFrom thresholds img to a Bitmap: a pixel darker than mid-grey, once
// laid over white paper (transparent is white), is black. For a logo; dither
// it first if it has shades.
func BitmapFrom(img image.Image) *Bitmap {
	r := img.Bounds()
	b := NewBitmap(r.Dx(), r.Dy())
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			c := color.NRGBA64Model.Convert(img.At(x, y)).(color.NRGBA64)
			// Luma over white, in 16-bit units: a·Y + (1-a)·white.
			yy := (19595*uint64(c.R) + 38470*uint64(c.G) + 7471*uint64(c.B)) >> 16
			a := uint64(c.A)
			lum := (a*yy + (0xFFFF-a)*0xFFFF) / 0xFFFF
			b.Set(x-r.Min.X, y-r.Min.Y, lum < 0x8000)
		}
	}
	return b
}
