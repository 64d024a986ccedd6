package tap

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/offline"
	"github.com/cardd/cardd/reader"
	hostsync "github.com/cardd/cardd/sync"
)

// fakeM1Host is the host's side of M1 wallet loads as host/m1.go keeps
// it, reduced to what a tap sees: pending credits, one open load per
// wallet (CardCredits' M1Open) and a credit consumed on the completion
// that shows the authorized balance plus the amount. With down set it is
// unreachable.
type fakeM1Host struct {
	t         *testing.T
	credits   []hostapi.Credit
	open      map[string]hostapi.M1OpenLoad // card → its open load
	consumed  map[string]bool
	completed []hostapi.LoadCompleteRequest // the completions it accepted
	down      bool
}

func newFakeM1Host(t *testing.T, amounts ...int64) *fakeM1Host {
	h := &fakeM1Host{t: t, open: map[string]hostapi.M1OpenLoad{}, consumed: map[string]bool{}}
	for i, a := range amounts {
		h.credits = append(h.credits, hostapi.Credit{ID: fmt.Sprintf("m1-%d", i+1), Card: m1Card, AmountFen: a, State: hostapi.CreditPending})
	}
	return h
}

var errFakeDown = fmt.Errorf("%w: the test's host is down", hostsync.ErrUnreachable)

func (h *fakeM1Host) CardCredits(_ context.Context, card string) (hostapi.CardCreditsResponse, error) {
	if h.down {
		return hostapi.CardCreditsResponse{}, errFakeDown
	}
	var resp hostapi.CardCreditsResponse
	for _, c := range h.credits {
		if c.Card == card && !h.consumed[c.ID] {
			resp.Credits = append(resp.Credits, c)
		}
	}
	if o, ok := h.open[card]; ok {
		resp.M1Open = &o
	}
	return resp, nil
}

func (h *fakeM1Host) AuthorizeLoad(_ context.Context, req hostapi.LoadAuthorizeRequest) (hostapi.LoadAuthorizeResponse, error) {
	if h.down {
		return hostapi.LoadAuthorizeResponse{}, errFakeDown
	}
	if req.Purse != hostapi.PurseM1 || req.Ref == "" {
		h.t.Fatalf("authorize %+v: not an M1 load", req)
	}
	if h.consumed[req.CreditID] {
		return hostapi.LoadAuthorizeResponse{}, &hostsync.HostError{Status: 409, Code: hostapi.CodeCreditConsumed}
	}
	if o, ok := h.open[req.Card]; ok && o.Ref != req.Ref {
		return hostapi.LoadAuthorizeResponse{}, &hostsync.HostError{Status: 409, Code: hostapi.CodeCreditBusy}
	}
	h.open[req.Card] = hostapi.M1OpenLoad{CreditID: req.CreditID, Ref: req.Ref, Terminal: "000000000001",
		OldBalanceFen: req.OldBalanceFen, AmountFen: req.AmountFen, Seq: byte(req.OnlineCounter)}
	return hostapi.LoadAuthorizeResponse{Time: req.Time}, nil
}

func (h *fakeM1Host) CompleteLoad(_ context.Context, req hostapi.LoadCompleteRequest) (hostapi.LoadCompleteResponse, error) {
	if h.down {
		return hostapi.LoadCompleteResponse{}, errFakeDown
	}
	o, ok := h.open[req.Card]
	if !ok || o.Ref != req.Ref || o.CreditID != req.CreditID {
		h.t.Fatalf("completion %+v of no open load (open: %+v)", req, h.open)
	}
	delete(h.open, req.Card)
	h.completed = append(h.completed, req)
	if req.NotApplied {
		return hostapi.LoadCompleteResponse{State: hostapi.CreditPending}, nil
	}
	if req.BalanceFen != o.OldBalanceFen+o.AmountFen {
		h.t.Fatalf("completion %+v: balance after, want %d", req, o.OldBalanceFen+o.AmountFen)
	}
	h.consumed[req.CreditID] = true
	return hostapi.LoadCompleteResponse{State: hostapi.CreditConsumed}, nil
}

// traceIndex is where the first line of b's trace with prefix is, -1 when
// none.
func (b *tapBench) traceIndex(prefix string) int {
	return slices.IndexFunc(b.trace, func(l string) bool { return strings.HasPrefix(l, prefix) })
}

// openStore gives b the journal in the file at path: a test closes it
// and opens it again, as a crash and a restart do.
func (b *tapBench) openStore(path string) {
	b.t.Helper()
	st, err := offline.Open(path, "000000000001")
	if err != nil {
		b.t.Fatal(err)
	}
	b.store = st
}

