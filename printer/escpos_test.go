package printer

import (
	"bytes"
	"encoding/hex"
	"errors"
	"image"
	"image/color"
	"strings"
	"testing"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// TestCommandBytes pins every command to the bytes of the ESC/POS reference.
func TestCommandBytes(t *testing.T) {
	bm := NewBitmap(9, 2) // 2 bytes a row; dots (0,0), (8,0) and (1,1)
	bm.Set(0, 0, true)
	bm.Set(8, 0, true)
	bm.Set(1, 1, true)
	for _, tc := range []struct {
		name string
		doc  func(d *Doc)
		want string
	}{
		{"init", func(d *Doc) { d.Init() }, "1B 40"},
		{"align left", func(d *Doc) { d.Align(AlignLeft) }, "1B 61 00"},
		{"align center", func(d *Doc) { d.Align(AlignCenter) }, "1B 61 01"},
		{"align right", func(d *Doc) { d.Align(AlignRight) }, "1B 61 02"},
		{"bold on", func(d *Doc) { d.Bold(true) }, "1B 45 01"},
		{"bold off", func(d *Doc) { d.Bold(false) }, "1B 45 00"},
		{"size 1x1", func(d *Doc) { d.Size(1, 1) }, "1D 21 00"},
		{"size 2x2", func(d *Doc) { d.Size(2, 2) }, "1D 21 11"},
		{"size 2 wide 1 high", func(d *Doc) { d.Size(2, 1) }, "1D 21 10"},
		{"size 1 wide 3 high", func(d *Doc) { d.Size(1, 3) }, "1D 21 02"},
		{"size 8x8", func(d *Doc) { d.Size(8, 8) }, "1D 21 77"},
		{"lf", func(d *Doc) { d.LF() }, "0A"},
		{"feed 3", func(d *Doc) { d.Feed(3) }, "1B 64 03"},
		{"full cut", func(d *Doc) { d.FullCut(0) }, "1D 56 41 00"},
		{"full cut feed 16", func(d *Doc) { d.FullCut(16) }, "1D 56 41 10"},
		{"partial cut", func(d *Doc) { d.PartialCut(5) }, "1D 56 42 05"},
		{"chinese on", func(d *Doc) { d.ChineseOn() }, "1C 26"},
		{"chinese off", func(d *Doc) { d.ChineseOff() }, "1C 2E"},
		{"text gb18030", func(d *Doc) { d.Text("余额12.00", TextGB18030) }, "D3 E0 B6 EE 31 32 2E 30 30"},
		{"text gbk", func(d *Doc) { d.Text("卡号", TextGBK) }, "BF A8 BA C5"},
		{"text gb18030 four-byte", func(d *Doc) { d.Text("𠮷", TextGB18030) }, "95 34 B2 35"},
		{"qr", func(d *Doc) { d.QR([]byte("AB"), 6, QRLevelM) },
			"1D 28 6B 04 00 31 41 32 00" + // 165: model 2
				"1D 28 6B 03 00 31 43 06" + // 167: module 6 dots
				"1D 28 6B 03 00 31 45 31" + // 169: level M
				"1D 28 6B 05 00 31 50 30 41 42" + // 180: store "AB", pL = 2+3
				"1D 28 6B 03 00 31 51 30"}, // 181: print
		{"code128", func(d *Doc) { d.Code128("A{1", 2, 64, HRIBelow) },
			"1D 77 02  1D 68 40  1D 48 02  1D 6B 49 06 7B 42 41 7B 7B 31"},
		{"raster", func(d *Doc) { d.Raster(bm) }, "1D 76 30 00 02 00 02 00  80 80  40 00"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var d Doc
			tc.doc(&d)
			got, err := d.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			if want := unhex(t, tc.want); !bytes.Equal(got, want) {
				t.Errorf("got  % X\nwant % X", got, want)
			}
		})
	}
}

func TestQRLengthTwoBytes(t *testing.T) {
	data := bytes.Repeat([]byte{'7'}, 300)
	var d Doc
	got, err := d.QR(data, 4, QRLevelL).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	store := unhex(t, "1D 28 6B 2F 01 31 50 30") // 303 = 0x012F
	i := bytes.Index(got, store)
	if i < 0 || !bytes.Equal(got[i+len(store):i+len(store)+300], data) {
		t.Fatalf("store function 180 with pL pH 2F 01 and the data not found in % X", got)
	}
}

