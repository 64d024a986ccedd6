package vpcd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeCard answers every command with the command's INS and 90 00, and
// counts what it was asked to do.
type fakeCard struct {
	mu       sync.Mutex
	atr      []byte
	commands int
	resets   int
	fail     bool // Transmit returns an error
}

func (c *fakeCard) ATR() []byte { return c.atr }

func (c *fakeCard) Transmit(cmd []byte) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.commands++
	if c.fail {
		return nil, errors.New("card broke")
	}
	return []byte{cmd[1], 0x90, 0x00}, nil
}

func (c *fakeCard) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.resets++
}

func (c *fakeCard) counts() (commands, resets int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.commands, c.resets
}

var testATR = []byte{0x3B, 0x80, 0x80, 0x01, 0x01}

// fakeVPCD is the reader side: a listener a card connects to, and the
// accepted connection, spoken to the way vpcd does.
type fakeVPCD struct {
	t    *testing.T
	ln   net.Listener
	conn net.Conn
}

func newFakeVPCD(t *testing.T) *fakeVPCD {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return &fakeVPCD{t: t, ln: ln}
}

func (v *fakeVPCD) addr() string { return v.ln.Addr().String() }

// accept waits for the card. A deadline keeps a broken test from hanging;
// it bounds nothing that is measured.
func (v *fakeVPCD) accept() {
	v.t.Helper()
	c, err := v.ln.Accept()
	if err != nil {
		v.t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	v.t.Cleanup(func() { c.Close() })
	v.conn = c
}

func (v *fakeVPCD) send(p ...byte) {
	v.t.Helper()
	if err := WriteFrame(v.conn, p); err != nil {
		v.t.Fatal(err)
	}
}

func (v *fakeVPCD) recv() []byte {
	v.t.Helper()
	p, err := ReadFrame(v.conn)
	if err != nil {
		v.t.Fatalf("reading the card's answer: %v", err)
	}
	return p
}

// exchange sends msg and returns the card's answer.
func (v *fakeVPCD) exchange(msg ...byte) []byte {
	v.t.Helper()
	v.send(msg...)
	return v.recv()
}

// insert runs Insert in the background and returns its result channel.
func insert(ctx context.Context, addr string, card Card, opt Options) <-chan error {
	done := make(chan error, 1)
	go func() { done <- Insert(ctx, addr, card, opt) }()
	return done
}

// result waits for Insert to return. The long timeout only stops a hung
// test; nothing here asserts how fast Insert is.
func result(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("Insert did not return")
		return nil
	}
}

func TestSlotAddr(t *testing.T) {
	for slot, want := range []string{"127.0.0.1:35963", "127.0.0.1:35964", "127.0.0.1:35965"} {
		if got := SlotAddr(slot); got != want {
			t.Errorf("SlotAddr(%d) = %q, want %q", slot, got, want)
		}
	}
}

// TestSession plays what pcscd does when a card is inserted and used: get
// ATR, power on, APDUs, power off; then vpcd goes away.
func TestSession(t *testing.T) {
	v := newFakeVPCD(t)
	card := &fakeCard{atr: testATR}
	var seen []int
	done := insert(t.Context(), v.addr(), card, Options{OnAPDU: func(n int) { seen = append(seen, n) }})
	v.accept()

	if got := v.exchange(ctrlATR); !bytes.Equal(got, testATR) {
		t.Fatalf("ATR = % X, want % X", got, testATR)
	}
	// Power on gets no answer: the next frame from the card must be the
	// answer to the APDU that follows.
	v.send(ctrlOn)
	if got, want := v.exchange(0x80, 0x5C, 0x00, 0x02, 0x04), []byte{0x5C, 0x90, 0x00}; !bytes.Equal(got, want) {
		t.Fatalf("answer = % X, want % X", got, want)
	}
	if got, want := v.exchange(0x00, 0xB0, 0x95, 0x00, 0x00), []byte{0xB0, 0x90, 0x00}; !bytes.Equal(got, want) {
		t.Fatalf("answer = % X, want % X", got, want)
	}
	v.send(ctrlOff)
	v.conn.Close()

	err := result(t, done)
	if !errors.Is(err, ErrClosed) {
		t.Fatalf("Insert = %v, want ErrClosed", err)
	}
	commands, resets := card.counts()
	if commands != 2 || resets != 2 {
		t.Errorf("card saw %d commands and %d resets, want 2 and 2", commands, resets)
	}
	if len(seen) != 2 || seen[0] != 1 || seen[1] != 2 {
		t.Errorf("OnAPDU saw %v, want [1 2]", seen)
	}
}

