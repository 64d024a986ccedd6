package integration

import (
	"context"
	"database/sql"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"github.com/cardd/cardd/host"
	"github.com/cardd/cardd/offline"
	"github.com/cardd/cardd/reader"
	"github.com/cardd/cardd/reader/vpcd"
	hostsync "github.com/cardd/cardd/sync"
	"github.com/cardd/cardd/tap"
)

// restartableHost serves the host handler on one loopback address that
// survives a stop and start, as a host process restarted by its operator.
type restartableHost struct {
	w    *world
	addr string
	srv  *http.Server
}

func (h *restartableHost) start(t *testing.T) {
	t.Helper()
	addr := h.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	h.addr = ln.Addr().String()
	h.srv = &http.Server{Handler: host.NewHandler(h.w.host, h.w.keys, host.Options{})}
	go h.srv.Serve(ln)
}

// stop closes the listener and the host's database, like a process exit.
func (h *restartableHost) stop(t *testing.T) {
	t.Helper()
	if err := h.srv.Close(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		t.Fatal(err)
	}
	if err := h.w.host.Close(); err != nil {
		t.Fatal(err)
	}
	var err error
	if h.w.host, err = host.OpenDir(h.w.hostDir, ""); err != nil {
		t.Fatal(err)
	}
}

// TestHostDownJournalCatchesUp: 1000 taps while the host is stopped pile up
// in the terminal's journal; when the host is back every row arrives, each
// exactly once: the count and the sum of balances agree on both sides.
func TestHostDownJournalCatchesUp(t *testing.T) {
	requirePCSC(t)
	n := 1000
	if testing.Short() {
		n = 60
	}
	w := newHostWorld(t)
	h := &restartableHost{w: w}
	h.start(t)
	paths := []string{w.issue(t, "3101000000800000", 12300), w.issue(t, "3101000000800001", 45600)}
	h.stop(t) // the host goes down before the taps

	store, err := offline.Open(filepath.Join(t.TempDir(), "cardd.db"), termID)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	client := &hostsync.Client{BaseURL: "http://" + h.addr, TerminalID: termID, Secret: []byte(w.secret)}
	syncer := &hostsync.Syncer{Client: client, Store: store, Logger: discardLogger(),
		PullEvery: 200 * time.Millisecond, UploadEvery: 100 * time.Millisecond, HeartbeatEvery: time.Second, MaxBackoff: time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	syncer.Start(ctx)
	defer syncer.Stop()

	waitEmpty(t, 0)
	waitEmpty(t, 1)
	results := make(chan tap.Result, 4)
	var id [6]byte
	id[5] = 1
	r := &tap.Runner{
		Roles:  reader.Roles{Card: regexp.MustCompile(`^Virtual PCD 00 0[01]$`)},
		Logger: discardLogger(),
		OnTap:  func(res tap.Result) { results <- res; syncer.Kick() },
		Loader: &tap.Loader{Store: store, Host: client, TerminalID: id, HostTimeout: 300 * time.Millisecond, Logger: discardLogger()},
	}
	rctx, rcancel := context.WithCancel(ctx)
	rdone := make(chan struct{})
	go func() { _ = r.Run(rctx); close(rdone) }()
	defer func() { rcancel(); <-rdone }()

	// Two cards on two slots, in turn: one is tapped while pcscd notices
	// that the other has left.
	for i := range n {
		slot := i % 2
		in := insert(t, paths[slot], slot, vpcd.Options{})
		select {
		case res := <-results:
			if res.Err != nil || res.Load == nil || !res.Load.HostOffline {
				t.Fatalf("tap %d: err %v, load %+v; want a read with the host offline (%s)", i, res.Err, res.Load, in.status())
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("tap %d: no tap within 15 s", i)
		}
		in.remove(t)
	}
	depth, err := store.QueueDepth(ctx)
	if err != nil || depth != n {
		t.Fatalf("queue depth %d (%v) with the host down, want %d", depth, err, n)
	}

	h.start(t) // the host is back, on the same address
	deadline := time.Now().Add(2 * time.Minute)
	for depth > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d rows still queued 2 minutes after the host came back", depth)
		}
		time.Sleep(100 * time.Millisecond)
		if depth, err = store.QueueDepth(ctx); err != nil {
			t.Fatal(err)
		}
	}

	// Both sides: count, distinct ids and the sum of balances.
	var termCount, termSum int64
	for before := int64(0); ; {
		rows, err := store.List(ctx, before, 500)
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) == 0 {
			break
		}
		for _, row := range rows {
			termCount++
			termSum += row.BalanceFen
			before = row.Seq
		}
	}
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(w.hostDir, "host.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var hostCount, hostDistinct, hostSum int64
	if err := db.QueryRow(`SELECT count(*), count(DISTINCT id), coalesce(sum(balance_fen), 0) FROM journal WHERE terminal = ?`, termID).
		Scan(&hostCount, &hostDistinct, &hostSum); err != nil {
		t.Fatal(err)
	}
	if termCount != int64(n) || hostCount != termCount || hostDistinct != hostCount || hostSum != termSum {
		t.Errorf("terminal %d rows, sum %d; host %d rows (%d distinct), sum %d; want %d rows on both sides, equal sums",
			termCount, termSum, hostCount, hostDistinct, hostSum, n)
	}
	if want := int64(n/2)*12300 + int64(n-n/2)*45600; termSum != want {
		t.Errorf("sum of balances %d, want %d", termSum, want)
	}
}
