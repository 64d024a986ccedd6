package tap

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	epursesim "github.com/cardd/cardd/apdu/epurse/sim"
	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/offline"
)

// countAuth counts the host's load authorizations per credit.
type countAuth struct {
	*fakeLoadHost
	asked map[string]int
}

func (h *countAuth) AuthorizeLoad(ctx context.Context, req hostapi.LoadAuthorizeRequest) (hostapi.LoadAuthorizeResponse, error) {
	h.asked[req.CreditID]++
	return h.fakeLoadHost.AuthorizeLoad(ctx, req)
}

// subsidize makes credit i of the world's host a subsidy of batch b onto
// purse, with the window from..until.
func (w *loadWorld) subsidize(i int, b, purse string, from, until time.Time) {
	c := &w.host.credits[i]
	c.Kind, c.Subsidy, c.Purse = hostapi.CreditSubsidy, b, purse
	c.NotBefore, c.Expires = from.UTC().Format(time.RFC3339), until.UTC().Format(time.RFC3339)
}

// TestSubsidyOutsideWindowNeverTried: a subsidy before its window or past
// its expiry (by the terminal's clock) is not loaded, and the card and the
// host are not even asked: no INITIALIZE FOR LOAD, no authorization. The
// credit of money paid beside them loads.
func TestSubsidyOutsideWindowNeverTried(t *testing.T) {
	w := newLoadWorld(t, 1000, 2000, 400)
	now := w.l.Now()
	w.subsidize(0, "b-early", "EP", now.Add(time.Hour), now.Add(2*time.Hour))
	w.subsidize(1, "b-late", "EP", now.Add(-2*time.Hour), now)
	h := &countAuth{fakeLoadHost: w.host, asked: map[string]int{}}
	w.l.Host = h
	start := w.card.File().EPBalance
	inits := &at{t: w.card, ins: insInitialize}
	rep, err := w.tap(t, inits)
	if err != nil {
		t.Fatal(err)
	}
	if got := w.card.File().EPBalance; got != start+400 {
		t.Fatalf("card holds %d, want %d: only the credit of money paid", got, start+400)
	}
	if h.asked["cr-1"]+h.asked["cr-2"] != 0 || h.asked["cr-3"] != 1 || inits.sent != 1 {
		t.Fatalf("authorizations %v, %d INITIALIZE FOR LOAD; want the paid credit's alone", h.asked, inits.sent)
	}
	if len(rep.Loads) != 3 || rep.Loads[0].Applied || !strings.Contains(rep.Loads[0].Refused, "can be picked up from") ||
		rep.Loads[1].Applied || !strings.Contains(rep.Loads[1].Refused, "expired") || !rep.Loads[2].Applied || rep.Loads[2].Subsidy {
		t.Fatalf("loads %+v", rep.Loads)
	}
}

// TestSubsidyCachedOutsideWindow: the sync pull's cache carries the kind,
// purse and window, so a fresh cache alone keeps an expired subsidy off
// the card.
func TestSubsidyCachedOutsideWindow(t *testing.T) {
	w := newLoadWorld(t, 1000)
	now := w.l.Now()
	w.subsidize(0, "b-late", "EP", now.Add(-2*time.Hour), now.Add(-time.Minute))
	ctx := context.Background()
	if err := w.store.ApplyPull(ctx, []offline.Credit{cacheOf(w.host.credits[0])}, nil, nil, "1"); err != nil {
		t.Fatal(err)
	}
	cached, err := w.store.CreditsFor(ctx, testNumber)
	if err != nil || len(cached) != 1 || cached[0].Kind != hostapi.CreditSubsidy || cached[0].Purse != "EP" || cached[0].Subsidy != "b-late" ||
		!cached[0].Expires.Equal(now.Add(-time.Minute).Truncate(time.Second)) {
		t.Fatalf("cached %+v (%v), want the subsidy with its purse and window", cached, err)
	}
	h := &countAuth{fakeLoadHost: w.host, asked: map[string]int{}}
	w.l.Host, w.l.CreditsFresh = h, time.Hour
	start := w.card.File().EPBalance
	rep, err := w.tap(t, w.card)
	if err != nil || len(rep.Loads) != 1 || rep.Loads[0].Applied || h.asked["cr-1"] != 0 || h.lookups != 0 {
		t.Fatalf("tap %+v (%v), asked %v and %d lookups: want the cached subsidy refused without asking", rep, err, h.asked, h.lookups)
	}
	if w.card.File().EPBalance != start {
		t.Fatal("an expired subsidy loaded")
	}
}

