package tap

import (
	"context"
	"testing"
	"time"
)

// TestLoadFreshCacheWithNothingAsksNobody: with the pull fresh and nothing
// cached for the card, the tap asks the host nothing and loads nothing,
// though the host holds a credit for it (paid since the last pull: the
// held pull brings it, not the tap). Once the pull is stale, a tap asks
// the host and loads it.
func TestLoadFreshCacheWithNothingAsksNobody(t *testing.T) {
	w := newLoadWorld(t, 1500)
	w.l.CreditsFresh = time.Minute
	if err := w.store.ApplyPull(context.Background(), nil, nil, nil, "7"); err != nil {
		t.Fatal(err)
	}
	start := w.card.File().EPBalance
	rep, err := w.tap(t, w.card)
	if err != nil {
		t.Fatal(err)
	}
	if w.host.lookups != 0 || len(w.host.auth)+len(w.host.consumed) != 0 || len(rep.Loads) != 0 {
		t.Fatalf("fresh cache with nothing for the card: %d lookups, %d authorizations, loads %+v; want no host call, no load",
			w.host.lookups, len(w.host.auth)+len(w.host.consumed), rep.Loads)
	}
	if b := w.card.File().EPBalance; b != start || rep.HostOffline {
		t.Fatalf("card holds %d (was %d), host offline %v", b, start, rep.HostOffline)
	}

	// Stale: the tap asks, and loads what the host holds.
	w.l.CreditsFresh = time.Nanosecond
	rep, err = w.tap(t, w.card)
	if err != nil {
		t.Fatal(err)
	}
	if w.host.lookups != 1 || len(rep.Loads) != 1 || !rep.Loads[0].Applied {
		t.Fatalf("stale cache: %d lookups, loads %+v; want 1 lookup and the credit loaded", w.host.lookups, rep.Loads)
	}
	if b := w.card.File().EPBalance; b != start+1500 {
		t.Fatalf("card holds %d, want %d", b, start+1500)
	}

	// A pull of an earlier run of the terminal does not make the cache
	// fresh: what was paid while it was down is not in it.
	w.l.CreditsFresh, w.l.FreshAfter = time.Minute, time.Now()
	if _, err := w.tap(t, w.card); err != nil || w.host.lookups != 2 {
		t.Fatalf("tap after a restart, before its first pull: %v, %d lookups, want 2", err, w.host.lookups)
	}
}
