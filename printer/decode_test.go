package printer

import (
	"fmt"

	"golang.org/x/text/encoding/simplifiedchinese"
)

// decoded is what a printer would make of an ESC/POS stream: the text lines
// with their justification, weight and size, the raster images (the bands
// of consecutive GS v 0 commands stitched together), the symbols and cuts,
// in the order they appear (items).
type decoded struct {
	lines    []Line
	images   []*Bitmap
	bands    []int // rows of each GS v 0 band
	qr       [][]byte
	code128  []string
	items    []string // "text", "image", "qr", "code128", "feed", "cut"
	inits    int
	intl     []byte // each ESC R n's n
	dotFeeds []int  // each ESC J n's n
	chinese  bool
}

// decode reads the subset of ESC/POS this package writes, and fails on
// anything else, so that a stray byte in Encode's output cannot pass
// unnoticed. Text is decoded as GB18030 (GBK is a subset).
func decode(b []byte) (*decoded, error) {
	d := &decoded{}
	var (
		align       byte
		bold        bool
		size        byte
		text        []byte
		lastWasBand bool
		qrData      []byte
	)
	need := func(i, n int) error {
		if i+n > len(b) {
			return fmt.Errorf("command at %d cut short: % X", i, b[i:])
		}
		return nil
	}
	for i := 0; i < len(b); {
		c := b[i]
		band := false
		switch {
		case c == lf:
			s, err := simplifiedchinese.GB18030.NewDecoder().Bytes(text)
			if err != nil {
				return nil, fmt.Errorf("text % X: %v", text, err)
			}
			d.lines = append(d.lines, Line{Text: string(s), Center: align == 1, Bold: bold, Double: size == 0x11})
			d.items = append(d.items, "text")
			text = text[:0]
			i++
		case c == esc || c == gs || c == fs:
			if err := need(i, 2); err != nil {
				return nil, err
			}
			if len(text) > 0 { // Encode ends every line before changing modes
				return nil, fmt.Errorf("command % X at %d in the middle of text % X", b[i:i+2], i, text)
			}
			cmd := string([]byte{c, b[i+1]})
			switch cmd {
			case "\x1b@":
				d.inits++
				align, bold, size = 0, false, 0
				i += 2
			case "\x1c&", "\x1c.":
				d.chinese = cmd == "\x1c&"
				i += 2
			case "\x1bJ":
				if err := need(i, 3); err != nil {
					return nil, err
				}
				d.dotFeeds = append(d.dotFeeds, int(b[i+2]))
				i += 3
			case "\x1bR":
				if err := need(i, 3); err != nil {
					return nil, err
				}
				d.intl = append(d.intl, b[i+2])
				i += 3
			case "\x1ba", "\x1bE", "\x1bd", "\x1d!", "\x1dh", "\x1dH", "\x1dw":
				if err := need(i, 3); err != nil {
					return nil, err
				}
				n := b[i+2]
				switch cmd {
				case "\x1ba":
					align = n
				case "\x1bE":
					bold = n&1 != 0
				case "\x1bd":
					d.items = append(d.items, "feed")
				case "\x1d!":
					size = n
				}
				i += 3
			case "\x1dV":
				if err := need(i, 4); err != nil {
					return nil, err
				}
				d.items = append(d.items, "cut")
				i += 4
			case "\x1d(":
				if err := need(i, 5); err != nil {
					return nil, err
				}
				if b[i+2] != 'k' {
					return nil, fmt.Errorf("GS ( %q at %d", b[i+2], i)
				}
				n := int(b[i+3]) | int(b[i+4])<<8
				if err := need(i+5, n); err != nil {
					return nil, err
				}
				p := b[i+5 : i+5+n]
				if n >= 3 && p[0] == '1' && p[1] == 'P' {
					qrData = append([]byte(nil), p[3:]...)
				}
				if n == 3 && p[0] == '1' && p[1] == 'Q' {
					d.qr = append(d.qr, qrData)
					d.items = append(d.items, "qr")
				}
				i += 5 + n
			case "\x1dk":
				if err := need(i, 4); err != nil {
					return nil, err
				}
				if b[i+2] != 73 {
					return nil, fmt.Errorf("barcode system %d at %d", b[i+2], i)
				}
				n := int(b[i+3])
				if err := need(i+4, n); err != nil {
					return nil, err
				}
				d.code128 = append(d.code128, string(b[i+4:i+4+n]))
				d.items = append(d.items, "code128")
				i += 4 + n
			case "\x1dv":
				if err := need(i, 8); err != nil {
					return nil, err
				}
				if b[i+2] != '0' || b[i+3] != 0 {
					return nil, fmt.Errorf("GS v % X at %d", b[i+2:i+4], i)
				}
				x := int(b[i+4]) | int(b[i+5])<<8
				y := int(b[i+6]) | int(b[i+7])<<8
				if err := need(i+8, x*y); err != nil {
					return nil, err
				}
				pix := b[i+8 : i+8+x*y]
				if lastWasBand {
					img := d.images[len(d.images)-1]
					if img.Stride != x {
						return nil, fmt.Errorf("band of %d bytes a row after %d", x, img.Stride)
					}
					img.Pix = append(img.Pix, pix...)
					img.Height += y
				} else {
					d.images = append(d.images, &Bitmap{Width: 8 * x, Height: y, Stride: x, Pix: append([]byte(nil), pix...)})
					d.items = append(d.items, "image")
				}
				d.bands = append(d.bands, y)
				band = true
				i += 8 + x*y
			default:
				return nil, fmt.Errorf("unknown command % X at %d", b[i:i+2], i)
			}
		case c < 0x20 || c == 0x7F:
			return nil, fmt.Errorf("control byte %#02x at %d", c, i)
		default:
			text = append(text, c)
			i++
		}
		lastWasBand = band
	}
	if len(text) > 0 {
		return nil, fmt.Errorf("text % X never printed: no LF after it", text)
	}
	return d, nil
}
