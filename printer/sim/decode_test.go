package sim

import (
	"bytes"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/text/encoding/simplifiedchinese"
)

// gb encodes s in GB18030, as the printer's Chinese mode takes it.
func gb(t testing.TB, s string) []byte {
	t.Helper()
	b, err := simplifiedchinese.GB18030.NewEncoder().Bytes([]byte(s))
	if err != nil {
		t.Fatalf("encoding %q: %v", s, err)
	}
	return b
}

// cat joins byte slices.
func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// ESC/POS pieces used by the tests.
var (
	escInit    = []byte{0x1B, 0x40}
	chineseOn  = []byte{0x1C, 0x26}
	chineseOff = []byte{0x1C, 0x2E}
	center     = []byte{0x1B, 0x61, 0x01}
	left       = []byte{0x1B, 0x61, 0x00}
	boldOn     = []byte{0x1B, 0x45, 0x01}
	boldOff    = []byte{0x1B, 0x45, 0x00}
	bigSize    = []byte{0x1D, 0x21, 0x11}
	normalSize = []byte{0x1D, 0x21, 0x00}
	cutPartial = []byte{0x1D, 0x56, 0x42, 0x00} // GS V 66 0: feed and partial cut
	cutFull    = []byte{0x1D, 0x56, 0x00}
	nl         = []byte{0x0A}
)

func feedLines(n byte) []byte { return []byte{0x1B, 0x64, n} }

// qrStore is GS ( k fn 80 with data; qrPrint is fn 81.
func qrStore(data string) []byte {
	n := len(data) + 3
	return cat([]byte{0x1D, 0x28, 0x6B, byte(n), byte(n >> 8), 0x31, 0x50, 0x30}, []byte(data))
}

var (
	qrModel = []byte{0x1D, 0x28, 0x6B, 0x04, 0x00, 0x31, 0x41, 0x32, 0x00}
	qrSize  = []byte{0x1D, 0x28, 0x6B, 0x03, 0x00, 0x31, 0x43, 0x06}
	qrEC    = []byte{0x1D, 0x28, 0x6B, 0x03, 0x00, 0x31, 0x45, 0x31}
	qrPrint = []byte{0x1D, 0x28, 0x6B, 0x03, 0x00, 0x31, 0x51, 0x30}
)

func code128(data string) []byte {
	return cat([]byte{0x1D, 0x6B, 73, byte(len(data))}, []byte(data))
}

func raster(wBytes, h int, bits []byte) []byte {
	return cat([]byte{0x1D, 0x76, 0x30, 0x00, byte(wBytes), byte(wBytes >> 8), byte(h), byte(h >> 8)}, bits)
}

// sampleReceipt is a canteen receipt as cardd's encoder might send it.
func sampleReceipt(t testing.TB) []byte {
	return cat(
		escInit, chineseOn,
		center, boldOn, bigSize, gb(t, "校园一卡通"), nl,
		normalSize, boldOff, left,
		gb(t, "消费金额: 12.50元"), nl,
		gb(t, "卡内余额: 87.50元"), nl,
		gb(t, "卡号: ****0001  终端 POS-07"), nl,
		[]byte{0x1D, 0x68, 0x50, 0x1D, 0x77, 0x02, 0x1D, 0x48, 0x02}, code128("{B20240615-0007"),
		qrModel, qrSize, qrEC, qrStore("https://pay.example.cn/r/0007?c=粤"), qrPrint,
		nl, gb(t, "谢谢惠顾"), nl,
		feedLines(3), cutPartial,
	)
}

var sampleLines = []string{
	"校园一卡通",
	"消费金额: 12.50元",
	"卡内余额: 87.50元",
	"卡号: ****0001  终端 POS-07",
	"",
	"谢谢惠顾",
	"", "", "",
}

