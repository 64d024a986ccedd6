package tap

import (
	"context"
	"errors"
	"regexp"
	"slices"
	"testing"
	"time"

	epursesim "github.com/cardd/cardd/apdu/epurse/sim"
	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/offline"
	"github.com/cardd/cardd/reader"
)

// loadNowBench is a kiosk's runner on the tap bench: the test card on
// reader "card", a host holding cr-1 (cached by a fresh pull) and the
// top-up order-1 (paid a moment ago: at the host only), and a host that
// does not list the card's other credits in an authorization (an older
// host), so that only a tap that asks the host sees order-1.
func loadNowBench(t *testing.T) (*tapBench, *fakeLoadHost) {
	t.Helper()
	b := newTapBench(t)
	b.r.Roles = reader.Roles{Card: regexp.MustCompile("^card$")}
	card := newTestCard(t, "王小明", 1, nil)
	b.card = card
	host := newFakeLoadHost(t, card, 5000)
	host.credits = append(host.credits, hostapi.Credit{ID: "order-1", Card: testNumber, AmountFen: 10000, State: hostapi.CreditPending})
	b.r.Loader = b.loader(host)
	b.r.Loader.CreditsFresh = time.Hour
	err := b.store.ApplyPull(context.Background(), []offline.Credit{
		{ID: "cr-1", Card: testNumber, AmountFen: 5000, Created: time.Unix(1, 0)},
	}, nil, nil, "cursor-1")
	if err != nil {
		t.Fatal(err)
	}
	return b, host
}

// serve runs what Run does with LoadNow's requests, until the test ends.
func serveLoadNow(t *testing.T, b *tapBench) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case req := <-b.r.requests():
				b.r.loadNow(ctx, b.open, req)
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
}

func loadIDs(res Result) []string {
	var out []string
	if res.Load != nil {
		for _, l := range res.Load.Loads {
			if l.Applied {
				out = append(out, l.CreditID)
			}
		}
	}
	return out
}

// TestLoadNowAsksTheHost: a tap of the card present, asked for by
// LoadNow, loads the credit the host holds and the pull's cache does not
// (the top-up paid a moment ago), although the fresh cache holds another
// credit of the card, with which a plain tap would not ask the host.
func TestLoadNowAsksTheHost(t *testing.T) {
	b, host := loadNowBench(t)
	before := b.card.(*epursesim.SimCard).File().EPBalance
	b.r.event(reader.Event{Kind: reader.CardInserted, Reader: "card", Time: time.Now()})
	serveLoadNow(t, b)
	var taps []Result
	b.r.OnTap = func(res Result) { taps = append(taps, res) }
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := b.r.LoadNow(ctx, "card", testNumber)
	if err != nil || res.Err != nil {
		t.Fatalf("LoadNow: %v, tap %v", err, res.Err)
	}
	if got := loadIDs(res); !slices.Equal(got, []string{"cr-1", "order-1"}) {
		t.Fatalf("LoadNow loaded %v, want cr-1 and order-1", got)
	}
	if host.lookups != 1 || !host.consumed["order-1"] {
		t.Fatalf("host: %d look-ups, consumed %v", host.lookups, host.consumed)
	}
	after := b.card.(*epursesim.SimCard).File().EPBalance
	if after != before+15000 || res.Load.Balance != after {
		t.Fatalf("card holds %d (report %d), want %d", after, res.Load.Balance, before+15000)
	}
	if len(taps) != 1 || taps[0].Load == nil || taps[0].Load.Balance != after {
		t.Fatalf("OnTap told of %d taps, want the one with the new balance", len(taps))
	}
	// The load is journaled like any: the write-ahead row is done.
	rows, err := b.store.List(context.Background(), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(rows, func(r offline.Row) bool {
		return r.Kind == offline.KindLoad && r.CreditID == "order-1" && r.State == offline.StateDone
	}) {
		t.Fatalf("no done load row of order-1 in %+v", rows)
	}
	// Loaded once: the same request again loads nothing.
	if res, err = b.r.LoadNow(ctx, "card", testNumber); err != nil || res.Err != nil || len(loadIDs(res)) != 0 {
		t.Fatalf("LoadNow again: %v, %v, loaded %v", err, res.Err, loadIDs(res))
	}
	if b.card.(*epursesim.SimCard).File().EPBalance != after {
		t.Fatal("the second LoadNow changed the balance")
	}
}

// TestLoadNowNoCard: a card lifted (or never there) is not opened; the
// credit waits at the host.
func TestLoadNowNoCard(t *testing.T) {
	b, host := loadNowBench(t)
	serveLoadNow(t, b)
	b.r.event(reader.Event{Kind: reader.CardInserted, Reader: "card", Time: time.Now()})
	b.r.event(reader.Event{Kind: reader.CardRemoved, Reader: "card", Time: time.Now()})
	res, err := b.r.LoadNow(context.Background(), "card", testNumber)
	if err != nil || !errors.Is(res.Err, ErrNoCard) {
		t.Fatalf("LoadNow = %v, tap err %v; want ErrNoCard", err, res.Err)
	}
	if slices.Contains(b.trace, "open card") || host.lookups != 0 || len(host.auth) != 0 {
		t.Fatalf("a lifted card's reader was opened or the host asked: %v", b.trace)
	}
}

// TestLoadNowOtherCard: another card put on the reader is read, not
// loaded: not even its own credits.
func TestLoadNowOtherCard(t *testing.T) {
	b, host := loadNowBench(t)
	serveLoadNow(t, b)
	b.r.event(reader.Event{Kind: reader.CardInserted, Reader: "card", Time: time.Now()})
	res, err := b.r.LoadNow(context.Background(), "card", "3101000000000000")
	if err != nil || !errors.Is(res.Err, ErrOtherCard) {
		t.Fatalf("LoadNow = %v, tap err %v; want ErrOtherCard", err, res.Err)
	}
	if res.Read == nil || res.Load != nil || host.lookups != 0 || len(host.auth) != 0 {
		t.Fatalf("the other card was loaded: load %+v, %d look-ups", res.Load, host.lookups)
	}
}

// TestLoadNowBounded: with no Run to take it, LoadNow gives up with its
// context.
func TestLoadNowBounded(t *testing.T) {
	r := &Runner{}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := r.LoadNow(ctx, "card", testNumber); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("LoadNow = %v, want the deadline", err)
	}
}
