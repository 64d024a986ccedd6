package integration

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	gosync "sync"
	"testing"
	"time"

	epursesim "github.com/cardd/cardd/apdu/epurse/sim"
	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/offline"
	"github.com/cardd/cardd/reader/vpcd"
	hostsync "github.com/cardd/cardd/sync"
)

// waitCached waits, bounded, until the terminal's store at path holds the
// credit id in its credits cache, reading the file read-only as a second
// process may while the terminal runs.
func waitCached(t testing.TB, path, id string, limit time.Duration) {
	t.Helper()
	db := sqlOpen(t, path)
	deadline := time.Now().Add(limit)
	for {
		var n int
		err := db.QueryRow(`SELECT count(*) FROM credits WHERE id = ?`, id).Scan(&n)
		if err == nil && n == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("credit %s not in the terminal's cache within %v (%v)", id, limit, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitPulled waits, bounded, until the terminal's store at path records a
// pull answered.
func waitPulled(t testing.TB, path string, limit time.Duration) {
	t.Helper()
	db := sqlOpen(t, path)
	deadline := time.Now().Add(limit)
	for {
		var n int
		err := db.QueryRow(`SELECT count(*) FROM cursors WHERE name = ?`, offline.PullCursor).Scan(&n)
		if err == nil && n == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no pull answered within %v (%v)", limit, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// pathCounter counts the host's requests by path.
type pathCounter struct {
	mu gosync.Mutex
	n  map[string]int
}

func (c *pathCounter) serve(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.n[r.URL.Path]++
		c.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

func (c *pathCounter) get(path string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[path]
}

// TestHeldPullBringsCreditThenOneTrip: with the terminal's pull held at the
// host and its interval an hour, a credit added at the host reaches the
// terminal's cache without a tap; the tap then loads it with exactly one
// host round trip before the card may leave (the authorization), counted
// at the host.
func TestHeldPullBringsCreditThenOneTrip(t *testing.T) {
	requirePCSC(t)
	w := newWorld(t)
	const number = "3101000000770001"
	path := w.issue(t, number, 1000)
	s := &hostsync.Syncer{Client: w.client, Store: w.store, Logger: slog.New(slog.DiscardHandler),
		PullEvery: time.Hour, UploadEvery: time.Hour, HeartbeatEvery: time.Hour}
	s.Start(context.Background())
	t.Cleanup(s.Stop)
	// The tap asks the host through a server that notes each request; the
	// pull goes straight to it.
	trips := &timeline{}
	counted := httptest.NewServer(countTrips(w.srv.Config.Handler, trips))
	t.Cleanup(counted.Close)
	w.fresh = time.Minute
	w.startRunnerAs(t, w.store, &hostsync.Client{BaseURL: counted.URL, TerminalID: termID, Secret: []byte(w.secret)})
	waitPulled(t, w.store.Path(), 10*time.Second)

	id := w.credit(t, number, 2500)
	waitCached(t, w.store.Path(), id, 5*time.Second)
	res := w.tap(t, path, vpcd.Options{})
	if res.Err != nil || res.Load == nil || len(res.Load.Loads) != 1 || !res.Load.Loads[0].Applied || res.Load.Loads[0].CreditID != id {
		t.Fatalf("tap: err %v, load %+v; want the credit %s applied", res.Err, res.Load, id)
	}
	if res.ToLeave <= 0 {
		t.Fatalf("tap with no leave point: %+v", res)
	}
	if n := trips.within(res.Start, res.Start.Add(res.ToLeave)); n != 1 {
		t.Fatalf("%d host round trips before the card could leave, want 1 (the authorization)", n)
	}
	f, err := epursesim.LoadCardFile(path)
	if err != nil || f.EPBalance != 3500 {
		t.Fatalf("card holds %d (%v), want 3500", f.EPBalance, err)
	}
}

// TestDaemonHeldPullBringsCredit: a `cardd run` kiosk with its default
// pull: a credit added by `cardhost credit add` (another process than the
// host serving the terminal, on the same database) reaches the terminal's
// cache without a tap, and the tap that follows loads it without asking
// the host for the card's credits: one authorization.
func TestDaemonHeldPullBringsCredit(t *testing.T) {
	requirePCSC(t)
	w := newHostWorld(t)
	const number = "3101000000770002"
	path := w.issue(t, number, 1000)
	c := &pathCounter{n: map[string]int{}}
	counted := httptest.NewServer(c.serve(w.srv.Config.Handler))
	t.Cleanup(counted.Close)
	dir := t.TempDir()
	storePath := filepath.Join(dir, "cardd.db")
	waitEmpty(t, 0)
	d := startDaemon(t, "CARDD_HOST_URL="+counted.URL, "CARDD_HOST_SECRET_FILE="+w.secretFile(t, dir),
		"CARDD_STORE_PATH="+storePath, "CARDD_TERMINAL_ID="+termID)
	d.waitLine(t, "reader added", 10*time.Second, func(m map[string]any) bool { return m["reader"] == slot0Reader })
	waitPulled(t, storePath, 10*time.Second)

	cardhostCLI(t, w.hostDir, "credit", "add", "--card", number, "--amount", "25.00", "--note", "app")
	list, err := w.host.Credits(context.Background(), number)
	if err != nil || len(list) != 1 {
		t.Fatalf("host credits %+v, %v", list, err)
	}
	waitCached(t, storePath, list[0].ID, 5*time.Second)

	lookups, auths := c.get(hostapi.PathCardCredits), c.get(hostapi.PathLoadAuthorize)
	in := insert(t, path, 0, vpcd.Options{})
	d.waitLine(t, "tap", 15*time.Second, isTap("ok"))
	in.remove(t)
	if n := c.get(hostapi.PathCardCredits) - lookups; n != 0 {
		t.Errorf("the tap asked the host for the card's credits %d times, want 0: they were cached", n)
	}
	if n := c.get(hostapi.PathLoadAuthorize) - auths; n != 1 {
		t.Errorf("%d authorizations on the tap, want 1", n)
	}
	f, err := epursesim.LoadCardFile(path)
	if err != nil || f.EPBalance != 3500 {
		t.Fatalf("card holds %d (%v), want 3500", f.EPBalance, err)
	}
	d.stop(t, 10*time.Second)
}
