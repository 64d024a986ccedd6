//go:build linux

package reader

import (
	"context"
	"math/rand/v2"
	"os"
	"testing"
	"time"
)

// TestMonitorStopsWhenCancelled cancels a Monitor on the real pcscd at
// random moments of its first rounds, many times: Run must return every
// time. A cancel that lands between two SCardGetStatusChange calls used to
// be lost, and the monitor then ran on for ever (cardd scan hung in CI).
func TestMonitorStopsWhenCancelled(t *testing.T) {
	if _, err := ListReaders(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("pcscd is needed: %v", err)
		}
		t.Skipf("pcscd is needed: %v", err)
	}
	rounds := 100
	if testing.Short() {
		rounds = 20
	}
	for i := range rounds {
		ctx, cancel := context.WithCancel(context.Background())
		events := make(chan Event, 64)
		done := make(chan error, 1)
		m := &Monitor{Poll: 50 * time.Millisecond}
		go func() { done <- m.Run(ctx, events) }()
		time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: Monitor.Run still running 10 s after its context was cancelled", i)
		}
	}
}
