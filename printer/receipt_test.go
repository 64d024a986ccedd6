package printer

import (
	"bytes"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/cardd/cardd/internal/cardtest"
	"github.com/cardd/cardd/printer/sim"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

var cst = time.FixedZone("CST", 8*3600)

func sample(k Kind) Receipt {
	return Receipt{
		Kind:          k,
		Merchant:      "第一食堂",
		TerminalID:    "T0001",
		Time:          time.Date(2025, 3, 4, 12, 30, 5, 0, cst),
		CardNumber:    "3101234567890001",
		Holder:        "张三",
		BalanceBefore: 1200,
		Amount:        5000,
		Balance:       6200,
		Reference:     "TU202503041230050001",
		Voided:        "000000000001-42",
		Footer:        []string{"谢谢惠顾", "", "客服电话 400-000-0000"},
	}
}

var kinds = []Kind{KindBalance, KindTopUp, KindPurchase, KindTest, KindVoid, KindSubsidy}

// TestTextTopUp pins one receipt to the character, at both widths.
func TestTextTopUp(t *testing.T) {
	want32 := []string{
		"第一食堂",
		"充值成功",
		"--------------------------------",
		"终端号                     T0001",
		"时间         2025-03-04 12:30:05",
		"卡号            3101********0001",
		"持卡人                      张三",
		"充值前余额                 12.00",
		"充值金额                   50.00",
		"充值后余额                 62.00",
		"交易参考号  TU202503041230050001",
		"--------------------------------",
		"谢谢惠顾",
		"",
		"客服电话 400-000-0000",
	}
	if got := Text(sample(KindTopUp), 32); !slices.Equal(got, want32) {
		t.Errorf("32 columns:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want32, "\n"))
	}
	want48 := []string{
		"第一食堂",
		"充值成功",
		strings.Repeat("-", 48),
		"终端号                                     T0001",
		"时间                         2025-03-04 12:30:05",
		"卡号                            3101********0001",
		"持卡人                                      张三",
		"充值前余额                                 12.00",
		"充值金额                                   50.00",
		"充值后余额                                 62.00",
		"交易参考号                  TU202503041230050001",
		strings.Repeat("-", 48),
		"谢谢惠顾",
		"",
		"客服电话 400-000-0000",
	}
	if got := Text(sample(KindTopUp), 48); !slices.Equal(got, want48) {
		t.Errorf("48 columns:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want48, "\n"))
	}
	l := Lines(sample(KindTopUp), 32)
	if !l[0].Center || !l[0].Bold || !l[0].Double || !l[1].Center || !l[1].Bold || l[1].Double || l[3].Center || l[3].Bold || !l[12].Center {
		t.Errorf("attributes: %+v", l)
	}
}

// checkLines fails on a line wider than cols (a Double line counting twice),
// with trailing spaces, or with a character no layout should carry.
func checkLines(t *testing.T, lines []Line, cols int) {
	t.Helper()
	for i, l := range lines {
		w := Width(l.Text)
		if l.Double {
			w *= 2
		}
		if w > cols {
			t.Errorf("line %d %q is %d columns, more than %d", i, l.Text, w, cols)
		}
		if strings.HasSuffix(l.Text, " ") {
			t.Errorf("line %d %q has trailing spaces", i, l.Text)
		}
		if l.Center && strings.HasPrefix(l.Text, " ") {
			t.Errorf("centered line %d %q is padded", i, l.Text)
		}
		for _, r := range l.Text {
			if r < 0x20 || r == 0x7F || (r >= 0x80 && r < 0xA0) || r == utf8.RuneError {
				t.Errorf("line %d %q carries %U", i, l.Text, r)
			}
		}
	}
}

func TestTextEveryKind(t *testing.T) {
	amounts := map[Kind][]string{
		KindBalance:  {LabelBalance, "62.00"},
		KindTopUp:    {LabelBalanceBefore, "12.00", LabelTopUp, "50.00", LabelBalanceAfter, "62.00"},
		KindPurchase: {LabelPurchase, "50.00", LabelBalance, "62.00"},
		KindTest:     nil,
		KindVoid:     {LabelVoidedSale, "000000000001-42", LabelRefund, "50.00"},
		KindSubsidy:  {LabelBalanceBefore, "12.00", LabelSubsidy, "50.00", LabelBalanceAfter, "62.00"},
	}
	for _, k := range kinds {
		for _, cols := range []int{32, 48} {
			r := sample(k)
			lines := Lines(r, cols)
			checkLines(t, lines, cols)
			text := Text(r, cols)
			if text[1] != k.String() {
				t.Errorf("%v/%d: title %q", k, cols, text[1])
			}
			all := strings.Join(text, "\n")
			if strings.Contains(all, r.CardNumber) || !strings.Contains(all, "3101********0001") {
				t.Errorf("%v/%d: card number not masked:\n%s", k, cols, all)
			}
			// Every label/value line is exactly cols wide, value at the right.
			want := append([]string{LabelTerminal, "T0001", LabelTime, "2025-03-04 12:30:05", LabelCard, "3101********0001", LabelHolder, "张三"}, amounts[k]...)
			want = append(want, LabelReference, "TU202503041230050001")
			var got []string
			for _, s := range text[3:] {
				if strings.HasPrefix(s, "-") {
					break
				}
				label, value, ok := strings.Cut(s, " ")
				if k == KindTest && !ok {
					continue // the rulers
				}
				if Width(s) != cols || !ok {
					t.Errorf("%v/%d: %q is not a full-width label/value line", k, cols, s)
				}
				got = append(got, label, strings.TrimLeft(value, " "))
			}
			if !slices.Equal(got, want) {
				t.Errorf("%v/%d: label/values %q, want %q", k, cols, got, want)
			}
			for _, label := range []string{LabelBalance, LabelTopUp, LabelPurchase, LabelBalanceBefore} {
				if !slices.Contains(amounts[k], label) && slices.Contains(got, label) {
					t.Errorf("%v/%d: %s on this kind", k, cols, label)
				}
			}
		}
	}
}

func TestTestPageRulers(t *testing.T) {
	for _, cols := range []int{32, 48} {
		text := Text(sample(KindTest), cols)
		var digits, chinese string
		for _, s := range text {
			if strings.HasPrefix(s, "1234567890") {
				digits = s
			}
			if strings.HasPrefix(s, "中文打印测试") {
				chinese = s
			}
		}
		if len(digits) != cols || Width(chinese) != cols {
			t.Errorf("%d columns: rulers %q (%d) and %q (%d)", cols, digits, len(digits), chinese, Width(chinese))
		}
	}
}

func TestWidth(t *testing.T) {
	for s, want := range map[string]int{
		"": 0, "abc": 3, "中文": 4, "卡号:1": 6, "·": 2, "…": 2, "é": 2, "：": 2,
		"ｱ": 1, "￥": 2, "𠮷": 2, "😀": 2, "\u3000": 2,
	} {
		if got := Width(s); got != want {
			t.Errorf("Width(%q) = %d, want %d", s, got, want)
		}
	}
}

func TestTruncateNames(t *testing.T) {
	r := sample(KindBalance)
	r.Merchant = "A北京大学第一食堂二楼清真窗口"
	r.Holder = "AB欧阳娜娜欧阳娜娜欧阳娜娜欧阳娜娜"
	lines := Lines(r, 32)
	checkLines(t, lines, 32)
	// 16 columns for the double-size heading: "A" and 7 characters; the
	// 8th would need columns 16 and 17.
	if lines[0].Text != "A北京大学第一食" {
		t.Errorf("heading %q", lines[0].Text)
	}
	// 32-6-1 = 25 columns for the name: "AB" and 11 characters (24); the
	// 12th would straddle the limit.
	want := "持卡人 AB欧阳娜娜欧阳娜娜欧阳娜"
	want = strings.Replace(want, " ", strings.Repeat(" ", 32-Width(want)+1), 1)
	if got := Text(r, 32)[6]; got != want {
		t.Errorf("holder line %q, want %q", got, want)
	}
	r.Holder = "A欧阳娜娜欧阳娜娜欧阳娜娜欧阳娜娜" // "A" and 12 is exactly 25
	if got := Text(r, 32)[6]; got != "持卡人 A欧阳娜娜欧阳娜娜欧阳娜娜" {
		t.Errorf("holder line %q", got)
	}
}

func TestWrapLongValues(t *testing.T) {
	r := sample(KindPurchase)
	r.Reference = strings.Repeat("0123456789", 4)  // 40 characters
	r.TerminalID = "收银台" + strings.Repeat("一", 15) // 36 columns
	r.Footer = []string{strings.Repeat("谢", 20) + "abc"}
	text := Text(r, 32)
	checkLines(t, Lines(r, 32), 32)
	i := slices.Index(text, LabelReference)
	if i < 0 || text[i+1] != "01234567890123456789012345678901" || text[i+2] != strings.Repeat(" ", 24)+"23456789" {
		t.Errorf("reference wrapped as %q", text[i:i+3])
	}
	j := slices.Index(text, LabelTerminal)
	// 36 columns: 16 wide characters on the first line, the rest below.
	if j < 0 || text[j+1] != "收银台"+strings.Repeat("一", 13) || text[j+2] != strings.Repeat(" ", 28)+"一一" {
		t.Errorf("terminal wrapped as %q", text[j:j+3])
	}
	n := len(text)
	if text[n-2] != strings.Repeat("谢", 16) || text[n-1] != "谢谢谢谢abc" {
		t.Errorf("footer wrapped as %q", text[n-2:])
	}
}

// TestLabelValueBoundary: a value fits on its label's line only with at
// least one space between them.
func TestLabelValueBoundary(t *testing.T) {
	for _, cols := range []int{32, 48} {
		r := Receipt{Kind: KindBalance}
		r.TerminalID = strings.Repeat("9", cols-Width(LabelTerminal)-1)
		if got := Text(r, cols)[2]; got != LabelTerminal+" "+r.TerminalID {
			t.Errorf("%d: %q", cols, got)
		}
		r.TerminalID += "9" // touches the label: goes below it
		if got := Text(r, cols)[2:4]; got[0] != LabelTerminal || got[1] != strings.Repeat(" ", Width(LabelTerminal))+r.TerminalID {
			t.Errorf("%d: %q", cols, got)
		}
	}
}

func TestCleanStrings(t *testing.T) {
	r := Receipt{
		Kind:       KindBalance,
		Merchant:   "  食堂\x1dV\x00 ",
		Holder:     "张三\x00\x00\x00\x00", // NUL-padded card field
		TerminalID: "T\t1\u202e\ue637",   // tab, a bidi override, private use
		CardNumber: "3101\xff234567890001",
		Footer:     []string{" \x00 "},
	}
	text := Text(r, 32)
	want := []string{
		"食堂?V",
		"余额查询",
		strings.Repeat("-", 32),
		"终端号" + strings.Repeat(" ", 21) + "T?1??",
		"卡号" + strings.Repeat(" ", 11) + "3101*********0001",
		"持卡人" + strings.Repeat(" ", 22) + "张三",
		"余额" + strings.Repeat(" ", 24) + "0.00",
		strings.Repeat("-", 32),
		"",
	}
	if !slices.Equal(text, want) {
		t.Errorf("got\n%q\nwant\n%q", text, want)
	}
}

func TestMinCols(t *testing.T) {
	r := sample(KindTopUp)
	if got, want := Text(r, 3), Text(r, MinCols); !slices.Equal(got, want) {
		t.Errorf("cols 3 is not laid out as MinCols")
	}
	checkLines(t, Lines(r, MinCols), MinCols)
}

// TestEncodeDecode encodes every kind at both widths in both GB modes and
// decodes the bytes as a printer would: the lines must be Lines exactly.
func TestEncodeDecode(t *testing.T) {
	eachEncoded(t, func(name string, r Receipt, lay Layout, b []byte) {
		d, err := decode(b)
		if err != nil {
			t.Fatalf("%s: decode: %v", name, err)
		}
		if want := Lines(r, lay.Cols); !reflect.DeepEqual(d.lines, want) {
			t.Errorf("%s: decoded\n%+v\nwant\n%+v", name, d.lines, want)
		}
		if !bytes.HasPrefix(b, []byte{esc, '@', esc, 'R', IntlUSA, fs, '&'}) || d.inits != 1 || !d.chinese || !slices.Equal(d.intl, []byte{IntlUSA}) {
			t.Errorf("%s: not initialized into the USA set and Chinese mode: % X", name, b[:7])
		}
		if !bytes.HasSuffix(b, []byte{esc, 'd', 3, gs, 'V', 65, 0}) {
			t.Errorf("%s: does not end in feed and cut: % X", name, b[len(b)-7:])
		}
		if len(d.qr) != 1 || string(d.qr[0]) != r.Reference {
			t.Errorf("%s: QR codes %q", name, d.qr)
		}
		// The symbol sits between the second rule and the footer.
		n := len(Lines(r, lay.Cols)) - len(r.Footer)
		if i := slices.Index(d.items, "qr"); i != n {
			t.Errorf("%s: items %v: QR at %d, want %d", name, d.items, i, n)
		}
	})
}

func TestEncodeNoSymbol(t *testing.T) {
	r := sample(KindPurchase)
	b, err := Encode(r, Options{Layout: Layout58})
	if err != nil {
		t.Fatal(err)
	}
	d, err := decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.qr)+len(d.code128) != 0 {
		t.Errorf("symbols without asking: %v", d.items)
	}
	r.Reference = ""
	b, err = Encode(r, Options{Layout: Layout58, Symbol: SymbolQR})
	if err != nil {
		t.Fatal(err)
	}
	if d, err = decode(b); err != nil || len(d.qr) != 0 {
		t.Errorf("a QR code without a reference: %v, %v", d.items, err)
	}
}

func TestEncodeCode128(t *testing.T) {
	r := sample(KindPurchase)
	r.Reference = "P2503-{0001}" // 12 characters fit 58 mm; '{' is escaped
	b, err := Encode(r, Options{Layout: Layout58, Symbol: SymbolCode128})
	if err != nil {
		t.Fatal(err)
	}
	d, err := decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.code128) != 1 || d.code128[0] != "{BP2503-{{0001}" {
		t.Errorf("barcodes %q", d.code128)
	}
	r.Reference = "TU202503041230050001" // 20: (11·22+13)·2 = 510 dots
	if _, err := Encode(r, Options{Layout: Layout58, Symbol: SymbolCode128}); err == nil || !strings.Contains(err.Error(), "510 dots") {
		t.Errorf("a barcode wider than 58 mm paper: %v", err)
	}
	if _, err := Encode(r, Options{Layout: Layout80, Symbol: SymbolCode128}); err != nil {
		t.Errorf("20 characters on 80 mm: %v", err)
	}
	r.Reference = "参考号12"
	if _, err := Encode(r, Options{Layout: Layout80, Symbol: SymbolCode128}); err == nil {
		t.Error("a Chinese reference as CODE128: no error")
	}
}

func TestEncodeGBKUnencodable(t *testing.T) {
	r := sample(KindTopUp)
	r.Holder = "𠮷野家" // U+20BB7 is in GB18030 only
	_, err := Encode(r, Options{Layout: Layout58, Mode: TextGBK})
	if !errors.Is(err, ErrUnencodable) || !strings.Contains(err.Error(), "U+20BB7") || !strings.Contains(err.Error(), "GBK") {
		t.Fatalf("GBK: %v; want ErrUnencodable naming U+20BB7 and GBK", err)
	}
	b, err := Encode(r, Options{Layout: Layout58, Mode: TextGB18030})
	if err != nil {
		t.Fatalf("GB18030: %v", err)
	}
	d, err := decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(d.lines, func(l Line) bool { return strings.HasSuffix(l.Text, " 𠮷野家") }) {
		t.Errorf("GB18030 lost the name: %+v", d.lines)
	}
}

func TestEncodeErrors(t *testing.T) {
	r := sample(KindTopUp)
	for name, tc := range map[string]struct {
		r   Receipt
		opt Options
	}{
		"zero layout":       {r, Options{}},
		"cols too few":      {r, Options{Layout: Layout{Cols: 10, Dots: 384}}},
		"dots not bytes":    {r, Options{Layout: Layout{Cols: 32, Dots: 385}}},
		"dots too few":      {r, Options{Layout: Layout{Cols: 32, Dots: 128}}},
		"dots too many":     {r, Options{Layout: Layout{Cols: 32, Dots: 2048}}},
		"no kind":           {Receipt{Merchant: "x"}, Options{Layout: Layout58}},
		"raster no font":    {r, Options{Layout: Layout58, Mode: TextRaster}},
		"unknown mode":      {r, Options{Layout: Layout58, Mode: 9}},
		"unknown symbol":    {r, Options{Layout: Layout58, Symbol: 9}},
		"reference too big": {Receipt{Kind: KindTest, Reference: strings.Repeat("x", MaxQRData+1)}, Options{Layout: Layout58, Symbol: SymbolQR}},
	} {
		if b, err := Encode(tc.r, tc.opt); err == nil {
			t.Errorf("%s: no error, % X", name, b)
		}
	}
}

// TestEncodeGolden pins the whole byte stream of one receipt; run with
// -update after a deliberate change, and read the diff.
func TestEncodeGolden(t *testing.T) {
	b, err := Encode(sample(KindTopUp), Options{Layout: Layout58, Mode: TextGB18030, Symbol: SymbolQR})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "golden", "topup58_gb18030_qr.hex")
	got := hex.Dump(b)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run TestEncodeGolden -update ./printer once)", err)
	}
	if got != string(want) {
		t.Errorf("bytes differ from %s:\n%s", path, got)
	}
}

