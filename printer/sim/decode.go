package sim

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/simplifiedchinese"
)

// Control bytes that start or end something in ESC/POS.
const (
	nul = 0x00
	ht  = 0x09
	lf  = 0x0A
	cr  = 0x0D
	dle = 0x10
	esc = 0x1B
	fs  = 0x1C
	gs  = 0x1D
)

// CutKind is how a receipt was cut off.
type CutKind int

// The cuts. GS V m with m = 0, 48, 65, 97 or 103 is a full cut; m = 1, 49,
// 66, 98 or 104 and the old one-byte ESC i and ESC m are partial cuts (one or
// three points left uncut).
const (
	FullCut    CutKind = 1
	PartialCut CutKind = 2
)

// String returns "full" or "partial".
func (k CutKind) String() string {
	switch k {
	case FullCut:
		return "full"
	case PartialCut:
		return "partial"
	default:
		return fmt.Sprintf("CutKind(%d)", int(k))
	}
}

// MaxErrors is how many error messages a Receipt keeps; ErrorCount counts
// them all.
const MaxErrors = 100

// MaxRasterBits is the largest raster image, in bytes of bits, whose bits a
// Receipt keeps (4 MiB; an 80 mm printer's full-width image 4095 dots high is
// 72 × 4095 bytes). A larger one is skipped exactly, recorded with nil Bits
// and an error.
const MaxRasterBits = 4 << 20

// maxBarcodeNUL bounds the data of a NUL-terminated barcode (GS k m with
// m ≤ 6): Epson's longest is 255 bytes.
const maxBarcodeNUL = 255

// maxTabs is the most tab positions ESC D takes; bytes past them are normal
// data (Epson: "k ≤ 32").
const maxTabs = 32

// Receipt is one printed receipt: everything from the previous cut to its cut.
//
// Text is in Lines; QR codes, barcodes and images are not text and are not in
// Lines: they are in QR, Barcodes and Images, each with the number of text
// lines printed before it, and in Marks for display.
type Receipt struct {
	// Seq is the receipt's number at the Printer (1 for receipt-0001.txt).
	// The Decoder leaves it 0.
	Seq int

	// Lines holds the text lines, decoded to UTF-8. Each LF ends one; an
	// empty string is a blank line (a fed line). Text that was not ended by
	// LF when the cut came is the last line.
	Lines []string

	// QR holds the data of each QR code printed (GS ( k fn 81, printing the
	// data stored by fn 80), in order, as the raw bytes sent.
	QR []string

	// QRCodes holds the same QR codes with their size and the blank paper
	// around them (the quiet zone a phone camera needs).
	QRCodes []QRCode

	// Barcodes holds each 1-D barcode printed with GS k.
	Barcodes []Barcode

	// Images holds each raster image printed with GS v 0.
	Images []Image

	// Marks lists QR codes, barcodes and images (and the ESC * bit images,
	// which are not kept) in order, each as the text line index it was
	// printed before and a short description like "[QR https://…]".
	Marks []Mark

	// Cut is the cut that ended the receipt.
	Cut CutKind

	// Errors describes what the decoder could not take as a printer would:
	// unknown commands, bytes that are not GB18030, stray control bytes. It
	// keeps the first MaxErrors; ErrorCount counts all.
	Errors     []string
	ErrorCount int

	// Bytes is the receipt's size on the wire: every byte after the
	// previous cut up to its cut, included (so status queries sent between
	// two receipts count in the second).
	Bytes int
}

// Barcode is one 1-D barcode (GS k).
type Barcode struct {
	// Symbology is the barcode system: "CODE128", "EAN13", "CODE39", ...
	Symbology string
	// Data is the data bytes sent, as they were: for CODE128 with its
	// code set selections, like "{B12345".
	Data string
	// Text is what the barcode reads as: for CODE128 the data without code
	// set selections and with code set C pairs as digits ("12345"); for the
	// others the same as Data.
	Text string
	// Line is the number of text lines printed before the barcode.
	Line int
}

// Image is one raster bit image (GS v 0): WidthBytes × Height bytes, each
// row left to right, the most significant bit leftmost, 1 = black.
type Image struct {
	// Mode is GS v 0's m: 0 normal, 1 double width, 2 double height, 3
	// quadruple (48 to 51 the same).
	Mode byte
	// WidthBytes is the width in bytes (8 dots each); Height is in dots.
	WidthBytes, Height int
	// Bits holds the image, nil when it was larger than MaxRasterBits.
	Bits []byte
	// Line is the number of text lines printed before the image.
	Line int
}