func decodeOne(t *testing.T, b []byte) Receipt {
	t.Helper()
	rs, rest := Decode(b)
	if len(rs) != 1 {
		t.Fatalf("got %d receipts, want 1: %+v", len(rs), rs)
	}
	if rest.Bytes != 0 {
		t.Errorf("%d bytes left after the cut: %+v", rest.Bytes, rest)
	}
	return rs[0]
}

func TestDecodeChineseReceipt(t *testing.T) {
	b := sampleReceipt(t)
	r := decodeOne(t, b)
	if !slices.Equal(r.Lines, sampleLines) {
		t.Errorf("lines:\n got %q\nwant %q", r.Lines, sampleLines)
	}
	if want := strings.Join(sampleLines, "\n") + "\n"; r.Text() != want {
		t.Errorf("Text() = %q, want %q", r.Text(), want)
	}
	if want := []string{"https://pay.example.cn/r/0007?c=粤"}; !slices.Equal(r.QR, want) {
		t.Errorf("QR = %q, want %q", r.QR, want)
	}
	wantBC := []Barcode{{Symbology: "CODE128", Data: "{B20240615-0007", Text: "20240615-0007", Line: 4}}
	if !reflect.DeepEqual(r.Barcodes, wantBC) {
		t.Errorf("Barcodes = %+v, want %+v", r.Barcodes, wantBC)
	}
	if r.Cut != PartialCut {
		t.Errorf("Cut = %v, want partial", r.Cut)
	}
	if r.ErrorCount != 0 || r.Errors != nil {
		t.Errorf("errors: %d %q", r.ErrorCount, r.Errors)
	}
	if r.Bytes != len(b) {
		t.Errorf("Bytes = %d, want %d", r.Bytes, len(b))
	}
	if len(r.Marks) != 2 || r.Marks[0].Text != "[CODE128 20240615-0007]" || r.Marks[1].Line != 4 {
		t.Errorf("Marks = %+v", r.Marks)
	}
	render := r.Render()
	for _, want := range []string{"卡号: ****0001  终端 POS-07\n[CODE128 20240615-0007]\n[QR https://pay.example.cn/r/0007?c=粤]\n\n谢谢惠顾\n", "--- partial cut ---\n"} {
		if !strings.Contains(render, want) {
			t.Errorf("Render() = %q, missing %q", render, want)
		}
	}
}

func TestDecodeLayoutIgnoredForText(t *testing.T) {
	plain := cat(gb(t, "合计 ¥12.00"), nl, cutFull)
	styled := cat(escInit, chineseOn, center, boldOn, bigSize, gb(t, "合计"), boldOff, normalSize,
		gb(t, " ¥12.00"), left, nl, chineseOff, cutFull)
	a, b := decodeOne(t, plain), decodeOne(t, styled)
	if !slices.Equal(a.Lines, b.Lines) || a.Lines[0] != "合计 ¥12.00" {
		t.Errorf("plain %q, styled %q", a.Lines, b.Lines)
	}
	if a.Cut != FullCut {
		t.Errorf("Cut = %v, want full", a.Cut)
	}
}

func TestDecodeFeeds(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		want []string
	}{
		{"LF on empty line is a blank line", cat(nl, nl, []byte("a"), nl, cutFull), []string{"", "", "a"}},
		{"ESC d n after LF adds n blank lines", cat([]byte("a"), nl, feedLines(2), cutFull), []string{"a", "", ""}},
		{"ESC d n ends waiting text first", cat([]byte("a"), feedLines(2), cutFull), []string{"a", ""}},
		{"ESC d 0 ends waiting text only", cat([]byte("a"), feedLines(0), feedLines(0), cutFull), []string{"a"}},
		{"ESC J ends waiting text", cat([]byte("a"), []byte{0x1B, 0x4A, 0x40}, []byte("b"), nl, cutFull), []string{"a", "b"}},
		{"cut ends waiting text", cat([]byte("a"), nl, []byte("b"), cutFull), []string{"a", "b"}},
		{"CR ignored, HT kept", cat([]byte("a\tb\r"), nl, cutFull), []string{"a\tb"}},
		{"ESC @ drops waiting text", cat([]byte("lost"), escInit, []byte("kept"), nl, cutFull), []string{"kept"}},
		{"empty receipt", cutFull, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := decodeOne(t, tc.in)
			if !slices.Equal(r.Lines, tc.want) {
				t.Errorf("lines %q, want %q", r.Lines, tc.want)
			}
			if r.ErrorCount != 0 {
				t.Errorf("errors %q", r.Errors)
			}
		})
	}
}

