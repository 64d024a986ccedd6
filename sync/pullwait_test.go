package sync_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/offline"
	hostsync "github.com/cardd/cardd/sync"
)

// pulledAt is when the terminal's pull last succeeded, zero when never.
func (tm *terminal) pulledAt(t *testing.T) time.Time {
	t.Helper()
	at, err := tm.store.CursorUpdated(context.Background(), offline.PullCursor)
	if err != nil {
		t.Fatal(err)
	}
	return at
}

func (tm *terminal) cached(t *testing.T, number string) int {
	t.Helper()
	cs, err := tm.store.CreditsFor(context.Background(), number)
	if err != nil {
		t.Fatal(err)
	}
	return len(cs)
}

// TestSyncerHeldPullRepollsAfterAHostThatHolds: with a pull interval of an
// hour, credits added at the host one after the other still reach the
// terminal's cache within moments: each pull is held until a change
// arrives, and after a host that holds the loop asks again at once.
func TestSyncerHeldPullRepollsAfterAHostThatHolds(t *testing.T) {
	h := newTestHost(t, termA)
	srv := httptest.NewServer(h.handler)
	t.Cleanup(srv.Close)
	const number = "3101000000700011"
	h.issue(t, number, 0)
	tm := newTerminal(t, h, termA, srv.URL)
	tm.syncer(t, func(s *hostsync.Syncer) { s.PullEvery = time.Hour })
	waitFor(t, "first pull", func() bool { return !tm.pulledAt(t).IsZero() })
	for i := 1; i <= 3; i++ {
		h.credit(t, number, int64(100*i), "app")
		waitFor(t, "credit in the cache", func() bool { return tm.cached(t, number) == i })
	}
}

// TestSyncerHeldPullOutlivesClientTimeout: a held pull is bounded by its
// wait plus the client's timeout, not cut at the client's timeout: here
// the timeout is 200 ms and the host holds for a second, and the empty
// held answer still lands (as a successful pull).
func TestSyncerHeldPullOutlivesClientTimeout(t *testing.T) {
	h := newTestHost(t, termA)
	srv := httptest.NewServer(h.handler)
	t.Cleanup(srv.Close)
	tm := newTerminal(t, h, termA, srv.URL)
	tm.client.HTTP = &http.Client{Timeout: 200 * time.Millisecond}
	tm.syncer(t, func(s *hostsync.Syncer) { s.PullEvery, s.PullWait = time.Hour, time.Second })
	waitFor(t, "a held pull answered", func() bool { return !tm.pulledAt(t).IsZero() })
	first := tm.pulledAt(t)
	// The next one, held as long, counts as a pull too: the cache stays
	// fresh while nothing changes.
	waitFor(t, "a second held pull answered", func() bool { return tm.pulledAt(t).After(first) })
}

// TestSyncerStopEndsHeldPull: Stop ends a pull the host holds at once, not
// at the end of its wait.
func TestSyncerStopEndsHeldPull(t *testing.T) {
	h := newTestHost(t, termA)
	var c counter
	srv := httptest.NewServer(countingHandler(&c, h.handler))
	t.Cleanup(srv.Close)
	tm := newTerminal(t, h, termA, srv.URL)
	s := &hostsync.Syncer{Client: tm.client, Store: tm.store, Logger: slog.New(slog.DiscardHandler),
		PullEvery: fast, UploadEvery: time.Hour, HeartbeatEvery: time.Hour, PullWait: time.Minute}
	s.Start(context.Background())
	waitFor(t, "a pull at the host", func() bool { return c.get(hostapi.PathPull) >= 1 })
	time.Sleep(100 * time.Millisecond) // into the host's wait
	stopped := make(chan struct{})
	go func() { s.Stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("Stop did not end a held pull within 5 s")
	}
}

// oldHost answers pulls as a host that does not hold: empty, at once, and
// counts them. refuse makes it a host of this project from before wait_ms,
// which refuses the unknown field; held makes it one that says it holds
// but answers at once.
type oldHost struct {
	c      counter
	refuse bool
	held   bool
}

func (o *oldHost) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	w.Header().Set("Content-Type", "application/json")
	if r.URL.Path != hostapi.PathPull {
		json.NewEncoder(w).Encode(map[string]any{})
		return
	}
	if o.refuse && strings.Contains(string(body), "wait_ms") {
		o.c.add("refused")
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(hostapi.Error{Code: hostapi.CodeBadRequest, Reason: `body: unknown field "wait_ms"`})
		return
	}
	o.c.add(hostapi.PathPull)
	json.NewEncoder(w).Encode(hostapi.PullResponse{Credits: []hostapi.Credit{}, Deny: []hostapi.DenyChange{}, NextCursor: "0", Held: o.held})
}

// TestSyncerOlderHostKeepsInterval: a host that does not hold (it ignores
// wait_ms, refuses it, or says held but answers at once) is pulled about
// once per interval, not in a tight loop; its answers still count as pulls.
func TestSyncerOlderHostKeepsInterval(t *testing.T) {
	h := newTestHost(t, termA)
	for _, tc := range []struct {
		name  string
		host  *oldHost
		every time.Duration // the least time between two pulls
	}{
		{"ignores wait_ms", &oldHost{}, 300 * time.Millisecond},
		{"refuses wait_ms", &oldHost{refuse: true}, 300 * time.Millisecond},
		{"says held, answers at once", &oldHost{held: true}, time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.host)
			t.Cleanup(srv.Close)
			tm := newTerminal(t, h, termA, srv.URL)
			start := time.Now()
			s := tm.syncer(t, func(s *hostsync.Syncer) { s.PullEvery = 300 * time.Millisecond })
			time.Sleep(2 * time.Second)
			s.Stop()
			elapsed := time.Since(start)
			n := tc.host.c.get(hostapi.PathPull)
			if limit := int(elapsed/tc.every) + 2; n == 0 || n > limit {
				t.Fatalf("%d pulls in %v, want 1 to %d", n, elapsed, limit)
			}
			if r := tc.host.c.get("refused"); r > 1 {
				t.Fatalf("wait_ms sent %d times after the host refused it, want once", r)
			}
			if tm.pulledAt(t).IsZero() {
				t.Fatal("no pull recorded as done")
			}
		})
	}
}