// Width returns the image width in dots.
func (im Image) Width() int { return im.WidthBytes * 8 }

// Mark is a non-text item of a receipt, for display.
type Mark struct {
	// Line is the number of text lines printed before the item.
	Line int
	// Text describes it: "[QR data]", "[CODE128 text]", "[image WxH]".
	Text string
}

// Text returns the receipt's text: each line followed by "\n". This is what
// the Printer writes to the receipt's file.
func (r Receipt) Text() string {
	var b strings.Builder
	for _, l := range r.Lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.String()
}

// Render returns the receipt for a person to read: its text with each mark
// on its own line where it was printed, then the errors, each line starting
// with "! ", and a closing line naming the cut.
func (r Receipt) Render() string {
	var b strings.Builder
	m := 0
	for i := 0; i <= len(r.Lines); i++ {
		for ; m < len(r.Marks) && r.Marks[m].Line <= i; m++ {
			b.WriteString(r.Marks[m].Text)
			b.WriteByte('\n')
		}
		if i < len(r.Lines) {
			b.WriteString(r.Lines[i])
			b.WriteByte('\n')
		}
	}
	for _, e := range r.Errors {
		b.WriteString("! ")
		b.WriteString(e)
		b.WriteByte('\n')
	}
	if r.ErrorCount > len(r.Errors) {
		fmt.Fprintf(&b, "! ... %d more errors\n", r.ErrorCount-len(r.Errors))
	}
	fmt.Fprintf(&b, "--- %s cut ---\n", r.Cut)
	return b.String()
}

// clone returns a copy of r whose slices are its own.
func (r Receipt) clone() Receipt {
	c := r
	c.Lines = cloneSlice(r.Lines)
	c.QR = cloneSlice(r.QR)
	c.QRCodes = cloneSlice(r.QRCodes)
	c.Barcodes = cloneSlice(r.Barcodes)
	c.Images = cloneSlice(r.Images)
	c.Marks = cloneSlice(r.Marks)
	c.Errors = cloneSlice(r.Errors)
	return c
}

func cloneSlice[T any](s []T) []T {
	if s == nil {
		return nil
	}
	return append([]T(nil), s...)
}

// decoder states
type state int

const (
	stText state = iota // between commands
	stCmd               // collecting a command's fixed part in cmd
	stData              // remain more data bytes of the command in cmd
	stNUL               // data up to a NUL (GS k m ≤ 6, ESC D)
	stSkip              // resynchronising after an unknown command
)

// what the data bytes of stData and stNUL are for
type sink int

const (
	sinkNone    sink = iota // skipped
	sinkRaster              // GS v 0 bits
	sinkBuffer              // kept whole in data, then cmd is dispatched (GS ( k, GS k m ≥ 65)
	sinkTabs                // ESC D: dropped, up to maxTabs
	sinkBarcode             // GS k m ≤ 6
)