func TestDecodeCuts(t *testing.T) {
	in := cat(
		[]byte("one"), nl, cutFull,
		[]byte("two"), nl, []byte{0x1D, 0x56, 0x01},
		[]byte("three"), nl, []byte{0x1D, 0x56, 0x30},
		[]byte("four"), nl, []byte{0x1D, 0x56, 0x31},
		[]byte("five"), nl, []byte{0x1D, 0x56, 0x41, 0x10},
		[]byte("six"), nl, []byte{0x1B, 0x69},
		[]byte("seven"), nl, []byte{0x1B, 0x6D},
		[]byte("eight"), nl, []byte{0x1D, 0x56, 0x61, 0x05},
		[]byte("unfinished"), nl,
	)
	rs, rest := Decode(in)
	wantCuts := []CutKind{FullCut, PartialCut, FullCut, PartialCut, FullCut, PartialCut, PartialCut, FullCut}
	if len(rs) != len(wantCuts) {
		t.Fatalf("got %d receipts, want %d", len(rs), len(wantCuts))
	}
	names := []string{"one", "two", "three", "four", "five", "six", "seven", "eight"}
	total := 0
	for i, r := range rs {
		if !slices.Equal(r.Lines, []string{names[i]}) || r.Cut != wantCuts[i] || r.ErrorCount != 0 {
			t.Errorf("receipt %d: %q cut %v errors %q", i, r.Lines, r.Cut, r.Errors)
		}
		total += r.Bytes
	}
	if !slices.Equal(rest.Lines, []string{"unfinished"}) || total+rest.Bytes != len(in) {
		t.Errorf("unfinished %+v; bytes %d+%d of %d", rest, total, rest.Bytes, len(in))
	}
}

func TestDecodeQR(t *testing.T) {
	// Stored, not printed: no QR. Printed twice: twice. ESC @ forgets it.
	in := cat(qrStore("stored only"), []byte("a"), nl, cutFull,
		qrStore("twice"), qrPrint, qrPrint, cutFull,
		escInit, qrPrint, cutFull,
		qrStore(""), qrPrint, cutFull)
	rs, _ := Decode(in)
	if len(rs) != 4 {
		t.Fatalf("got %d receipts", len(rs))
	}
	if rs[0].QR != nil || rs[0].ErrorCount != 0 {
		t.Errorf("receipt 0: QR %q errors %q", rs[0].QR, rs[0].Errors)
	}
	if !slices.Equal(rs[1].QR, []string{"twice", "twice"}) {
		t.Errorf("receipt 1: QR %q", rs[1].QR)
	}
	if rs[2].QR != nil || rs[2].ErrorCount != 1 || !strings.Contains(rs[2].Errors[0], "QR print with no data") {
		t.Errorf("receipt 2: QR %q errors %q", rs[2].QR, rs[2].Errors)
	}
	if !slices.Equal(rs[3].QR, []string{""}) {
		t.Errorf("receipt 3: QR %q", rs[3].QR)
	}
	// A large QR, beyond 255 bytes: pH counts.
	long := strings.Repeat("0123456789", 70)
	r := decodeOne(t, cat(qrStore(long), qrPrint, cutFull))
	if !slices.Equal(r.QR, []string{long}) {
		t.Errorf("long QR: %d QR codes, first %d bytes", len(r.QR), len(r.QR[0]))
	}
}

