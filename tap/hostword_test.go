package tap

import (
	"context"
	"errors"
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