// Decoder turns an ESC/POS byte stream into receipts. Feed it the bytes as
// they come, split anywhere: the result does not depend on where the stream
// was split. The zero value is ready to use. A Decoder is not safe for
// concurrent use.
//
// What it understands (and what it does with it):
//   - LF ends a line; ESC d n is n LFs (ESC d 0 ends a line only when text
//     is waiting); ESC J n (feed n dots) ends a waiting line; CR, NUL are
//     ignored; HT is kept as a tab; any other control byte is an error and
//     dropped.
//   - GS V m [n], ESC i, ESC m: the cut, which ends the receipt.
//   - ESC @ initialises: text not yet ended by LF is dropped (the print
//     buffer is cleared) and so is the stored QR data; the international
//     set returns to Model.Charset.
//   - ESC R n selects the international set: the twelve codes
//     # $ @ [ \ ] ^ ` { | } ~ print as that set has them (Japan's \ is ¥).
//   - GS ( k: QR code functions; fn 80 stores the data and fn 81 prints it,
//     which adds the stored data to Receipt.QR, and to Receipt.QRCodes with
//     its size (module size fn 67, error correction fn 69) and the blank
//     paper measured around it: above and below from the feeds (text lines
//     of Model.LineSpacing or ESC 3 n dots whose top 24 dots, times GS ! or
//     ESC ! height, are ink; empty lines; ESC J n), beside it from ESC a
//     and Model.Dots. Other GS ( k symbols and functions are skipped.
//   - GS k m ...: a 1-D barcode, both the NUL-terminated (m ≤ 6) and the
//     counted (65 ≤ m ≤ 79) forms, added to Receipt.Barcodes.
//   - GS v 0 m xL xH yL yH d...: a raster image, added to Receipt.Images.
//   - ESC * m nL nH d... (bit image), GS * x y d... (downloaded image),
//     GS 8 L (graphics data), ESC ( / GS ( / FS ( X pL pH ... (every
//     function with a length): skipped by their length.
//   - DLE EOT n, DLE ENQ n, DLE DC4 fn ...: real-time commands, skipped here
//     (the Printer answers DLE EOT from the raw stream, as a printer does).
//   - Text layout and settings (ESC a, ESC E, ESC !, ESC -, ESC 3, ESC M,
//     ESC t, GS !, GS B, GS h, GS H, GS w, GS f, GS L, GS W, FS &,
//     FS ., FS !, ESC p, ESC c, ESC = and the rest of the table in this
//     file): skipped.
//
// Text between commands is decoded from GB18030 (a superset of GBK, so both
// Chinese printer modes decode, whether or not FS & selected Chinese mode);
// on a Model.TwoByteOnly printer a 4-byte code prints as stray characters
// and is an error.
// A run of text is decoded on its own: a multi-byte character cut by a
// command is invalid. A byte that does not start a valid GB18030 character
// becomes U+FFFD and an error.
//
// An unknown command, or a known one with a parameter it does not accept
// (GS V 5), cannot be skipped by its length: the decoder records the error
// "unknown command 1B 7A" (or "invalid command 1D 56 05") and resynchronises:
// it drops the bytes that follow up to the next LF, ESC, GS, FS or DLE and
// goes on from that byte, so the parameters of the unknown command do not
// print as text, at the price of the text after them on the same line. The
// LF is kept (it ends the line, with the text before the unknown command).
// When the byte that made the command unknown is itself one of those bytes
// ("1B 0A", a lone ESC), it is taken as the start of what follows.
type Decoder struct {
	// Model is the printer decoded for; set it before the first Feed.
	Model Model

	cur      Receipt // being printed
	line     []byte  // current line, UTF-8
	lineText bool    // the current line has text (it may decode to "")
	run      []byte  // text bytes not yet decoded

	st     state
	cmd    []byte // the command being read
	remain int64  // data bytes still to come, in stData
	sink   sink
	data   []byte // data kept for the sink

	qr    []byte // stored QR data (GS ( k fn 80)
	qrSet bool

	intl    byte // the international set ESC R selected, when intlOwn
	intlOwn bool // false: Model.Charset, as after ESC @

	// Where things land on paper, for QRCode: the settings that place
	// them (reset by ESC @), the blank dots fed since the last ink, and
	// whether the last QR code still waits for the ink below it.
	qrMod, qrLvl byte // GS ( k fn 67 and 69; 0 until set
	align        byte // ESC a: 0 left, 1 center, 2 right
	spacing      int  // ESC 3 n, when spacingOwn
	spacingOwn   bool
	charH        byte // GS ! height magnification less one
	blank        int
	qrOpen       bool

	gb  *encoding.Decoder
	out []Receipt

	// ink counts what prints (text bytes, line ends, symbols, images,
	// cuts) and inkAtCut is ink at the last cut: the Printer tells by them
	// whether bytes read while it was not ready would have printed.
	ink, inkAtCut int
}

// Feed decodes p and returns the receipts it completed (those whose cut is in
// p), in order. Bytes after the last cut are kept for the next Feed.
func (d *Decoder) Feed(p []byte) []Receipt {
	d.out = nil
	for len(p) > 0 {
		if d.st == stData {
			n := int64(len(p))
			if n > d.remain {
				n = d.remain
			}
			chunk := p[:n]
			p = p[n:]
			d.cur.Bytes += len(chunk)
			d.remain -= n
			switch d.sink {
			case sinkRaster:
				if d.data != nil {
					d.data = append(d.data, chunk...)
				}
			case sinkBuffer:
				d.data = append(d.data, chunk...)
			}
			if d.remain == 0 {
				d.st = stText
				d.endData()
			}
			continue
		}
		d.cur.Bytes++
		d.byte(p[0])
		p = p[1:]
	}
	out := d.out
	d.out = nil
	return out
}

