package mifare

import (
	"bytes"
	"errors"
	"math"
	"testing"
)

func TestEncodeValueSpec(t *testing.T) {
	// Spec "MIFARE Classic wallet": 1000 in block 5.
	want := unhex(t, "E8030000 17FCFFFF E8030000 05FA05FA")
	got := EncodeValue(1000, 5)
	if !bytes.Equal(got[:], want) {
		t.Fatalf("EncodeValue(1000, 5) = %X, want %X", got, want)
	}
	v, err := DecodeValue(want, 5)
	if err != nil || v != 1000 {
		t.Fatalf("DecodeValue = %d, %v; want 1000", v, err)
	}
}

func TestValueRoundTrip(t *testing.T) {
	for _, v := range []int32{0, 1, -1, 1000, math.MaxInt32, math.MinInt32} {
		for _, addr := range []byte{0, 5, 0x3E, 0xFF} {
			b := EncodeValue(v, addr)
			got, err := DecodeValue(b[:], addr)
			if err != nil || got != v {
				t.Errorf("value %d addr %d: got %d, %v", v, addr, got, err)
			}
		}
	}
}

func TestDecodeValueRefusesEveryBrokenByte(t *testing.T) {
	// Each byte of a value block is covered by a copy: changing any one of
	// them, in any bit, must make the block invalid, never another value.
	good := EncodeValue(123456, 9)
	for i := range BlockSize {
		for bit := range 8 {
			b := good
			b[i] ^= 1 << bit
			if v, err := DecodeValue(b[:], 9); !errors.Is(err, ErrNotValueBlock) {
				t.Errorf("byte %d bit %d flipped: got %d, %v; want ErrNotValueBlock", i, bit, v, err)
			}
		}
	}
}

func TestDecodeValueRefuses(t *testing.T) {
	good := EncodeValue(1000, 5)
	for name, c := range map[string]struct {
		b    []byte
		addr byte
	}{
		"other block's address": {good[:], 4},
		"short":                 {good[:15], 5},
		"long":                  {append(good[:], 0), 5},
		"empty":                 {nil, 5},
		"all zero":              {make([]byte, 16), 0},
		"all FF":                {bytes.Repeat([]byte{0xFF}, 16), 0xFF},
		"data block":            {[]byte("hello, MIFARE!!!"), 'h'},
	} {
		if v, err := DecodeValue(c.b, c.addr); !errors.Is(err, ErrNotValueBlock) {
			t.Errorf("%s: got %d, %v; want ErrNotValueBlock", name, v, err)
		}
	}
}

func TestLayout(t *testing.T) {
	if SectorOf(5) != 1 || TrailerOf(1) != 7 || !IsTrailer(7) || IsTrailer(4) || TrailerOf(15) != 63 {
		t.Error("layout helpers disagree with 4 blocks per sector")
	}
}
