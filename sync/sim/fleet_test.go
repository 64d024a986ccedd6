package sim

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cardd/cardd/host"
	"github.com/cardd/cardd/hostapi"
	hostsync "github.com/cardd/cardd/sync"
)

// testHost is one SQLite host store served by several in-process
// instances, as several cardhost processes share one database.
type testHost struct {
	st    *host.Store
	keys  *host.Keys
	urls  []string
	cards []*Card
	terms []Terminal
}

func newTestHost(t *testing.T, instances, terminals, cards, credits int) *testHost {
	t.Helper()
	dir := t.TempDir()
	st, err := host.Open(filepath.Join(dir, host.DBFile))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	m, err := host.GenerateMasterKeys()
	if err != nil {
		t.Fatal(err)
	}
	keys, err := host.NewKeys(m)
	if err != nil {
		t.Fatal(err)
	}
	h := &testHost{st: st, keys: keys}
	for range instances {
		srv := httptest.NewServer(host.NewHandler(st, keys, host.Options{}))
		t.Cleanup(srv.Close)
		h.urls = append(h.urls, srv.URL)
	}
	ctx := context.Background()
	if h.terms, err = NewTerminals(ctx, st, terminals); err != nil {
		t.Fatal(err)
	}
	if h.cards, err = IssueCards(ctx, st, keys, dir, cards, 1000); err != nil {
		t.Fatal(err)
	}
	if _, err := AddCredits(ctx, st, h.cards, credits, 150); err != nil {
		t.Fatal(err)
	}
	return h
}

// checkSums checks the books (CheckBooks) and returns how many credits
// the host holds consumed.
func (h *testHost) checkSums(t *testing.T) int {
	t.Helper()
	var books []CardBalance
	for _, c := range h.cards {
		books = append(books, c.Books())
	}
	consumed, _, err := CheckBooks(context.Background(), h.st, books)
	if err != nil {
		t.Error(err)
	}
	return consumed
}

func TestLoadsConsumeEachCreditOnce(t *testing.T) {
	for _, shared := range []bool{false, true} {
		name := map[bool]string{false: "one field at a time", true: "shared cards racing"}[shared]
		t.Run(name, func(t *testing.T) {
			h := newTestHost(t, 2, 12, 3, 4)
			rep := runUntil(t, Config{
				Hosts: h.urls, Terminals: h.terms, Cards: h.cards, SharedCards: shared,
				Rate: 40, Mix: Mix{Load: 1}, Timeout: 5 * time.Second,
			}, func() bool { return h.consumed() == 3*4 })
			consumed := h.checkSums(t)
			l := rep.Loads
			if l.Doubled != 0 || l.Unsettled != 0 {
				t.Errorf("doubled %d, unsettled %d: want none", l.Doubled, l.Unsettled)
			}
			if int64(consumed) != l.Applied || l.Consumed != l.Applied {
				t.Errorf("cards applied %d loads, the fleet saw %d consumed, the host holds %d consumed", l.Applied, l.Consumed, consumed)
			}
			if consumed != 3*4 {
				t.Errorf("the host holds %d credits consumed, want all %d", consumed, 3*4)
			}
			if rep.Kinds[KindAuthorize].OK == 0 || rep.Kinds[KindComplete].P99MS <= 0 {
				t.Errorf("report without authorizations or latencies: %+v", rep.Kinds)
			}
		})
	}
}

func TestReplaysToAnotherInstanceRefused(t *testing.T) {
	h := newTestHost(t, 2, 4, 2, 2)
	w := &watch{next: hostsync.NewTransport(nil)}
	rep := runUntil(t, Config{
		Hosts: h.urls, Transport: w, Terminals: h.terms, Cards: h.cards, Rate: 20, Capture: 40,
	}, func() bool { return w.sentWithBody() >= 40 })
	if len(rep.Captured) != 40 {
		t.Fatalf("captured %d requests, want 40", len(rep.Captured))
	}
	rp, err := Replay(context.Background(), &http.Client{Timeout: 5 * time.Second}, h.urls, rep.Captured)
	if err != nil {
		t.Fatal(err)
	}
	if rp.Sent != 40 || rp.Refused != 40 || rp.Accepted != 0 {
		t.Errorf("replay: %+v, want all 40 refused for their nonce", rp)
	}
	h.checkSums(t)
}