// Decode decodes a whole stream: the receipts it holds, and the start of an
// unfinished one (whatever follows the last cut; Bytes 0 when nothing does).
func Decode(b []byte) (receipts []Receipt, unfinished Receipt) {
	var d Decoder
	receipts = d.Feed(b)
	return receipts, d.Unfinished()
}

// Unfinished returns a copy of the receipt being printed: what came after
// the last cut. Its last line is included when text is waiting for its LF.
func (d *Decoder) Unfinished() Receipt {
	r := d.cur.clone()
	if len(d.run) > 0 || d.lineText {
		line := append([]byte(nil), d.line...)
		line = d.appendDecoded(line, d.run, nil)
		r.Lines = append(r.Lines, string(line))
	}
	return r
}

// Reset forgets everything: the unfinished receipt, a command half read, the
// stored QR data. The Decoder is as new.
func (d *Decoder) Reset() { *d = Decoder{gb: d.gb, Model: d.Model} }

// charset is the international set in force.
func (d *Decoder) charset() byte {
	if d.intlOwn {
		return d.intl
	}
	return d.Model.Charset
}

// byte takes one byte outside command data.
func (d *Decoder) byte(b byte) {
	switch d.st {
	case stText:
		d.textByte(b)
	case stSkip:
		if isSync(b) {
			d.st = stText
			d.textByte(b)
		}
	case stCmd:
		d.cmd = append(d.cmd, b)
		d.cmdStep()
	case stNUL:
		d.nulByte(b)
	}
}

// isSync reports whether b ends a resynchronisation: LF or a command prefix.
func isSync(b byte) bool {
	return b == lf || b == esc || b == gs || b == fs || b == dle
}

func (d *Decoder) textByte(b byte) {
	switch {
	case b == lf:
		d.flushRun()
		d.endLine()
	case b == esc || b == gs || b == fs || b == dle:
		d.flushRun()
		d.cmd = append(d.cmd[:0], b)
		d.st = stCmd
	case b == ht:
		d.run = append(d.run, b)
		d.ink++
	case b == cr || b == nul:
		d.flushRun()
	case b < 0x20:
		d.flushRun()
		d.errorf("control byte %02X ignored", b)
	default:
		d.run = append(d.run, b)
		d.ink++
	}
}

// flushRun decodes the waiting text bytes onto the current line.
func (d *Decoder) flushRun() {
	if len(d.run) == 0 {
		return
	}
	d.line = d.appendDecoded(d.line, d.run, d)
	d.lineText = true
	d.run = d.run[:0]
}

// endLine prints the current line (empty when nothing is waiting) and feeds
// a line.
func (d *Decoder) endLine() { d.endLineFeed(d.lineSpacing()) }

// endLineFeed prints the current line and feeds feed dots.
func (d *Decoder) endLineFeed(feed int) {
	d.lineFed(strings.TrimSpace(string(d.line)) != "", feed)
	d.cur.Lines = append(d.cur.Lines, string(d.line))
	d.line = d.line[:0]
	d.lineText = false
	d.ink++
}

// feed is ESC d n: n LFs; with n = 0 it prints waiting text only.
func (d *Decoder) feed(n int) {
	if n == 0 {
		if d.lineText {
			d.endLine()
		}
		return
	}
	for range n {
		d.endLine()
	}
}

// cut ends the receipt.
func (d *Decoder) cut(k CutKind) {
	if d.lineText {
		d.endLine()
	}
	if d.qrOpen {
		d.inked() // the paper below the last QR code ends at the cut
	}
	d.blank = 0
	d.cur.Cut = k
	d.out = append(d.out, d.cur)
	d.cur = Receipt{}
	d.line = nil
	d.ink++
	d.inkAtCut = d.ink
}

func (d *Decoder) errorf(format string, args ...any) {
	d.cur.ErrorCount++
	if len(d.cur.Errors) < MaxErrors {
		d.cur.Errors = append(d.cur.Errors, fmt.Sprintf(format, args...))
	}
}

func (d *Decoder) mark(text string) {
	d.cur.Marks = append(d.cur.Marks, Mark{Line: len(d.cur.Lines), Text: text})
	d.ink++
}

// done ends the command in cmd.
func (d *Decoder) done() {
	d.st = stText
}

