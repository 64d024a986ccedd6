package printer

import (
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/width"

	"github.com/cardd/cardd/money"
	"github.com/cardd/cardd/redact"
)

// Kind is what a receipt records.
type Kind int

// Receipt kinds, each with its title line.
const (
	KindBalance  Kind = iota + 1 // 余额查询: a balance read at the kiosk
	KindTopUp                    // 充值成功: an online top-up written onto the card
	KindPurchase                 // 消费成功: a purchase debited at the POS
	KindTest                     // 测试页: the operator's print test
	KindInvoice                  // 扫码开票: a top-up's invoicing page, as a QR code
	KindVoid                     // 冲正退款: a sale voided, its refund owed to the card
	KindSubsidy                  // 补助到账: a subsidy the host granted, written onto the card
	KindShift                    // 班结: a cashier's shift close-out (Receipt.Summary)
)

var kindTitles = map[Kind]string{
	KindBalance:  "余额查询",
	KindTopUp:    "充值成功",
	KindPurchase: "消费成功",
	KindTest:     "测试页",
	KindInvoice:  "扫码开票",
	KindVoid:     "冲正退款",
	KindSubsidy:  "补助到账",
	KindShift:    "班结",
}

// String returns the kind's title, as printed.
func (k Kind) String() string {
	if t, ok := kindTitles[k]; ok {
		return t
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Labels, as printed. Each is at most 10 columns, so that a label, a space
// and a value fit the narrowest layout.
const (
	LabelTerminal      = "终端号"
	LabelTime          = "时间"
	LabelCard          = "卡号"
	LabelIssuer        = "卡种"
	LabelHolder        = "持卡人"
	LabelBalance       = "余额"
	LabelBalanceBefore = "充值前余额"
	LabelTopUp         = "充值金额"
	LabelSubsidy       = "补助金额"
	LabelBalanceAfter  = "充值后余额"
	LabelPurchase      = "消费金额"
	LabelReference     = "交易参考号"
	LabelOrder         = "订单号"
	LabelVoidedSale    = "原交易"
	LabelRefund        = "退款金额"
	// LabelCloseRefund is a closing slip's (销户) amount: the balance the
	// card's closing debit took, which the operator owes the holder back.
	LabelCloseRefund = "销户退款"
	// TitleClose heads a closing slip in place of the purchase's title.
	TitleClose = "销户 CARD CLOSED"
)

// Labels of a split sale's slip (组合支付): the whole sale, the card's part,
// the rest the cashier collects by other means; each in Chinese and
// English, like the reprint mark, and at most 10 columns.
const (
	LabelSplitSale    = "应付 TOTAL"
	LabelSplitCard    = "卡付 CARD"
	LabelSplitCollect = "待收 DUE"
)

// Labels of a sale discounted for the card's identity class (身份): the
// price armed and the percent of it paid, like the split's.
const (
	LabelList     = "原价 LIST"
	LabelDiscount = "折扣 DISC"
)

// TimeLayout is how a receipt shows its time, in Receipt.Time's location.
const TimeLayout = "2006-01-02 15:04:05"

// Receipt is one slip of paper. Amounts are fen.
type Receipt struct {
	Kind       Kind
	Merchant   string    // the heading; cut to fit, in double size
	TerminalID string    // 终端号
	Time       time.Time // 时间; the zero time prints no line
	// CardNumber is the full number as read from the card. It is masked
	// with redact.CardNumber when laid out: all of it never reaches paper.
	CardNumber    string
	Issuer        string // 卡种: the card's family (交通联合); cut to fit
	Holder        string // 持卡人; cut to fit
	BalanceBefore int64  // 充值前余额 (top-up only)
	Amount        int64  // 充值金额 or 消费金额
	Balance       int64  // 余额 after the operation (or as read, for a query)
	// Sale and Collect are a split purchase's whole sale and what is left
	// to collect by other means (Amount the card's part); Collect 0 is a
	// purchase paid by the card alone.
	Sale, Collect int64
	// List and DiscountPercent are a discounted purchase's price armed
	// and the percent of it the card's class pays (the sale's whole
	// amount, Sale or Amount, is after it); 0 is no discount.
	List            int64
	DiscountPercent int
	Reference       string // 交易参考号 (订单号 on an invoice slip); also the QR code or barcode
	// Link is what an invoice slip's QR code holds in place of the
	// reference: the operator's invoicing page for the order. An invoice
	// slip prints it as a QR code whatever Options.Symbol says, since only
	// a phone's camera can take a cardholder to a URL.
	Link string
	// Voided is a void slip's sale: the journal row id of the sale voided
	// (KindVoid only; Reference is the void's own id).
	Voided string
	// Closing marks a purchase slip (KindPurchase) as a card's closing
	// debit (销户): its title and amount say the refund due, not a sale.
	Closing bool
	// Statement is the card's newest transactions, newest first, on a
	// balance slip (KindBalance only); as many as given are printed.
	Statement []StatementLine
	// Summary is a close-out's label/value lines (KindShift only), printed
	// in order after the terminal and time.
	Summary []SummaryLine
	Footer  []string
}

// SummaryLine is one line of a close-out: a label left, its value right
// (wrapped below it when both do not fit).
type SummaryLine struct {
	Label, Value string
}

// Layout is the printable width of a roll.
type Layout struct {
	Cols int // characters of the printer's 12×24 font (Font A); a Chinese character takes two
	Dots int // dots across the printable width, for raster images
}

// The two roll widths cardd supports. Both are 12 dots a column, the width
// of Font A and half a 24×24 Chinese character.
var (
	Layout58 = Layout{Cols: 32, Dots: 384} // 58 mm roll
	Layout80 = Layout{Cols: 48, Dots: 576} // 80 mm roll
)

// MinCols is the narrowest layout: a 10-column label, a space and a short
// value.
const MinCols = 16

func (l Layout) validate() error {
	if l.Cols < MinCols || l.Cols > 255 {
		return fmt.Errorf("printer: layout of %d columns: want %d to 255 (32 for 58 mm paper, 48 for 80 mm)", l.Cols, MinCols)
	}
	if l.Dots < 8*l.Cols || l.Dots%8 != 0 || l.Dots > 8*MaxRasterRowBytes {
		return fmt.Errorf("printer: layout of %d dots for %d columns: want a multiple of 8, at least 8 a column, at most %d (384 for 58 mm, 576 for 80 mm)", l.Dots, l.Cols, 8*MaxRasterRowBytes)
	}
	return nil
}

// Line is one printed line: its characters, and how the printer is told to
// show them. Text never has leading padding for centering (the printer
// centers, with ESC a 1) nor trailing spaces; label/value lines are padded
// between label and value to the full width.
type Line struct {
	Text   string
	Center bool
	Bold   bool
	// Double is double width and height: each column of Text takes two
	// on paper, so Width(Text) is at most half the layout's columns.
	Double bool
}

// Width is how many columns s takes on a Chinese ESC/POS printer, classified
// with golang.org/x/text/width: 2 for East Asian wide, fullwidth and
// ambiguous characters, 1 for the rest. Ambiguous ones (· … — é α) count 2
// because GB printers draw every double-byte code, these included, from their
// 24×24 Chinese font; the middle dot of names such as 阿依古丽·买买提 is the
// common case.
func Width(s string) int {
	n := 0
	for _, r := range s {
		n += runeWidth(r)
	}
	return n
}

func runeWidth(r rune) int {
	if r < utf8.RuneSelf {
		return 1
	}
	switch width.LookupRune(r).Kind() {
	case width.EastAsianWide, width.EastAsianFullwidth, width.EastAsianAmbiguous:
		return 2
	}
	return 1
}

// Text returns the lines of r as they appear on paper at cols columns (see
// Layout): what a decoder of Encode's bytes finds between line feeds, in
// every text mode. The QR code or barcode, and the feed before the cut, are
// not lines. A cols below MinCols is taken as MinCols.
func Text(r Receipt, cols int) []string {
	lines := Lines(r, cols)
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = l.Text
	}
	return out
}

// Lines is Text with each line's justification, size and weight.
//
// The rules:
//   - the merchant, centered, bold, double size, cut to cols/2 columns;
//   - the kind's title, centered and bold;
//   - a rule of '-' across the width;
//   - label/value lines: the label left, the value right-aligned, at least
//     one space between; 终端号, 时间, 卡号 (masked) and 持卡人 only when
//     known; then the kind's amounts as "50.00" (a split purchase: the
//     sale, the card's part, the rest to collect); then 交易参考号. A value
//     too long for its label's line goes on the lines below it,
//     right-aligned and wrapped, except the holder's name, which is cut;
//   - on a balance slip, the card's transactions (Receipt.Statement): a
//     rule, 最近交易, and each transaction's time (to the minute), kind,
//     terminal and amount, on one line when all fit (80 mm), else on two
//     (58 mm);
//   - for a test page, a digit ruler and a Chinese ruler, each exactly the
//     width, to check the column setting against the paper;
//   - a rule; the symbol here; the footer lines, centered and wrapped.
//
// Names are cut, and text wrapped, at a column boundary, never inside a
// wide character. Control and format characters, private-use characters and
// invalid UTF-8 in the receipt's strings become '?': they are not text (sent
// on, controls would be read as printer commands; private-use characters have
// no agreed glyph), and a '?' shows that something was there. Leading and
// trailing blanks and NULs (the padding of card files) are trimmed.
func Lines(r Receipt, cols int) []Line {
	lines, _ := layout(r, cols)
	return lines
}

// layout is Lines, and says before which line the reference's symbol goes.
func layout(r Receipt, cols int) (lines []Line, symbolAt int) {
	cols = max(cols, MinCols)
	add := func(l Line) { lines = append(lines, l) }
	pair := func(label, value string) {
		for _, s := range labelValue(label, value, cols) {
			add(Line{Text: s})
		}
	}
	if m := clean(r.Merchant); m != "" {
		add(Line{Text: truncate(m, cols/2), Center: true, Bold: true, Double: true})
	}
	if t := r.title(); t != "" {
		add(Line{Text: t, Center: true, Bold: true})
	}
	rule := strings.Repeat("-", cols)
	add(Line{Text: rule})
	if id := clean(r.TerminalID); id != "" {
		pair(LabelTerminal, id)
	}
	if !r.Time.IsZero() {
		pair(LabelTime, r.Time.Format(TimeLayout))
	}
	if n := clean(r.CardNumber); n != "" {
		pair(LabelCard, redact.CardNumber(n))
	}
	if is := clean(r.Issuer); is != "" {
		pair(LabelIssuer, truncate(is, cols-Width(LabelIssuer)-1))
	}
	if h := clean(r.Holder); h != "" {
		pair(LabelHolder, truncate(h, cols-Width(LabelHolder)-1))
	}
	switch r.Kind {
	case KindBalance:
		pair(LabelBalance, money.Format(r.Balance))
	case KindTopUp, KindSubsidy:
		amount := LabelTopUp
		if r.Kind == KindSubsidy {
			amount = LabelSubsidy
		}
		pair(LabelBalanceBefore, money.Format(r.BalanceBefore))
		pair(amount, money.Format(r.Amount))
		pair(LabelBalanceAfter, money.Format(r.Balance))
	case KindPurchase:
		if r.List > 0 && r.DiscountPercent > 0 {
			pair(LabelList, money.Format(r.List))
			pair(LabelDiscount, fmt.Sprintf("%d%%", r.DiscountPercent))
		}
		if r.Closing {
			pair(LabelCloseRefund, money.Format(r.Amount))
		} else if r.Collect > 0 {
			pair(LabelSplitSale, money.Format(r.Sale))
			pair(LabelSplitCard, money.Format(r.Amount))
			pair(LabelSplitCollect, money.Format(r.Collect))
		} else {
			pair(LabelPurchase, money.Format(r.Amount))
		}
		pair(LabelBalance, money.Format(r.Balance))
	case KindInvoice:
		pair(LabelTopUp, money.Format(r.Amount))
	case KindVoid:
		pair(LabelVoidedSale, clean(r.Voided))
		pair(LabelRefund, money.Format(r.Amount))
	case KindShift:
		for _, l := range r.Summary {
			pair(clean(l.Label), clean(l.Value))
		}
	case KindTest:
		add(Line{Text: strings.Repeat("1234567890", cols/10+1)[:cols]})
		add(Line{Text: truncate(strings.Repeat("中文打印测试", cols/12+1), cols)})
	}
	if ref := clean(r.Reference); ref != "" && r.Kind == KindInvoice {
		pair(LabelOrder, ref)
	} else if ref != "" {
		pair(LabelReference, ref)
	}
	if r.Kind == KindBalance {
		lines = append(lines, statement(r.Statement, cols)...)
	}
	add(Line{Text: rule})
	symbolAt = len(lines)
	for _, f := range r.Footer {
		f = clean(f)
		if f == "" {
			add(Line{Center: true}) // a blank footer line is a deliberate gap
			continue
		}
		for _, s := range wrap(f, cols) {
			add(Line{Text: s, Center: true})
		}
	}
	return lines, symbolAt
}

// labelValue is label and value on one line, value right-aligned, or, when
// they do not fit, the label alone and the value wrapped below it.
func labelValue(label, value string, cols int) []string {
	lw, vw := Width(label), Width(value)
	if lw+1+vw <= cols {
		return []string{label + strings.Repeat(" ", cols-lw-vw) + value}
	}
	out := []string{label}
	for _, s := range wrap(value, cols) {
		out = append(out, strings.Repeat(" ", cols-Width(s))+s)
	}
	return out
}

// clean makes s printable: see Lines.
func clean(s string) string {
	s = strings.Trim(s, " \t\r\n\x00")
	var b strings.Builder
	for i, r := range s {
		if (r == utf8.RuneError && !validAt(s, i)) || unicode.In(r, unicode.Cc, unicode.Cf, unicode.Co) {
			r = '?'
		}
		b.WriteRune(r)
	}
	return strings.TrimRight(b.String(), " ")
}

// truncate cuts s to at most cols columns without splitting a character.
func truncate(s string, cols int) string {
	w := 0
	for i, r := range s {
		if w+runeWidth(r) > cols {
			return strings.TrimRight(s[:i], " ")
		}
		w += runeWidth(r)
	}
	return s
}

// wrap cuts s into lines of at most cols columns, never inside a character
// (a wide character that would stick out starts the next line) and without
// trailing spaces. It does not look for word boundaries: the values wrapped
// are references and Chinese text, which have none.
func wrap(s string, cols int) []string {
	var out []string
	for s != "" {
		head := truncate(s, cols)
		if head == "" { // only spaces fitted: they are trimmed, skip them
			s = strings.TrimLeft(s, " ")
			continue
		}
		out = append(out, head)
		s = strings.TrimLeft(s[len(head):], " ")
	}
	return out
}

// Symbol is the machine-readable form of the transaction reference.
type Symbol int

// Symbols. A QR code holds any reference; a CODE128 barcode only printable
// ASCII, and only about 14 characters fit 58 mm paper.
const (
	SymbolNone Symbol = iota
	SymbolQR
	SymbolCode128
)

// Symbol sizes, in dots. A QR module of 6 dots (0.75 mm at 203 dpi) reads
// well with phone cameras and keeps a 30-character reference (version 3)
// under 180 dots; CODE128 at 2 dots a module is the narrowest that
// scanners read reliably, 64 dots (8 mm) tall.
const (
	qrModule = 6
	// qrQuiet is the QR code's quiet zone in modules: ISO/IEC 18004
	// asks for 4 on every side, and phone cameras need it on paper.
	qrQuiet       = 4
	code128Module = 2
	code128Height = 64
)

const (
	// feedBeforeCut lines of margin below the last line: GS V 65 only
	// brings the last line to the cutter.
	feedBeforeCut = 3
	// doubleSizeMult is the heading's magnification, width and height.
	doubleSizeMult = 2
)

// Options says how to print: roll width, text mode, the font for raster
// mode, and the reference's symbol.
type Options struct {
	Layout Layout
	Mode   TextMode
	Font   *Font // required for TextRaster and FourByteImage, unused otherwise
	Symbol Symbol
	// FourByte is what the GB modes do with a line holding a character
	// that has no 2-byte code (王𠮷's 𠮷 is 4 bytes in GB18030, none in GBK).
	FourByte FourByte
}

// FourByte is how a text mode prints a line with a character outside the
// 2-byte codes of GBK.
type FourByte int

// FourByte settings. FourByteText sends the line as text: in GB18030 its
// 4-byte codes, which a printer whose font knows only GB2312/GBK prints as
// stray characters (a lead byte it cannot show and a digit, twice); in GBK
// mode such a line is an error wrapping ErrUnencodable. FourByteImage draws
// that line, and only it, with Options.Font as a raster image on the same
// column grid, so it prints right on any printer.
const (
	FourByteText FourByte = iota
	FourByteImage
)

var fourByteNames = [...]string{FourByteText: "text", FourByteImage: "image"}

// String returns the name ParseFourByte accepts: "text" or "image".
func (f FourByte) String() string {
	if f >= 0 && int(f) < len(fourByteNames) {
		return fourByteNames[f]
	}
	return fmt.Sprintf("FourByte(%d)", int(f))
}

// ParseFourByte reads a FourByte setting as written in the configuration.
func ParseFourByte(s string) (FourByte, error) {
	for f, name := range fourByteNames {
		if s == name {
			return FourByte(f), nil
		}
	}
	return 0, fmt.Errorf("printer: unknown four-byte setting %q: want text or image", s)
}

// needsImage reports whether line s has a character without a 2-byte code.
func needsImage(s string) bool {
	for _, r := range s {
		if r >= utf8.RuneSelf {
			if _, err := EncodeText(string(r), TextGBK); err != nil {
				return true
			}
		}
	}
	return false
}

// Encode returns the ESC/POS bytes that print r: ESC @ and ESC R 0 (the
// international set USA, whatever the printer's default); in the GB modes FS &
// and the lines of Lines as text (ESC a 1 for centered lines, ESC E 1 for
// bold, GS ! 11 for double size, each sent when it changes), in raster mode
// the same lines drawn with opt.Font and sent as GS v 0; then the symbol of
// the reference (centered, after the second rule, when there is a
// reference); the footer; ESC d 3 and a full cut with feed (GS V 65 0).
//
// With opt.FourByte set to FourByteImage, a line holding a character that
// has no 2-byte code is drawn with opt.Font and sent as GS v 0 in place of
// its text (a decoder finds an image there, not a line).
//
// In GBK mode a character outside GBK is an error wrapping ErrUnencodable
// (unless its line is drawn as an image), as is, in raster mode or in such
// an image, a character the font has no glyph for: the caller may retry in
// GB18030 or raster mode, but nothing is left out silently.
func Encode(r Receipt, opt Options) ([]byte, error) {
	if err := opt.Layout.validate(); err != nil {
		return nil, err
	}
	if _, ok := kindTitles[r.Kind]; !ok {
		return nil, fmt.Errorf("printer: receipt kind %d: want KindBalance, KindTopUp, KindPurchase, KindTest, KindInvoice, KindVoid, KindSubsidy or KindShift", int(r.Kind))
	}
	if opt.Mode == TextRaster && opt.Font == nil {
		return nil, fmt.Errorf("printer: raster text mode needs a font: set the printer's font file")
	}
	if opt.FourByte == FourByteImage && opt.Mode != TextRaster && opt.Font == nil {
		return nil, fmt.Errorf("printer: four-byte characters as images need a font: set the printer's font file")
	}
	if opt.FourByte < FourByteText || opt.FourByte > FourByteImage {
		return nil, fmt.Errorf("printer: unknown four-byte setting %v", opt.FourByte)
	}
	if opt.Mode < TextGB18030 || opt.Mode > TextRaster {
		return nil, fmt.Errorf("printer: unknown text mode %v", opt.Mode)
	}
	if opt.Symbol < SymbolNone || opt.Symbol > SymbolCode128 {
		return nil, fmt.Errorf("printer: unknown symbol %d: want SymbolNone, SymbolQR or SymbolCode128", opt.Symbol)
	}
	lines, symbolAt := layout(r, opt.Layout.Cols)
	var d Doc
	d.Init().IntlCharset(IntlUSA)
	if opt.Mode != TextRaster {
		d.ChineseOn()
	}
	if err := encodeLines(&d, lines[:symbolAt], opt); err != nil {
		return nil, err
	}
	if link := clean(r.Link); r.Kind == KindInvoice && link != "" {
		quietQR(&d, []byte(link), opt.Layout.Dots)
	} else if ref := clean(r.Reference); ref != "" {
		switch opt.Symbol {
		case SymbolQR:
			quietQR(&d, []byte(ref), opt.Layout.Dots)
		case SymbolCode128:
			if w := Code128Dots(ref, code128Module); w > opt.Layout.Dots {
				return nil, fmt.Errorf("printer: CODE128 of reference %q is %d dots wide, the paper %d: use a QR code", ref, w, opt.Layout.Dots)
			}
			d.Align(AlignCenter).Code128(ref, code128Module, code128Height, HRIBelow).Align(AlignLeft)
		}
	}
	if err := encodeLines(&d, lines[symbolAt:], opt); err != nil {
		return nil, err
	}
	d.Feed(feedBeforeCut).FullCut(0)
	return d.Bytes()
}

// quietQR prints data as a centred QR code at level M with qrQuiet modules
// of blank paper on every side: fed above and below (a rule line's feed
// leaves a few dots only, the footer none), and beside it by a module small
// enough for the symbol and its quiet zone to fit dots across.
func quietQR(d *Doc, data []byte, dots int) {
	m := qrModuleFor(len(data), dots)
	d.FeedDots(qrQuiet * m)
	d.Align(AlignCenter).QR(data, byte(m), QRLevelM).Align(AlignLeft)
	d.FeedDots(qrQuiet * m)
}

// qrCapacityM is how many bytes a QR code of versions 1 to 10 holds at
// level M in byte mode (ISO/IEC 18004 table 7), the largest of the modes
// a printer may pick.
var qrCapacityM = [...]int{14, 26, 42, 62, 84, 106, 122, 152, 180, 213}

// qrModuleFor is the module size, in dots, for n bytes of QR data on a
// width of dots: qrModule when the symbol and 2·qrQuiet modules fit, else
// the largest that does (at least 1). Data beyond version 10 is sized as
// version 40 (177 modules), the largest.
func qrModuleFor(n, dots int) int {
	modules := 177
	for v, c := range qrCapacityM {
		if n <= c {
			modules = 17 + 4*(v+1)
			break
		}
	}
	return max(1, min(qrModule, dots/(modules+2*qrQuiet)))
}

// encodeLines appends lines in opt's text mode.
func encodeLines(d *Doc, lines []Line, opt Options) error {
	if len(lines) == 0 {
		return d.Err()
	}
	if opt.Mode == TextRaster {
		img, err := opt.Font.Render(lines, opt.Layout)
		if err != nil {
			return err
		}
		d.Raster(img)
		return d.Err()
	}
	// Only changes are sent, and the section ends left-aligned, normal
	// size and weight, so that what follows starts from a known state.
	var cur Line
	set := func(l Line) {
		if l.Center != cur.Center {
			a := AlignLeft
			if l.Center {
				a = AlignCenter
			}
			d.Align(a)
		}
		if l.Bold != cur.Bold {
			d.Bold(l.Bold)
		}
		if l.Double != cur.Double {
			n := 1
			if l.Double {
				n = doubleSizeMult
			}
			d.Size(n, n)
		}
		cur = l
	}
	for _, l := range lines {
		if opt.FourByte == FourByteImage && needsImage(l.Text) {
			// The image is the full width, drawn justified, bold and
			// sized by Render: the text settings do not apply to it.
			img, err := opt.Font.Render([]Line{l}, opt.Layout)
			if err != nil {
				return err
			}
			d.Raster(img)
			continue
		}
		set(l)
		d.Text(l.Text, opt.Mode).LF()
	}
	set(Line{})
	return d.Err()
}

// title is the slip's title: its kind's, a closing debit's (Closing) its
// own; "" for none.
func (r Receipt) title() string {
	if r.Closing && r.Kind == KindPurchase {
		return TitleClose
	}
	return kindTitles[r.Kind]
}