func TestPowerControlResets(t *testing.T) {
	v := newFakeVPCD(t)
	card := &fakeCard{atr: testATR}
	done := insert(t.Context(), v.addr(), card, Options{})
	v.accept()

	v.send(ctrlOff)
	v.send(ctrlOn)
	v.send(ctrlReset)
	// None of the three is answered, so the first frame back is the ATR.
	if got := v.exchange(ctrlATR); !bytes.Equal(got, testATR) {
		t.Fatalf("first answer = % X, want the ATR % X", got, testATR)
	}
	if _, resets := card.counts(); resets != 3 {
		t.Errorf("Reset called %d times, want 3", resets)
	}
	v.conn.Close()
	result(t, done)
}

func TestCancelRemovesCard(t *testing.T) {
	v := newFakeVPCD(t)
	ctx, cancel := context.WithCancel(t.Context())
	done := insert(ctx, v.addr(), &fakeCard{atr: testATR}, Options{})
	v.accept()
	v.exchange(ctrlATR) // the card is being served, and now blocks reading

	cancel()
	if err := result(t, done); err != nil {
		t.Fatalf("Insert after cancel = %v, want nil", err)
	}
	if _, err := ReadFrame(v.conn); err != io.EOF {
		t.Fatalf("reader side after cancel: %v, want EOF (card removed)", err)
	}
}

func TestCancelDuringLatency(t *testing.T) {
	v := newFakeVPCD(t)
	ctx, cancel := context.WithCancel(t.Context())
	done := insert(ctx, v.addr(), &fakeCard{atr: testATR}, Options{Latency: time.Hour})
	v.accept()
	v.send(0x00, 0xA4, 0x04, 0x00)
	cancel()
	if err := result(t, done); err != nil {
		t.Fatalf("Insert after cancel = %v, want nil", err)
	}
}

func TestTearAfter(t *testing.T) {
	v := newFakeVPCD(t)
	card := &fakeCard{atr: testATR}
	done := insert(t.Context(), v.addr(), card, Options{TearAfter: 2})
	v.accept()
	v.send(ctrlOn)

	v.exchange(0x80, 0x50, 0x00, 0x02, 0x0B) // answered
	v.send(0x80, 0x52, 0x00, 0x00, 0x0B)     // processed, never answered
	if p, err := ReadFrame(v.conn); err != io.EOF {
		t.Fatalf("after the torn command the reader got % X, %v; want EOF", p, err)
	}
	if err := result(t, done); !errors.Is(err, ErrTorn) {
		t.Fatalf("Insert = %v, want ErrTorn", err)
	}
	if commands, _ := card.counts(); commands != 2 {
		t.Errorf("card processed %d commands, want 2 (the torn one counts)", commands)
	}
}

func TestSilentAfter(t *testing.T) {
	v := newFakeVPCD(t)
	card := &fakeCard{atr: testATR}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := insert(ctx, v.addr(), card, Options{SilentAfter: 2})
	v.accept()
	v.send(ctrlOn)

	v.exchange(0x00, 0xA4, 0x04, 0x00) // answered
	v.send(0x80, 0x5C, 0x00, 0x02, 0x04)
	v.send(ctrlATR)
	v.send(0x80, 0x5C, 0x00, 0x02, 0x04)
	// Mute, yet still in: nothing comes back, and the connection stays
	// open (a read times out rather than ending).
	v.conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if p, err := ReadFrame(v.conn); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a silent card answered % X, %v; want nothing (read deadline)", p, err)
	}
	select {
	case err := <-done:
		t.Fatalf("Insert returned %v while the silent card should stay in", err)
	default:
	}
	if commands, _ := card.counts(); commands != 2 {
		t.Errorf("card processed %d commands, want 2 (the one it went silent on counts, none after)", commands)
	}
	cancel() // the card leaves
	if err := result(t, done); err != nil {
		t.Fatalf("Insert after cancel = %v, want nil", err)
	}
}

// tearingCard leaves the field itself while processing its second command,
// as a simulated card tearing its own write does.
type tearingCard struct {
	fakeCard
	n int
}