func TestRasterBands(t *testing.T) {
	h := 2*RasterBandRows + 5
	bm := NewBitmap(576, h)
	for y := 0; y < h; y++ {
		bm.Set(y%576, y, true)
	}
	var d Doc
	got, err := d.Raster(bm).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	dec, err := decode(got)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{RasterBandRows, RasterBandRows, 5}; len(dec.bands) != 3 || dec.bands[0] != want[0] || dec.bands[1] != want[1] || dec.bands[2] != want[2] {
		t.Fatalf("bands %v, want %v", dec.bands, want)
	}
	if len(dec.images) != 1 || !bytes.Equal(dec.images[0].Pix, bm.Pix) || dec.images[0].Height != h {
		t.Fatal("bands do not stitch back into the image")
	}
	if RasterBandRows > 255 {
		t.Errorf("RasterBandRows %d needs yH, which some firmwares ignore", RasterBandRows)
	}
}

func TestDocErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		doc  func(d *Doc)
	}{
		{"align 3", func(d *Doc) { d.Align(3) }},
		{"size 0", func(d *Doc) { d.Size(0, 1) }},
		{"size 9", func(d *Doc) { d.Size(1, 9) }},
		{"feed 256", func(d *Doc) { d.Feed(256) }},
		{"feed -1", func(d *Doc) { d.Feed(-1) }},
		{"qr empty", func(d *Doc) { d.QR(nil, 6, QRLevelM) }},
		{"qr too long", func(d *Doc) { d.QR(make([]byte, MaxQRData+1), 6, QRLevelM) }},
		{"qr module 0", func(d *Doc) { d.QR([]byte("x"), 0, QRLevelM) }},
		{"qr module 17", func(d *Doc) { d.QR([]byte("x"), 17, QRLevelM) }},
		{"qr level", func(d *Doc) { d.QR([]byte("x"), 6, 52) }},
		{"code128 empty", func(d *Doc) { d.Code128("", 2, 64, HRIBelow) }},
		{"code128 chinese", func(d *Doc) { d.Code128("参考", 2, 64, HRIBelow) }},
		{"code128 control", func(d *Doc) { d.Code128("A\nB", 2, 64, HRIBelow) }},
		{"code128 too long", func(d *Doc) { d.Code128(strings.Repeat("{", 127), 2, 64, HRIBelow) }},
		{"code128 module 7", func(d *Doc) { d.Code128("A", 7, 64, HRIBelow) }},
		{"code128 height 0", func(d *Doc) { d.Code128("A", 2, 0, HRIBelow) }},
		{"code128 hri 4", func(d *Doc) { d.Code128("A", 2, 64, 4) }},
		{"raster empty", func(d *Doc) { d.Raster(NewBitmap(0, 0)) }},
		{"raster nil", func(d *Doc) { d.Raster(nil) }},
		{"raster too wide", func(d *Doc) { d.Raster(NewBitmap(8*MaxRasterRowBytes+1, 1)) }},
		{"text raster mode", func(d *Doc) { d.Text("x", TextRaster) }},
		{"text control", func(d *Doc) { d.Text("a\x1dVb", TextGB18030) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var d Doc
			d.Init()
			tc.doc(&d)
			n := d.buf.Len()
			d.LF().Feed(1) // append nothing after an error
			b, err := d.Bytes()
			if err == nil || d.Err() == nil {
				t.Fatalf("no error; bytes % X", b)
			}
			if d.buf.Len() != n {
				t.Fatalf("bytes appended after the error: % X", d.buf.Bytes())
			}
		})
	}
	// 126 '{' escape to 252 bytes plus "{B": the longest that fits GS k.
	var d Doc
	if _, err := d.Code128(strings.Repeat("{", 126), 2, 64, HRIBelow).Bytes(); err != nil {
		t.Errorf("126 '{': %v", err)
	}
}