func TestDecodeBarcodes(t *testing.T) {
	in := cat(
		code128("{C\x0c\x22\x38\x4e"),                           // code set C: 12 34 56 78
		[]byte{0x1D, 0x6B, 0x04}, []byte("ABC-1"), []byte{0x00}, // CODE39, NUL form
		[]byte{0x1D, 0x6B, 67, 12}, []byte("690123456789"), // EAN13, counted form
		[]byte("x"), nl, cutFull)
	r := decodeOne(t, in)
	want := []Barcode{
		{Symbology: "CODE128", Data: "{C\x0c\x22\x38\x4e", Text: "12345678"},
		{Symbology: "CODE39", Data: "ABC-1", Text: "ABC-1"},
		{Symbology: "EAN13", Data: "690123456789", Text: "690123456789"},
	}
	if !reflect.DeepEqual(r.Barcodes, want) {
		t.Errorf("Barcodes:\n got %+v\nwant %+v", r.Barcodes, want)
	}
	if !slices.Equal(r.Lines, []string{"x"}) || r.ErrorCount != 0 {
		t.Errorf("lines %q errors %q", r.Lines, r.Errors)
	}
}

func TestDecodeRaster(t *testing.T) {
	bits := []byte{0xFF, 0x00, 0x81, 0x42, 0x0A, 0x1B} // data may hold any byte, LF and ESC too
	in := cat([]byte("logo below"), nl, raster(2, 3, bits), []byte("after"), nl, cutFull)
	r := decodeOne(t, in)
	if !slices.Equal(r.Lines, []string{"logo below", "after"}) {
		t.Errorf("lines %q", r.Lines)
	}
	want := []Image{{Mode: 0, WidthBytes: 2, Height: 3, Bits: bits, Line: 1}}
	if !reflect.DeepEqual(r.Images, want) {
		t.Errorf("Images = %+v, want %+v", r.Images, want)
	}
	if r.Images[0].Width() != 16 {
		t.Errorf("Width = %d", r.Images[0].Width())
	}
	if r.ErrorCount != 0 {
		t.Errorf("errors %q", r.Errors)
	}
	// Too large to keep: skipped exactly, size recorded, no bits.
	w, h := 100, MaxRasterBits/100+1
	big := make([]byte, w*h)
	r = decodeOne(t, cat(raster(w, h, big), []byte("next"), nl, cutFull))
	if len(r.Images) != 1 || r.Images[0].Bits != nil || r.Images[0].Height != h || r.ErrorCount != 1 ||
		!slices.Equal(r.Lines, []string{"next"}) {
		t.Errorf("big image: %d images, lines %q, errors %q", len(r.Images), r.Lines, r.Errors)
	}
}

func TestDecodeSkipsOtherCommands(t *testing.T) {
	in := cat(
		[]byte{0x10, 0x04, 0x01}, []byte{0x10, 0x04, 0x04}, // DLE EOT
		[]byte{0x10, 0x05, 0x02},                              // DLE ENQ
		[]byte{0x10, 0x14, 0x01, 0x00, 0x05},                  // DLE DC4 pulse
		[]byte{0x1B, 0x70, 0x00, 0x19, 0xFA},                  // ESC p drawer kick
		[]byte{0x1B, 0x21, 0x08, 0x1B, 0x2D, 0x01},            // ESC !, ESC -
		[]byte{0x1B, 0x33, 0x0A},                              // ESC 3 n with n = LF: a parameter, not a line
		[]byte{0x1B, 0x74, 0x00, 0x1B, 0x52, 0x0F},            // ESC t, ESC R
		[]byte{0x1C, 0x21, 0x00, 0x1C, 0x53, 0, 0},            // FS !, FS S
		[]byte{0x1B, 0x44, 0x08, 0x10, 0x18, 0x00},            // ESC D tabs
		[]byte{0x1B, 0x2A, 0x21, 0x02, 0x00}, make([]byte, 6), // ESC * 24-dot, 2 columns
		[]byte{0x1D, 0x28, 0x4C, 0x02, 0x00, 0x30, 0x32},             // GS ( L
		[]byte{0x1D, 0x38, 0x4C, 0x02, 0x00, 0x00, 0x00, 0x30, 0x32}, // GS 8 L
		[]byte{0x1D, 0x2A, 0x01, 0x01}, make([]byte, 8),              // GS * 1x1
		[]byte{0x1D, 0x2F, 0x00}, // GS /
		[]byte("text"), nl, cutFull)
	r := decodeOne(t, in)
	if !slices.Equal(r.Lines, []string{"text"}) || r.ErrorCount != 0 {
		t.Errorf("lines %q errors %q", r.Lines, r.Errors)
	}
}

