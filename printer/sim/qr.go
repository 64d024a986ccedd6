package sim

// QRCode is one printed QR code and the blank paper around it.
type QRCode struct {
	// Data is the data printed, as the raw bytes sent (also in Receipt.QR).
	Data string
	// Module is the module size in dots (GS ( k fn 67; 3 until set).
	Module int
	// Level is the error correction level, 'L', 'M', 'Q' or 'H' (fn 69;
	// L until set).
	Level byte
	// Version is the symbol version the data needs in byte mode, the
	// largest of the modes a printer may choose, so the symbol on paper is
	// at most this big; 0 when the data needs more than version 10
	// (213 bytes at level M), whose size is not modelled.
	Version int
	// Size is the symbol's side in dots, (17 + 4·Version)·Module; 0 with
	// Version 0.
	Size int
	// Top and Bottom are the blank dots above and below the symbol: the
	// paper fed since the last thing printed (the blank part of a text
	// line's feed, empty lines, ESC J), and after it up to the next thing
	// printed or the cut. Left and Right are the blank dots beside it
	// within Model.Dots, placed by the justification (ESC a); -1 with
	// Version 0. The paper's unprintable margins beyond Model.Dots are not
	// counted.
	Top, Bottom, Left, Right int
}

// QuietZone returns the blank paper around the symbol in modules, whole
// modules only: ISO/IEC 18004 asks for 4 on every side.
func (q QRCode) QuietZone() (top, right, bottom, left int) {
	m := max(q.Module, 1)
	return q.Top / m, q.Right / m, q.Bottom / m, q.Left / m
}

// qrByteCapacity is how many bytes a QR code of versions 1 to 10 holds in
// byte mode, by error correction level L, M, Q, H (ISO/IEC 18004 table 7).
var qrByteCapacity = [4][10]int{
	{17, 32, 53, 78, 106, 134, 154, 192, 230, 271},
	{14, 26, 42, 62, 84, 106, 122, 152, 180, 213},
	{11, 20, 32, 46, 60, 74, 86, 108, 130, 151},
	{7, 14, 24, 34, 44, 58, 64, 84, 98, 119},
}

// qrVersion is the smallest version holding n bytes at level (48 to 51),
// 0 beyond version 10.
func qrVersion(n int, level byte) int {
	l := int(level) - 48
	if l < 0 || l > 3 {
		l = 0
	}
	for v, c := range qrByteCapacity[l] {
		if n <= c {
			return v + 1
		}
	}
	return 0
}

// qrPrinted records the QR code printed now with data, at the current
// justification, the blank paper above it being what was fed since the
// last ink.
func (d *Decoder) qrPrinted(data string) {
	q := QRCode{Data: data, Module: d.qrModule(), Level: "LMQH"[d.qrLevelIndex()],
		Version: qrVersion(len(data), byte(48+d.qrLevelIndex())), Top: d.blank, Left: -1, Right: -1}
	if q.Version > 0 {
		q.Size = (17 + 4*q.Version) * q.Module
		w := d.Model.dots()
		x := 0
		switch d.align {
		case 1:
			x = (w - q.Size) / 2
		case 2:
			x = w - q.Size
		}
		q.Left, q.Right = x, w-x-q.Size
		if q.Size > w {
			d.errorf("QR code %d dots wide on a printable width of %d: a printer prints nothing", q.Size, w)
		}
	}
	d.inked()
	d.cur.QRCodes = append(d.cur.QRCodes, q)
	d.qrOpen = true
}

func (d *Decoder) qrModule() int {
	if d.qrMod == 0 {
		return 3
	}
	return int(d.qrMod)
}

func (d *Decoder) qrLevelIndex() int {
	if d.qrLvl < 48 || d.qrLvl > 51 {
		return 0
	}
	return int(d.qrLvl) - 48
}

// inked is something printed from the current position down: it ends the
// blank paper below an open QR code.
func (d *Decoder) inked() {
	if d.qrOpen {
		d.cur.QRCodes[len(d.cur.QRCodes)-1].Bottom = d.blank
		d.qrOpen = false
	}
	d.blank = 0
}

// lineFed is a text line printed (ink tells whether it had anything but
// spaces) with a feed of feed dots: its characters take the top of the line,
// the rest of the feed is blank.
func (d *Decoder) lineFed(ink bool, feed int) {
	if !ink {
		d.blank += feed
		return
	}
	h := 24 * d.heightMul()
	d.inked()
	d.blank = max(feed, h) - h
}

func (d *Decoder) heightMul() int {
	return int(d.charH) + 1
}

func (d *Decoder) lineSpacing() int {
	if d.spacingOwn {
		return d.spacing
	}
	return d.Model.lineSpacing()
}
