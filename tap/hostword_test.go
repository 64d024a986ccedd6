package tap

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/offline"
	"github.com/cardd/cardd/reader"
	hostsync "github.com/cardd/cardd/sync"
)

// deniedAtAuthHost denied the card since the last pull: its authorization
// answers card_denied.
type deniedAtAuthHost struct{ *fakeLoadHost }

func (deniedAtAuthHost) CardCredits(context.Context, string) (hostapi.CardCreditsResponse, error) {
	return hostapi.CardCreditsResponse{Denied: true, Reason: "lost"}, nil
}

func (deniedAtAuthHost) AuthorizeLoad(context.Context, hostapi.LoadAuthorizeRequest) (hostapi.LoadAuthorizeResponse, error) {
	return hostapi.LoadAuthorizeResponse{}, &hostsync.HostError{Status: 409, Code: hostapi.CodeCardDenied, Reason: "lost"}
}

// A card the host denied since the last pull, with a credit of it cached
// and the cache fresh (so CardCredits is not asked), is refused by the
// authorization's card_denied: no sale is charged, and the deny list
// remembers it for an offline host.
func TestLoadDeniedAtAuthorizationRefusesSale(t *testing.T) {
	b := newTapBench(t)
	card := newTestCard(t, "王小明", 3, nil)
	b.card = card
	b.r.Loader = b.loader(deniedAtAuthHost{newFakeLoadHost(t, card, 5000)})
	b.r.Loader.CreditsFresh = time.Minute
	b.r.Purchaser = b.pos(1250, false)
	b.r.samReader = "sam"
	ctx := context.Background()
	if err := b.store.ApplyPull(ctx, []offline.Credit{{ID: "cr-1", Card: testNumber, AmountFen: 5000}}, nil, nil, "c1"); err != nil {
		t.Fatal(err)
	}
	start := card.File().EPBalance
	res := b.r.tap(ctx, b.open, reader.Event{Kind: reader.CardInserted, Reader: "card", Time: time.Now()})
	if !errors.Is(res.Err, ErrCardDenied) {
		t.Fatalf("outcome %s, err %v; want card_denied", res.Outcome(), res.Err)
	}
	if res.Purchase != nil && res.Purchase.Paid {
		t.Fatal("a card the host denies was charged")
	}
	if got := card.File().EPBalance; got != start {
		t.Fatalf("card balance %d -> %d; want unchanged", start, got)
	}
	if denied, _, err := b.store.Denied(ctx, testNumber); err != nil || !denied {
		t.Fatalf("deny list: %v %v; want the card denied", denied, err)
	}
}

// loadsOf is each load of rep as "id applied=bool".
func loadsOf(rep LoadReport) []string {
	var got []string
	for _, l := range rep.Loads {
		got = append(got, fmt.Sprintf("%s applied=%v", l.CreditID, l.Applied))
	}
	return got
}

// The host's list in an authorization, even empty, is the card's other
// credits as of its answer: a cached credit it does not list is not tried
// on the tap (no INIT FOR LOAD, no authorization for it) and leaves the
// cache.
func TestLoadHostListReplacesCache(t *testing.T) {
	w := newLoadWorld(t, 5000) // the host holds cr-1 only
	w.host.listOthers = true
	w.l.CreditsFresh = time.Minute
	ctx := context.Background()
	err := w.store.ApplyPull(ctx, []offline.Credit{
		{ID: "cr-1", Card: testNumber, AmountFen: 5000, Created: time.Unix(1, 0)},
		{ID: "cr-old", Card: testNumber, AmountFen: 700, Created: time.Unix(2, 0)},
	}, nil, nil, "cursor-1")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := w.tap(t, w.card)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := loadsOf(rep), []string{"cr-1 applied=true"}; !slices.Equal(got, want) {
		t.Fatalf("loads %q, want %q: the host's empty list leaves nothing else to try", got, want)
	}
	cached, err := w.store.CreditsFor(ctx, testNumber)
	if err != nil || len(cached) != 0 {
		t.Fatalf("cache after the tap: %+v, %v; want cr-old dropped", cached, err)
	}
}

// A credit in the host's list is checked as a cached one is: one of 0.00
// is skipped, not sent to INIT FOR LOAD (which refuses it and would end
// the tap), and the tap ends ok.
func TestLoadHostListSkipsBadCredit(t *testing.T) {
	w := newLoadWorld(t, 5000, 0) // cr-2 of 0.00: a host's bug
	w.host.listOthers = true
	w.l.CreditsFresh = time.Minute
	ctx := context.Background()
	if err := w.store.ApplyPull(ctx, []offline.Credit{{ID: "cr-1", Card: testNumber, AmountFen: 5000}}, nil, nil, "cursor-1"); err != nil {
		t.Fatal(err)
	}
	rep, err := w.tap(t, w.card)
	if err != nil {
		t.Fatalf("tap: %v; want the bad credit skipped", err)
	}
	if got, want := loadsOf(rep), []string{"cr-1 applied=true"}; !slices.Equal(got, want) {
		t.Fatalf("loads %q, want %q", got, want)
	}
}

// A load whose row cannot be recorded done (the journal refuses the
// update) stays in intent for the card's next tap to settle from its
// counter; the tap loads no other credit after it, so that the counter
// settles one row, not two, and the tap itself ends ok: the money is on
// the card.
func TestLoadUnrecordedRowStopsTheNextLoad(t *testing.T) {
	w := newLoadWorld(t, 5000, 250)
	db, err := sql.Open("sqlite3", w.path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TRIGGER no_done BEFORE UPDATE ON journal WHEN NEW.state = 'done'
		BEGIN SELECT RAISE(ABORT, 'disk full'); END`); err != nil {
		t.Fatal(err)
	}
	start := w.card.File().EPBalance
	rep, err := w.tap(t, w.card)
	if err != nil {
		t.Fatalf("tap: %v; want ok, the first credit on the card", err)
	}
	if got, want := loadsOf(rep), []string{"cr-1 applied=true", "cr-2 applied=false"}; !slices.Equal(got, want) {
		t.Fatalf("loads %q, want %q", got, want)
	}
	if b := w.card.File().EPBalance; b != start+5000 {
		t.Fatalf("card holds %d, want %d", b, start+5000)
	}
	var intent int
	for _, r := range w.loadRows(t) {
		if r.State == offline.StateIntent {
			intent++
		}
	}
	if intent != 1 {
		t.Fatalf("%d load rows in intent, want 1", intent)
	}
}