func TestEncodeText(t *testing.T) {
	for _, tc := range []struct {
		s    string
		m    TextMode
		want string // hex, or "" for an ErrUnencodable
	}{
		{"abc 123", TextGBK, "61 62 63 20 31 32 33"},
		{"张三", TextGBK, "D5 C5 C8 FD"},
		{"·", TextGBK, "A1 A4"},
		{"￥", TextGBK, "A3 A4"},
		{"𠮷", TextGBK, ""}, // outside GBK: a real surname variant
		{"😀", TextGBK, ""}, // emoji
		{"€", TextGBK, ""}, // x/text maps it to the single byte 80
		{"¥", TextGBK, ""}, // only the fullwidth ￥ is in GBK
		{"\uFFFD", TextGBK, ""},
		{"😀", TextGB18030, "94 39 FC 36"},
		{"€", TextGB18030, "A2 E3"},
		{"a\tb", TextGB18030, ""},
		{"a\x1b@", TextGBK, ""},
		{"a\u0085", TextGB18030, ""}, // C1 control
		{"a\xffb", TextGB18030, ""},  // invalid UTF-8
		{"\ue637", TextGB18030, ""},  // private use: x/text reads it back as another
		{"\U000F0000", TextGB18030, ""},
	} {
		got, err := EncodeText(tc.s, tc.m)
		if tc.want == "" {
			if !errors.Is(err, ErrUnencodable) {
				t.Errorf("EncodeText(%q, %v) = % X, %v; want ErrUnencodable", tc.s, tc.m, got, err)
			}
			continue
		}
		if err != nil || !bytes.Equal(got, unhex(t, tc.want)) {
			t.Errorf("EncodeText(%q, %v) = % X, %v; want %s", tc.s, tc.m, got, err, tc.want)
		}
	}
	_, err := EncodeText("持卡人𠮷野", TextGBK)
	if err == nil || !strings.Contains(err.Error(), "𠮷") || !strings.Contains(err.Error(), "U+20BB7") {
		t.Errorf("error %v does not name the character", err)
	}
}

func TestTextMode(t *testing.T) {
	for _, m := range []TextMode{TextGB18030, TextGBK, TextRaster} {
		got, err := ParseTextMode(m.String())
		if err != nil || got != m {
			t.Errorf("ParseTextMode(%q) = %v, %v", m.String(), got, err)
		}
	}
	if _, err := ParseTextMode("utf8"); err == nil {
		t.Error("ParseTextMode(utf8): no error")
	}
	if s := TextMode(7).String(); s != "TextMode(7)" {
		t.Errorf("TextMode(7).String() = %q", s)
	}
}

func TestBitmap(t *testing.T) {
	b := NewBitmap(10, 3)
	if b.Stride != 2 || len(b.Pix) != 6 {
		t.Fatalf("stride %d, %d bytes", b.Stride, len(b.Pix))
	}
	b.Set(9, 2, true)
	b.Set(-1, 0, true) // outside: ignored
	b.Set(10, 0, true)
	if !b.Black(9, 2) || b.Black(8, 2) || b.Pix[5] != 0x40 {
		t.Fatalf("pix % X", b.Pix)
	}
	if b.At(9, 2) != (color.Gray{}) || b.At(0, 0) != (color.Gray{Y: 0xFF}) {
		t.Error("At does not match the dots")
	}
	b.Set(9, 2, false)
	if b.Black(9, 2) {
		t.Error("Set false left the dot black")
	}
}

func TestBitmapFrom(t *testing.T) {
	img := image.NewNRGBA(image.Rect(5, 5, 9, 6)) // offset bounds
	img.Set(5, 5, color.Black)
	img.Set(6, 5, color.NRGBA{R: 0x60, G: 0x60, B: 0x60, A: 0xFF}) // dark grey
	img.Set(7, 5, color.NRGBA{R: 0xC0, G: 0xC0, B: 0xC0, A: 0xFF}) // light grey
	img.Set(8, 5, color.NRGBA{A: 0x20})                            // mostly transparent black
	b := BitmapFrom(img)
	if b.Width != 4 || b.Height != 1 {
		t.Fatalf("size %dx%d", b.Width, b.Height)
	}
	for x, want := range []bool{true, true, false, false} {
		if b.Black(x, 0) != want {
			t.Errorf("dot %d black = %v, want %v", x, !want, want)
		}
	}
}
