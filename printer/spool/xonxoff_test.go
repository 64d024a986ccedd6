package spool

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"go.bug.st/serial"
)

// ptyPair links two ptys with socat, as a null-modem cable between cardd and
// a printer: what one side writes the other reads.
func ptyPair(t *testing.T) (a, b string) {
	t.Helper()
	dir := t.TempDir()
	a, b = filepath.Join(dir, "a"), filepath.Join(dir, "b")
	cmd := exec.Command("socat", "pty,raw,echo=0,link="+a, "pty,raw,echo=0,link="+b)
	if err := cmd.Start(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("socat (scripts/setup installs it): %v", err)
		}
		t.Skipf("no socat: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for range 100 {
		if _, errA := os.Stat(a); errA == nil {
			if _, errB := os.Stat(b); errB == nil {
				return a, b
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("socat made no pty pair")
	return
}

// TestXOFFPausesWrite: after the printer sends XOFF the line writes nothing
// more until XON, then the rest arrives whole.
func TestXOFFPausesWrite(t *testing.T) {
	a, b := ptyPair(t)
	printerSide, err := serial.Open(b, &serial.Mode{BaudRate: 9600})
	if err != nil {
		t.Fatal(err)
	}
	defer printerSide.Close()
	line := &Line{Port: a, Mode: serial.Mode{BaudRate: 9600}, XonXoff: true}
	defer line.Close()
	// Open the line and let it see XOFF before writing.
	if _, err := line.Status(context.Background(), 1); err != ErrNoAnswer {
		t.Fatalf("status from a silent peer: %v, want ErrNoAnswer", err)
	}
	buf := make([]byte, 3)
	if _, err := io.ReadFull(printerSide, buf); err != nil { // the DLE EOT 1 sent
		t.Fatal(err)
	}
	if _, err := printerSide.Write([]byte{xoff}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)

	data := make([]byte, 1000)
	for i := range data {
		data[i] = byte('a' + i%26)
	}
	done := make(chan error, 1)
	go func() { done <- line.Write(context.Background(), data) }()
	printerSide.SetReadTimeout(300 * time.Millisecond)
	if n, _ := printerSide.Read(make([]byte, 100)); n != 0 {
		t.Fatalf("%d bytes arrived after XOFF", n)
	}
	select {
	case err := <-done:
		t.Fatalf("Write returned while paused: %v", err)
	default:
	}
	if _, err := printerSide.Write([]byte{xon}); err != nil {
		t.Fatal(err)
	}
	printerSide.SetReadTimeout(5 * time.Second)
	got := make([]byte, len(data))
	if _, err := io.ReadFull(printerSide, got); err != nil {
		t.Fatal(err)
	}
	if string(got) != string(data) {
		t.Error("bytes after XON differ from those written")
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