// TestM1LoadCompletesAfterLeave: an M1 wallet's load, alone or followed
// by a sale, holds the card until its value block and backup are written,
// not for the host: the leave point (OnLeave) comes before the card
// session closes, and the completion reaches the host after both, once.
// The load's row is done with its completion reported by the tap's end.
func TestM1LoadCompletesAfterLeave(t *testing.T) {
	for _, sale := range []int64{0, 700} {
		t.Run(fmt.Sprintf("sale=%d", sale), func(t *testing.T) {
			b := newTapBench(t)
			card := m1BenchCard(t, 5000)
			host := newFakeM1Host(t, 2000)
			b.card, b.r.Loader, b.r.Purchaser = card, b.loader(host), b.pos(sale, true)
			res := b.tap()
			if res.Err != nil || res.Load == nil || len(res.Load.Loads) != 1 || !res.Load.Loads[0].Applied {
				t.Fatalf("tap: %s", summary(res))
			}
			leave, closed, complete := b.traceIndex("OnLeave"), b.traceIndex("close card"), b.traceIndex("host CompleteLoad")
			if leave < 0 || closed < leave || complete < closed {
				t.Errorf("OnLeave at %d, card closed at %d, completion at %d: want the completion after both\n%s",
					leave, closed, complete, strings.Join(b.trace, "\n"))
			}
			// The leave point is the money's last card command: the
			// increment's two block writes (the sale's, when there is one).
			if last := b.trace[leave-2]; !strings.HasPrefix(last, "card> FFD6") {
				t.Errorf("the last command before the leave point is %q, want a block write", last)
			}
			if len(host.completed) != 1 || !host.consumed["m1-1"] {
				t.Errorf("host completions %+v: want one, consuming m1-1", host.completed)
			}
			if got, want := walletBalance(t, card), 7000-sale; got != want {
				t.Errorf("wallet holds %d, want %d", got, want)
			}
			rows, err := b.store.LoadsOfCredit(context.Background(), "m1-1")
			if err != nil || len(rows) != 1 || rows[0].State != offline.StateDone || !rows[0].CompletionReported {
				t.Errorf("load rows %+v, %v: want one done, its completion reported", rows, err)
			}
		})
	}
}

// TestM1CrashAfterLeave kills the daemon (its journal closed, as by a
// crash) at an M1 load tap's leave point, the host not yet told: alone,
// the load's row is left in intent (its last commit was for after the
// card); followed by a sale, the row is done (committed before the sale's
// write-ahead) and its completion owed. After the restart, the wallet's
// next tap settles it: the host gets the completion once and consumes the
// credit once, the wallet holds it once, and the row is done and
// reported.
func TestM1CrashAfterLeave(t *testing.T) {
	for _, sale := range []int64{0, 700} {
		t.Run(fmt.Sprintf("sale=%d", sale), func(t *testing.T) {
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "cardd.db")
			b := newTapBench(t)
			b.openStore(path)
			card := m1BenchCard(t, 5000)
			host := newFakeM1Host(t, 2000)
			b.card, b.r.Loader, b.r.Purchaser = card, b.loader(host), b.pos(sale, true)
			b.r.OnLeave = func(Result) { b.store.Close() } // the kill
			ev := reader.Event{Kind: reader.CardInserted, Reader: "card", Time: time.Now()}
			b.r.tap(ctx, b.open, ev)
			if got, want := walletBalance(t, card), 7000-sale; got != want {
				t.Fatalf("wallet holds %d after the tap, want %d", got, want)
			}
			if len(host.completed) != 0 || host.open[m1Card].CreditID != "m1-1" {
				t.Fatalf("host got completions %+v before the kill (open %+v): want none, the load open", host.completed, host.open)
			}

			// The restart: the journal opened again, the wallet tapped
			// again with no sale.
			b.openStore(path)
			t.Cleanup(func() { b.store.Close() })
			rows, err := b.store.LoadsOfCredit(ctx, "m1-1")
			wantState := offline.StateIntent
			if sale > 0 {
				wantState = offline.StateDone
			}
			if err != nil || len(rows) != 1 || rows[0].State != wantState || rows[0].CompletionReported {
				t.Fatalf("journal after the kill: %+v, %v; want the load row %s, its completion not reported", rows, err, wantState)
			}
			id := rows[0].ID
			b.r.OnLeave = nil
			b.r.Loader.Store = b.store
			b.r.Purchaser = b.pos(0, true)
			b.r.Purchaser.Store = b.store
			card.Reset()
			if res := b.r.tap(ctx, b.open, ev); res.Err != nil {
				t.Fatalf("tap after the restart: %s", summary(res))
			}
			if got, want := walletBalance(t, card), 7000-sale; got != want {
				t.Fatalf("wallet holds %d after the recovery, want %d: the credit loaded once", got, want)
			}
			if len(host.completed) != 1 || host.completed[0].NotApplied || !host.consumed["m1-1"] || len(host.open) != 0 {
				t.Fatalf("host completions %+v, open %+v: want one, consuming m1-1", host.completed, host.open)
			}
			row, err := b.store.Get(ctx, id)
			if err != nil || row.State != offline.StateDone || !row.CompletionReported {
				t.Fatalf("row after the recovery: %+v, %v; want done, reported", row, err)
			}
		})
	}
}

