package sync_test

// Tests of the Syncer's loops against the real reference host (package host
// behind httptest) and a real offline.Store file: what a terminal and its
// host do to each other over loopback, with short periods and polling with a
// deadline instead of sleeps.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	gosync "sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cardd/cardd/apdu/epurse"
	epursesim "github.com/cardd/cardd/apdu/epurse/sim"
	"github.com/cardd/cardd/host"
	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/offline"
	hostsync "github.com/cardd/cardd/sync"
	"github.com/cardd/cardd/tap"
)

const (
	termA = "000000000001"
	termB = "000000000002"
	fast  = 20 * time.Millisecond
)

// testHost is the reference host on a real database in a temp directory.
type testHost struct {
	dir     string
	store   *host.Store
	keys    *host.Keys
	handler http.Handler
	secrets map[string]string // terminal id → secret
}

func newTestHost(t *testing.T, terminals ...string) *testHost {
	t.Helper()
	h := &testHost{dir: filepath.Join(t.TempDir(), "host"), secrets: map[string]string{}}
	if err := host.InitDir(h.dir, ""); err != nil {
		t.Fatal(err)
	}
	var err error
	if h.store, err = host.OpenDir(h.dir, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.store.Close() })
	if h.keys, err = host.LoadDirKeys(h.dir); err != nil {
		t.Fatal(err)
	}
	for _, id := range terminals {
		secret, err := host.NewTerminalSecret()
		if err != nil {
			t.Fatal(err)
		}
		if err := h.store.AddTerminal(context.Background(), id, secret, time.Now()); err != nil {
			t.Fatal(err)
		}
		h.secrets[id] = secret
	}
	h.handler = host.NewHandler(h.store, h.keys, host.Options{})
	return h
}

