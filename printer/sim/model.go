package sim

// Model is what a particular printer makes of what it is sent, where
// printers differ: its settings at power-on and after ESC @, its paper and
// its Chinese font. The zero value is an 58 mm printer set to the USA
// international set whose font takes GB18030's 4-byte codes.
type Model struct {
	// Charset is the international character set the printer starts in
	// and returns to on ESC @ (its DIP or memory switch setting): one of
	// the Charset* constants. ESC R n changes it until the next ESC @.
	Charset byte

	// TwoByteOnly is a printer whose Chinese font knows GB2312/GBK's
	// 2-byte codes only: a GB18030 4-byte code (81-FE 30-39 81-FE 30-39)
	// is read as two bad pairs, each a lead byte it cannot print (shown as
	// U+FFFD) and the digit after it, and recorded as an error.
	TwoByteOnly bool

	// Dots is the printable width in dots, where a justified QR code is
	// placed; 0 is 384 (58 mm paper at 203 dpi; 576 for 80 mm).
	Dots int

	// LineSpacing is the default line feed in dots (ESC 2; ESC 3 n sets
	// another until ESC 2 or ESC @); 0 is 30, the 3.75 mm of most 203 dpi
	// printers. A text line's characters are 24 dots tall (Font A and the
	// 24×24 Chinese font) times GS ! or ESC ! magnification, drawn from the
	// line's top; the rest of the line feed is blank paper.
	LineSpacing int
}

func (m Model) dots() int {
	if m.Dots <= 0 {
		return 384
	}
	return m.Dots
}

func (m Model) lineSpacing() int {
	if m.LineSpacing <= 0 {
		return 30
	}
	return m.LineSpacing
}

// International character sets for Model.Charset and ESC R n (Epson's
// numbering).
const (
	CharsetUSA     byte = 0
	CharsetFrance  byte = 1
	CharsetGermany byte = 2
	CharsetUK      byte = 3
	CharsetDenmark byte = 4
	CharsetSweden  byte = 5
	CharsetItaly   byte = 6
	CharsetSpain   byte = 7
	CharsetJapan   byte = 8
	CharsetNorway  byte = 9
	CharsetKorea   byte = 13
	CharsetChina   byte = 15
)

// intlCodes are the twelve codes an international set changes.
const intlCodes = "#$@[\\]^`{|}~"

// intlSets is what each set prints for intlCodes, in order, from the
// ESC R n table Epson printers share (Epson FX and ESC/POS: sets 0 to 8
// as in the Printek FormsMaster 8000 manual's "International Character
// Mapping", the rest from Epson's ESC/POS character code tables). A set
// not here (ESC R with another n) is recorded as an error and prints as
// USA.
var intlSets = map[byte][]rune{
	CharsetUSA:     []rune("#$@[\\]^`{|}~"),
	CharsetFrance:  []rune("#$à°ç§^`éùè¨"),
	CharsetGermany: []rune("#$§ÄÖÜ^`äöüß"),
	CharsetUK:      []rune("£$@[\\]^`{|}~"),
	CharsetDenmark: []rune("#$@ÆØÅ^`æøå~"),
	CharsetSweden:  []rune("#¤ÉÄÖÅÜéäöåü"),
	CharsetItaly:   []rune("#$@°\\é^ùàòèì"),
	CharsetSpain:   []rune("₧$@¡Ñ¿^`¨ñ}~"),
	CharsetJapan:   []rune("#$@[¥]^`{|}~"),
	CharsetNorway:  []rune("#¤ÉÆØÅÜéæøåü"),
	CharsetKorea:   []rune("#$@[₩]^`{|}~"),
	CharsetChina:   []rune("#¥@[\\]^`{|}~"),
}

// intlRune is what ASCII byte c prints as in set n.
func intlRune(n, c byte) rune {
	set, ok := intlSets[n]
	if !ok {
		return rune(c)
	}
	for i := 0; i < len(intlCodes); i++ {
		if intlCodes[i] == c {
			return set[i]
		}
	}
	return rune(c)
}