// TestM1TwoLoadsOneTap: a wallet with two credits takes both on one tap.
// The host holds one open load per wallet, so the first load is recorded
// and completed before the second is authorized, with the card still in
// the field; only the last one's completion waits for the leave point.
func TestM1TwoLoadsOneTap(t *testing.T) {
	b := newTapBench(t)
	card := m1BenchCard(t, 5000)
	host := newFakeM1Host(t, 2000, 300)
	b.card, b.r.Loader, b.r.Purchaser = card, b.loader(host), b.pos(0, true)
	res := b.tap()
	if res.Err != nil || res.Load == nil || len(res.Load.Loads) != 2 || !res.Load.Loads[0].Applied || !res.Load.Loads[1].Applied || res.Load.Balance != 7300 {
		t.Fatalf("tap: %s", summary(res))
	}
	var host1 []string
	for _, l := range b.trace {
		if strings.HasPrefix(l, "host ") || l == "OnLeave" || strings.HasPrefix(l, "OnLeave ") {
			host1 = append(host1, strings.Fields(l)[0]+" "+strings.Fields(l)[1])
		}
	}
	want := []string{"host CardCredits", "host AuthorizeLoad", "host CompleteLoad", "host AuthorizeLoad", "OnLeave apdus=21", "host CompleteLoad"}
	if !slices.Equal(host1, want) {
		t.Errorf("host calls and leave point %q, want %q", host1, want)
	}
	if got := walletBalance(t, card); got != 7300 || len(host.completed) != 2 || !host.consumed["m1-1"] || !host.consumed["m1-2"] {
		t.Errorf("wallet %d, host completions %+v: want 7300, both consumed once", got, host.completed)
	}
}

// TestM1UnrecordedLoadStopsTheSale: an M1 load whose row cannot be
// recorded done (the journal refuses the update) stays in intent, to be
// settled from the wallet's balance and sequence; so no sale follows it
// on that tap, since a debit would move both and leave the load to an
// operator. The next tap settles the load (the host told once) and pays.
func TestM1UnrecordedLoadStopsTheSale(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "cardd.db")
	b := newTapBench(t)
	b.openStore(path)
	t.Cleanup(func() { b.store.Close() })
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TRIGGER no_done BEFORE UPDATE ON journal WHEN NEW.state = 'done' AND NEW.kind = 'load'
		BEGIN SELECT RAISE(ABORT, 'disk full'); END`); err != nil {
		t.Fatal(err)
	}
	card := m1BenchCard(t, 5000)
	host := newFakeM1Host(t, 2000)
	b.card, b.r.Loader, b.r.Purchaser = card, b.loader(host), b.pos(700, true)
	ev := reader.Event{Kind: reader.CardInserted, Reader: "card", Time: time.Now()}
	res := b.r.tap(ctx, b.open, ev)
	if res.Err == nil || res.Purchase == nil || res.Purchase.Paid || res.Load == nil || len(res.Load.Loads) != 1 || !res.Load.Loads[0].Applied {
		t.Fatalf("tap: %s; want the load applied and the sale refused", summary(res))
	}
	if got := walletBalance(t, card); got != 7000 {
		t.Fatalf("wallet holds %d, want 7000: loaded, not debited", got)
	}
	rows, err := b.store.LoadsOfCredit(ctx, "m1-1")
	if err != nil || len(rows) != 1 || rows[0].State != offline.StateIntent || len(host.completed) != 0 {
		t.Fatalf("load rows %+v (%v), host completions %+v: want the row in intent, nothing told", rows, err, host.completed)
	}

	if _, err := db.Exec(`DROP TRIGGER no_done`); err != nil {
		t.Fatal(err)
	}
	card.Reset()
	if res := b.r.tap(ctx, b.open, ev); res.Err != nil || !res.Purchase.Paid {
		t.Fatalf("the next tap: %s", summary(res))
	}
	if got := walletBalance(t, card); got != 6300 {
		t.Fatalf("wallet holds %d, want 6300: loaded once, debited once", got)
	}
	if row, err := b.store.Get(ctx, rows[0].ID); err != nil || row.State != offline.StateDone || !row.CompletionReported ||
		len(host.completed) != 1 || !host.consumed["m1-1"] {
		t.Fatalf("row %+v (%v), host completions %+v: want done, reported once", row, err, host.completed)
	}
}
