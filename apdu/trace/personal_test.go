package trace

import (
	"bytes"
	"testing"
)

// holderFile is an EF 0x16 with every byte set, so blanking shows.
func holderFile() []byte {
	b := make([]byte, 55)
	for i := range b {
		b[i] = byte(0xA0 + i%16)
	}
	return b
}

func withSW(data []byte, sw ...byte) []byte { return append(bytes.Clone(data), sw...) }

func TestBlankPersonal(t *testing.T) {
	h := holderFile()
	info := bytes.Repeat([]byte{0x31}, 30)
	tr := &Trace{Exchanges: []Exchange{
		{Command: mustHex("00A4040009A0000000038698070100"), Response: withSW(info, 0x90, 0x00)},
		{Command: mustHex("00B095001E"), Response: withSW(info, 0x90, 0x00)},
		// By SFI, whole.
		{Command: mustHex("00B0960037"), Response: withSW(h, 0x90, 0x00)},
		// By SFI from offset 20, the rest by GET RESPONSE.
		{Command: mustHex("00B0961400"), Response: withSW(h[20:30], 0x61, 0x19)},
		{Command: mustHex("00C0000019"), Response: withSW(h[30:55], 0x90, 0x00)},
		// A GET RESPONSE of something else is left alone.
		{Command: mustHex("00C000001E"), Response: withSW(info, 0x90, 0x00)},
		// SELECT of file 0016, then READ BINARY by offset 50.
		{Command: mustHex("00A40000020016"), Response: mustHex("9000")},
		{Command: mustHex("00B0003205"), Response: withSW(h[50:55], 0x90, 0x00)},
		// A SELECT that failed leaves EF 0016 current.
		{Command: mustHex("00A40000020015"), Response: mustHex("6A82")},
		{Command: mustHex("00B0000002"), Response: withSW(h[0:2], 0x90, 0x00)},
		// SELECT of EF 0015: its READ BINARY is no one's name.
		{Command: mustHex("00A40000020015"), Response: mustHex("9000")},
		{Command: mustHex("00B000001E"), Response: withSW(info, 0x90, 0x00)},
	}}
	n := tr.BlankPersonal()
	resp := func(i int) []byte { r := tr.Exchanges[i].Response; return r[:len(r)-2] }
	blank := func(b []byte) bool { return bytes.Count(b, []byte{0}) == len(b) }

	if !bytes.Equal(resp(0), info) || !bytes.Equal(resp(1), info) || !bytes.Equal(resp(5), info) || !bytes.Equal(resp(11), info) {
		t.Error("EF 0x15 or an FCI was changed")
	}
	whole := resp(2)
	if !bytes.Equal(whole[:2], h[:2]) || !blank(whole[2:54]) || whole[54] != h[54] {
		t.Errorf("EF 0x16 by SFI: % X", whole)
	}
	if part := append(resp(3), resp(4)...); !blank(part[:34]) || part[34] != h[54] {
		t.Errorf("EF 0x16 from offset 20 through GET RESPONSE: % X", part)
	}
	if r := resp(7); !blank(r[:4]) || r[4] != h[54] {
		t.Errorf("EF 0016 selected, offset 50: % X", r)
	}
	if r := resp(9); !bytes.Equal(r, h[:2]) {
		t.Errorf("EF 0016 offset 0-1 (card type, staff flag) after a failed SELECT: % X", r)
	}
	if sw := tr.Exchanges[3].Response[10:]; !bytes.Equal(sw, []byte{0x61, 0x19}) {
		t.Errorf("status word changed: % X", sw)
	}
	if want := 52 + 34 + 4; n != want {
		t.Errorf("blanked %d bytes, want %d", n, want)
	}
	if again := tr.BlankPersonal(); again != 0 {
		t.Errorf("blanking twice changed %d more bytes", again)
	}
}