// issue makes a card at the host and returns its simulated card.
func (h *testHost) issue(t *testing.T, number string, balance int64) *epursesim.SimCard {
	t.Helper()
	path := filepath.Join(t.TempDir(), number+".json")
	f, err := h.store.IssueCard(context.Background(), h.keys, host.IssueRequest{
		Number: number, Holder: "测试", BalanceFen: balance,
		Start: epurse.Date{Year: 2025, Month: 9, Day: 1}, Expiry: epurse.Date{Year: 2035, Month: 8, Day: 31},
	}, path, "test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return epursesim.NewSimCard(f, path)
}

func (h *testHost) credit(t *testing.T, number string, fen int64, note string) hostapi.Credit {
	t.Helper()
	c, err := h.store.AddCredit(context.Background(), number, fen, note, "test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (h *testHost) journalCount(t *testing.T, terminal string) int {
	t.Helper()
	n, err := h.store.JournalCount(context.Background(), terminal)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// terminal is one terminal's journal and host client.
type terminal struct {
	store  *offline.Store
	client *hostsync.Client
}

func newTerminal(t *testing.T, h *testHost, id, baseURL string) *terminal {
	t.Helper()
	st, err := offline.Open(filepath.Join(t.TempDir(), "cardd-"+id+".db"), id)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &terminal{store: st, client: &hostsync.Client{BaseURL: baseURL, TerminalID: id, Secret: []byte(h.secrets[id])}}
}

// journal writes n read rows, done, as every tap does.
func (tm *terminal) journal(t *testing.T, n int) {
	t.Helper()
	ctx := context.Background()
	for i := range n {
		if _, err := tm.store.Begin(ctx, offline.Row{Kind: offline.KindRead, State: offline.StateDone,
			Card: fmt.Sprintf("31010000%08d", i), Purse: "EP", BalanceFen: int64(i),
			Time: time.Now().Format(hostapi.TimeLayout)}); err != nil {
			t.Fatal(err)
		}
	}
}

func (tm *terminal) queueDepth(t *testing.T) int {
	t.Helper()
	n, err := tm.store.QueueDepth(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// syncer returns a Syncer with short periods; edit adjusts it before Start.
// Stop runs at the end of the test.
func (tm *terminal) syncer(t *testing.T, edit func(*hostsync.Syncer)) *hostsync.Syncer {
	t.Helper()
	s := &hostsync.Syncer{Client: tm.client, Store: tm.store, Logger: slog.New(slog.DiscardHandler),
		PullEvery: fast, UploadEvery: fast, HeartbeatEvery: fast, MaxBackoff: fast}
	if edit != nil {
		edit(s)
	}
	s.Start(context.Background())
	t.Cleanup(s.Stop)
	return s
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10 s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// counter counts requests per path.
type counter struct {
	mu gosync.Mutex
	n  map[string]int
}

func (c *counter) add(path string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[path]++
}

func (c *counter) get(path string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[path]
}

// countingHandler counts every request by path before h answers it.
func countingHandler(c *counter, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.add(r.URL.Path)
		h.ServeHTTP(w, r)
	})
}

// countingTransport counts the requests a client tries to send, answered or
// not: with the host down, nothing reaches a handler.
type countingTransport struct {
	c    *counter
	base http.RoundTripper
}

func (ct countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	ct.c.add(r.URL.Path)
	return ct.base.RoundTrip(r)
}

// TestSyncerUploadsJournal: journal rows go up in batches and are acked; the
// host holds each once and the terminal's queue is empty.
func TestSyncerUploadsJournal(t *testing.T) {
	h := newTestHost(t, termA)
	var c counter
	srv := httptest.NewServer(countingHandler(&c, h.handler))
	t.Cleanup(srv.Close)
	tm := newTerminal(t, h, termA, srv.URL)
	const rows, batch = 230, 50
	tm.journal(t, rows)
	if d := tm.queueDepth(t); d != rows {
		t.Fatalf("queue depth %d before sync, want %d", d, rows)
	}
	tm.syncer(t, func(s *hostsync.Syncer) { s.BatchSize = batch })
	waitFor(t, "queue empty", func() bool { return tm.queueDepth(t) == 0 })
	if n := h.journalCount(t, termA); n != rows {
		t.Errorf("host holds %d journal rows of %s, want %d", n, termA, rows)
	}
	// 230 rows in batches of 50: 5 uploads, at once one after the other.
	if n := c.get(hostapi.PathJournal); n < (rows+batch-1)/batch {
		t.Errorf("%d journal uploads for %d rows in batches of %d", n, rows, batch)
	}
	// Later rows follow on the next round, and nothing goes up twice.
	tm.journal(t, 7)
	waitFor(t, "second queue empty", func() bool { return tm.queueDepth(t) == 0 })
	if n := h.journalCount(t, termA); n != rows+7 {
		t.Errorf("host holds %d journal rows, want %d", n, rows+7)
	}
	// The heartbeat reported the terminal.
	waitFor(t, "heartbeat", func() bool {
		ts, err := h.store.Terminals(context.Background())
		return err == nil && len(ts) == 1 && ts[0].LastSeen != ""
	})
}

// TestSyncerBacksOffWhileHostFails: a host that answers 503 (a proxy in front
// of a dead host) is retried with backoff, not hammered; once it answers
// again, everything goes up.
func TestSyncerBacksOffWhileHostFails(t *testing.T) {
	h := newTestHost(t, termA)
	var c counter
	var failing atomic.Bool
	failing.Store(true)
	srv := httptest.NewServer(countingHandler(&c, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() {
			http.Error(w, "upstream down", http.StatusServiceUnavailable)
			return
		}
		h.handler.ServeHTTP(w, r)
	})))
	t.Cleanup(srv.Close)
	tm := newTerminal(t, h, termA, srv.URL)
	tm.journal(t, 40)
	// Periods of 20 ms, backoff capped at 250 ms: without backoff the upload
	// loop would try ~50 times a second, a busy loop thousands of times.
	tm.syncer(t, func(s *hostsync.Syncer) { s.MaxBackoff = 250 * time.Millisecond })
	waitFor(t, "first upload attempt", func() bool { return c.get(hostapi.PathJournal) > 0 })
	before := c.get(hostapi.PathJournal)
	time.Sleep(time.Second) // the window over which attempts are counted
	tries := c.get(hostapi.PathJournal) - before
	t.Logf("upload attempts in 1 s with the host failing: %d", tries)
	if tries < 1 || tries > 20 {
		t.Errorf("%d upload attempts in 1 s while the host fails; want a few (backoff 125-250 ms)", tries)
	}
	if d := tm.queueDepth(t); d != 40 {
		t.Errorf("queue depth %d while the host fails, want all 40 rows kept", d)
	}
	if n := h.journalCount(t, termA); n != 0 {
		t.Errorf("host holds %d rows though it answered 503", n)
	}
	failing.Store(false)
	waitFor(t, "queue empty after recovery", func() bool { return tm.queueDepth(t) == 0 })
	if n := h.journalCount(t, termA); n != 40 {
		t.Errorf("host holds %d rows, want 40", n)
	}
}

// listenAt listens on addr, retrying briefly while the port is still held.
func listenAt(t *testing.T, addr string) net.Listener {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ln, err := net.Listen("tcp", addr)
		if err == nil {
			return ln
		}
		if !errors.Is(err, syscall.EADDRINUSE) || time.Now().After(deadline) {
			t.Fatalf("listen again on %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// serveOn starts an httptest server for h on the listener ln.
func serveOn(t *testing.T, ln net.Listener, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// TestSyncerHostDownThenBack: the host's server goes away (connections
// refused); the rows stay queued, the loops retry with backoff, and when a
// new server comes up at the same address everything goes up, once.
func TestSyncerHostDownThenBack(t *testing.T) {
	h := newTestHost(t, termA)
	ln := listenAt(t, "127.0.0.1:0")
	addr := ln.Addr().String()
	srv := serveOn(t, ln, h.handler)
	tm := newTerminal(t, h, termA, "http://"+addr)
	var tries counter
	tm.client.HTTP = &http.Client{Timeout: 5 * time.Second, Transport: countingTransport{c: &tries, base: http.DefaultTransport.(*http.Transport).Clone()}}
	tm.journal(t, 25)
	// httptest's Close waits for the requests in flight: a short held
	// pull keeps the host's going down and the test's end quick.
	tm.syncer(t, func(s *hostsync.Syncer) { s.MaxBackoff, s.PullWait = 250*time.Millisecond, 200*time.Millisecond })
	waitFor(t, "first rows up", func() bool { return tm.queueDepth(t) == 0 })

	srv.Close() // the host is down: connections are refused
	tm.journal(t, 30)
	waitFor(t, "an upload attempt against the dead host", func() bool {
		return tries.get(hostapi.PathJournal) > 1
	})
	before := tries.get(hostapi.PathJournal)
	time.Sleep(time.Second) // the window over which attempts are counted
	n := tries.get(hostapi.PathJournal) - before
	t.Logf("upload attempts in 1 s with the host down: %d", n)
	if n < 1 || n > 20 {
		t.Errorf("%d upload attempts in 1 s with the host down; want a few (backoff 125-250 ms)", n)
	}
	if d := tm.queueDepth(t); d != 30 {
		t.Errorf("queue depth %d with the host down, want the 30 new rows kept", d)
	}

	serveOn(t, listenAt(t, addr), h.handler) // a new server, same address
	waitFor(t, "queue empty with the host back", func() bool { return tm.queueDepth(t) == 0 })
	if n := h.journalCount(t, termA); n != 55 {
		t.Errorf("host holds %d rows, want 55", n)
	}
}

// TestSyncerPullsCredits: credits added at the host reach the terminal's
// cache; cancelled ones, and one consumed at another terminal, leave it.
func TestSyncerPullsCredits(t *testing.T) {
	h := newTestHost(t, termA, termB)
	srv := httptest.NewServer(h.handler)
	t.Cleanup(srv.Close)
	const number = "3101000000700001"
	card := h.issue(t, number, 10000)
	a := newTerminal(t, h, termA, srv.URL)
	a.syncer(t, nil)
	ctx := context.Background()
	credits := func() map[string]offline.Credit {
		cs, err := a.store.CreditsFor(ctx, number)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]offline.Credit{}
		for _, c := range cs {
			m[c.ID] = c
		}
		return m
	}

	c1 := h.credit(t, number, 5000, "wechat")
	c2 := h.credit(t, number, 1234, "subsidy")
	c3 := h.credit(t, number, 100, "alipay")
	waitFor(t, "three credits pulled", func() bool { return len(credits()) == 3 })
	got := credits()
	for _, want := range []hostapi.Credit{c1, c2, c3} {
		if g := got[want.ID]; g.Card != number || g.AmountFen != want.AmountFen || g.Note != want.Note {
			t.Errorf("credit %s pulled as %+v, want %d fen %q for %s", want.ID, g, want.AmountFen, want.Note, number)
		}
	}

	// Cancelled at the host: dropped here.
	if err := h.store.CancelCredit(ctx, c2.ID, "test", time.Now()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "cancelled credit dropped", func() bool { _, ok := credits()[c2.ID]; return !ok })

	// Loaded onto the card at terminal B: consumed at the host on B's TAC,
	// so A, which never saw the card, drops both remaining credits.
	b := newTerminal(t, h, termB, srv.URL)
	read, err := tap.ReadPurse(card, tap.ReadOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	loader := &tap.Loader{Store: b.store, Host: b.client, TerminalID: [6]byte{0, 0, 0, 0, 0, 2}, Logger: slog.New(slog.DiscardHandler)}
	rep, err := loader.Apply(ctx, card, read)
	if err != nil || len(rep.Loads) != 2 || !rep.Loads[0].Applied || !rep.Loads[1].Applied {
		t.Fatalf("load at terminal B: %+v, %v", rep, err)
	}
	hc, err := h.store.Credits(ctx, number)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range hc {
		if c.ID != c2.ID && c.State != hostapi.CreditConsumed {
			t.Fatalf("host: credit %s is %s after B's load, want consumed", c.ID, c.State)
		}
	}
	waitFor(t, "consumed credits dropped", func() bool { return len(credits()) == 0 })
	// The cache itself is empty, not just filtered: A has no journal row
	// for these credits, so CreditsFor would show them if they were there.
	if rows, err := a.store.List(ctx, 0, 10); err != nil || len(rows) != 0 {
		t.Errorf("terminal A journal: %d rows (%v), want none", len(rows), err)
	}
	cursor, err := a.store.Cursor(ctx, offline.PullCursor)
	if err != nil || cursor == "" {
		t.Errorf("pull cursor %q (%v), want it advanced", cursor, err)
	}
}

// TestSyncerPullsDenyList: a card denied at the host is denied at the
// terminal, with the reason; lifted, it is allowed again.
func TestSyncerPullsDenyList(t *testing.T) {
	h := newTestHost(t, termA)
	srv := httptest.NewServer(h.handler)
	t.Cleanup(srv.Close)
	tm := newTerminal(t, h, termA, srv.URL)
	tm.syncer(t, nil)
	ctx := context.Background()
	const number = "3101000000700002"
	denied := func() (bool, string) {
		d, reason, err := tm.store.Denied(ctx, number)
		if err != nil {
			t.Fatal(err)
		}
		return d, reason
	}
	if _, err := h.store.Deny(ctx, number, "lost", "test", time.Now()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "card denied at the terminal", func() bool { d, _ := denied(); return d })
	if _, reason := denied(); reason != "lost" {
		t.Errorf("deny reason %q, want lost", reason)
	}
	if _, err := h.store.Deny(ctx, number, "stolen", "test", time.Now()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "deny reason updated", func() bool { _, r := denied(); return r == "stolen" })
	if err := h.store.Undeny(ctx, number, "test", time.Now()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "card lifted at the terminal", func() bool { d, _ := denied(); return !d })
}

// TestSyncerPullsCardClasses: a class set on the host's card record
// reaches the terminal's cache; changed, it follows; cleared, the card has
// none there any more.
func TestSyncerPullsCardClasses(t *testing.T) {
	h := newTestHost(t, termA)
	srv := httptest.NewServer(h.handler)
	t.Cleanup(srv.Close)
	tm := newTerminal(t, h, termA, srv.URL)
	tm.syncer(t, nil)
	ctx := context.Background()
	const number = "3101000000700010"
	h.issue(t, number, 100)
	class := func() string {
		c, err := tm.store.CardClass(ctx, number)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	for _, want := range []string{"student", "staff", ""} {
		if _, err := h.store.SetClass(ctx, number, want, "test", time.Now()); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "class "+want+" at the terminal", func() bool { return class() == want })
	}
}

// TestSyncerPullsAccessList: a list set at the host reaches the terminal's
// store and OnAccessList; one OnAccessList refuses is not stored and asked
// again.
func TestSyncerPullsAccessList(t *testing.T) {
	h := newTestHost(t, termA)
	srv := httptest.NewServer(h.handler)
	t.Cleanup(srv.Close)
	tm := newTerminal(t, h, termA, srv.URL)
	var mu gosync.Mutex
	var got []string
	refuse := true
	tm.syncer(t, func(s *hostsync.Syncer) {
		s.PullEvery = 50 * time.Millisecond
		s.OnAccessList = func(version string, body []byte) error {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, version)
			if refuse {
				return errors.New("refused for the test")
			}
			return nil
		}
	})
	ctx := context.Background()
	body := []byte(`{"groups":[{"name":"r","windows":[{"days":["mon"],"from":"00:00","until":"24:00"}]}],"entries":[{"card":"3101000000700002","groups":["r"]}]}`)
	v, err := h.store.SetAccessList(ctx, body, "test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the list offered twice while refused", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) >= 2 })
	if sv, _, _ := tm.store.AccessList(ctx); sv != "" {
		t.Fatalf("a refused list was stored as %q", sv)
	}
	mu.Lock()
	refuse = false
	mu.Unlock()
	waitFor(t, "the list stored", func() bool { sv, _, _ := tm.store.AccessList(ctx); return sv == v })
	if _, b, _ := tm.store.AccessList(ctx); string(b) != string(body) {
		t.Fatalf("stored %s", b)
	}
}

// TestSyncerStopCancelsInFlight: Stop returns while an upload hangs at the
// host, cancelling the request; the rows stay queued and go up with the
// next Syncer.
func TestSyncerStopCancelsInFlight(t *testing.T) {
	h := newTestHost(t, termA)
	entered := make(chan struct{}, 16)
	cancelled := make(chan struct{}, 16)
	release := make(chan struct{})
	var hang atomic.Bool
	hang.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == hostapi.PathJournal && hang.Load() {
			// Read the body: only then does the server watch the
			// connection and cancel r.Context() when the client leaves.
			io.Copy(io.Discard, r.Body)
			entered <- struct{}{}
			select {
			case <-r.Context().Done():
				cancelled <- struct{}{}
			case <-release:
			}
			http.Error(w, "gave up", http.StatusServiceUnavailable)
			return
		}
		h.handler.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs before srv.Close
	tm := newTerminal(t, h, termA, srv.URL)
	tm.journal(t, 10)
	// The client's own timeout is far away: only Stop can end the request.
	tm.client.HTTP = &http.Client{Timeout: time.Minute}
	s := &hostsync.Syncer{Client: tm.client, Store: tm.store, Logger: slog.New(slog.DiscardHandler),
		PullEvery: fast, UploadEvery: fast, HeartbeatEvery: fast}
	s.Start(context.Background())
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		s.Stop()
		t.Fatal("no upload reached the host within 10 s")
	}
	stopped := make(chan struct{})
	go func() { s.Stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("Stop did not return within 10 s while an upload hung at the host")
	}
	select {
	case <-cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("the hanging upload was not cancelled by Stop")
	}
	if d := tm.queueDepth(t); d != 10 {
		t.Errorf("queue depth %d after an abandoned upload, want 10", d)
	}
	// Uploads are idempotent: the next run sends the same rows again.
	hang.Store(false)
	tm.syncer(t, nil)
	waitFor(t, "queue empty after restart", func() bool { return tm.queueDepth(t) == 0 })
	if n := h.journalCount(t, termA); n != 10 {
		t.Errorf("host holds %d rows, want 10", n)
	}
}

// TestSyncerKick: with a long upload period, a new row waits; Kick sends it
// at once.
func TestSyncerKick(t *testing.T) {
	h := newTestHost(t, termA)
	var c counter
	srv := httptest.NewServer(countingHandler(&c, h.handler))
	t.Cleanup(srv.Close)
	tm := newTerminal(t, h, termA, srv.URL)
	tm.journal(t, 3)
	s := tm.syncer(t, func(s *hostsync.Syncer) {
		s.UploadEvery, s.PullEvery, s.HeartbeatEvery = time.Hour, time.Hour, time.Hour
	})
	// Every loop runs once at Start.
	waitFor(t, "first upload", func() bool { return tm.queueDepth(t) == 0 })
	uploads := c.get(hostapi.PathJournal)
	tm.journal(t, 2)
	// Without a Kick the rows wait for the period (an hour). This is no
	// proof, only a check that the upload below is the Kick's doing.
	time.Sleep(200 * time.Millisecond)
	if d := tm.queueDepth(t); d != 2 {
		t.Fatalf("queue depth %d before Kick, want 2 (the upload period is an hour)", d)
	}
	s.Kick()
	waitFor(t, "kicked upload", func() bool { return tm.queueDepth(t) == 0 })
	if n := c.get(hostapi.PathJournal); n != uploads+1 {
		t.Errorf("%d journal uploads after Kick, want %d", n, uploads+1)
	}
	if n := h.journalCount(t, termA); n != 5 {
		t.Errorf("host holds %d rows, want 5", n)
	}
	// Kicks do not pile up: many at once are at most one extra run.
	for range 100 {
		s.Kick()
	}
	tm.journal(t, 1)
	s.Kick()
	waitFor(t, "second kicked upload", func() bool { return tm.queueDepth(t) == 0 })
	if n := c.get(hostapi.PathJournal); n > uploads+3 {
		t.Errorf("%d journal uploads after 102 kicks, want at most %d", n, uploads+3)
	}
}

// TestLoadBusyAtAnotherTerminal: terminal A was authorized to load a credit
// and the card left before CREDIT FOR LOAD; tapped at terminal B at once,
// the credit waits (B is told "busy", journals no load and voids nothing);
// once A's hold is over, B loads it, once.
func TestLoadBusyAtAnotherTerminal(t *testing.T) {
	h := newTestHost(t, termA, termB)
	clock := time.Now()
	var mu gosync.Mutex
	h.handler = host.NewHandler(h.store, h.keys, host.Options{LoadHold: time.Minute,
		Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }})
	srv := httptest.NewServer(h.handler)
	t.Cleanup(srv.Close)
	const number = "3101000000700002"
	card := h.issue(t, number, 10000)
	c := h.credit(t, number, 2500, "wechat")
	ctx := context.Background()

	// A's torn tap: INIT, authorized, then the card is gone.
	a := newTerminal(t, h, termA, srv.URL)
	if _, err := authorizeOnCard(t, card, a, number, c, [6]byte{0, 0, 0, 0, 0, 1}); err != nil {
		t.Fatal(err)
	}

	b := newTerminal(t, h, termB, srv.URL)
	loader := &tap.Loader{Store: b.store, Host: b.client, TerminalID: [6]byte{0, 0, 0, 0, 0, 2}, Logger: slog.New(slog.DiscardHandler)}
	tapB := func() tap.LoadReport {
		t.Helper()
		card.Reset()
		read, err := tap.ReadPurse(card, tap.ReadOptions{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := loader.Apply(ctx, card, read)
		if err != nil {
			t.Fatalf("tap at B: %v", err)
		}
		return rep
	}
	rep := tapB()
	if len(rep.Loads) != 1 || rep.Loads[0].Applied || !strings.Contains(rep.Loads[0].Refused, "another terminal") {
		t.Fatalf("tap at B while A holds the credit: %+v", rep.Loads)
	}
	if rows, _ := b.store.LoadsOfCredit(ctx, c.ID); len(rows) != 0 {
		t.Fatalf("B journaled %d load rows for a credit it was not authorized for", len(rows))
	}
	l, err := h.store.Ledger(ctx, number)
	if err != nil {
		t.Fatal(err)
	}
	for _, cr := range l.Credits {
		for _, ev := range cr.Events {
			if ev.Event == host.EventVoided {
				t.Fatalf("A's authorization was voided by B's tap: %+v", cr.Events)
			}
		}
	}

	mu.Lock()
	clock = clock.Add(2 * time.Minute)
	mu.Unlock()
	rep = tapB()
	if len(rep.Loads) != 1 || !rep.Loads[0].Applied || rep.Balance != 12500 {
		t.Fatalf("tap at B after A's hold: %+v", rep)
	}
	if l, err := h.store.Ledger(ctx, number); err != nil || l.LoadedFen != 2500 || l.PendingFen != 0 || l.Alarms != 0 {
		t.Fatalf("host ledger: loaded %d pending %d alarms %d (%v)", l.LoadedFen, l.PendingFen, l.Alarms, err)
	}
}

// TestSyncerHostAcksSome: a host that acks some rows of each batch, refuses
// some and says nothing of the rest. The terminal marks exactly the acked
// ids; a refused row is kept, marked with the host's reason and sent only
// once, never blocking the others; a row the host did not answer goes again.
func TestSyncerHostAcksSome(t *testing.T) {
	h := newTestHost(t, termA)
	var mu gosync.Mutex
	sent := map[string]int{}
	silentRounds := 3
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != hostapi.PathJournal {
			h.handler.ServeHTTP(w, r)
			return
		}
		var req hostapi.JournalRequest
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &req); err != nil {
			t.Errorf("upload body: %v", err)
		}
		mu.Lock()
		defer mu.Unlock()
		resp := hostapi.JournalResponse{Acked: []string{}, Refused: []hostapi.JournalRefusal{}}
		for i, row := range req.Rows {
			sent[row.ID]++
			_, seq, _ := strings.Cut(row.ID, "-")
			switch n, _ := strconv.Atoi(seq); {
			case n%3 == 1:
				resp.Acked = append(resp.Acked, row.ID)
			case n%3 == 2:
				resp.Refused = append(resp.Refused, hostapi.JournalRefusal{Index: i, ID: row.ID, Status: http.StatusConflict,
					Code: hostapi.CodeRowSettled, Reason: "row " + row.ID + " is stored done and final"})
			case silentRounds == 0:
				resp.Acked = append(resp.Acked, row.ID)
			}
		}
		if silentRounds > 0 {
			silentRounds--
		}
		json.NewEncoder(w).Encode(resp)
	}))
	t.Cleanup(srv.Close)
	tm := newTerminal(t, h, termA, srv.URL)
	tm.journal(t, 12)
	ctx := context.Background()
	tm.syncer(t, nil)
	waitFor(t, "queue empty", func() bool { return tm.queueDepth(t) == 0 })

	rows, err := tm.store.List(ctx, 0, 100)
	if err != nil || len(rows) != 12 {
		t.Fatalf("%d rows (%v)", len(rows), err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, row := range rows {
		switch row.Seq % 3 {
		case 1:
			if !row.Acked || row.HostRefused != "" || sent[row.ID] != 1 {
				t.Errorf("acked row %s: acked %v, refused %q, sent %d times", row.ID, row.Acked, row.HostRefused, sent[row.ID])
			}
		case 2:
			if row.Acked || !strings.Contains(row.HostRefused, "row_settled: row "+row.ID) || sent[row.ID] != 1 {
				t.Errorf("refused row %s: acked %v, refused %q, sent %d times; want kept unacked with the reason, sent once", row.ID, row.Acked, row.HostRefused, sent[row.ID])
			}
		case 0:
			if !row.Acked || sent[row.ID] < 2 {
				t.Errorf("row %s the host did not answer at first: acked %v, sent %d times; want sent again until acked", row.ID, row.Acked, sent[row.ID])
			}
		}
	}
	refused, err := tm.store.HostRefusedRows(ctx, 100)
	if err != nil || len(refused) != 4 {
		t.Fatalf("%d rows refused by the host listed (%v), want 4", len(refused), err)
	}
}

// olderHost is h as a host older than a journal row's psam_terminal
// answers a body with one (strict bodies: 400, unknown field), counted in
// refused.
func olderHost(h http.Handler, refused *atomic.Int32) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var req struct {
			Rows []map[string]any `json:"rows"`
			Sale map[string]any   `json:"sale"`
		}
		json.Unmarshal(body, &req)
		where := ""
		if _, ok := req.Sale["psam_terminal"]; ok {
			where = "sale"
		}
		for i, row := range req.Rows {
			if _, ok := row["psam_terminal"]; ok && where == "" {
				where = fmt.Sprintf("rows[%d]", i)
			}
		}
		if where != "" {
			refused.Add(1)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			json.NewEncoder(w).Encode(hostapi.Error{Code: hostapi.CodeBadRequest, Reason: `body: unknown field "psam_terminal" in ` + where})
			return
		}
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		h.ServeHTTP(w, r)
	})
}

