package apdu_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cardd/cardd/apdu"
)

// exchange is one scripted round: the command the fake card expects (hex) and
// what it answers (hex), or a transport error.
type exchange struct {
	cmd  string
	resp string
	err  error
}

// script is a fake card: a TransmitterFunc that checks every command against
// the script, records it, and answers as scripted.
type script struct {
	t    *testing.T
	want []exchange
	sent [][]byte
}

func newScript(t *testing.T, ex ...exchange) *script { return &script{t: t, want: ex} }

func (s *script) Transmitter() apdu.Transmitter {
	return apdu.TransmitterFunc(func(cmd []byte) ([]byte, error) {
		s.t.Helper()
		s.sent = append(s.sent, append([]byte(nil), cmd...))
		i := len(s.sent) - 1
		if i >= len(s.want) {
			s.t.Fatalf("unexpected command #%d: % X", i+1, cmd)
		}
		ex := s.want[i]
		if want := h(s.t, ex.cmd); !bytes.Equal(cmd, want) {
			s.t.Fatalf("command #%d = % X, want % X", i+1, cmd, want)
		}
		if ex.err != nil {
			return nil, ex.err
		}
		return h(s.t, ex.resp), nil
	})
}

// done checks the whole script was played.
func (s *script) done() {
	s.t.Helper()
	if len(s.sent) != len(s.want) {
		s.t.Fatalf("%d commands sent, script has %d", len(s.sent), len(s.want))
	}
}

var errTransport = errors.New("scard: card removed")

