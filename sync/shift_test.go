package sync_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/cardd/cardd/host"
	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/offline"
)

// TestSyncerUploadsShift: a closed shift goes up through the upload loop,
// kept while the host answers 503 and sent once it answers, then not again;
// the host lists it with the totals and, its sales' rows uploaded too,
// checked ok.
func TestSyncerUploadsShift(t *testing.T) {
	h := newTestHost(t, termA)
	var c counter
	var failing atomic.Bool
	failing.Store(true)
	srv := httptest.NewServer(countingHandler(&c, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() && r.URL.Path == hostapi.PathShift {
			http.Error(w, "upstream down", http.StatusServiceUnavailable)
			return
		}
		h.handler.ServeHTTP(w, r)
	})))
	t.Cleanup(srv.Close)
	tm := newTerminal(t, h, termA, srv.URL)
	ctx := context.Background()
	if _, err := tm.store.OpenShift(ctx, "C007"); err != nil {
		t.Fatal(err)
	}
	for _, fen := range []int64{1200, 1500} {
		r, err := tm.store.Begin(ctx, offline.Row{Kind: offline.KindPurchase, Card: "3101000000000001", Purse: "EP", BalanceFen: 10000,
			AmountFen: fen, Time: "20261204120000", Sale: offline.SaleFacts{Period: "lunch", Class: "staff"}})
		if err != nil {
			t.Fatal(err)
		}
		if err := tm.store.Finish(ctx, r.ID, offline.StateDone, "01020304", ""); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tm.store.CloseShift(ctx, offline.CloseOptions{}); err != nil {
		t.Fatal(err)
	}
	unsent := func() int {
		l, err := tm.store.UnsentShifts(ctx, 10)
		if err != nil {
			t.Fatal(err)
		}
		return len(l)
	}
	tm.syncer(t, nil)
	waitFor(t, "an upload refused 503", func() bool { return c.get(hostapi.PathShift) >= 2 })
	if n := unsent(); n != 1 {
		t.Fatalf("%d shifts owed while the host fails, want 1", n)
	}
	failing.Store(false)
	waitFor(t, "the shift acknowledged", func() bool { return unsent() == 0 })
	waitFor(t, "the journal uploaded", func() bool { return tm.queueDepth(t) == 0 })
	list, err := h.store.Shifts(ctx, termA)
	if err != nil || len(list) != 1 {
		t.Fatalf("host shifts %+v %v", list, err)
	}
	if s := list[0]; s.Summary.Cashier != "C007" || s.Summary.Count != 2 || s.Summary.SumFen != 2700 || s.Check.State != host.ShiftOK {
		t.Errorf("host holds %+v, want C007's 2 sales of 27.00, checked ok", s)
	}
	sent := c.get(hostapi.PathShift)
	tm.journal(t, 1)
	waitFor(t, "a later round", func() bool { return tm.queueDepth(t) == 0 })
	if n := c.get(hostapi.PathShift); n != sent {
		t.Errorf("the acknowledged shift went up again (%d uploads, then %d)", sent, n)
	}
}
