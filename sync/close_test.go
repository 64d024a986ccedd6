package sync_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/cardd/cardd/hostapi"
)

// TestSyncerPullsCloses: a close asked at the host reaches the terminal's
// cache with its id, also through a held pull (which ended only on a
// credit, deny or class change, and held a close back until its time was
// up); a card not asked to close has none.
func TestSyncerPullsCloses(t *testing.T) {
	h := newTestHost(t, termA)
	srv := httptest.NewServer(h.handler)
	t.Cleanup(srv.Close)
	tm := newTerminal(t, h, termA, srv.URL)
	tm.syncer(t, nil)
	ctx := context.Background()
	const number, other = "3101000000700028", "3101000000700036"
	h.issue(t, number, 100)
	h.issue(t, other, 100)
	if _, err := h.store.CloseCard(ctx, number, "operator test", "graduated", time.Now()); err != nil {
		t.Fatal(err)
	}
	closeOf := func(card string) string {
		id, err := tm.store.CloseOf(ctx, card)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	waitFor(t, "the close at the terminal", func() bool { return closeOf(number) == hostapi.CloseID(number) })
	if id := closeOf(other); id != "" {
		t.Fatalf("a card not asked to close has close %q", id)
	}
}