func TestTransceive(t *testing.T) {
	t.Parallel()
	selectAID := apdu.Command{INS: 0xA4, P1: 0x04, Data: h(t, "A0 00 00 00 03 86 98 07 01"), Ne: 256}
	readEF15 := apdu.Command{INS: 0xB0, P1: 0x95, Ne: 256}
	d16, d8 := hx(fill(16)), hx(fill(8))
	tests := []struct {
		name     string
		cmd      apdu.Command
		script   []exchange
		wantData string
		wantSW   uint16 // 0: success
		wantErr  error  // errors.Is target, besides the status
	}{
		{
			name:     "plain 9000",
			cmd:      apdu.Command{CLA: 0x80, INS: 0x5C, P2: 0x02, Ne: 4},
			script:   []exchange{{cmd: "805C000204", resp: "00001000 9000"}},
			wantData: "00001000",
		},
		{
			name: "61xx across three GET RESPONSEs",
			cmd:  selectAID,
			script: []exchange{
				{cmd: "00A40400 09 A00000000386980701 00", resp: "6110"},
				{cmd: "00C0000010", resp: d16 + "6110"},
				{cmd: "00C0000010", resp: d16 + "6108"},
				{cmd: "00C0000008", resp: d8 + "9000"},
			},
			wantData: d16 + d16 + d8,
		},
		{
			name: "61xx data sent with the first answer is kept",
			cmd:  selectAID,
			script: []exchange{
				{cmd: "00A40400 09 A00000000386980701 00", resp: "AABB 6102"},
				{cmd: "00C0000002", resp: "CCDD 9000"},
			},
			wantData: "AABBCCDD",
		},
		{
			name: "6100 fetches with Le=00",
			cmd:  readEF15,
			script: []exchange{
				{cmd: "00B0950000", resp: "6100"},
				{cmd: "00C0000000", resp: d16 + "9000"},
			},
			wantData: d16,
		},
		{
			name: "proprietary class 80 fetches with 00 C0",
			cmd:  apdu.Command{CLA: 0x80, INS: 0x50, P2: 0x02, Data: h(t, "01 00001000 001122334455"), Ne: 16},
			script: []exchange{
				{cmd: "80500002 0B 01 00001000 001122334455 10", resp: "6110"},
				{cmd: "00C0000010", resp: d16 + "9000"},
			},
			wantData: d16,
		},
		{
			name: "6Cxx resends with Le=xx",
			cmd:  readEF15,
			script: []exchange{
				{cmd: "00B0950000", resp: "6C1E"},
				{cmd: "00B095001E", resp: hx(fill(30)) + "9000"},
			},
			wantData: hx(fill(30)),
		},
		{
			name: "6Cxx then 61xx",
			cmd:  readEF15,
			script: []exchange{
				{cmd: "00B0950000", resp: "6C1E"},
				{cmd: "00B095001E", resp: hx(fill(10)) + "6114"},
				{cmd: "00C0000014", resp: hx(fill(20)) + "9000"},
			},
			wantData: hx(fill(10)) + hx(fill(20)),
		},
		{
			name: "6C00 means Le=00",
			cmd:  apdu.Command{INS: 0xB0, P1: 0x95, Ne: 30},
			script: []exchange{
				{cmd: "00B095001E", resp: "6C00"},
				{cmd: "00B0950000", resp: "9000"},
			},
		},
		{
			name: "6Cxx is obeyed once only",
			cmd:  readEF15,
			script: []exchange{
				{cmd: "00B0950000", resp: "6C1E"},
				{cmd: "00B095001E", resp: "6C1F"},
			},
			wantSW: 0x6C1F,
		},
		{
			name:    "final 6A82",
			cmd:     apdu.Command{INS: 0xA4, Data: h(t, "1001")},
			script:  []exchange{{cmd: "00A40000021001", resp: "6A82"}},
			wantSW:  0x6A82,
			wantErr: apdu.ErrFileNotFound,
		},
		{
			name: "final 6A82 after 6Cxx",
			cmd:  readEF15,
			script: []exchange{
				{cmd: "00B0950000", resp: "6C1E"},
				{cmd: "00B095001E", resp: "6A82"},
			},
			wantSW:  0x6A82,
			wantErr: apdu.ErrFileNotFound,
		},
		{
			name:     "6283 keeps the FCI data beside the error",
			cmd:      selectAID,
			script:   []exchange{{cmd: "00A40400 09 A00000000386980701 00", resp: "6F00 6283"}},
			wantData: "6F00",
			wantSW:   0x6283,
			wantErr:  apdu.ErrFileInvalidated,
		},
		{
			name: "error status ending a chain keeps the data so far",
			cmd:  readEF15,
			script: []exchange{
				{cmd: "00B0950000", resp: "6102"},
				{cmd: "00C0000002", resp: "AABB 6110"},
				{cmd: "00C0000010", resp: "6F00"},
			},
			wantData: "AABB",
			wantSW:   0x6F00,
		},
		{
			name:    "transport error",
			cmd:     readEF15,
			script:  []exchange{{cmd: "00B0950000", err: errTransport}},
			wantErr: errTransport,
		},
		{
			name: "transport error during GET RESPONSE",
			cmd:  readEF15,
			script: []exchange{
				{cmd: "00B0950000", resp: "6110"},
				{cmd: "00C0000010", err: errTransport},
			},
			wantErr: errTransport,
		},
		{
			name: "transport error on the 6Cxx resend",
			cmd:  readEF15,
			script: []exchange{
				{cmd: "00B0950000", resp: "6C1E"},
				{cmd: "00B095001E", err: errTransport},
			},
			wantErr: errTransport,
		},
		{
			name:    "1-byte answer",
			cmd:     readEF15,
			script:  []exchange{{cmd: "00B0950000", resp: "90"}},
			wantErr: apdu.ErrMalformed,
		},
		{
			name:    "empty answer",
			cmd:     readEF15,
			script:  []exchange{{cmd: "00B0950000", resp: ""}},
			wantErr: apdu.ErrMalformed,
		},
		{
			name: "1-byte answer to GET RESPONSE",
			cmd:  readEF15,
			script: []exchange{
				{cmd: "00B0950000", resp: "6110"},
				{cmd: "00C0000010", resp: "61"},
			},
			wantErr: apdu.ErrMalformed,
		},
		{
			name:    "unencodable command is not sent",
			cmd:     apdu.Command{INS: 0xB0, Ne: 65537},
			wantErr: apdu.ErrMalformed,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newScript(t, tt.script...)
			data, err := apdu.Transceive(s.Transmitter(), tt.cmd)
			s.done()
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("error = %v, want errors.Is %v", err, tt.wantErr)
			}
			sw, isStatus := apdu.SW(err)
			if tt.wantSW != 0 {
				if !isStatus || sw != tt.wantSW {
					t.Fatalf("error = %v, want status %04X", err, tt.wantSW)
				}
			} else if isStatus {
				t.Fatalf("unexpected status error %v", err)
			}
			if tt.wantErr == nil && tt.wantSW == 0 && err != nil {
				t.Fatalf("error = %v", err)
			}
			if !bytes.Equal(data, h(t, tt.wantData)) {
				t.Fatalf("data = %X, want %s", data, tt.wantData)
			}
		})
	}
}

func TestTransceiveTransportErrorUnchanged(t *testing.T) {
	t.Parallel()
	s := newScript(t, exchange{cmd: "805C000204", err: errTransport})
	_, err := apdu.Transceive(s.Transmitter(), apdu.Command{CLA: 0x80, INS: 0x5C, P2: 2, Ne: 4})
	if err != errTransport {
		t.Fatalf("error = %#v, want the transport's own error value", err)
	}
}

