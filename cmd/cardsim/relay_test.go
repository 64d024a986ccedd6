package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a strings.Builder safe for one writer and one reader.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRelay: the virtual relay board prints what is written to its port,
// naming the LCUS-1 open and close commands, and removes its link at the end.
func TestRelay(t *testing.T) {
	link := filepath.Join(t.TempDir(), "relay")
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	done := make(chan error, 1)
	go func() { done <- cmdRelay(ctx, []string{"--link", link}, &out) }()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), "relay board on") {
		if time.Now().After(deadline) {
			if os.Getenv("CI") == "true" {
				t.Fatalf("no relay board: %q", out.String())
			}
			t.Skipf("no pty: %q", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	port, err := os.OpenFile(link, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, cmd := range [][]byte{{0xA0, 0x01, 0x01, 0xA2}, {0xA0, 0x01, 0x00, 0xA1}, {0x01, 0x02}} {
		if _, err := port.Write(cmd); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond) // one read per command
	}
	port.Close()
	for _, want := range []string{"A0 01 01 A2  open: the lock is released", "A0 01 00 A1  close: the lock holds", "01 02  \n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(link); !os.IsNotExist(err) {
		t.Errorf("the link is left behind: %v", err)
	}
}
