package apdu_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/cardd/cardd/apdu"
)

// h decodes hex, ignoring spaces, for readable byte literals.
func h(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// fill returns n bytes counting up from 1, so that shifted or truncated data shows.
func fill(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i + 1)
	}
	return b
}

func cmdEqual(a, b apdu.Command) bool {
	return a.CLA == b.CLA && a.INS == b.INS && a.P1 == b.P1 && a.P2 == b.P2 &&
		a.Ne == b.Ne && bytes.Equal(a.Data, b.Data)
}

func hx(b []byte) string { return strings.ToUpper(hex.EncodeToString(b)) }

func TestCommandBytes(t *testing.T) {
	t.Parallel()
	d255, d256, d65535 := fill(255), fill(256), fill(65535)
	tests := []struct {
		name string
		cmd  apdu.Command
		want []byte
	}{
		{"case 1", apdu.Command{CLA: 0x00, INS: 0x70, P1: 0x80, P2: 0x01}, h(t, "00708001")},
		{"case 2S Ne=1", apdu.Command{INS: 0x84, Ne: 1}, h(t, "0084000001")},
		{"case 2S GET BALANCE", apdu.Command{CLA: 0x80, INS: 0x5C, P2: 0x02, Ne: 4}, h(t, "805C000204")},
		{"case 2S Ne=255", apdu.Command{INS: 0xB0, P1: 0x95, Ne: 255}, h(t, "00B09500FF")},
		{"case 2S Ne=256 is Le=00", apdu.Command{INS: 0xB0, P1: 0x95, Ne: 256}, h(t, "00B0950000")},
		{"case 2E Ne=257", apdu.Command{INS: 0xB0, Ne: 257}, h(t, "00B00000 00 0101")},
		{"case 2E Ne=65535", apdu.Command{INS: 0xB0, Ne: 65535}, h(t, "00B00000 00 FFFF")},
		{"case 2E Ne=65536 is Le=0000", apdu.Command{INS: 0xB0, Ne: 65536}, h(t, "00B00000 00 0000")},
		{"case 3S SELECT EF", apdu.Command{INS: 0xA4, Data: h(t, "1001")}, h(t, "00A40000 02 1001")},
		{"case 3S VERIFY", apdu.Command{INS: 0x20, Data: h(t, "123456")}, h(t, "00200000 03 123456")},
		{"case 3S Nc=1", apdu.Command{INS: 0xDA, Data: []byte{0xFF}}, h(t, "00DA0000 01 FF")},
		{"case 3S Nc=255", apdu.Command{INS: 0xDA, Data: d255}, append(h(t, "00DA0000 FF"), d255...)},
		{"case 3E Nc=256", apdu.Command{INS: 0xDA, Data: d256}, append(h(t, "00DA0000 00 0100"), d256...)},
		{"case 3E Nc=65535", apdu.Command{INS: 0xDA, Data: d65535}, append(h(t, "00DA0000 00 FFFF"), d65535...)},
		{"case 4S SELECT by name", apdu.Command{INS: 0xA4, P1: 0x04, Data: []byte("1PAY.SYS.DDF01"), Ne: 256},
			h(t, "00A40400 0E 315041592E5359532E4444463031 00")},
		{"case 4S INITIALIZE FOR LOAD", apdu.Command{CLA: 0x80, INS: 0x50, P2: 0x02, Data: h(t, "01 00001000 001122334455"), Ne: 16},
			h(t, "80500002 0B 01 00001000 001122334455 10")},
		{"case 4S Nc=255 Ne=256", apdu.Command{INS: 0xDA, Data: d255, Ne: 256},
			append(append(h(t, "00DA0000 FF"), d255...), 0x00)},
		{"case 4E Nc=256 Ne=1", apdu.Command{INS: 0xDA, Data: d256, Ne: 1},
			append(append(h(t, "00DA0000 00 0100"), d256...), 0x00, 0x01)},
		{"case 4E Nc=256 Ne=256", apdu.Command{INS: 0xDA, Data: d256, Ne: 256},
			append(append(h(t, "00DA0000 00 0100"), d256...), 0x01, 0x00)},
		{"case 4E Nc=1 Ne=257", apdu.Command{INS: 0xDA, Data: []byte{0xAB}, Ne: 257},
			h(t, "00DA0000 00 0001 AB 0101")},
		{"case 4E Nc=255 Ne=65536", apdu.Command{INS: 0xDA, Data: d255, Ne: 65536},
			append(append(h(t, "00DA0000 00 00FF"), d255...), 0x00, 0x00)},
		{"case 4E Nc=65535 Ne=65536", apdu.Command{INS: 0xDA, Data: d65535, Ne: 65536},
			append(append(h(t, "00DA0000 00 FFFF"), d65535...), 0x00, 0x00)},
		{"empty non-nil Data is case 1", apdu.Command{INS: 0x70, Data: []byte{}}, h(t, "00700000")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.cmd.Bytes()
			if err != nil {
				t.Fatalf("Bytes: %v", err)
			}
			if !bytes.Equal(got, tt.want) {
				t.Fatalf("Bytes:\n got %s\nwant %s", shorten(got), shorten(tt.want))
			}
			back, err := apdu.ParseCommand(got)
			if err != nil {
				t.Fatalf("ParseCommand(Bytes()): %v", err)
			}
			if !cmdEqual(back, tt.cmd) {
				t.Fatalf("round trip: got %+v, want %+v", summary(back), summary(tt.cmd))
			}
			again, _ := back.Bytes()
			if !bytes.Equal(again, got) {
				t.Fatalf("re-encoding differs: %s", shorten(again))
			}
		})
	}
}