// FuzzText lays out and encodes receipts with arbitrary strings: every line
// must fit, and the GB18030 bytes (and the GBK bytes, unless GBK refuses a
// character) must decode back to exactly the lines, so no input can break the
// layout or smuggle a command onto the paper.
// Seed corpus: testdata/fuzz/FuzzText/.
func FuzzText(f *testing.F) {
	f.Fuzz(func(t *testing.T, merchant, holder, ref, footer string, wide bool, kind uint8) {
		lay := Layout58
		if wide {
			lay = Layout80
		}
		r := sample(kinds[int(kind)%len(kinds)])
		r.Merchant, r.Holder, r.Reference, r.TerminalID = merchant, holder, ref, holder
		r.Footer = strings.Split(footer, "\n")
		lines := Lines(r, lay.Cols)
		checkLines(t, lines, lay.Cols)
		b, err := Encode(r, Options{Layout: lay, Symbol: SymbolQR})
		if len(clean(ref)) > MaxQRData {
			if err == nil {
				t.Fatal("no error for an oversized QR code")
			}
			return
		}
		if err != nil {
			t.Fatalf("Encode: %v", err)
		}
		d, err := decode(b)
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		if !reflect.DeepEqual(d.lines, lines) {
			t.Fatalf("decoded\n%+v\nwant\n%+v", d.lines, lines)
		}
		// GBK either refuses a character, by name, or prints the same lines.
		b, err = Encode(r, Options{Layout: lay, Mode: TextGBK})
		if err != nil {
			if !errors.Is(err, ErrUnencodable) {
				t.Fatalf("Encode GBK: %v", err)
			}
			return
		}
		if d, err = decode(b); err != nil || !reflect.DeepEqual(d.lines, lines) {
			t.Fatalf("GBK decoded\n%+v, %v\nwant\n%+v", d, err, lines)
		}
	})
}