func TestDecodeUnknownCommand(t *testing.T) {
	in := cat([]byte("AB"), []byte{0x1B, 0x7A, 0x05}, []byte("junk"), nl,
		[]byte("next"), []byte{0x1D, 0x99}, []byte("params"), boldOn, []byte("bold"), nl,
		[]byte{0x1B, 0x0A}, []byte("lone ESC"), nl,
		[]byte{0x1D, 0x56, 0x05}, []byte("bad cut"), nl,
		cutFull)
	r := decodeOne(t, in)
	wantLines := []string{"AB", "nextbold", "", "lone ESC", ""}
	if !slices.Equal(r.Lines, wantLines) {
		t.Errorf("lines %q, want %q", r.Lines, wantLines)
	}
	wantErr := []string{"unknown command 1B 7A", "unknown command 1D 99", "unknown command 1B 0A", "invalid command 1D 56 05"}
	if !slices.Equal(r.Errors, wantErr) || r.ErrorCount != 4 {
		t.Errorf("errors %q, want %q", r.Errors, wantErr)
	}
}

func TestDecodeInvalidGB18030(t *testing.T) {
	in := cat([]byte{0x81, 0x20, 'x'}, gb(t, "中"), []byte{0xFF}, nl,
		gb(t, "中")[:1], boldOn, gb(t, "中")[1:], nl, // a character cut by a command
		[]byte{0x84, 0x31, 0xA4, 0x37}, nl, // U+FFFD itself, valid
		[]byte{0x80}, nl, // the euro sign of Code Page 936
		cutFull)
	r := decodeOne(t, in)
	want := []string{"\uFFFD x中\uFFFD", "\uFFFD\uFFFD", "\uFFFD", "€"}
	if !slices.Equal(r.Lines, want) {
		t.Errorf("lines %q, want %q", r.Lines, want)
	}
	if r.ErrorCount != 4 {
		t.Errorf("ErrorCount %d, errors %q", r.ErrorCount, r.Errors)
	}
	if !strings.HasPrefix(r.Errors[0], "line 1: 81 20 78 ") {
		t.Errorf("first error %q", r.Errors[0])
	}
}

func TestDecodeControlBytesAndErrorCap(t *testing.T) {
	in := cat(bytes.Repeat([]byte{0x07}, MaxErrors+5), []byte("x"), nl, cutFull)
	r := decodeOne(t, in)
	if r.ErrorCount != MaxErrors+5 || len(r.Errors) != MaxErrors || r.Errors[0] != "control byte 07 ignored" {
		t.Errorf("ErrorCount %d, %d errors, first %q", r.ErrorCount, len(r.Errors), r.Errors[0])
	}
	if !strings.Contains(r.Render(), "! ... 5 more errors\n") {
		t.Errorf("Render: %q", r.Render())
	}
	if !slices.Equal(r.Lines, []string{"x"}) {
		t.Errorf("lines %q", r.Lines)
	}
}

// feedSplit feeds b to a new Decoder in pieces cut at the given offsets.
func feedSplit(b []byte, cuts []int) ([]Receipt, Receipt) {
	var d Decoder
	var out []Receipt
	prev := 0
	for _, c := range cuts {
		out = append(out, d.Feed(b[prev:c])...)
		prev = c
	}
	out = append(out, d.Feed(b[prev:])...)
	return out, d.Unfinished()
}