func (c *tearingCard) Transmit(cmd []byte) ([]byte, error) {
	if c.n++; c.n == 2 {
		return nil, fmt.Errorf("write of block 5 torn: %w", ErrTorn)
	}
	return []byte{0x90, 0x00}, nil
}

func TestCardTearsItself(t *testing.T) {
	v := newFakeVPCD(t)
	done := insert(t.Context(), v.addr(), &tearingCard{fakeCard: fakeCard{atr: testATR}}, Options{})
	v.accept()
	v.exchange(0xFF, 0xB0, 0x00, 0x05, 0x10)
	v.send(0xFF, 0xD6, 0x00, 0x05, 0x10)
	if p, err := ReadFrame(v.conn); err != io.EOF {
		t.Fatalf("after the torn command the reader got % X, %v; want EOF (card gone, no 6F00)", p, err)
	}
	if err := result(t, done); !errors.Is(err, ErrTorn) {
		t.Fatalf("Insert = %v, want ErrTorn", err)
	}
}

func TestLatency(t *testing.T) {
	v := newFakeVPCD(t)
	done := insert(t.Context(), v.addr(), &fakeCard{atr: testATR}, Options{Latency: 15 * time.Millisecond})
	v.accept()
	// Only that the answer still arrives: timing is for the bench.
	if got, want := v.exchange(0x00, 0x84, 0x00, 0x00, 0x08), []byte{0x84, 0x90, 0x00}; !bytes.Equal(got, want) {
		t.Fatalf("answer = % X, want % X", got, want)
	}
	v.conn.Close()
	result(t, done)
}

func TestTransmitErrorAnswers6F00(t *testing.T) {
	v := newFakeVPCD(t)
	card := &fakeCard{atr: testATR, fail: true}
	done := insert(t.Context(), v.addr(), card, Options{})
	v.accept()
	for range 2 { // the card stays in after a failure
		if got := v.exchange(0x00, 0xA4, 0x04, 0x00); !bytes.Equal(got, []byte{0x6F, 0x00}) {
			t.Fatalf("answer = % X, want 6F 00", got)
		}
	}
	v.conn.Close()
	if err := result(t, done); !errors.Is(err, ErrClosed) {
		t.Fatalf("Insert = %v, want ErrClosed", err)
	}
}

// shortCard answers with something that is not a response APDU.
type shortCard struct{ fakeCard }

func (c *shortCard) Transmit([]byte) ([]byte, error) { return []byte{0x90}, nil }

func TestShortResponseAnswers6F00(t *testing.T) {
	v := newFakeVPCD(t)
	done := insert(t.Context(), v.addr(), &shortCard{fakeCard{atr: testATR}}, Options{})
	v.accept()
	if got := v.exchange(0x00, 0xA4, 0x04, 0x00); !bytes.Equal(got, []byte{0x6F, 0x00}) {
		t.Fatalf("answer = % X, want 6F 00", got)
	}
	v.conn.Close()
	result(t, done)
}

func TestLongestAPDU(t *testing.T) {
	v := newFakeVPCD(t)
	done := insert(t.Context(), v.addr(), &fakeCard{atr: testATR}, Options{})
	v.accept()
	cmd := make([]byte, MaxPayload)
	cmd[1] = 0xD6
	if got, want := v.exchange(cmd...), []byte{0xD6, 0x90, 0x00}; !bytes.Equal(got, want) {
		t.Fatalf("answer = % X, want % X", got, want)
	}
	v.conn.Close()
	result(t, done)
}