// cacheOf is a host credit as the sync pull caches it.
func cacheOf(c hostapi.Credit) offline.Credit {
	nb, _ := time.Parse(time.RFC3339, c.NotBefore)
	ex, _ := time.Parse(time.RFC3339, c.Expires)
	return offline.Credit{ID: c.ID, Card: c.Card, AmountFen: c.AmountFen, Note: c.Note, Kind: c.Kind, Subsidy: c.Subsidy, Purse: c.Purse, NotBefore: nb, Expires: ex}
}

// TestSubsidyOntoED: an ED subsidy on a terminal that reads the EP loads
// onto the ED, with its row on the ED; the EP is untouched.
func TestSubsidyOntoED(t *testing.T) {
	w := newLoadWorld(t, 1200)
	now := w.l.Now()
	w.subsidize(0, "dec", "ED", now.Add(-time.Hour), now.Add(time.Hour))
	ep, ed := w.card.File().EPBalance, w.card.File().EDBalance
	rep, err := w.tap(t, w.card)
	if err != nil || len(rep.Loads) != 1 || !rep.Loads[0].Applied || rep.Loads[0].Purse != "ED" || !rep.Loads[0].Subsidy || rep.Loads[0].NewBalance != ed+1200 {
		t.Fatalf("tap %+v, %v", rep, err)
	}
	if f := w.card.File(); f.EDBalance != ed+1200 || f.EPBalance != ep || rep.Balance != ep {
		t.Fatalf("card EP %d ED %d (shown %d), want EP %d ED %d", f.EPBalance, f.EDBalance, rep.Balance, ep, ed+1200)
	}
	if !w.host.consumed["cr-1"] || w.host.auth["cr-1"].Purse != "" && w.host.auth["cr-1"].Purse != "ED" {
		t.Fatalf("host: consumed %v", w.host.consumed)
	}
	rows, err := w.store.List(context.Background(), 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r.Kind == offline.KindLoad {
			if b, ok := SubsidyOf(r); r.Purse != "ED" || !ok || b != "dec" || r.State != offline.StateDone {
				t.Fatalf("load row %+v, want done on the ED, naming subsidy dec", r)
			}
			return
		}
	}
	t.Fatal("no load row")
}

// TestSubsidyEDCutRecovers: an ED subsidy's load cut at CREDIT FOR LOAD
// (the command lost or its answer lost) is settled on the next tap from
// the ED's own counter: loaded exactly once.
func TestSubsidyEDCutRecovers(t *testing.T) {
	for _, deliver := range []bool{false, true} {
		t.Run(fmt.Sprintf("delivered=%v", deliver), func(t *testing.T) {
			w := newLoadWorld(t, 1200)
			now := w.l.Now()
			w.subsidize(0, "dec", "ED", now.Add(-time.Hour), now.Add(time.Hour))
			ep, ed := w.card.File().EPBalance, w.card.File().EDBalance
			cut := &at{t: w.card, ins: insCreditLoad, cut: true, deliver: deliver}
			if _, err := w.tap(t, cut); err == nil {
				t.Fatal("no error with the tap cut at CREDIT FOR LOAD")
			}
			rows := w.loadRows(t)
			if len(rows) != 1 || rows[0].Purse != "ED" || rows[0].State != offline.StateUnknown {
				t.Fatalf("rows after the cut %+v, want the ED load unknown", rows)
			}
			rep, err := w.tap(t, w.card)
			if err != nil || len(rep.Recovered) != 1 || rep.Recovered[0].Applied != deliver {
				t.Fatalf("next tap %+v, %v", rep, err)
			}
			w.reportOwed(t)
			if !deliver {
				// Not applied: the tap after the proof loads it.
				if _, err := w.tap(t, w.card); err != nil {
					t.Fatal(err)
				}
				w.reportOwed(t)
			}
			if f := w.card.File(); f.EDBalance != ed+1200 || f.EPBalance != ep {
				t.Fatalf("card EP %d ED %d, want EP %d and the subsidy once on ED %d", f.EPBalance, f.EDBalance, ep, ed+1200)
			}
			if !w.host.consumed["cr-1"] {
				t.Fatal("the subsidy is not consumed at the host")
			}
			row, err := w.store.Get(context.Background(), rows[0].ID)
			if b, ok := SubsidyOf(row); err != nil || !ok || b != "dec" {
				t.Fatalf("the recovered row %+v lost its subsidy note (%v)", row, err)
			}
		})
	}
}