func TestDecodeSplitAnywhere(t *testing.T) {
	stream := cat(sampleReceipt(t), raster(2, 2, []byte{1, 2, 3, 4}),
		[]byte{0x81, 0x20}, []byte{0x1B, 0x7A, 1, 2}, nl, []byte{0x1D, 0x6B, 0x04}, []byte("A1"), []byte{0},
		gb(t, "𠀀 four-byte"), nl, cutFull, gb(t, "未完"))
	whole, wholeRest := Decode(stream)
	if len(whole) != 2 {
		t.Fatalf("%d receipts", len(whole))
	}
	for i := 0; i <= len(stream); i++ {
		got, rest := feedSplit(stream, []int{i})
		if !reflect.DeepEqual(got, whole) || !reflect.DeepEqual(rest, wholeRest) {
			t.Fatalf("split at %d: receipts differ:\n got %+v\nwant %+v", i, got, whole)
		}
	}
	// Byte by byte.
	cuts := make([]int, len(stream))
	for i := range cuts {
		cuts[i] = i
	}
	if got, rest := feedSplit(stream, cuts); !reflect.DeepEqual(got, whole) || !reflect.DeepEqual(rest, wholeRest) {
		t.Fatalf("byte by byte: receipts differ")
	}
}

func TestDecoderReset(t *testing.T) {
	var d Decoder
	d.Feed(cat(qrStore("x"), []byte("half"), []byte{0x1D, 0x76}))
	d.Reset()
	rs := d.Feed(cat(qrPrint, []byte("whole"), nl, cutFull))
	if len(rs) != 1 || !slices.Equal(rs[0].Lines, []string{"whole"}) || rs[0].QR != nil {
		t.Errorf("after Reset: %+v", rs)
	}
}

// FuzzDecoder feeds random bytes, split at random points: the decoder never
// panics, splitting never changes the result, and what it returns is sane.
// Seeds are in testdata/fuzz/FuzzDecoder.
func FuzzDecoder(f *testing.F) {
	f.Fuzz(func(t *testing.T, data, splits []byte) {
		whole, rest := Decode(data)
		cuts := make([]int, 0, len(splits))
		at := 0
		for _, s := range splits {
			at += int(s)
			if at > len(data) {
				break
			}
			cuts = append(cuts, at)
		}
		got, gotRest := feedSplit(data, cuts)
		if !reflect.DeepEqual(got, whole) || !reflect.DeepEqual(gotRest, rest) {
			t.Fatalf("split at %v changed the result:\n got %+v\nwant %+v", cuts, got, whole)
		}
		total := rest.Bytes
		for _, r := range whole {
			total += r.Bytes
			if r.Cut != FullCut && r.Cut != PartialCut {
				t.Fatalf("receipt with cut %v", r.Cut)
			}
			if len(r.Errors) > MaxErrors || r.ErrorCount < len(r.Errors) {
				t.Fatalf("%d errors kept, count %d", len(r.Errors), r.ErrorCount)
			}
			for _, l := range r.Lines {
				if !utf8.ValidString(l) {
					t.Fatalf("line %q is not UTF-8", l)
				}
			}
			_ = r.Render()
		}
		if total != len(data) {
			t.Fatalf("receipts account for %d bytes of %d", total, len(data))
		}
	})
}

// qrCmd stores data and prints it as a QR code of module dots at level M.
func qrCmd(data string, module byte) []byte {
	n := len(data) + 3
	return cat([]byte{0x1D, 0x28, 0x6B, 3, 0, 0x31, 0x43, module},
		[]byte{0x1D, 0x28, 0x6B, 3, 0, 0x31, 0x45, 49},
		[]byte{0x1D, 0x28, 0x6B, byte(n), byte(n >> 8), 0x31, 0x50, 0x30}, []byte(data),
		[]byte{0x1D, 0x28, 0x6B, 3, 0, 0x31, 0x51, 0x30})
}

