package host

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cardd/cardd/hostapi"
)

// pullAnswer is a held pull's answer, and how long it took.
type pullAnswer struct {
	resp hostapi.PullResponse
	took time.Duration
	err  error
}

// pullAsync sends a pull from a goroutine (no t.Fatal there) and gives its
// answer on the channel.
func (e *env) pullAsync(req hostapi.PullRequest) <-chan pullAnswer {
	e.t.Helper()
	r := e.signed(hostapi.PathPull, req, testTerm, e.secret, time.Now())
	client := e.srv.Client()
	out := make(chan pullAnswer, 1)
	go func() {
		start := time.Now()
		var a pullAnswer
		defer func() { a.took = time.Since(start); out <- a }()
		res, err := client.Do(r)
		if err != nil {
			a.err = err
			return
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if err != nil {
			a.err = err
			return
		}
		if res.StatusCode != http.StatusOK {
			a.err = fmt.Errorf("status %d: %s", res.StatusCode, b)
			return
		}
		a.err = json.Unmarshal(b, &a.resp)
	}()
	return out
}

// waitAnswer gives a pull's answer, failing the test when none comes
// within limit: a held pull that hangs.
func waitAnswer(t *testing.T, ch <-chan pullAnswer, limit time.Duration) pullAnswer {
	t.Helper()
	select {
	case a := <-ch:
		if a.err != nil {
			t.Fatal(a.err)
		}
		return a
	case <-time.After(limit):
		t.Fatalf("no answer to the pull within %v", limit)
	}
	return pullAnswer{}
}

// waitersHeld waits until n pulls are held on st's feed.
func waitersHeld(t *testing.T, st *Store, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		st.feed.mu.Lock()
		got := st.feed.waiters
		st.feed.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d pulls held, want %d", got, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// cursorNow is the cursor at the end of the feed.
func (e *env) cursorNow() string {
	e.t.Helper()
	var p hostapi.PullResponse
	e.mustCall(hostapi.PathPull, hostapi.PullRequest{}, &p)
	return p.NextCursor
}

// TestPullHeldWakesOnAddInProcess: a pull with nothing after its cursor is
// held, and a credit this process adds answers it at once: the watcher's
// tick is an hour here, so only the in-process wake can.
func TestPullHeldWakesOnAddInProcess(t *testing.T) { eachStore(t, testPullHeldWakesOnAddInProcess) }

func testPullHeldWakesOnAddInProcess(t *testing.T) {
	e := newEnv(t, Options{})
	e.st.feed.poll = time.Hour
	cursor := e.cursorNow()
	ch := e.pullAsync(hostapi.PullRequest{Cursor: cursor, WaitMS: 20000})
	waitersHeld(t, e.st, 1)
	id := e.addCredit(500)
	a := waitAnswer(t, ch, 10*time.Second)
	if !a.resp.Held || len(a.resp.Credits) != 1 || a.resp.Credits[0].ID != id || a.resp.NextCursor == cursor {
		t.Fatalf("held pull answered %+v, want the credit %s", a.resp, id)
	}
}

// TestPullHeldWakesOnAddByAnotherStore: a credit written by another process
// on the same database (here another Store, as `cardhost credit add` is)
// answers the held pull: the watcher reads the feed's end while it waits.
func TestPullHeldWakesOnAddByAnotherStore(t *testing.T) {
	eachStore(t, testPullHeldWakesOnAddByAnotherStore)
}

func testPullHeldWakesOnAddByAnotherStore(t *testing.T) {
	e := newEnv(t, Options{})
	other, err := Open(e.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	cursor := e.cursorNow()
	ch := e.pullAsync(hostapi.PullRequest{Cursor: cursor, WaitMS: 20000})
	waitersHeld(t, e.st, 1)
	c, err := other.AddCredit(context.Background(), testNumber, 700, "app", "operator test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	a := waitAnswer(t, ch, 10*time.Second)
	if !a.resp.Held || len(a.resp.Credits) != 1 || a.resp.Credits[0].ID != c.ID {
		t.Fatalf("held pull answered %+v, want the credit %s", a.resp, c.ID)
	}
	// A deny-list change wakes it the same way.
	ch = e.pullAsync(hostapi.PullRequest{Cursor: a.resp.NextCursor, WaitMS: 20000})
	waitersHeld(t, e.st, 1)
	if _, err := other.Deny(context.Background(), testNumber, "lost", "operator test", time.Now()); err != nil {
		t.Fatal(err)
	}
	a = waitAnswer(t, ch, 10*time.Second)
	if len(a.resp.Deny) != 1 || !a.resp.Deny[0].Denied {
		t.Fatalf("held pull answered %+v, want the deny change", a.resp)
	}
}

// TestPullHeldTimesOutEmpty: with nothing new the held pull answers empty,
// held, with the same cursor, once its wait is over.
func TestPullHeldTimesOutEmpty(t *testing.T) { eachStore(t, testPullHeldTimesOutEmpty) }

func testPullHeldTimesOutEmpty(t *testing.T) {
	e := newEnv(t, Options{})
	cursor := e.cursorNow()
	a := waitAnswer(t, e.pullAsync(hostapi.PullRequest{Cursor: cursor, WaitMS: 300}), 10*time.Second)
	if !a.resp.Held || len(a.resp.Credits)+len(a.resp.Deny) != 0 || a.resp.More || a.resp.NextCursor != cursor {
		t.Fatalf("held pull answered %+v, want empty at cursor %s", a.resp, cursor)
	}
	if a.took < 300*time.Millisecond {
		t.Fatalf("answered after %v: not held for its wait of 300 ms", a.took)
	}
	// A pull that does not ask to wait is answered at once, not held.
	var p hostapi.PullResponse
	e.mustCall(hostapi.PathPull, hostapi.PullRequest{Cursor: cursor}, &p)
	if p.Held {
		t.Fatalf("a plain pull says held: %+v", p)
	}
	e.wantRefusal(hostapi.PathPull, hostapi.PullRequest{Cursor: cursor, WaitMS: -1}, http.StatusBadRequest, hostapi.CodeBadRequest)
}

// TestPullWaitCappedByHost: a terminal asking to wait an hour is answered
// at the host's cap; EndWaits answers a held pull at once.
func TestPullWaitCappedByHost(t *testing.T) { eachStore(t, testPullWaitCappedByHost) }

func testPullWaitCappedByHost(t *testing.T) {
	e := newEnv(t, Options{MaxPullWait: 300 * time.Millisecond})
	cursor := e.cursorNow()
	a := waitAnswer(t, e.pullAsync(hostapi.PullRequest{Cursor: cursor, WaitMS: 3600_000}), 10*time.Second)
	if !a.resp.Held || len(a.resp.Credits) != 0 || a.took < 300*time.Millisecond {
		t.Fatalf("held pull answered %+v after %v, want empty after the cap of 300 ms", a.resp, a.took)
	}

	e2 := newEnv(t, Options{})
	h := NewHandler(e2.st, e2.keys, e2.opt)
	e2.srv.Close()
	e2.srv = httptest.NewServer(h)
	ch := e2.pullAsync(hostapi.PullRequest{Cursor: e2.cursorNow(), WaitMS: 20000})
	waitersHeld(t, e2.st, 1)
	h.EndWaits()
	a = waitAnswer(t, ch, 5*time.Second)
	if !a.resp.Held || len(a.resp.Credits) != 0 {
		t.Fatalf("pull ended by EndWaits answered %+v", a.resp)
	}
}

// TestPullWatcherReadsOncePerTick: however many pulls are held, the feed is
// read once per tick (and once per commit of this process), not once per
// waiting terminal. The watcher is the same on both stores; the statements
// are counted through SQLite's recording driver.
func TestPullWatcherReadsOncePerTick(t *testing.T) {
	registerHostRecorder.Do(func() { sql.Register("cardhost-recorded", hostRecorder) })
	e := newEnv(t, Options{})
	e.close()
	st, err := openDriver("cardhost-recorded", filepath.Join(e.dir, DBFile))
	if err != nil {
		t.Fatal(err)
	}
	e.st, e.srv = st, httptest.NewServer(NewHandler(st, e.keys, e.opt))
	cursor := e.cursorNow()
	const waiters = 20
	hostRecorder.Take()
	start := time.Now()
	var chans []<-chan pullAnswer
	for range waiters {
		chans = append(chans, e.pullAsync(hostapi.PullRequest{Cursor: cursor, WaitMS: 1500}))
	}
	for _, ch := range chans {
		waitAnswer(t, ch, 10*time.Second)
	}
	elapsed := time.Since(start)
	reads := 0
	for _, q := range hostRecorder.Take() {
		if strings.Contains(q, "max(seq)") {
			reads++
		}
	}
	// A tick per feedPoll, a first read when the watcher starts, and one
	// per commit of this process (each request spends its nonce).
	limit := int(elapsed/feedPoll) + 2 + waiters
	if reads == 0 || reads > limit {
		t.Fatalf("%d reads of the feed in %v with %d pulls held, want 1 to %d", reads, elapsed, waiters, limit)
	}
}