// TestUploadToHostWithoutPSAMTerminal: a host older than a journal row's
// psam_terminal refuses the batch for it (strict bodies: 400 bad_request,
// unknown field); the terminal sends the rows again without it, and they
// are stored and acked, not stuck behind the refusal.
func TestUploadToHostWithoutPSAMTerminal(t *testing.T) {
	h := newTestHost(t, termA)
	var refused atomic.Int32
	srv := httptest.NewServer(olderHost(h.handler, &refused))
	t.Cleanup(srv.Close)
	tm := newTerminal(t, h, termA, srv.URL)
	ctx := context.Background()
	row, err := tm.store.Begin(ctx, offline.Row{Kind: offline.KindPurchase, Card: "3101000000123456", Purse: "EP", Counter: 3,
		BalanceFen: 1000, AmountFen: 100, TermSerial: 7, PSAMTerminal: "0000000000AA", Time: time.Now().Format(hostapi.TimeLayout)})
	if err != nil {
		t.Fatal(err)
	}
	if err := tm.store.Finish(ctx, row.ID, offline.StateDone, "0A0B0C0D", ""); err != nil {
		t.Fatal(err)
	}
	tm.syncer(t, nil)
	waitFor(t, "the sale stored at the older host", func() bool { return h.journalCount(t, termA) == 1 && tm.queueDepth(t) == 0 })
	if refused.Load() == 0 {
		t.Fatal("the host never saw psam_terminal: the test shows nothing")
	}
}