// unknown records cmd as an unknown (or invalid) command and resynchronises.
func (d *Decoder) unknown(word string) {
	c := d.cmd
	d.errorf("%s command % X", word, c)
	d.st = stSkip
	if len(c) > 1 && isSync(c[len(c)-1]) {
		d.st = stText
		d.textByte(c[len(c)-1])
	}
}

// data switches to reading n data bytes for s; n = 0 ends the command at once.
func (d *Decoder) startData(n int64, s sink) {
	d.sink = s
	d.data = nil
	if s == sinkBuffer {
		d.data = make([]byte, 0, n)
	}
	if n == 0 {
		d.st = stText
		d.endData()
		return
	}
	d.st = stData
	d.remain = n
}

// Fixed lengths, prefix byte included, by the byte after the prefix.
var (
	escFixed = map[byte]int{
		'@': 2, '2': 2, '<': 2, 'L': 2, 'S': 2, 0x0C: 2, 'i': 2, 'm': 2, 'v': 2,
		' ': 3, '!': 3, '%': 3, '-': 3, '3': 3, '=': 3, '?': 3, 'E': 3, 'G': 3,
		'J': 3, 'M': 3, 'R': 3, 'T': 3, 'U': 3, 'V': 3, 'a': 3, 'd': 3, 'e': 3,
		'r': 3, 't': 3, 'u': 3, '{': 3,
		'$': 4, '\\': 4, 'c': 4,
		'p': 5,
		'W': 10,
	}
	gsFixed = map[byte]int{
		':': 2,
		'!': 3, '/': 3, 'B': 3, 'H': 3, 'I': 3, 'T': 3, 'a': 3, 'b': 3, 'f': 3,
		'h': 3, 'r': 3, 'w': 3,
		'$': 4, 'L': 4, 'P': 4, 'W': 4, '\\': 4,
		'^': 5,
	}
	fsFixed = map[byte]int{
		'&': 2, '.': 2,
		'!': 3, '-': 3, 'C': 3, 'W': 3,
		'S': 4, 'p': 4,
	}
)

// cmdStep looks at the command read so far and acts once it is complete.
func (d *Decoder) cmdStep() {
	c := d.cmd
	if len(c) < 2 {
		return
	}
	switch c[0] {
	case esc:
		d.escStep(c)
	case gs:
		d.gsStep(c)
	case fs:
		d.fsStep(c)
	case dle:
		d.dleStep(c)
	}
}

// lengthPrefixed handles ESC/GS/FS ( X pL pH ...: the data is skipped, or
// kept when keep is true.
func (d *Decoder) lengthPrefixed(c []byte, keep bool) {
	if len(c) < 5 {
		return
	}
	n := int64(c[3]) | int64(c[4])<<8
	if keep {
		d.startData(n, sinkBuffer)
	} else {
		d.startData(n, sinkNone)
	}
}

func (d *Decoder) escStep(c []byte) {
	if n, ok := escFixed[c[1]]; ok {
		if len(c) < n {
			return
		}
		d.done()
		switch c[1] {
		case '@':
			d.run = d.run[:0]
			d.line = d.line[:0]
			d.lineText = false
			d.qr, d.qrSet = nil, false
			d.intlOwn = false
			d.qrMod, d.qrLvl, d.align, d.spacingOwn, d.charH = 0, 0, 0, false, 0
		case 'a':
			d.align = c[2] % 48
		case '2':
			d.spacingOwn = false
		case '3':
			d.spacing, d.spacingOwn = int(c[2]), true
		case '!':
			d.charH = 0
			if c[2]&0x10 != 0 {
				d.charH = 1
			}
		case 'R':
			if _, ok := intlSets[c[2]]; !ok {
				d.errorf("international character set ESC R %d not modelled: printed as USA", c[2])
			}
			d.intl, d.intlOwn = c[2], true
		case 'd':
			d.feed(int(c[2]))
		case 'J':
			if d.lineText {
				d.endLineFeed(int(c[2]))
			} else {
				d.blank += int(c[2])
			}
		case 'i', 'm':
			d.cut(PartialCut)
		}
		return
	}
	switch c[1] {
	case '(':
		if len(c) >= 3 {
			d.lengthPrefixed(c, false)
		}
	case '*':
		if len(c) < 5 {
			return
		}
		cols := int64(c[3]) | int64(c[4])<<8
		switch c[2] {
		case 0, 1:
			d.mark(fmt.Sprintf("[bit image %dx8]", cols))
			d.startData(cols, sinkNone)
		case 32, 33:
			d.mark(fmt.Sprintf("[bit image %dx24]", cols))
			d.startData(cols*3, sinkNone)
		default:
			d.unknown("invalid")
		}
	case 'D':
		d.st = stNUL
		d.sink = sinkTabs
		d.data = d.data[:0]
		d.remain = 0
	default:
		d.unknown("unknown")
	}
}