func shorten(b []byte) string {
	if len(b) > 40 {
		return hx(b[:20]) + "..." + hx(b[len(b)-8:]) + " (" + strconv.Itoa(len(b)) + " bytes)"
	}
	return hx(b)
}

func summary(c apdu.Command) string {
	return hx([]byte{c.CLA, c.INS, c.P1, c.P2}) + " Nc=" + strconv.Itoa(len(c.Data)) + " Ne=" + strconv.Itoa(c.Ne)
}

func TestCommandBytesOutOfRange(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cmd  apdu.Command
	}{
		{"Nc 65536", apdu.Command{Data: make([]byte, 65536)}},
		{"Ne -1", apdu.Command{Ne: -1}},
		{"Ne 65537", apdu.Command{Ne: 65537}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.cmd.Bytes()
			if !errors.Is(err, apdu.ErrMalformed) || b != nil {
				t.Fatalf("Bytes() = %x, %v; want nil, ErrMalformed", b, err)
			}
			if s := tt.cmd.String(); !strings.HasPrefix(s, "invalid command") {
				t.Fatalf("String() = %q", s)
			}
		})
	}
}

func TestCommandString(t *testing.T) {
	t.Parallel()
	c := apdu.Command{CLA: 0x80, INS: 0x5C, P2: 0x02, Ne: 4}
	if got, want := c.String(), "80 5C 00 02 04"; got != want {
		t.Fatalf("String() = %q, want %q", got, want)
	}
}

// Extended encodings of commands that fit the short form are legal and parse,
// but re-encode shorter: the Command survives the round trip, the bytes do not.
func TestParseCommandExtendedButShort(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		in        string
		want      apdu.Command
		canonical string
	}{
		{"2E Le=0100", "00B00000 00 0100", apdu.Command{INS: 0xB0, Ne: 256}, "00B00000 00"},
		{"2E Le=0004", "805C0002 00 0004", apdu.Command{CLA: 0x80, INS: 0x5C, P2: 2, Ne: 4}, "805C0002 04"},
		{"3E Lc=0002", "00A40000 00 0002 1001", apdu.Command{INS: 0xA4, Data: []byte{0x10, 0x01}}, "00A40000 02 1001"},
		{"4E Lc=0002 Le=0010", "00A40000 00 0002 1001 0010", apdu.Command{INS: 0xA4, Data: []byte{0x10, 0x01}, Ne: 16}, "00A40000 02 1001 10"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := apdu.ParseCommand(h(t, tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if !cmdEqual(c, tt.want) {
				t.Fatalf("got %s, want %s", summary(c), summary(tt.want))
			}
			b, err := c.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b, h(t, tt.canonical)) {
				t.Fatalf("Bytes() = %X, want %s", b, tt.canonical)
			}
		})
	}
}