func TestWrongSecretRefused(t *testing.T) {
	h := newTestHost(t, 1, 1, 1, 1)
	bad := Terminal{ID: h.terms[0].ID, Secret: []byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")}
	rep, err := Run(context.Background(), Config{
		Hosts: h.urls, Terminals: []Terminal{bad}, Cards: h.cards, Rate: 20, Duration: 500 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	var requests int64
	for kind, k := range rep.Kinds {
		requests += k.Requests
		if k.OK != 0 || k.Refused[hostapi.CodeUnauthorized] != k.Requests {
			t.Errorf("%s: %+v, want every request refused unauthorized", kind, k)
		}
	}
	if requests == 0 {
		t.Fatal("no request sent")
	}
	if h.cards[0].Balance() != h.cards[0].Initial() {
		t.Error("a card was loaded through a terminal with a wrong secret")
	}
}

// TestFailoverPastADeadInstance: the instance the first authorization
// reaches dies there and then (its address refuses connections); that
// authorization and every later request to it go to the other instance,
// and every credit is loaded once.
func TestFailoverPastADeadInstance(t *testing.T) {
	h := newTestHost(t, 2, 4, 2, 3)
	dead := httptest.NewServer(nil)
	dead.Close() // nothing listens there any more
	w := &watch{next: hostsync.NewTransport(nil), breakOn: hostapi.PathLoadAuthorize, to: dead.Listener.Addr().String()}
	rep := runUntil(t, Config{
		Hosts: h.urls, Transport: w, Terminals: h.terms, Cards: h.cards, Rate: 40, Mix: Mix{Load: 1},
	}, func() bool { return h.consumed() == 2*3 })
	wantEveryCreditOnce(t, h, rep, 2*3)
	// Every request sent to the dead instance went on to the other within
	// its call, the first authorization among them.
	var failedOver int64
	for _, k := range rep.Kinds {
		failedOver += k.FailedOver
	}
	a := rep.Kinds[KindAuthorize]
	if w.redirected() == 0 || failedOver != int64(w.redirected()) || a.Failed[CodeUnreachable] == 0 || a.FailedOver != a.Failed[CodeUnreachable] {
		t.Errorf("%d requests sent to the dead instance, %d failed over; authorize %+v: want the first authorization to have found it dead, and each such request failed over", w.redirected(), failedOver, a)
	}
}

func TestConfigRefused(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no host":     {Terminals: []Terminal{{ID: "000000000001"}}},
		"no terminal": {Hosts: []string{"http://127.0.0.1:1"}},
		"no card":     {Hosts: []string{"http://127.0.0.1:1"}, Terminals: []Terminal{{ID: "000000000001"}}, Mix: Mix{Load: 1}},
		"bad id":      {Hosts: []string{"http://127.0.0.1:1"}, Terminals: []Terminal{{ID: "xyz"}}, Mix: Mix{Pull: 1}},
	} {
		if _, err := Run(context.Background(), cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestBacklogDrainsBesideTheFleet(t *testing.T) {
	h := newTestHost(t, 2, 4, 1, 0)
	pos, err := NewTerminals(context.Background(), h.st, 1)
	if err != nil {
		t.Fatal(err)
	}
	w := &watch{next: hostsync.NewTransport(nil)}
	// The fleet acts until the host holds the whole backlog and has
	// answered a heartbeat of the fleet beside it.
	rep := runUntil(t, Config{
		Hosts: h.urls, Transport: w, Terminals: h.terms, Mix: Mix{Heartbeat: 1, Pull: 1}, Rate: 10,
		Backlog: Backlog{Terminal: pos[0], Rows: 1200},
	}, func() bool {
		n, err := h.st.JournalCount(context.Background(), pos[0].ID)
		return err == nil && n == 1200 && w.answered(hostapi.PathHeartbeat) > 0
	})
	b := rep.Backlog
	if b == nil || !b.Drained || b.Acked != 1200 || b.Batches != 3 || b.Refused != 0 {
		t.Fatalf("backlog %+v: want 1200 rows acked in 3 batches of 500", b)
	}
	n, err := h.st.JournalCount(context.Background(), pos[0].ID)
	if err != nil || n != 1200 {
		t.Errorf("the host holds %d rows of the backlog terminal (%v), want 1200", n, err)
	}
	if rep.Kinds[KindHeartbeat].OK == 0 {
		t.Error("the fleet did not go on beside the backlog")
	}
}

// TestFailoverPastA5xx: the instance the first load completion reaches
// loses its database there and then, and answers every later completion
// 500; those completions go to the other instance, and every load is
// settled once.
func TestFailoverPastA5xx(t *testing.T) {
	h := newTestHost(t, 2, 4, 2, 3)
	sick := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		w.Write([]byte(`{"code":"internal","reason":"the host failed to answer; see its log"}`))
	}))
	t.Cleanup(sick.Close)
	w := &watch{next: hostsync.NewTransport(nil), breakOn: hostapi.PathLoadComplete, only: true, to: sick.Listener.Addr().String()}
	rep := runUntil(t, Config{
		Hosts: h.urls, Transport: w, Terminals: h.terms, Cards: h.cards, Rate: 40, Mix: Mix{Load: 1},
	}, func() bool { return h.consumed() == 2*3 })
	wantEveryCreditOnce(t, h, rep, 2*3)
	// The first completion met the sick instance: a 500, then the other
	// instance took it within the same call (and every load above is
	// consumed, none unsettled).
	c := rep.Kinds[KindComplete]
	if d := int64(w.redirected()); d == 0 || c.Failed["500 internal"] != d || c.FailedOver != d {
		t.Errorf("%d completions sent to the sick instance; complete %+v: want at least one, each failed 500 and failed over", d, c)
	}
	for kind, k := range rep.Kinds {
		if kind != KindComplete && len(k.Failed) != 0 {
			t.Errorf("%s: %+v: only completions should fail", kind, k)
		}
	}
}

// bound is how long a run may take to do its work: a safety net against a
// run that never finishes, generous for a slow machine (the arm64 tests
// under qemu beside CI's go test); not a time any test asserts.
const bound = 3 * time.Minute

// runUntil runs the fleet until done says its work is done, asking it
// every few milliseconds; the run's Duration is only the bound. A run that
// ends with its work not done fails the test.
// wantEveryCreditOnce fails t unless all n credits were consumed at the
// host, applied on the cards and seen consumed by the fleet, none doubled
// and none left unsettled: the failover tests' money check.
func wantEveryCreditOnce(t *testing.T, h *testHost, rep *Report, n int) {
	t.Helper()
	if got := h.checkSums(t); got != n || rep.Loads.Applied != int64(n) || rep.Loads.Consumed != int64(n) {
		t.Errorf("the host holds %d credits consumed, the cards applied %d, the fleet saw %d consumed: want all %d", got, rep.Loads.Applied, rep.Loads.Consumed, n)
	}
	if rep.Loads.Doubled != 0 || rep.Loads.Unsettled != 0 {
		t.Errorf("loads %+v: want none doubled or unsettled", rep.Loads)
	}
}

func runUntil(t *testing.T, cfg Config, done func() bool) *Report {
	t.Helper()
	stop, finished := make(chan struct{}), make(chan struct{})
	cfg.Duration, cfg.Stop = bound, stop
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for !done() {
			select {
			case <-finished:
				return
			case <-tick.C:
			}
		}
		close(stop)
	})
	rep, err := Run(context.Background(), cfg)
	close(finished)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if !done() {
		t.Fatalf("the fleet ran to its %v bound with its work not done: %+v, loads %+v, backlog %+v", bound, rep.Kinds, rep.Loads, rep.Backlog)
	}
	return rep
}