func TestTransceiveEndless61xx(t *testing.T) {
	t.Parallel()
	n := 0
	tr := apdu.TransmitterFunc(func(cmd []byte) ([]byte, error) {
		n++
		if n > 1 && !bytes.Equal(cmd, h(t, "00C0000001")) {
			t.Fatalf("command #%d = % X", n, cmd)
		}
		return h(t, "AA 6101"), nil
	})
	data, err := apdu.Transceive(tr, apdu.Command{INS: 0xB0, Ne: 1})
	if !errors.Is(err, apdu.ErrMalformed) || data != nil {
		t.Fatalf("Transceive = %X, %v; want nil, ErrMalformed", data, err)
	}
	if _, ok := apdu.SW(err); ok {
		t.Fatalf("a chain that never ends is not a card status: %v", err)
	}
	if n < 2 || n > 100 {
		t.Fatalf("%d commands sent", n)
	}
	t.Logf("gave up after %d commands: %v", n, err)
}

// GET RESPONSE keeps the logical channel of the command and drops its
// chaining and secure-messaging bits (ISO 7816-4 §5.4.1).
func TestTransceiveGetResponseClass(t *testing.T) {
	t.Parallel()
	tests := []struct {
		cla, want byte
	}{
		{0x00, 0x00},
		{0x01, 0x01},
		{0x02, 0x02},
		{0x03, 0x03},
		{0x0C, 0x00}, // secure messaging, channel 0
		{0x1D, 0x01}, // chaining + secure messaging, channel 1
		{0x80, 0x00}, // e-purse proprietary class
		{0x83, 0x03},
		{0x84, 0x00},
		{0x40, 0x40}, // channel 4
		{0x45, 0x45}, // channel 9
		{0x4F, 0x4F}, // channel 19
		{0x6F, 0x4F}, // channel 19 with secure messaging
		{0x5A, 0x4A}, // channel 14 with chaining
		{0xC3, 0x43}, // GlobalPlatform proprietary, channel 7
		{0xE1, 0x41},
		{0xFF, 0xFF}, // PC/SC reader pseudo-APDU: the reader's own GET RESPONSE
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("CLA %02X", tt.cla), func(t *testing.T) {
			cmd := apdu.Command{CLA: tt.cla, INS: 0xCA, P1: 0x9F, P2: 0x7F, Ne: 256}
			s := newScript(t,
				exchange{cmd: fmt.Sprintf("%02XCA9F7F00", tt.cla), resp: "6103"},
				exchange{cmd: fmt.Sprintf("%02XC0000003", tt.want), resp: "010203 9000"},
			)
			data, err := apdu.Transceive(s.Transmitter(), cmd)
			s.done()
			if err != nil || !bytes.Equal(data, []byte{1, 2, 3}) {
				t.Fatalf("Transceive = %X, %v", data, err)
			}
		})
	}
}

func TestTransceiveResponse(t *testing.T) {
	t.Parallel()
	s := newScript(t,
		exchange{cmd: "00B2014417", resp: "6102"},
		exchange{cmd: "00C0000002", resp: "AABB 6A83"},
	)
	r, err := apdu.TransceiveResponse(s.Transmitter(), apdu.Command{INS: 0xB2, P1: 1, P2: 0x44, Ne: 0x17})
	s.done()
	if err != nil {
		t.Fatalf("TransceiveResponse error %v; a status word is not an error here", err)
	}
	if r.SW != 0x6A83 || !bytes.Equal(r.Data, h(t, "AABB")) {
		t.Fatalf("got %X %04X", r.Data, r.SW)
	}
	if !errors.Is(r.Err(), apdu.ErrRecordNotFound) {
		t.Fatalf("Err() = %v", r.Err())
	}
}

func TestTransceiveDoesNotKeepCommandBuffer(t *testing.T) {
	t.Parallel()
	// A Transmitter may keep or scribble on the slice it is given; the next
	// command must not be affected.
	var got []string
	n := 0
	tr := apdu.TransmitterFunc(func(cmd []byte) ([]byte, error) {
		got = append(got, hx(cmd))
		for i := range cmd {
			cmd[i] = 0xEE
		}
		n++
		if n == 1 {
			return h(t, "6C04"), nil
		}
		return h(t, "01020304 9000"), nil
	})
	if _, err := apdu.Transceive(tr, apdu.Command{CLA: 0x80, INS: 0x5C, P2: 2, Ne: 256}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"805C000200", "805C000204"}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("sent %v, want %v", got, want)
	}
}