// TestSubsidyWithdrawnWhileCached: a terminal whose clock still finds a
// cached subsidy within its window asks the host, which withdrew it (404):
// nothing is loaded, and the cache forgets it, so the next tap does not
// even ask.
func TestSubsidyWithdrawnWhileCached(t *testing.T) {
	w := newLoadWorld(t, 1000)
	now := w.l.Now()
	w.subsidize(0, "b", "EP", now.Add(-time.Hour), now.Add(time.Hour))
	ctx := context.Background()
	if err := w.store.ApplyPull(ctx, []offline.Credit{cacheOf(w.host.credits[0])}, nil, nil, "1"); err != nil {
		t.Fatal(err)
	}
	w.host.credits = nil // withdrawn at the host; this terminal has not pulled since
	h := &countAuth{fakeLoadHost: w.host, asked: map[string]int{}}
	w.l.Host, w.l.CreditsFresh = h, time.Hour
	start := w.card.File().EPBalance
	rep, err := w.tap(t, w.card)
	if err != nil || len(rep.Loads) != 1 || rep.Loads[0].Applied || h.asked["cr-1"] != 1 {
		t.Fatalf("tap %+v (%v), asked %v: want the withdrawn subsidy refused by the host", rep, err, h.asked)
	}
	if cached, err := w.store.CreditsFor(ctx, testNumber); err != nil || len(cached) != 0 {
		t.Fatalf("cache after the refusal %+v (%v), want it dropped", cached, err)
	}
	if rep, err := w.tap(t, w.card); err != nil || len(rep.Loads) != 0 || h.asked["cr-1"] != 1 {
		t.Fatalf("next tap %+v (%v), asked %v", rep, err, h.asked)
	}
	if w.card.File().EPBalance != start {
		t.Fatal("a withdrawn subsidy loaded")
	}
}

// TestSubsidyOntoEDTheCardRefuses: a card whose ED answers INITIALIZE FOR
// LOAD with a status word (here 6982: its ED wants a PIN no one typed)
// keeps its ED subsidy waiting, and the tap goes on: the credit of money
// paid beside it loads, and the tap ends without an error, so a sale at a
// POS is still charged. Otherwise every tap of the card would fail, its
// sales included, until the subsidy expired.
func TestSubsidyOntoEDTheCardRefuses(t *testing.T) {
	w := &loadWorld{card: newTestCard(t, "王小明", 3, func(f *epursesim.CardFile) { f.EDNeedsPIN = true }),
		path: filepath.Join(t.TempDir(), "cardd.db")}
	w.host = newFakeLoadHost(t, w.card, 1200, 400)
	w.l = &Loader{Host: w.host, TerminalID: testTermID, Logger: slog.New(slog.DiscardHandler),
		Now: func() time.Time { return time.Date(2026, 11, 23, 12, 0, 0, 0, time.Local) }}
	w.open(t)
	t.Cleanup(func() { w.store.Close() })
	now := w.l.Now()
	w.subsidize(0, "dec", "ED", now.Add(-time.Hour), now.Add(time.Hour))
	ep, ed := w.card.File().EPBalance, w.card.File().EDBalance
	rep, err := w.tap(t, w.card)
	if err != nil {
		t.Fatalf("tap ended with %v: an ED the card refuses must not end it", err)
	}
	if len(rep.Loads) != 2 || rep.Loads[0].Applied || rep.Loads[0].Refused == "" || !rep.Loads[1].Applied {
		t.Fatalf("loads %+v, want the ED subsidy waiting and the paid credit loaded", rep.Loads)
	}
	if f := w.card.File(); f.EDBalance != ed || f.EPBalance != ep+400 {
		t.Fatalf("card EP %d ED %d, want EP %d ED %d", f.EPBalance, f.EDBalance, ep+400, ed)
	}
	if w.host.consumed["cr-1"] {
		t.Fatal("the host saw the ED subsidy consumed")
	}
}