// TestBrokenFrames checks that what a misbehaving peer sends ends Insert
// with an error, not a panic or a hang.
func TestBrokenFrames(t *testing.T) {
	tests := []struct {
		name string
		raw  []byte
		want error
	}{
		{"zero length", []byte{0x00, 0x00}, ErrEmptyFrame},
		{"truncated header", []byte{0x00}, io.ErrUnexpectedEOF},
		{"truncated payload", []byte{0x00, 0x05, 0x00, 0xA4}, io.ErrUnexpectedEOF},
		{"closed between frames", nil, ErrClosed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newFakeVPCD(t)
			done := insert(t.Context(), v.addr(), &fakeCard{atr: testATR}, Options{})
			v.accept()
			if _, err := v.conn.Write(tt.raw); err != nil {
				t.Fatal(err)
			}
			v.conn.(*net.TCPConn).CloseWrite()
			if err := result(t, done); !errors.Is(err, tt.want) {
				t.Fatalf("Insert = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	err = Insert(t.Context(), addr, &fakeCard{atr: testATR}, Options{})
	if err == nil {
		t.Fatal("Insert with nothing listening succeeded")
	}
	if msg := err.Error(); !strings.Contains(msg, "pcscd") || !strings.Contains(msg, addr) {
		t.Errorf("error %q should say pcscd is probably not running and name %s", msg, addr)
	}
}

func TestCancelledBeforeInsert(t *testing.T) {
	v := newFakeVPCD(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := Insert(ctx, v.addr(), &fakeCard{atr: testATR}, Options{}); err != nil {
		t.Fatalf("Insert with a done context = %v, want nil", err)
	}
}

// TestLogHoldsNoData checks that debug logging shows the INS and status
// word of an APDU but not its data, which can be a PIN.
func TestLogHoldsNoData(t *testing.T) {
	var buf syncBuffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	v := newFakeVPCD(t)
	done := insert(t.Context(), v.addr(), &fakeCard{atr: testATR}, Options{Logger: log})
	v.accept()
	v.exchange(0x00, 0x20, 0x00, 0x00, 0x03, 0x12, 0x34, 0x56) // VERIFY PIN 123456
	v.conn.Close()
	result(t, done)

	out := buf.String()
	for _, want := range []string{"card inserted", "ins=20", "sw=9000", "card removed"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	for _, secret := range []string{"123456", "12 34 56", "12, 34, 56", "[18 52 86]"} {
		if strings.Contains(out, secret) {
			t.Errorf("log shows APDU data %q:\n%s", secret, out)
		}
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestReadFrame(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want []byte
		err  error
	}{
		{"control", []byte{0x00, 0x01, 0x04}, []byte{0x04}, nil},
		{"apdu", []byte{0x00, 0x04, 0x00, 0xA4, 0x04, 0x00}, []byte{0x00, 0xA4, 0x04, 0x00}, nil},
		{"trailing bytes stay", []byte{0x00, 0x01, 0x01, 0x00, 0x01}, []byte{0x01}, nil},
		{"empty input", nil, nil, io.EOF},
		{"zero length", []byte{0x00, 0x00}, nil, ErrEmptyFrame},
		{"half header", []byte{0x00}, nil, io.ErrUnexpectedEOF},
		{"short payload", []byte{0xFF, 0xFF, 0x00}, nil, io.ErrUnexpectedEOF},
		{"no payload", []byte{0x00, 0x02}, nil, io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadFrame(bytes.NewReader(tt.in))
			if !errors.Is(err, tt.err) || (tt.err == io.EOF && err != io.EOF) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if !bytes.Equal(got, tt.want) {
				t.Errorf("payload = % X, want % X", got, tt.want)
			}
		})
	}
}

func TestWriteFrame(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteFrame(&buf, []byte{0x3B, 0x00}); err != nil {
		t.Fatal(err)
	}
	if got, want := buf.Bytes(), []byte{0x00, 0x02, 0x3B, 0x00}; !bytes.Equal(got, want) {
		t.Errorf("frame = % X, want % X", got, want)
	}
	if err := WriteFrame(&buf, nil); !errors.Is(err, ErrEmptyFrame) {
		t.Errorf("empty payload: %v, want ErrEmptyFrame", err)
	}
	if err := WriteFrame(&buf, make([]byte, MaxPayload+1)); err == nil {
		t.Error("oversized payload accepted")
	}
}

// FuzzReadFrame feeds arbitrary bytes to ReadFrame: it must never panic,
// and whatever it accepts must encode back to the bytes it read. The seeds
// are in testdata/fuzz/FuzzReadFrame.
func FuzzReadFrame(f *testing.F) {
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		p, err := ReadFrame(r)
		if err != nil {
			if p != nil {
				t.Fatalf("payload % X returned with error %v", p, err)
			}
			return
		}
		if len(p) == 0 {
			t.Fatal("empty payload without error")
		}
		var out bytes.Buffer
		if err := WriteFrame(&out, p); err != nil {
			t.Fatalf("payload read cannot be written back: %v", err)
		}
		consumed := len(in) - r.Len()
		if !bytes.Equal(out.Bytes(), in[:consumed]) {
			t.Fatalf("re-encoded % X, read from % X", out.Bytes(), in[:consumed])
		}
	})
}