// TestQRQuietZone: the blank paper around a QR code, measured from the feeds
// and the justification the printer was sent.
func TestQRQuietZone(t *testing.T) {
	for name, tc := range map[string]struct {
		model  Model
		stream []byte
		want   QRCode
	}{
		// A text line of 30 dots leaves 6 below its 24-dot characters,
		// ESC J 30 30 more; two empty lines after the code are 60 dots.
		// Version 1 (14 bytes at M): 21 modules of 4 dots, centred on 384.
		"centred, fed": {Model{}, cat(escInit, []byte("ABC"), nl, []byte{0x1B, 0x4A, 30}, center,
			qrCmd("0123456789", 4), []byte{0x1B, 0x64, 2}, []byte("x"), nl, cutFull),
			QRCode{Data: "0123456789", Module: 4, Level: 'M', Version: 1, Size: 84, Top: 36, Bottom: 60, Left: 150, Right: 150}},
		// Right after a rule and right before the footer, left-justified,
		// on 80 mm: 6 dots above, none below, none on the left.
		// 20 bytes need version 2 (25 modules).
		"tight, left, 80 mm": {Model{Dots: 576}, cat(escInit, []byte("----"), nl, qrCmd("TU202503041230050001", 6), []byte("thanks"), nl, cutFull),
			QRCode{Data: "TU202503041230050001", Module: 6, Level: 'M', Version: 2, Size: 150, Top: 6, Bottom: 0, Left: 0, Right: 426}},
		// Double-height text (48 dots) on ESC 3 50 lines leaves 2; the
		// code is last: the paper below it runs to the cut.
		"double height, to the cut": {Model{}, cat(escInit, []byte{0x1B, 0x33, 50}, bigSize, []byte("AB"), nl, normalSize,
			[]byte{0x1B, 0x61, 0x02}, qrCmd("x", 3), []byte{0x1B, 0x4A, 12}, cutFull),
			QRCode{Data: "x", Module: 3, Level: 'M', Version: 1, Size: 63, Top: 2, Bottom: 12, Left: 321, Right: 0}},
	} {
		d := Decoder{Model: tc.model}
		rs := d.Feed(tc.stream)
		if len(rs) != 1 || len(rs[0].QRCodes) != 1 {
			t.Fatalf("%s: %d receipts %+v", name, len(rs), rs)
		}
		if got := rs[0].QRCodes[0]; got != tc.want {
			t.Errorf("%s: %+v, want %+v", name, got, tc.want)
		}
	}
	q := QRCode{Module: 6, Top: 30, Bottom: 23, Left: 105, Right: 24}
	if top, right, bottom, left := q.QuietZone(); top != 5 || right != 4 || bottom != 3 || left != 17 {
		t.Errorf("QuietZone of %+v: %d %d %d %d", q, top, right, bottom, left)
	}
}

// TestTwoByteOnly: 王𠮷 in GB18030 is CD F5 95 34 B2 35; a printer whose font
// knows 2-byte codes only prints 王 and then stray characters, and says so;
// a GB18030 printer prints the name.
func TestTwoByteOnly(t *testing.T) {
	stream := cat(escInit, chineseOn, gb(t, "持卡人 王𠮷"), nl, cutFull)
	d := Decoder{Model: Model{TwoByteOnly: true}}
	rs := d.Feed(stream)
	if len(rs) != 1 || rs[0].Lines[0] != "持卡人 王\uFFFD4\uFFFD5" || rs[0].ErrorCount != 1 || !strings.Contains(rs[0].Errors[0], "95 34 B2 35 is a 4-byte GB18030 code") {
		t.Errorf("2-byte printer: %q, errors %q", rs[0].Lines, rs[0].Errors)
	}
	rs, _ = Decode(stream)
	if len(rs) != 1 || rs[0].Lines[0] != "持卡人 王𠮷" || rs[0].ErrorCount != 0 {
		t.Errorf("GB18030 printer: %q, errors %q", rs[0].Lines, rs[0].Errors)
	}
}