// gsStep decodes the byte after GS: one case per ESC/POS command, a decoder's
// switch, exempt from the complexity bound scripts/test holds.
//
//gocyclo:ignore
func (d *Decoder) gsStep(c []byte) {
	if n, ok := gsFixed[c[1]]; ok {
		if len(c) >= n {
			d.done()
			if c[1] == '!' {
				d.charH = c[2] & 0x0F
			}
		}
		return
	}
	switch c[1] {
	case '(':
		if len(c) >= 3 {
			d.lengthPrefixed(c, c[2] == 'k')
		}
	case 'V':
		if len(c) < 3 {
			return
		}
		var k CutKind
		switch c[2] {
		case 0, 48, 65, 97, 103:
			k = FullCut
		case 1, 49, 66, 98, 104:
			k = PartialCut
		default:
			d.unknown("invalid")
			return
		}
		if c[2] >= 65 && len(c) < 4 {
			return // function B, C, D: n follows
		}
		d.done()
		d.cut(k)
	case 'v':
		if len(c) < 3 {
			return
		}
		if c[2] != '0' {
			d.unknown("invalid")
			return
		}
		if len(c) < 8 {
			return
		}
		m := c[3]
		if m > 3 && (m < 48 || m > 51) {
			d.unknown("invalid")
			return
		}
		x := int(c[4]) | int(c[5])<<8
		y := int(c[6]) | int(c[7])<<8
		n := int64(x) * int64(y)
		if n == 0 {
			d.done()
			d.errorf("empty raster image % X", c)
			return
		}
		d.startData(n, sinkRaster)
		if n <= MaxRasterBits {
			d.data = []byte{} // kept: grown as the bits come
		}
	case 'k':
		if len(c) < 3 {
			return
		}
		m := c[2]
		switch {
		case m <= 6:
			d.st = stNUL
			d.sink = sinkBarcode
			d.data = d.data[:0]
		case m >= 65 && m <= 79:
			if len(c) < 4 {
				return
			}
			d.startData(int64(c[3]), sinkBuffer)
		default:
			d.unknown("invalid")
		}
	case '*':
		if len(c) < 4 {
			return
		}
		d.startData(int64(c[2])*int64(c[3])*8, sinkNone)
	case '8':
		if len(c) < 3 {
			return
		}
		if c[2] != 'L' {
			d.unknown("unknown")
			return
		}
		if len(c) < 7 {
			return
		}
		n := int64(c[3]) | int64(c[4])<<8 | int64(c[5])<<16 | int64(c[6])<<24
		d.startData(n, sinkNone)
	default:
		d.unknown("unknown")
	}
}

func (d *Decoder) fsStep(c []byte) {
	if n, ok := fsFixed[c[1]]; ok {
		if len(c) >= n {
			d.done()
		}
		return
	}
	if c[1] == '(' {
		if len(c) >= 3 {
			d.lengthPrefixed(c, false)
		}
		return
	}
	d.unknown("unknown")
}

func (d *Decoder) dleStep(c []byte) {
	switch c[1] {
	case 0x04: // DLE EOT n; n = 7 and 8 take one more byte
		if len(c) < 3 {
			return
		}
		if (c[2] == 7 || c[2] == 8) && len(c) < 4 {
			return
		}
		d.done()
	case 0x05: // DLE ENQ n
		if len(c) >= 3 {
			d.done()
		}
	case 0x14: // DLE DC4 fn ...
		if len(c) < 3 {
			return
		}
		var n int
		switch c[2] {
		case 1, 2, 3:
			n = 5
		case 7:
			n = 4
		case 8:
			n = 10
		default:
			d.unknown("invalid")
			return
		}
		if len(c) >= n {
			d.done()
		}
	default:
		d.unknown("unknown")
	}
}

