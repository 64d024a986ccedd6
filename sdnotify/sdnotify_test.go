package sdnotify

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// listen opens a unixgram socket at name (a path, or @name for the abstract
// namespace) as systemd does, and points NOTIFY_SOCKET at it.
func listen(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatalf("listen %s: %v", name, err)
	}
	t.Cleanup(func() { c.Close() })
	t.Setenv(EnvSocket, name)
	return c
}

func pathSocket(t *testing.T) *net.UnixConn {
	return listen(t, filepath.Join(t.TempDir(), "notify"))
}

func abstractSocket(t *testing.T) *net.UnixConn {
	var b [8]byte
	rand.Read(b[:])
	return listen(t, "@cardd-sdnotify-test-"+hex.EncodeToString(b[:]))
}

// recv returns the next datagram, or fails after limit.
func recv(t *testing.T, c *net.UnixConn, limit time.Duration) string {
	t.Helper()
	buf := make([]byte, 8192)
	c.SetReadDeadline(time.Now().Add(limit))
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("no datagram within %v: %v", limit, err)
	}
	return string(buf[:n])
}

// quiet fails if a datagram arrives within d.
func quiet(t *testing.T, c *net.UnixConn, d time.Duration) {
	t.Helper()
	buf := make([]byte, 8192)
	c.SetReadDeadline(time.Now().Add(d))
	if n, err := c.Read(buf); err == nil {
		t.Fatalf("unexpected datagram %q", buf[:n])
	}
}

func TestNotifyWithoutSocketIsANoOp(t *testing.T) {
	t.Setenv(EnvSocket, "")
	for name, f := range map[string]func() (bool, error){"Ready": Ready, "Stopping": Stopping, "Watchdog": Watchdog,
		"Status": func() (bool, error) { return Status("x") }} {
		if sent, err := f(); sent || err != nil {
			t.Errorf("%s without NOTIFY_SOCKET = %v, %v; want false, nil", name, sent, err)
		}
	}
}

func TestHelpersSendTheirMessage(t *testing.T) {
	for _, sock := range []struct {
		name   string
		listen func(*testing.T) *net.UnixConn
	}{{"path", pathSocket}, {"abstract", abstractSocket}} {
		t.Run(sock.name, func(t *testing.T) {
			c := sock.listen(t)
			for _, tc := range []struct {
				send func() (bool, error)
				want string
			}{
				{Ready, "READY=1"},
				{func() (bool, error) { return Status("reading cards\non 2 readers") }, "STATUS=reading cards on 2 readers"},
				{Watchdog, "WATCHDOG=1"},
				{Stopping, "STOPPING=1"},
				{func() (bool, error) { return Notify("READY=1\nSTATUS=up") }, "READY=1\nSTATUS=up"},
			} {
				sent, err := tc.send()
				if !sent || err != nil {
					t.Fatalf("sending %q: sent %v, err %v", tc.want, sent, err)
				}
				if got := recv(t, c, 2*time.Second); got != tc.want {
					t.Errorf("datagram %q, want %q", got, tc.want)
				}
			}
			// NOTIFY_SOCKET stays set: a later message still goes out.
			if os.Getenv(EnvSocket) == "" {
				t.Error("NOTIFY_SOCKET was unset")
			}
		})
	}
}

func TestNotifyErrors(t *testing.T) {
	t.Setenv(EnvSocket, filepath.Join(t.TempDir(), "nobody-listens"))
	if sent, err := Ready(); sent || err == nil {
		t.Errorf("Ready to a missing socket = %v, %v; want false and an error", sent, err)
	}
	t.Setenv(EnvSocket, "vsock:2:1234")
	if sent, err := Ready(); sent || err == nil {
		t.Errorf("Ready to a vsock address = %v, %v; want false and an error", sent, err)
	}
}

