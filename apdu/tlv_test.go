package apdu_test

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/cardd/cardd/apdu"
)

// ef15 is a 30-byte public-information file (spec "Files"): issuer id, type
// 02 EP, version 01, application serial, start and expiry dates, card type.
// It holds 00 and FF bytes, which are data here, not padding.
const ef15 = "3150 0100 0000 FFFF" + "02" + "01" + "2100 0000 0000 1234 5678" + "20240101" + "20341231" + "0100"

// fci is the answer to SELECT of the city-card EP/ED application.
const fci = "6F 33" +
	" 84 09 A0 00 00 00 03 86 98 07 01" +
	" A5 26" +
	"  5F 2D 02 7A 68" +
	"  9F 0C 1E " + ef15

func TestParseTLVFCI(t *testing.T) {
	t.Parallel()
	in := h(t, fci)
	if len(h(t, ef15)) != 30 {
		t.Fatal("test EF 0x15 is not 30 bytes")
	}
	ts, err := apdu.ParseTLV(in)
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 1 || ts[0].Tag != 0x6F || !ts[0].Constructed() || !bytes.Equal(ts[0].Value, in[2:]) {
		t.Fatalf("top level = %+v", ts)
	}
	kids := ts[0].Children
	if len(kids) != 2 || kids[0].Tag != 0x84 || kids[0].Constructed() || kids[1].Tag != 0xA5 || !kids[1].Constructed() {
		t.Fatalf("6F children = %+v", kids)
	}
	if kids[0].Children != nil {
		t.Fatal("primitive 84 has children")
	}
	if len(kids[1].Children) != 2 {
		t.Fatalf("A5 children = %+v", kids[1].Children)
	}

	tests := []struct {
		tag  uint32
		want string
	}{
		{0x84, "A0 00 00 00 03 86 98 07 01"},
		{0x5F2D, "7A68"},
		{0x9F0C, ef15},
		{0xA5, "5F2D027A68 9F0C1E" + ef15},
		{0x6F, fci[6:]},
	}
	for _, tt := range tests {
		got, ok := apdu.FindTLV(ts, tt.tag)
		if !ok || got.Tag != tt.tag || !bytes.Equal(got.Value, h(t, tt.want)) {
			t.Errorf("FindTLV(%X) = %X %X, %v; want %s", tt.tag, got.Tag, got.Value, ok, tt.want)
		}
	}
	for _, tag := range []uint32{0x88, 0x9F, 0x0C, 0x9F0D, 0x50} {
		if got, ok := apdu.FindTLV(ts, tag); ok {
			t.Errorf("FindTLV(%X) found %+v", tag, got)
		}
	}
	if _, ok := apdu.FindTLV(nil, 0x84); ok {
		t.Error("FindTLV(nil) found something")
	}
}

func TestFindTLVDepthFirst(t *testing.T) {
	t.Parallel()
	// The first 50 in document order is the nested one inside 61, not the later top-level one.
	ts, err := apdu.ParseTLV(h(t, "61 03 50 01 AA  50 01 BB"))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := apdu.FindTLV(ts, 0x50); !bytes.Equal(got.Value, []byte{0xAA}) {
		t.Fatalf("FindTLV found %X", got.Value)
	}
}

func TestParseTLV(t *testing.T) {
	t.Parallel()
	type obj struct {
		tag uint32
		val string
	}
	tests := []struct {
		name string
		in   string
		want []obj // top-level objects only
	}{
		{"empty", "", nil},
		{"padding only", "00 FF 00 FF", nil},
		{"zero length", "84 00", []obj{{0x84, ""}}},
		{"two-byte tag 9F0C", "9F0C 02 AABB", []obj{{0x9F0C, "AABB"}}},
		{"two-byte tag 5F2D", "5F2D 04 7A68656E", []obj{{0x5F2D, "7A68656E"}}},
		{"three-byte tag", "DF8101 01 05", []obj{{0xDF8101, "05"}}},
		{"two-byte tag, high second byte", "9F7F 01 05", []obj{{0x9F7F, "05"}}},
		{"long length 81", "53 81 80 " + hx(fill(128)), []obj{{0x53, hx(fill(128))}}},
		{"long length 81 for a short value", "53 81 02 AABB", []obj{{0x53, "AABB"}}},
		{"long length 82", "53 82 0100 " + hx(fill(256)), []obj{{0x53, hx(fill(256))}}},
		{"long length 83", "53 83 000101 " + hx(fill(257)), []obj{{0x53, hx(fill(257))}}},
		{"padding before, between, after", "00 FF 84 01 AA 00 00 FF 50 01 BB FF 00",
			[]obj{{0x84, "AA"}, {0x50, "BB"}}},
		{"padding inside a constructed object", "A5 07 00 88 01 15 FF 00 00",
			[]obj{{0xA5, "00 88 01 15 FF 00 00"}}},
		{"00 and FF inside a value are data", "50 04 00FF00FF", []obj{{0x50, "00FF00FF"}}},
		{"empty constructed", "A5 00 84 01 01", []obj{{0xA5, ""}, {0x84, "01"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts, err := apdu.ParseTLV(h(t, tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if len(ts) != len(tt.want) {
				t.Fatalf("got %d objects, want %d: %+v", len(ts), len(tt.want), ts)
			}
			for i, w := range tt.want {
				if ts[i].Tag != w.tag || !bytes.Equal(ts[i].Value, h(t, w.val)) {
					t.Errorf("object %d = %X %X, want %X %s", i, ts[i].Tag, ts[i].Value, w.tag, w.val)
				}
			}
		})
	}
}

func TestParseTLVConstructedChildren(t *testing.T) {
	t.Parallel()
	ts, err := apdu.ParseTLV(h(t, "A5 07 00 88 01 15 FF 00 00"))
	if err != nil {
		t.Fatal(err)
	}
	if c := ts[0].Children; len(c) != 1 || c[0].Tag != 0x88 || !bytes.Equal(c[0].Value, []byte{0x15}) {
		t.Fatalf("children = %+v", c)
	}
}

func TestParseTLVMalformed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in string
	}{
		{"truncated value", "84 09 A0 00 00 00 03"},
		{"truncated value, long length", "53 81 80 0102"},
		{"length missing", "84"},
		{"length missing after a two-byte tag", "9F0C"},
		{"truncated long length 81", "53 81"},
		{"truncated long length 82", "53 82 01"},
		{"truncated long length 83", "53 83 0001"},
		{"truncated tag", "9F"},
		{"truncated three-byte tag", "DF 81"},
		{"four-byte tag", "DF 81 81 01 01 AA"},
		{"indefinite length 80", "6F 80 84 01 AA 00 00"},
		{"length form 84", "53 84 00000001 AA"},
		{"length form FF", "53 FF AA"},
		{"bad child of a constructed object", "A5 05 9F0C 05 AABB"},
		{"bad grandchild", "6F 06 A5 04 9F0C 03 AA"},
		{"good object then garbage", "84 01 AA 9F"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts, err := apdu.ParseTLV(h(t, tt.in))
			if !errors.Is(err, apdu.ErrMalformed) {
				t.Fatalf("ParseTLV = %+v, %v; want ErrMalformed", ts, err)
			}
			if ts != nil {
				t.Fatalf("partial result %+v returned with the error", ts)
			}
		})
	}
}

