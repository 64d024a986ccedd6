package sync_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/internal/cardtest"
	"github.com/cardd/cardd/offline"
)

// TestSyncerNineteenDigitCard: between a terminal's real journal and the
// reference host over HTTP, a T-Union card's 19-digit number goes up in a
// journal row the host acks (not refuses), and comes down on the deny
// list as written.
func TestSyncerNineteenDigitCard(t *testing.T) {
	h := newTestHost(t, termA)
	srv := httptest.NewServer(h.handler)
	t.Cleanup(srv.Close)
	tm := newTerminal(t, h, termA, srv.URL)
	ctx := context.Background()
	row, err := tm.store.Begin(ctx, offline.Row{Kind: offline.KindRead, State: offline.StateDone,
		Card: cardtest.TUnion, Purse: "EP", BalanceFen: 5710, Time: time.Now().Format(hostapi.TimeLayout)})
	if err != nil {
		t.Fatal(err)
	}
	tm.syncer(t, nil)
	waitFor(t, "the row acked", func() bool { return tm.queueDepth(t) == 0 })
	if got, err := tm.store.Get(ctx, row.ID); err != nil || !got.Acked || got.HostRefused != "" {
		t.Fatalf("row %+v, %v: want acked, not refused", got, err)
	}
	if n := h.journalCount(t, termA); n != 1 {
		t.Fatalf("host holds %d rows, want 1", n)
	}
	if _, err := h.store.Deny(ctx, cardtest.TUnion, "stolen", "test", time.Now()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the card denied at the terminal", func() bool {
		d, reason, err := tm.store.Denied(ctx, cardtest.TUnion)
		return err == nil && d && reason == "stolen"
	})
}
