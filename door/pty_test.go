//go:build linux

package door

import (
	"bytes"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cardd/cardd/internal/pty"
)

// board is a relay board on a pty: the relay opens the slave side (through
// a symlink, as a udev rule's /dev/door-relay), the test reads what arrives
// on the master side. Like printer/sim it holds the slave open itself, so
// the relay may close and reopen its port; close hangs the line up, as a
// USB relay board pulled out.
type board struct {
	master, slave *os.File
	path          string

	mu      sync.Mutex
	got     []byte
	at      []time.Time // when each byte of got arrived
	changed chan struct{}
	done    chan struct{}
}

// newBoard opens a pty pair and points link at its slave (pty.Link replaces
// the link atomically, as a udev rule does when a board is plugged in again).
// Without a pty the test fails under CI=true and skips elsewhere.
func newBoard(t *testing.T, link string) *board {
	t.Helper()
	master, slave, path, err := pty.Open()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("relay board on a pty: %v", err)
		}
		t.Skipf("no pty: %v", err)
	}
	b := &board{master: master, slave: slave, path: path, changed: make(chan struct{}), done: make(chan struct{})}
	if link != "" {
		if err := pty.Link(path, link); err != nil {
			b.close()
			t.Fatal(err)
		}
	}
	go b.read()
	t.Cleanup(b.close)
	return b
}

func (b *board) read() {
	defer close(b.done)
	buf := make([]byte, 256)
	for {
		n, err := b.master.Read(buf)
		if n > 0 {
			now := time.Now()
			b.mu.Lock()
			b.got = append(b.got, buf[:n]...)
			for range n {
				b.at = append(b.at, now)
			}
			close(b.changed)
			b.changed = make(chan struct{})
			b.mu.Unlock()
		}
		if err != nil {
			return
		}
	}
}

// close hangs the line up: the relay's writes then fail.
func (b *board) close() {
	b.master.Close()
	b.slave.Close()
	<-b.done
}

// bytes returns what the board has received.
func (b *board) bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.got)
}

// wait waits until the board has received at least n bytes and returns
// them with their arrival times. The deadline is generous: it catches a
// relay that never writes, it does not time one.
func (b *board) wait(t *testing.T, n int) ([]byte, []time.Time) {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		b.mu.Lock()
		if len(b.got) >= n {
			got, at := bytes.Clone(b.got), append([]time.Time(nil), b.at...)
			b.mu.Unlock()
			return got, at
		}
		ch := b.changed
		have := bytes.Clone(b.got)
		b.mu.Unlock()
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("board got % X after 15 s, want at least %d bytes", have, n)
		}
	}
}

func tempLink(t *testing.T) string { return filepath.Join(t.TempDir(), "door-relay") }
