package door

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cardd/cardd/config"
)

var (
	on  = []byte{0xA0, 0x01, 0x01, 0xA2}
	off = []byte{0xA0, 0x01, 0x00, 0xA1}
)

func seq(cmds ...[]byte) []byte { return bytes.Join(cmds, nil) }

func newRelay(t *testing.T, link string, hold time.Duration) *Relay {
	t.Helper()
	r, err := NewRelay(RelayConfig{Port: link, Hold: hold}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// quiet waits a little and checks that nothing more arrived: for a close
// that must not come. It bounds nothing; a slow machine only makes the
// check weaker.
func quiet(t *testing.T, b *board, want []byte, d time.Duration) {
	t.Helper()
	time.Sleep(d)
	if got := b.bytes(); !bytes.Equal(got, want) {
		t.Fatalf("board got % X, want % X", got, want)
	}
}

// TestRelayOpenThenClose: the open bytes now, the close bytes once the
// hold has passed, and nothing after.
func TestRelayOpenThenClose(t *testing.T) {
	link := tempLink(t)
	b := newBoard(t, link)
	const hold = 300 * time.Millisecond
	r := newRelay(t, link, hold)
	start := time.Now()
	if err := r.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, _ := b.wait(t, 4); !bytes.Equal(got, on) {
		t.Fatalf("after Open the board got % X, want % X", got, on)
	}
	got, at := b.wait(t, 8)
	if !bytes.Equal(got, seq(on, off)) {
		t.Fatalf("board got % X, want % X", got, seq(on, off))
	}
	// A correctness bound, not a speed figure: the door must not lock
	// before the hold is over.
	if early := start.Add(hold).Sub(at[4]); early > 0 {
		t.Errorf("close arrived %v before the hold ended", early)
	}
	waitLocked(t, r)
	quiet(t, b, seq(on, off), 2*hold)
}

func waitLocked(t *testing.T, r *Relay) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for r.IsOpen() {
		if time.Now().After(deadline) {
			t.Fatal("relay still open after 15 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRelayExtend: a second Open during the hold writes the open bytes
// again and pushes the close back: one close, after the second hold.
func TestRelayExtend(t *testing.T) {
	link := tempLink(t)
	b := newBoard(t, link)
	const hold = 2 * time.Second
	r := newRelay(t, link, hold)
	if err := r.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	b.wait(t, 4)
	time.Sleep(hold / 4)
	second := time.Now()
	if err := r.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	got, at := b.wait(t, 12)
	if !bytes.Equal(got, seq(on, on, off)) {
		t.Fatalf("board got % X, want % X (one close, after the second hold)", got, seq(on, on, off))
	}
	if early := second.Add(hold).Sub(at[8]); early > 0 {
		t.Errorf("close arrived %v before the second hold ended: the first hold's timer closed the door", early)
	}
	quiet(t, b, seq(on, on, off), hold/2)
}

// TestRelayConcurrentOpens: people tapping at once (or a handler gone
// astray) still give one close, after all the opens.
func TestRelayConcurrentOpens(t *testing.T) {
	link := tempLink(t)
	b := newBoard(t, link)
	r := newRelay(t, link, 2*time.Second)
	const n = 20
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if err := r.Open(context.Background()); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	var want [][]byte
	for range n {
		want = append(want, on)
	}
	want = append(want, off)
	if got, _ := b.wait(t, 4*(n+1)); !bytes.Equal(got, seq(want...)) {
		t.Fatalf("board got % X, want %d opens then one close", got, n)
	}
}

// TestRelayContextEnds: the close does not depend on the caller's context.
func TestRelayContextEnds(t *testing.T) {
	link := tempLink(t)
	b := newBoard(t, link)
	r := newRelay(t, link, 200*time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	if err := r.Open(ctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	if got, _ := b.wait(t, 8); !bytes.Equal(got, seq(on, off)) {
		t.Fatalf("board got % X, want % X", got, seq(on, off))
	}
	// A context already ended opens nothing.
	if err := r.Open(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Open with an ended context: %v", err)
	}
	quiet(t, b, seq(on, off), 300*time.Millisecond)
}

// TestRelayCloseWhileOpen: stopping the daemon during a hold locks the
// door at once, and the relay takes no more commands.
func TestRelayCloseWhileOpen(t *testing.T) {
	link := tempLink(t)
	b := newBoard(t, link)
	r := newRelay(t, link, MaxHold) // the timer would close after a minute; the wait below gives up after 15 s
	if err := r.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	b.wait(t, 4)
	if !r.IsOpen() {
		t.Error("IsOpen false during the hold")
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if got, _ := b.wait(t, 8); !bytes.Equal(got, seq(on, off)) {
		t.Fatalf("board got % X, want % X", got, seq(on, off))
	}
	if r.IsOpen() {
		t.Error("IsOpen after Close")
	}
	if err := r.Open(context.Background()); !errors.Is(err, ErrRelayClosed) {
		t.Errorf("Open after Close: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	quiet(t, b, seq(on, off), 200*time.Millisecond)
}

// TestRelayCloseWhileLocked writes nothing: the door is already locked.
func TestRelayCloseWhileLocked(t *testing.T) {
	link := tempLink(t)
	b := newBoard(t, link)
	r := newRelay(t, link, 100*time.Millisecond)
	if err := r.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	b.wait(t, 8)
	waitLocked(t, r)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	quiet(t, b, seq(on, off), 200*time.Millisecond)
}

// TestRelayLock: Lock closes at once, ends the hold, and its timer writes
// no second close.
func TestRelayLock(t *testing.T) {
	link := tempLink(t)
	b := newBoard(t, link)
	const hold = 500 * time.Millisecond
	r := newRelay(t, link, hold)
	if err := r.Lock(context.Background()); err != nil { // at daemon start
		t.Fatal(err)
	}
	if err := r.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := r.Lock(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, _ := b.wait(t, 12); !bytes.Equal(got, seq(off, on, off)) {
		t.Fatalf("board got % X, want % X", got, seq(off, on, off))
	}
	if r.IsOpen() {
		t.Error("IsOpen after Lock")
	}
	quiet(t, b, seq(off, on, off), 2*hold)
}

// TestRelayPortVanishes: the board is pulled out (the pty hangs up and the
// udev link goes); Open then fails naming the key. The board comes back at
// the same path as another device: the next Open reopens it and works.
func TestRelayPortVanishes(t *testing.T) {
	link := tempLink(t)
	b1 := newBoard(t, link)
	r := newRelay(t, link, 200*time.Millisecond)
	if err := r.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	b1.wait(t, 8)
	waitLocked(t, r)

	b1.close()
	os.Remove(link)
	err := r.Open(context.Background())
	if err == nil || !strings.Contains(err.Error(), "door.relay.port") || !strings.Contains(err.Error(), link) {
		t.Fatalf("Open with the board gone: %v", err)
	}
	if r.IsOpen() {
		t.Error("IsOpen after a failed Open")
	}

	b2 := newBoard(t, link)
	if err := r.Open(context.Background()); err != nil {
		t.Fatalf("Open with the board back: %v", err)
	}
	if got, _ := b2.wait(t, 8); !bytes.Equal(got, seq(on, off)) {
		t.Fatalf("board got % X, want % X", got, seq(on, off))
	}
}

// TestRelayCloseRetried: the board vanishes during a hold, so the close
// cannot be written when it is due; the relay keeps trying and locks the
// door on the board that comes back.
func TestRelayCloseRetried(t *testing.T) {
	old := closeRetry
	closeRetry = 50 * time.Millisecond
	t.Cleanup(func() { closeRetry = old })
	link := tempLink(t)
	b1 := newBoard(t, link)
	const hold = 200 * time.Millisecond
	r := newRelay(t, link, hold)
	if err := r.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	b1.wait(t, 4)
	b1.close()
	os.Remove(link)
	time.Sleep(2 * hold) // the close falls due with the board away
	if !r.IsOpen() {
		t.Fatal("IsOpen false though no close could be written")
	}
	b2 := newBoard(t, link)
	if got, _ := b2.wait(t, 4); !bytes.Equal(got, off) {
		t.Fatalf("board back got % X, want % X", got, off)
	}
	waitLocked(t, r)
}

// TestRelayMissingPort: a port that was never there is an error naming the
// key and the path, and nothing is left pending.
func TestRelayMissingPort(t *testing.T) {
	link := tempLink(t)
	r := newRelay(t, link, time.Second)
	if err := r.Open(context.Background()); err == nil || !strings.Contains(err.Error(), "opening door relay port "+link+" (door.relay.port)") {
		t.Fatalf("Open: %v", err)
	}
	if r.IsOpen() {
		t.Error("IsOpen after a failed Open")
	}
	if err := r.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func TestRelayConfigDefaults(t *testing.T) {
	s, err := RelayConfig{Port: "/dev/ttyUSB0"}.resolve()
	if err != nil {
		t.Fatal(err)
	}
	if s.baud != 9600 || s.hold != 3*time.Second || !bytes.Equal(s.open, on) || !bytes.Equal(s.close, off) {
		t.Errorf("defaults %+v", s)
	}
	d := DefaultRelayConfig()
	d.Port = "/dev/ttyUSB0"
	if s2, err := d.resolve(); err != nil || !bytesEqualSettings(s, s2) {
		t.Errorf("DefaultRelayConfig resolves to %+v, %v; want %+v", s2, err, s)
	}
	s, err = RelayConfig{Port: "/dev/ttyACM0", Baud: 115200, Open: "ff0101", Close: "FF 01 00", Hold: 100 * time.Millisecond}.resolve()
	if err != nil {
		t.Fatal(err)
	}
	if s.baud != 115200 || s.hold != 100*time.Millisecond || !bytes.Equal(s.open, []byte{0xFF, 1, 1}) || !bytes.Equal(s.close, []byte{0xFF, 1, 0}) {
		t.Errorf("settings %+v", s)
	}
}

func bytesEqualSettings(a, b relaySettings) bool {
	return a.port == b.port && a.baud == b.baud && a.hold == b.hold && bytes.Equal(a.open, b.open) && bytes.Equal(a.close, b.close)
}

// TestRelayConfigValidate: each bad key is named, as config names its own.
func TestRelayConfigValidate(t *testing.T) {
	good := RelayConfig{Port: "/dev/ttyUSB0"}
	tests := []struct {
		name   string
		mutate func(c *RelayConfig)
		want   string
	}{
		{"no port", func(c *RelayConfig) { c.Port = " " }, `config: door.relay.port = " ": required: the relay board's serial device`},
		{"negative baud", func(c *RelayConfig) { c.Baud = -9600 }, `config: door.relay.baud = "-9600": must be a line speed`},
		{"open not hex", func(c *RelayConfig) { c.Open, c.Close = "A0 01 0G A2", "A0 01 00 A1" },
			`config: door.relay.open = "A0 01 0G A2": not hex bytes (like "A0 01 01 A2")`},
		{"close odd", func(c *RelayConfig) { c.Open, c.Close = "A0 01 01 A2", "A0 01 00 A" },
			`config: door.relay.close = "A0 01 00 A": not hex bytes`},
		{"close too long", func(c *RelayConfig) { c.Open, c.Close = "A0", strings.Repeat("00", 65) },
			`door.relay.close = "` + strings.Repeat("00", 65) + `": 65 bytes: a relay command is at most 64`},
		{"only spaces", func(c *RelayConfig) { c.Open, c.Close = "  ", "A0" }, `door.relay.open = "  ": no bytes`},
		{"open without close", func(c *RelayConfig) { c.Open = "A0 01 01 A2" },
			`config: door.relay.close = "": required when door.relay.open is set`},
		{"close without open", func(c *RelayConfig) { c.Close = "A0 01 00 A1" },
			`config: door.relay.open = "": required when door.relay.close is set`},
		{"same bytes", func(c *RelayConfig) { c.Open, c.Close = "A0 01 01 A2", "a00101a2" },
			`config: door.relay.close = "a00101a2": is the same as door.relay.open`},
		{"hold too short", func(c *RelayConfig) { c.Hold = 50 * time.Millisecond },
			`config: door.relay.hold = "50ms": must be from 100ms to 1m0s`},
		{"hold too long", func(c *RelayConfig) { c.Hold = 2 * time.Minute }, `config: door.relay.hold = "2m0s": must be from 100ms to 1m0s`},
		{"negative hold", func(c *RelayConfig) { c.Hold = -time.Second }, `config: door.relay.hold = "-1s"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			tc.mutate(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v\nwant it to contain %s", err, tc.want)
			}
			var ve *config.ValidationError
			if !errors.As(err, &ve) || !strings.HasPrefix(ve.Key, "door.relay.") {
				t.Errorf("no *config.ValidationError for a door.relay key in %v", err)
			}
			if _, err := NewRelay(c, nil); err == nil {
				t.Error("NewRelay accepted it")
			}
		})
	}
	if err := good.Validate(); err != nil {
		t.Errorf("good: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	relay := RelayConfig{Port: "/dev/ttyUSB0"}
	for _, tc := range []struct {
		c    Config
		want string
	}{
		{Config{Relay: relay}, `config: door.groups = "": must name at least one group`},
		{Config{Groups: []string{"a", ""}, Relay: relay}, `config: door.groups = "": entry 2 is empty`},
		{Config{Groups: []string{"a", "b", "a"}, Relay: relay}, `config: door.groups = "a": entry 3 repeats an earlier group`},
		{Config{Groups: []string{"*"}}, `config: door.relay.port = "": required`},
	} {
		if err := tc.c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: Validate = %v, want %s", tc.c, err, tc.want)
		}
	}
	if err := (Config{Groups: []string{"block-a", "cleaners"}, Relay: relay}).Validate(); err != nil {
		t.Errorf("good: %v", err)
	}
}