// nulByte takes a byte of NUL-terminated data.
func (d *Decoder) nulByte(b byte) {
	if b == nul {
		d.st = stText
		if d.sink == sinkBarcode {
			d.barcode(d.cmd[2], d.data)
		}
		return
	}
	switch d.sink {
	case sinkTabs:
		d.data = append(d.data, b)
		if len(d.data) == maxTabs {
			d.st = stText // the rest is normal data
		}
	case sinkBarcode:
		if len(d.data) == maxBarcodeNUL {
			d.errorf("barcode % X has no NUL within %d bytes", d.cmd[:3], maxBarcodeNUL)
			d.st = stSkip
			if isSync(b) {
				d.st = stText
				d.textByte(b)
			}
			return
		}
		d.data = append(d.data, b)
	}
}

// endData ends a command whose data has been read.
func (d *Decoder) endData() {
	c := d.cmd
	switch d.sink {
	case sinkRaster:
		w, h := int(c[4])|int(c[5])<<8, int(c[6])|int(c[7])<<8
		im := Image{Mode: c[3], WidthBytes: w, Height: h, Bits: d.data, Line: len(d.cur.Lines)}
		if im.Bits == nil {
			d.errorf("raster image %dx%d too large to keep (%d bytes > %d)", im.Width(), h, w*h, MaxRasterBits)
		}
		d.inked()
		d.cur.Images = append(d.cur.Images, im)
		d.mark(fmt.Sprintf("[image %dx%d]", im.Width(), h))
	case sinkBuffer:
		switch c[1] {
		case '(': // GS ( k
			d.symbol(d.data)
		case 'k': // GS k m n
			d.barcode(c[2], d.data)
		}
	}
	d.data = nil
	d.sink = sinkNone
}

// symbol handles GS ( k's cn fn [parameters].
func (d *Decoder) symbol(p []byte) {
	if len(p) < 2 || p[0] != 49 { // cn 49 is QR Code; the others are skipped
		return
	}
	switch p[1] {
	case 67: // module size: n
		if len(p) >= 3 {
			d.qrMod = p[2]
		}
	case 69: // error correction: n
		if len(p) >= 3 {
			d.qrLvl = p[2]
		}
	case 80: // store: m d1...dk
		if len(p) < 3 {
			d.errorf("QR store with no data")
			return
		}
		d.qr = append(d.qr[:0], p[3:]...)
		d.qrSet = true
	case 81: // print
		if !d.qrSet {
			d.errorf("QR print with no data stored")
			return
		}
		s := string(d.qr)
		d.cur.QR = append(d.cur.QR, s)
		d.qrPrinted(s)
		d.mark("[QR " + printable(s) + "]")
	}
}

var symbologies = map[byte]string{
	0: "UPC-A", 1: "UPC-E", 2: "EAN13", 3: "EAN8", 4: "CODE39", 5: "ITF", 6: "CODABAR",
	65: "UPC-A", 66: "UPC-E", 67: "EAN13", 68: "EAN8", 69: "CODE39", 70: "ITF", 71: "CODABAR",
	72: "CODE93", 73: "CODE128", 74: "GS1-128", 75: "GS1 DataBar Omnidirectional",
	76: "GS1 DataBar Truncated", 77: "GS1 DataBar Limited", 78: "GS1 DataBar Expanded",
	79: "CODE128 auto",
}

func (d *Decoder) barcode(m byte, data []byte) {
	if len(data) == 0 {
		d.errorf("barcode GS k %d with no data", m)
		return
	}
	bc := Barcode{Symbology: symbologies[m], Data: string(data), Line: len(d.cur.Lines)}
	bc.Text = bc.Data
	if m == 73 {
		bc.Text = code128Text(data)
	}
	d.inked()
	d.cur.Barcodes = append(d.cur.Barcodes, bc)
	d.mark("[" + bc.Symbology + " " + printable(bc.Text) + "]")
}