// nest wraps a primitive 50 01 AA in n constructed A5 objects.
func nest(n int) []byte {
	b := apdu.AppendTLV(nil, 0x50, []byte{0xAA})
	for range n {
		b = apdu.AppendTLV(nil, 0xA5, b)
	}
	return b
}

func TestParseTLVDepth(t *testing.T) {
	t.Parallel()
	ts, err := apdu.ParseTLV(nest(8))
	if err != nil {
		t.Fatalf("8 levels of nesting: %v", err)
	}
	if got, ok := apdu.FindTLV(ts, 0x50); !ok || !bytes.Equal(got.Value, []byte{0xAA}) {
		t.Fatalf("innermost object not found: %+v", got)
	}
	for _, n := range []int{9, 10, 100} {
		if _, err := apdu.ParseTLV(nest(n)); !errors.Is(err, apdu.ErrMalformed) {
			t.Errorf("%d levels of nesting: error %v, want ErrMalformed", n, err)
		}
	}
	// Deep nesting of empty constructed objects is refused too.
	b := []byte{}
	for range 9 {
		b = apdu.AppendTLV(nil, 0xA5, b)
	}
	if _, err := apdu.ParseTLV(b); !errors.Is(err, apdu.ErrMalformed) {
		t.Errorf("9 empty levels: error %v, want ErrMalformed", err)
	}
}

func TestAppendTLV(t *testing.T) {
	t.Parallel()
	tests := []struct {
		length int
		header string // length field
	}{
		{0, "00"},
		{1, "01"},
		{127, "7F"},
		{128, "8180"},
		{255, "81FF"},
		{256, "820100"},
		{65535, "82FFFF"},
		{65536, "83010000"},
	}
	tags := []struct {
		tag uint32
		enc string
	}{
		{0x84, "84"},
		{0x9F0C, "9F0C"},
		{0x5F2D, "5F2D"},
		{0xDF8101, "DF8101"},
	}
	for _, tg := range tags {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%X/%d", tg.tag, tt.length), func(t *testing.T) {
				val := fill(tt.length)
				prefix := []byte{0xEE}
				b := apdu.AppendTLV(prefix, tg.tag, val)
				want := append(h(t, "EE"+tg.enc+tt.header), val...)
				if !bytes.Equal(b, want) {
					t.Fatalf("AppendTLV = %s, want %s", shorten(b), shorten(want))
				}
				ts, err := apdu.ParseTLV(b[1:])
				if err != nil {
					t.Fatal(err)
				}
				if len(ts) != 1 || ts[0].Tag != tg.tag || !bytes.Equal(ts[0].Value, val) {
					t.Fatalf("round trip = %+v", ts)
				}
			})
		}
	}
}

func TestAppendTLVBuildsFCI(t *testing.T) {
	t.Parallel()
	a5 := apdu.AppendTLV(nil, 0x5F2D, []byte("zh"))
	a5 = apdu.AppendTLV(a5, 0x9F0C, h(t, ef15))
	in := apdu.AppendTLV(nil, 0x84, h(t, "A0 00 00 00 03 86 98 07 01"))
	in = apdu.AppendTLV(in, 0xA5, a5)
	got := apdu.AppendTLV(nil, 0x6F, in)
	if !bytes.Equal(got, h(t, fci)) {
		t.Fatalf("built FCI % X\nwant          % X", got, h(t, fci))
	}
}