// A T-Union card's 19 digits are masked like any number, and its family
// is printed under it.
func TestTextTUnionCard(t *testing.T) {
	r := sample(KindPurchase)
	r.CardNumber, r.Issuer = "3104770040067442802", "交通联合"
	got := Text(r, 32)
	for _, want := range []string{"卡号         3104***********2802", "卡种                    交通联合"} {
		if !slices.Contains(got, want) {
			t.Errorf("no line %q in\n%s", want, strings.Join(got, "\n"))
		}
	}
	for _, l := range got {
		if strings.Contains(l, "3104770040067442802") {
			t.Errorf("the whole number on paper: %q", l)
		}
	}
}

// TestCardNumberLengths: a card number of any length a card has (8 to 20
// digits; a T-Union card's 19) shows on the receipt masked, its first 4
// and last 4 digits and a star for each digit between, on the label's
// line at 32 columns, and no receipt line holds the number's middle.
func TestCardNumberLengths(t *testing.T) {
	for number, want := range map[string]string{
		"31010001":             "卡号                    ******01",
		"3101234567890001":     "卡号            3101********0001",
		cardtest.TUnion:        "卡号         3104***********0006",
		"31049906000000000060": "卡号        3104************0060",
	} {
		for _, k := range kinds {
			r := sample(k)
			r.CardNumber = number
			text := Text(r, 32)
			if k != KindTest && !slices.Contains(text, want) {
				t.Errorf("%s receipt of card %s:\n%s\nwant the line %q", k, number, strings.Join(text, "\n"), want)
			}
			for _, line := range text {
				if strings.Contains(line, number[2:len(number)-2]) {
					t.Errorf("%s receipt shows card %s: %q", k, number, line)
				}
			}
			checkLines(t, Lines(r, 32), 32)
		}
	}
}