func TestWatchdogInterval(t *testing.T) {
	me := strconv.Itoa(os.Getpid())
	for _, tc := range []struct {
		usec, pid string
		want      time.Duration
		ok        bool
	}{
		{"", "", 0, false},
		{"0", "", 0, false},
		{"abc", "", 0, false},
		{"-5", "", 0, false},
		{"30000000", "", 30 * time.Second, true},
		{"30000000", me, 30 * time.Second, true},
		{"30000000", "1", 0, false}, // another process's watchdog
		{"30000000", "x", 0, false}, // garbled
		{"1", "", time.Microsecond, true},
		{"99999999999999999999", "", 0, false}, // overflows
	} {
		t.Setenv(EnvWatchdogUSec, tc.usec)
		t.Setenv(EnvWatchdogPID, tc.pid)
		got, ok := WatchdogInterval()
		if got != tc.want || ok != tc.ok {
			t.Errorf("WATCHDOG_USEC=%q WATCHDOG_PID=%q: %v, %v; want %v, %v", tc.usec, tc.pid, got, ok, tc.want, tc.ok)
		}
	}
}

// TestRunFeedsTheWatchdogOnlyWhileHealthy: keep-alives come every half
// interval while healthy() is true, stop while it is false, and come back
// when it is true again; Run returns when ctx ends.
func TestRunFeedsTheWatchdogOnlyWhileHealthy(t *testing.T) {
	c := pathSocket(t)
	const interval = 200 * time.Millisecond
	t.Setenv(EnvWatchdogUSec, strconv.FormatInt(interval.Microseconds(), 10))
	t.Setenv(EnvWatchdogPID, strconv.Itoa(os.Getpid()))
	var healthy atomic.Bool
	var asked atomic.Int64
	healthy.Store(true)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Run(ctx, func() bool { asked.Add(1); return healthy.Load() })
	}()

	// At once, then every interval/2.
	start := time.Now()
	for i := range 4 {
		if got := recv(t, c, 10*interval); got != "WATCHDOG=1" {
			t.Fatalf("keep-alive %d: %q", i, got)
		}
	}
	if el := time.Since(start); el < 3*interval/2-interval/10 {
		t.Errorf("4 keep-alives in %v: want one per %v", el, interval/2)
	}

	healthy.Store(false)
	// One may be on its way from a tick that checked just before the flip.
	c.SetReadDeadline(time.Now().Add(interval / 4))
	c.Read(make([]byte, 64))
	before := asked.Load()
	quiet(t, c, 2*interval)
	if asked.Load() == before {
		t.Errorf("healthy() asked %d times in two intervals while unhealthy; want it checked every tick", asked.Load()-before)
	}

	healthy.Store(true)
	if got := recv(t, c, 10*interval); got != "WATCHDOG=1" {
		t.Fatalf("after recovery: %q", got)
	}

	cancel()
	select {
	case <-done:
	case <-time.After(time.Second):
		t.Fatal("Run did not return after ctx ended")
	}
}

func TestRunWithoutWatchdogReturnsAtOnce(t *testing.T) {
	c := pathSocket(t)
	for _, env := range [][2]string{{"", ""}, {"30000000", "1"}} {
		t.Setenv(EnvWatchdogUSec, env[0])
		t.Setenv(EnvWatchdogPID, env[1])
		done := make(chan struct{})
		go func() { defer close(done); Run(context.Background(), nil) }()
		select {
		case <-done:
		case <-time.After(time.Second):
			t.Fatalf("Run with WATCHDOG_USEC=%q WATCHDOG_PID=%q did not return", env[0], env[1])
		}
	}
	quiet(t, c, 50*time.Millisecond)
}

func TestRunAbstractSocketNilHealthy(t *testing.T) {
	c := abstractSocket(t)
	t.Setenv(EnvWatchdogUSec, "100000")
	t.Setenv(EnvWatchdogPID, "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go Run(ctx, nil)
	for range 2 {
		if got := recv(t, c, time.Second); got != "WATCHDOG=1" {
			t.Fatalf("got %q", got)
		}
	}
}