// code128Text reads ESC/POS CODE128 data: "{A", "{B", "{C" select the code
// set, "{{" is "{", the other "{x" are function codes (dropped); in code set
// C each byte is two digits. Data that selects no code set is read as B.
func code128Text(data []byte) string {
	var b strings.Builder
	set := byte('B')
	for i := 0; i < len(data); i++ {
		c := data[i]
		if c == '{' && i+1 < len(data) {
			i++
			switch n := data[i]; n {
			case 'A', 'B', 'C':
				set = n
			case '{':
				b.WriteByte('{')
			}
			continue
		}
		if set == 'C' {
			fmt.Fprintf(&b, "%02d", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// printable returns s with invalid UTF-8 and control characters escaped, for
// a mark.
func printable(s string) string {
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD"):
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r < 0x20 || r == 0x7F:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// appendDecoded appends the GB18030 text run to dst as UTF-8. A byte that
// does not start a valid character becomes U+FFFD and, when errs is not
// nil, an error on errs's receipt (nil only to peek, in Unfinished). The
// segmentation follows golang.org/x/text's decoder, which decodes each valid
// character.
func (d *Decoder) appendDecoded(dst, run []byte, errs *Decoder) []byte {
	var buf [8]byte
	cs := d.charset()
	for i := 0; i < len(run); {
		c0 := run[i]
		if c0 < utf8.RuneSelf {
			dst = utf8.AppendRune(dst, intlRune(cs, c0))
			i++
			continue
		}
		size := gbCharLen(run[i:])
		if size == 0 {
			dst = append(dst, "\uFFFD"...)
			if errs != nil {
				errs.badText(run[i:], 1)
			}
			i++
			continue
		}
		seg := run[i : i+size]
		if size == 4 && d.Model.TwoByteOnly {
			// Two pairs that are no 2-byte code: each lead byte is
			// garbage, each digit after it prints as itself.
			dst = append(dst, "\uFFFD"...)
			dst = utf8.AppendRune(dst, intlRune(cs, seg[1]))
			dst = append(dst, "\uFFFD"...)
			dst = utf8.AppendRune(dst, intlRune(cs, seg[3]))
			if errs != nil {
				errs.errorf("line %d: % X is a 4-byte GB18030 code: a 2-byte printer prints it as stray characters", len(errs.cur.Lines)+1, seg)
			}
			i += size
			continue
		}
		if d.gb == nil {
			d.gb = simplifiedchinese.GB18030.NewDecoder()
		}
		d.gb.Reset()
		n, _, err := d.gb.Transform(buf[:], seg, true)
		if err != nil || n == 0 {
			dst = append(dst, "\uFFFD"...)
			if errs != nil {
				errs.badText(seg, size)
			}
		} else {
			out := buf[:n]
			if string(out) == "\uFFFD" && !(size == 4 && string(seg) == "\x84\x31\xA4\x37") {
				// a well-formed code with no character (2-byte codes only)
				if errs != nil {
					errs.badText(seg, size)
				}
			}
			dst = append(dst, out...)
		}
		i += size
	}
	return dst
}

// badText records an invalid GB18030 sequence: the first n bytes of b, with
// up to 3 of the bytes after them for context.
func (d *Decoder) badText(b []byte, n int) {
	show := b[:min(len(b), n+3)]
	d.errorf("line %d: % X is not GB18030 text (printed as U+FFFD)", len(d.cur.Lines)+1, show)
}

// gbCharLen returns the length of the GB18030 character at the start of b
// (len(b) ≥ 1, b[0] ≥ 0x80), or 0 when b does not start with one. It
// follows golang.org/x/text/encoding/simplifiedchinese: 0x80 alone is the
// euro sign (Code Page 936), 0x81-0xFE take a second byte in 0x40-0x7E or
// 0x80-0xFE, or a second in 0x30-0x39, a third in 0x81-0xFE and a fourth in
// 0x30-0x39 that decode to a code point in range.
func gbCharLen(b []byte) int {
	c0 := b[0]
	switch {
	case c0 == 0x80:
		return 1
	case c0 == 0xFF:
		return 0
	}
	if len(b) < 2 {
		return 0
	}
	c1 := b[1]
	switch {
	case 0x40 <= c1 && c1 < 0x7F, 0x80 <= c1 && c1 < 0xFF:
		return 2
	case 0x30 <= c1 && c1 < 0x3A:
		if len(b) < 4 {
			return 0
		}
		c2, c3 := b[2], b[3]
		if c2 < 0x81 || c2 == 0xFF || c3 < 0x30 || c3 >= 0x3A {
			return 0
		}
		r := ((rune(c0-0x81)*10+rune(c1-0x30))*126+rune(c2-0x81))*10 + rune(c3-0x30)
		if r < 39420 {
			return 4
		}
		if r -= 189000; 0 <= r && r < 0x100000 {
			return 4
		}
		return 0
	}
	return 0
}