// TestIntlCharsetUSA: a receipt carrying the twelve codes the international
// sets change, printed on virtual printers whose default set (their
// switches) is Japan, Germany or the UK, decodes to exactly its lines:
// Encode selects the USA set itself. Without ESC R 0 Japan's printer shows
// ¥ for \, Germany's Ä for [, the UK's £ for #.
func TestIntlCharsetUSA(t *testing.T) {
	r := sample(KindPurchase)
	r.Reference = `#$@[\]^{|}~`
	r.Holder = "O'Neil [VIP] {x|y}"
	r.Footer = []string{`https://pay.example.cn/#/r?a=1&b=\~^`, "support@example.cn"}
	for _, cs := range []byte{sim.CharsetJapan, sim.CharsetGermany, sim.CharsetUK} {
		for _, lay := range []Layout{Layout58, Layout80} {
			b, err := Encode(r, Options{Layout: lay, Symbol: SymbolQR})
			if err != nil {
				t.Fatal(err)
			}
			dec := sim.Decoder{Model: sim.Model{Charset: cs, Dots: lay.Dots}}
			rs := dec.Feed(b)
			if len(rs) != 1 {
				t.Fatalf("set %d: %d receipts", cs, len(rs))
			}
			got := trimFeed(rs[0].Lines)
			if want := Text(r, lay.Cols); !slices.Equal(got, want) {
				t.Errorf("printer set %d, %d columns: printed\n%s\nwant\n%s", cs, lay.Cols, strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			if rs[0].ErrorCount != 0 {
				t.Errorf("set %d: errors %q", cs, rs[0].Errors)
			}
		}
	}
}

// trimFeed drops the blank lines of the feed before the cut.
func trimFeed(lines []string) []string {
	for len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

// TestQRQuietZoneEveryReceipt: every kind of receipt, at 58 and 80 mm, in
// both Chinese modes, read back by the virtual printer: its QR code has at
// least 4 modules of blank paper on every side (ISO/IEC 18004's quiet zone;
// phone cameras on real paper need it), and holds the reference.
func TestQRQuietZoneEveryReceipt(t *testing.T) {
	eachEncoded(t, checkQuietZone(t))
	// Longer data, such as an invoicing URL, takes a larger symbol: its
	// modules shrink so that the sides keep their quiet zone on 58 mm.
	for _, n := range []int{60, 120, 200} {
		r := sample(KindTopUp)
		r.Reference = "https://fapiao.example.cn/i?order=" + strings.Repeat("7", n-34)
		for _, lay := range []Layout{Layout58, Layout80} {
			b, err := Encode(r, Options{Layout: lay, Symbol: SymbolQR})
			if err != nil {
				t.Fatal(err)
			}
			checkQuietZone(t)(fmt.Sprintf("%d bytes at %d columns", n, lay.Cols), r, lay, b)
		}
	}
}

// checkQuietZone decodes b on the virtual printer and fails unless its one
// QR code holds r's reference with 4 modules of blank paper on every side.
func checkQuietZone(t *testing.T) func(name string, r Receipt, lay Layout, b []byte) {
	return func(name string, r Receipt, lay Layout, b []byte) {
		dec := sim.Decoder{Model: sim.Model{Dots: lay.Dots}}
		rs := dec.Feed(b)
		if len(rs) != 1 || len(rs[0].QRCodes) != 1 {
			t.Fatalf("%s: %d receipts", name, len(rs))
		}
		q := rs[0].QRCodes[0]
		top, right, bottom, left := q.QuietZone()
		if q.Data != r.Reference || q.Version == 0 || min(top, right, bottom, left) < 4 {
			t.Errorf("%s: QR %q version %d, quiet zone top %d right %d bottom %d left %d modules; want at least 4 each (%+v)",
				name, q.Data, q.Version, top, right, bottom, left, q)
		}
	}
}

// eachEncoded calls f with the sample receipt of every kind encoded with a
// QR code at 58 and 80 mm in both Chinese modes.
func eachEncoded(t *testing.T, f func(name string, r Receipt, lay Layout, b []byte)) {
	t.Helper()
	for _, k := range kinds {
		for _, lay := range []Layout{Layout58, Layout80} {
			for _, m := range []TextMode{TextGB18030, TextGBK} {
				r := sample(k)
				b, err := Encode(r, Options{Layout: lay, Mode: m, Symbol: SymbolQR})
				if err != nil {
					t.Fatalf("%v %d %v: %v", k, lay.Cols, m, err)
				}
				f(fmt.Sprintf("%v %d %v", k, lay.Cols, m), r, lay, b)
			}
		}
	}
}

// TestStatementFits: a balance slip's transactions fit every width, with
// long, empty and hostile terminal ids, and only a balance slip lists them.
func TestStatementFits(t *testing.T) {
	r := sample(KindBalance)
	at := time.Date(2026, 11, 23, 12, 5, 9, 0, cst)
	r.Statement = []StatementLine{
		{Time: at, Kind: TxComposite, Amount: -99999999, Terminal: "0000000000A2"},
		{Time: at, Kind: TxLoad, Amount: 5000},
		{Kind: TxKind(9), Amount: -1, Terminal: "收银台" + strings.Repeat("一", 20) + "\x1dV"},
	}
	for _, cols := range []int{MinCols, 32, 48} {
		lines := Lines(r, cols)
		checkLines(t, lines, cols)
		text := strings.Join(Text(r, cols), "\n")
		for _, want := range []string{LabelStatement, "复合消费", "充值", "其他", "-999999.99", "50.00", "-0.01", "2026-11-23 12:05", "----------------"} {
			if !strings.Contains(text, want) {
				t.Errorf("%d columns: no %q in\n%s", cols, want, text)
			}
		}
		if strings.Contains(text, "\x1d") {
			t.Errorf("%d columns: a control character on paper", cols)
		}
	}
	for _, k := range []Kind{KindTopUp, KindPurchase, KindTest} {
		r.Kind = k
		if slices.Contains(Text(r, 48), LabelStatement) {
			t.Errorf("%v lists transactions", k)
		}
	}
}