func TestParseCommandMalformed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in string
	}{
		{"empty", ""},
		{"3 bytes", "00A400"},
		{"short Lc longer than data", "00A40000 02 10"},
		{"short Lc shorter than data", "00A40000 02 1001 0000"},
		{"short Lc=FF one byte", "00DA0000 FF 01"},
		{"2-byte body 00 xx", "00B00000 00 10"},
		{"2-byte body 00 00", "00B00000 0000"},
		{"extended Lc 0", "00DA0000 00 0000 AB"},
		{"extended Lc 0 with Le", "00DA0000 00 0000 0100"},
		{"extended Lc longer than data", "00DA0000 00 0003 AABB"},
		{"extended Lc with 1-byte Le", "00DA0000 00 0001 AB 10"},
		{"extended Lc with 3-byte Le", "00DA0000 00 0001 AB 000010"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := apdu.ParseCommand(h(t, tt.in))
			if !errors.Is(err, apdu.ErrMalformed) {
				t.Fatalf("ParseCommand(%s) = %s, %v; want ErrMalformed", tt.in, summary(c), err)
			}
		})
	}
}

func TestParseCommandCopiesData(t *testing.T) {
	t.Parallel()
	in := h(t, "00A40000 02 1001 00")
	c, err := apdu.ParseCommand(in)
	if err != nil {
		t.Fatal(err)
	}
	in[5] = 0xEE
	if c.Data[0] != 0x10 {
		t.Fatal("Command.Data aliases the input")
	}
}

func TestParseResponse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		in       string
		wantData string
		wantSW   uint16
		ok       bool
	}{
		{"9000 alone", "9000", "", 0x9000, true},
		{"balance", "00001000 9000", "00001000", 0x9000, true},
		{"6A82", "6A82", "", 0x6A82, false},
		{"data with warning", "6F10 6283", "6F10", 0x6283, false},
		{"61xx", "6110", "", 0x6110, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := h(t, tt.in)
			r, err := apdu.ParseResponse(in)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(r.Data, h(t, tt.wantData)) || r.SW != tt.wantSW {
				t.Fatalf("got %X %04X, want %s %04X", r.Data, r.SW, tt.wantData, tt.wantSW)
			}
			if r.OK() != tt.ok {
				t.Fatalf("OK() = %v", r.OK())
			}
			if !bytes.Equal(r.Bytes(), in) {
				t.Fatalf("Bytes() = %X, want %X", r.Bytes(), in)
			}
			err = r.Err()
			if tt.ok != (err == nil) {
				t.Fatalf("Err() = %v", err)
			}
			if err != nil {
				var se *apdu.StatusError
				if !errors.As(err, &se) || se.SW != tt.wantSW {
					t.Fatalf("Err() = %#v, want *StatusError %04X", err, tt.wantSW)
				}
			}
			if len(in) > 2 {
				in[0] ^= 0xFF
				if r.Data[0] == in[0] {
					t.Fatal("Response.Data aliases the input")
				}
			}
		})
	}
	for _, in := range []string{"", "90"} {
		if _, err := apdu.ParseResponse(h(t, in)); !errors.Is(err, apdu.ErrMalformed) {
			t.Errorf("ParseResponse(%q) error = %v, want ErrMalformed", in, err)
		}
	}
}