// consumed counts the credits the host holds consumed; -1 when it cannot
// tell. Unlike checkSums it reads no card, so it may run beside the fleet.
func (h *testHost) consumed() int {
	n := 0
	for _, c := range h.cards {
		list, err := h.st.Credits(context.Background(), c.Number())
		if err != nil {
			return -1
		}
		for _, cr := range list {
			if cr.State == hostapi.CreditConsumed {
				n++
			}
		}
	}
	return n
}

// watch stands between the fleet and the instances. It counts the
// requests with a body (those a run can capture) and the answers 2xx by
// path; and when breakOn is set, the instance that the first request on
// that path reaches breaks there and then: from then on its requests
// (only those on breakOn, when only) go to the address to instead, a
// closed port (a dead instance) or a server answering 500 (its database
// down).
type watch struct {
	next    http.RoundTripper
	breakOn string
	only    bool
	to      string

	mu       sync.Mutex
	broken   string // host:port of the broken instance; "" until it breaks
	sent     int    // requests with a body
	diverted int    // requests sent to the address to
	ok       map[string]int
}

func (w *watch) RoundTrip(r *http.Request) (*http.Response, error) {
	w.mu.Lock()
	if r.GetBody != nil { // as the run's capture decides
		w.sent++
	}
	if w.breakOn != "" && w.broken == "" && r.URL.Path == w.breakOn {
		w.broken = r.URL.Host
	}
	divert := w.broken != "" && r.URL.Host == w.broken && (!w.only || r.URL.Path == w.breakOn)
	if divert {
		w.diverted++
	}
	w.mu.Unlock()
	if divert {
		r = r.Clone(r.Context())
		r.URL.Host, r.Host = w.to, w.to
	}
	res, err := w.next.RoundTrip(r)
	if err == nil && res.StatusCode/100 == 2 {
		w.mu.Lock()
		if w.ok == nil {
			w.ok = map[string]int{}
		}
		w.ok[r.URL.Path]++
		w.mu.Unlock()
	}
	return res, err
}

func (w *watch) sentWithBody() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.sent
}

func (w *watch) redirected() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.diverted
}

func (w *watch) answered(path string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ok[path]
}
