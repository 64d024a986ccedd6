package tap

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cardd/cardd/apdu"
	"github.com/cardd/cardd/apdu/epurse"
	epursesim "github.com/cardd/cardd/apdu/epurse/sim"
	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/offline"
	"github.com/cardd/cardd/reader"
	hostsync "github.com/cardd/cardd/sync"
)

// fakeLoadHost is the host's side of an e-purse load for one card, with the
// issuer keys: it checks the card's MAC1, answers MAC2, and checks the TAC
// of a completion. Like the reference host it re-authorizes a credit only
// at the counter it authorized it at (a card past it must show its proof
// first), and a credit completed with a TAC is consumed.
type fakeLoadHost struct {
	t       *testing.T
	keys    epurse.CardKeys
	termID  [6]byte
	credits []hostapi.Credit
	auth    map[string]hostapi.LoadAuthorizeRequest // credit id → its open authorization
	// consumed holds the credits completed with a TAC the host verified.
	consumed map[string]bool
	// badMAC2 makes AuthorizeLoad answer a MAC2 the card must refuse.
	badMAC2 bool
	// listOthers makes AuthorizeLoad list the card's other pending credits
	// (hostapi.LoadAuthorizeResponse.Credits), as a newer host does.
	listOthers bool
	// lookups counts CardCredits calls.
	lookups int
}

func newFakeLoadHost(t *testing.T, card *epursesim.SimCard, amounts ...int64) *fakeLoadHost {
	h := &fakeLoadHost{t: t, keys: testMasters.Diversify(card.File().Info.AppSerial[:]), termID: testTermID,
		auth: map[string]hostapi.LoadAuthorizeRequest{}, consumed: map[string]bool{}}
	for i, a := range amounts {
		h.credits = append(h.credits, hostapi.Credit{ID: fmt.Sprintf("cr-%d", i+1), Card: testNumber, AmountFen: a, State: hostapi.CreditPending})
	}
	return h
}

func (h *fakeLoadHost) CardCredits(_ context.Context, card string) (hostapi.CardCreditsResponse, error) {
	h.lookups++
	resp := hostapi.CardCreditsResponse{}
	for _, c := range h.credits {
		if c.Card == card && !h.consumed[c.ID] {
			resp.Credits = append(resp.Credits, c)
		}
	}
	return resp, nil
}

func (h *fakeLoadHost) AuthorizeLoad(_ context.Context, req hostapi.LoadAuthorizeRequest) (hostapi.LoadAuthorizeResponse, error) {
	if h.consumed[req.CreditID] {
		return hostapi.LoadAuthorizeResponse{}, &hostsync.HostError{Status: 409, Code: hostapi.CodeCreditConsumed}
	}
	if !slices.ContainsFunc(h.credits, func(c hostapi.Credit) bool { return c.ID == req.CreditID }) {
		return hostapi.LoadAuthorizeResponse{}, &hostsync.HostError{Status: 404, Code: hostapi.CodeNotFound}
	}
	if prev, ok := h.auth[req.CreditID]; ok && prev.OnlineCounter != req.OnlineCounter {
		return hostapi.LoadAuthorizeResponse{}, &hostsync.HostError{Status: 409, Code: hostapi.CodeCreditPending}
	}
	var random [4]byte
	if _, err := hex.Decode(random[:], []byte(req.Random)); err != nil {
		h.t.Fatalf("authorize: random %q", req.Random)
	}
	seslk := epurse.SessionKeyLoad(h.keys.DLK, random, req.OnlineCounter)
	mac1, err := epurse.LoadMAC1(seslk, req.OldBalanceFen, req.AmountFen, loadTypeOf(req.Purse), h.termID)
	if err != nil || hexUpper(mac1[:]) != req.MAC1 {
		h.t.Fatalf("authorize: the card's MAC1 %s does not verify (%v)", req.MAC1, err)
	}
	when, err := time.Parse(hostapi.TimeLayout, req.Time)
	if err != nil {
		h.t.Fatalf("authorize: time %q", req.Time)
	}
	mac2, err := epurse.LoadMAC2(seslk, req.AmountFen, loadTypeOf(req.Purse), h.termID, when)
	if err != nil {
		h.t.Fatal(err)
	}
	if h.badMAC2 {
		mac2[0] ^= 0x01
	}
	h.auth[req.CreditID] = req
	resp := hostapi.LoadAuthorizeResponse{MAC2: hexUpper(mac2[:]), Time: req.Time}
	if h.listOthers {
		resp.Credits = []hostapi.Credit{} // [] when none, as the host sends it
		for _, c := range h.credits {
			if c.ID != req.CreditID && !h.consumed[c.ID] {
				resp.Credits = append(resp.Credits, c)
			}
		}
	}
	return resp, nil
}

func (h *fakeLoadHost) CompleteLoad(_ context.Context, req hostapi.LoadCompleteRequest) (hostapi.LoadCompleteResponse, error) {
	a, ok := h.auth[req.CreditID]
	if !ok || a.OnlineCounter != req.Counter {
		h.t.Fatalf("completion %+v of no authorization", req)
	}
	if req.NotApplied {
		delete(h.auth, req.CreditID)
		return hostapi.LoadCompleteResponse{State: hostapi.CreditPending}, nil
	}
	when, _ := time.Parse(hostapi.TimeLayout, a.Time)
	want, err := epurse.LoadTAC(h.keys.DTK, a.OldBalanceFen+a.AmountFen, a.OnlineCounter, a.AmountFen, loadTypeOf(a.Purse), h.termID, when)
	if err != nil || hexUpper(want[:]) != req.TAC {
		h.t.Errorf("completion of %s: TAC %s, the card's is %X (%v)", req.CreditID, req.TAC, want, err)
	}
	h.consumed[req.CreditID] = true
	delete(h.auth, req.CreditID)
	return hostapi.LoadCompleteResponse{State: hostapi.CreditConsumed}, nil
}

// loadTypeOf is the transaction type of a load onto the purse named.
func loadTypeOf(purse string) epurse.TxType {
	if purse == "ED" {
		return epurse.PurseED.LoadType()
	}
	return epurse.PurseEP.LoadType()
}

// loadWorld is a kiosk on fakes: an in-memory card, the fake host, a real
// journal file that a test may close (a kill) and open again (a restart).
type loadWorld struct {
	card  *epursesim.SimCard
	host  *fakeLoadHost
	path  string
	store *offline.Store
	l     *Loader
}

func newLoadWorld(t *testing.T, credits ...int64) *loadWorld {
	t.Helper()
	w := &loadWorld{card: newTestCard(t, "王小明", 3, nil), path: filepath.Join(t.TempDir(), "cardd.db")}
	w.host = newFakeLoadHost(t, w.card, credits...)
	w.l = &Loader{Host: w.host, TerminalID: testTermID, Logger: slog.New(slog.DiscardHandler),
		Now: func() time.Time { return time.Date(2026, 11, 23, 12, 0, 0, 0, time.Local) }}
	w.open(t)
	t.Cleanup(func() { w.store.Close() })
	return w
}

// open opens the journal file, as a daemon starting does.
func (w *loadWorld) open(t *testing.T) {
	t.Helper()
	st, err := offline.Open(w.path, "000000000001")
	if err != nil {
		t.Fatal(err)
	}
	w.store, w.l.Store = st, st
}

// tap reads the card through card (which may cut it off) and applies its
// credits.
func (w *loadWorld) tap(t *testing.T, card apdu.Transmitter) (LoadReport, error) {
	t.Helper()
	w.card.Reset()
	cr, err := ReadPurse(card, ReadOptions{}, nil)
	if err != nil {
		return LoadReport{}, err
	}
	return w.l.Apply(context.Background(), card, cr)
}

// reportOwed is the sync loop's upload turn for load completions: each
// row owed is reported to the host, which verifies its TAC or proof, and
// marked reported. It returns how many were owed.
func (w *loadWorld) reportOwed(t *testing.T) int {
	t.Helper()
	ctx := context.Background()
	owed, err := w.store.CompletionsOwed(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range owed {
		req, err := hostsync.CompletionRequest(row)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.host.CompleteLoad(ctx, req); err != nil {
			t.Fatal(err)
		}
		if err := w.store.MarkCompletionReported(ctx, row.ID); err != nil {
			t.Fatal(err)
		}
	}
	return len(owed)
}

func (w *loadWorld) loadRows(t *testing.T) []offline.Row {
	t.Helper()
	rows, err := w.store.InDoubt(context.Background(), offline.KindLoad)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// at watches for the command with instruction ins (the byte after CLA 80)
// and runs kill there: just before the card gets it, or, with cut and
// deliver, just after. With cut the card is gone from that command on (with
// deliver the command still reaches it, and only its answer is lost). It
// counts the commands with ins that reached the card.
type at struct {
	t       apdu.Transmitter
	ins     byte
	kill    func()
	cut     bool
	deliver bool
	gone    bool
	sent    int
}

func (a *at) Transmit(cmd []byte) ([]byte, error) {
	removed := &reader.Error{Op: "transmit", Kind: reader.ErrCardRemoved, Err: errors.New("card left")}
	if a.gone {
		return nil, removed
	}
	if len(cmd) < 2 || cmd[0] != 0x80 || cmd[1] != a.ins {
		return a.t.Transmit(cmd)
	}
	if !a.cut {
		if a.kill != nil {
			a.kill()
		}
		a.sent++
		return a.t.Transmit(cmd)
	}
	if a.deliver {
		a.sent++
		_, _ = a.t.Transmit(cmd)
	}
	if a.kill != nil {
		a.kill()
	}
	a.gone = true
	return nil, removed
}

const (
	insInitialize = 0x50
	insCreditLoad = 0x52
	insDebit      = 0x54
)

func TestLoadApplies(t *testing.T) {
	w := newLoadWorld(t, 5000, 250)
	start := w.card.File().EPBalance
	rep, err := w.tap(t, w.card)
	if err != nil || len(rep.Loads) != 2 || !rep.Loads[0].Applied || !rep.Loads[1].Applied || rep.Balance != start+5250 {
		t.Fatalf("Apply = %+v, %v", rep, err)
	}
	if got := w.card.File().EPBalance; got != start+5250 {
		t.Fatalf("card holds %d, want %d", got, start+5250)
	}
	// Apply reports the completions once the card is done with (a Runner:
	// after its leave point, testdata/taps/kiosk_epurse_load.txt).
	if !w.host.consumed["cr-1"] || !w.host.consumed["cr-2"] {
		t.Fatalf("host consumed %v, want both credits", w.host.consumed)
	}
	if rows := w.loadRows(t); len(rows) != 0 {
		t.Fatalf("load rows in doubt after a clean tap: %+v", rows)
	}
	// Nothing more to load on the next tap.
	if rep, err := w.tap(t, w.card); err != nil || len(rep.Loads) != 0 || w.card.File().EPBalance != start+5250 {
		t.Fatalf("second tap: %+v, %v, card holds %d", rep, err, w.card.File().EPBalance)
	}
}

// TestLoadOwedCompletionWaits: a load done whose completion did not reach
// the host (it went away after the authorization) is owed; the host still
// lists the credit, but the journal knows it is on the card: the next tap
// does not load it again, and the sync loop's report settles it.
func TestLoadOwedCompletionWaits(t *testing.T) {
	w := newLoadWorld(t, 5000)
	start := w.card.File().EPBalance
	w.l.Host = noCompletion{w.host}
	if rep, err := w.tap(t, w.card); err != nil || len(rep.Loads) != 1 || !rep.Loads[0].Applied {
		t.Fatalf("tap: %+v, %v", rep, err)
	}
	if rep, err := w.tap(t, w.card); err != nil || len(rep.Loads) != 0 || w.card.File().EPBalance != start+5000 {
		t.Fatalf("second tap with the completion owed: %+v, %v, card holds %d", rep, err, w.card.File().EPBalance)
	}
	if n := w.reportOwed(t); n != 1 || !w.host.consumed["cr-1"] {
		t.Fatalf("%d completions owed, host consumed %v", n, w.host.consumed)
	}
}

// noCompletion is a host that cannot be told of completions.
type noCompletion struct{ *fakeLoadHost }

func (noCompletion) CompleteLoad(context.Context, hostapi.LoadCompleteRequest) (hostapi.LoadCompleteResponse, error) {
	return hostapi.LoadCompleteResponse{}, hostsync.ErrUnreachable
}

// TestLoadMAC2Refused: the card refuses the host's MAC2 (9302): the row
// is failed, the credit waits, the card is unchanged.
func TestLoadMAC2Refused(t *testing.T) {
	w := newLoadWorld(t, 5000)
	w.host.badMAC2 = true
	start := w.card.File().EPBalance
	rep, err := w.tap(t, w.card)
	if err != nil || len(rep.Loads) != 1 || rep.Loads[0].Applied || !strings.Contains(rep.Loads[0].Refused, "refused the load") {
		t.Fatalf("Apply = %+v, %v", rep, err)
	}
	if got := w.card.File().EPBalance; got != start || rep.Balance != start {
		t.Fatalf("card holds %d (report %d), want %d", got, rep.Balance, start)
	}
	if rows := w.loadRows(t); len(rows) != 0 {
		t.Fatalf("rows in doubt after a refusal: %+v", rows)
	}
	if w.host.consumed["cr-1"] {
		t.Fatal("a refused load consumed the credit")
	}
}

// TestLoadBalanceCap: a credit that would take the card over the
// terminal's load.balance_cap waits, and nothing is sent to the card for
// it; one landing exactly on the cap is loaded.
func TestLoadBalanceCap(t *testing.T) {
	w := newLoadWorld(t, 1001, 1000)
	start := w.card.File().EPBalance
	w.l.BalanceCap = start + 1000
	rec := &recorder{t: w.card}
	rep, err := w.tap(t, rec)
	if err != nil || len(rep.Loads) != 2 {
		t.Fatalf("Apply = %+v, %v", rep, err)
	}
	if over := rep.Loads[0]; over.Applied || !strings.Contains(over.Refused, "balance cap") {
		t.Fatalf("credit over the cap: %+v, want it waiting for the cap", over)
	}
	if on := rep.Loads[1]; !on.Applied {
		t.Fatalf("credit landing on the cap: %+v, want it loaded", on)
	}
	if got := w.card.File().EPBalance; got != start+1000 {
		t.Fatalf("card holds %d, want %d", got, start+1000)
	}
	inits := 0
	for _, c := range rec.cmds {
		if c.INS == insInitialize {
			inits++
		}
	}
	if inits != 1 {
		t.Fatalf("%d INITIALIZE commands, want one: the credit over the cap must not reach the card", inits)
	}
}

// TestLoadWriteAheadSurvivesAKill cuts a load at CREDIT FOR LOAD, before
// the card gets it and after the card got it, with the card pulled, or
// with the daemon killed there (its journal closed, as by a crash, and
// opened again): the write-ahead row must be on disk in every case (money
// rule 2), and the card settles it on its next tap (rule 3), loaded
// exactly once.
func TestLoadWriteAheadSurvivesAKill(t *testing.T) {
	for _, c := range []struct{ deliver, kill bool }{{false, false}, {true, false}, {false, true}, {true, true}} {
		t.Run(fmt.Sprintf("delivered=%v/killed=%v", c.deliver, c.kill), func(t *testing.T) {
			deliver := c.deliver
			w := newLoadWorld(t, 5000)
			start := w.card.File().EPBalance
			cut := &at{t: w.card, ins: insCreditLoad, cut: true, deliver: deliver}
			want := offline.StateUnknown // the answer never came
			if c.kill {
				cut.kill = func() { w.store.Close() }
				want = offline.StateIntent // nothing after the row was written
			}
			if _, err := w.tap(t, cut); err == nil {
				t.Fatal("no error with the tap cut at CREDIT FOR LOAD")
			}
			if want := map[bool]int{false: 0, true: 1}[deliver]; cut.sent != want {
				t.Fatalf("CREDIT FOR LOAD sent %d times", cut.sent)
			}
			if c.kill {
				w.open(t) // restart
			}
			rows := w.loadRows(t)
			if len(rows) != 1 || rows[0].State != want || rows[0].CreditID != "cr-1" || rows[0].AmountFen != 5000 || rows[0].BalanceFen != start {
				t.Fatalf("journal after the cut: %+v, want the load's row in %s", rows, want)
			}
			rep, err := w.tap(t, w.card)
			if err != nil || len(rep.Recovered) != 1 || rep.Recovered[0].Applied != deliver {
				t.Fatalf("tap after the restart: %+v, %v", rep, err)
			}
			if got := w.card.File().EPBalance; got != start+5000 || rep.Balance != start+5000 {
				t.Fatalf("card holds %d (report %d), want one load onto %d", got, rep.Balance, start)
			}
			w.reportOwed(t) // the sync loop, after the tap
			if !w.host.consumed["cr-1"] {
				t.Fatal("the credit is not consumed at the host")
			}
			row, err := w.store.Get(context.Background(), rows[0].ID)
			if err != nil {
				t.Fatal(err)
			}
			if want := map[bool]string{false: offline.StateFailed, true: offline.StateDone}[deliver]; row.State != want || deliver && row.TAC == "" {
				t.Fatalf("the row after recovery: %+v, want %s", row, want)
			}
		})
	}
}

// TestLoadJournalFailureSendsNoCredit: a journal that cannot be written
// when the load's row is due stops the load before CREDIT FOR LOAD: the
// card is never changed without its row (money rule 2).
func TestLoadJournalFailureSendsNoCredit(t *testing.T) {
	w := newLoadWorld(t, 5000)
	start := w.card.File().EPBalance
	// The journal fails from the INITIALIZE FOR LOAD on, after the tap's
	// read row: the next write is the load's.
	spy := &at{t: w.card, ins: insCreditLoad}
	card := &at{t: spy, ins: insInitialize, kill: func() { w.store.Close() }}
	if _, err := w.tap(t, card); err == nil || !strings.Contains(err.Error(), "journal") {
		t.Fatalf("Apply with the journal failing: %v, want the journal's error", err)
	}
	if spy.sent != 0 {
		t.Fatalf("CREDIT FOR LOAD sent %d times without its journal row", spy.sent)
	}
	if got := w.card.File().EPBalance; got != start {
		t.Fatalf("card holds %d, want %d unchanged", got, start)
	}
}

// A card shown below zero (its second purse above its purse) is journaled
// with a balance of 0 and the shown balance in words: a negative balance
// field is a row the host refuses.
func TestLoadReadRowOfACardBelowZero(t *testing.T) {
	w := newLoadWorld(t)
	cr, err := ReadPurse(w.card, ReadOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cr.Balance = -300
	if _, err := w.l.Apply(context.Background(), w.card, cr); err != nil {
		t.Fatal(err)
	}
	rows, err := w.store.List(context.Background(), 0, 10)
	if err != nil || len(rows) != 1 {
		t.Fatalf("rows %+v, %v", rows, err)
	}
	if r := rows[0]; r.Kind != offline.KindRead || r.BalanceFen != 0 || r.Detail != "shown balance -3.00" {
		t.Errorf("read row %+v", r)
	}
}

// TestLoadFromFreshCache: with the sync pull fresh, a load tap takes the
// card's credits from the cache and asks the host nothing before INIT FOR
// LOAD. A cached credit the host no longer holds is refused by its
// authorization and dropped from the cache, and the tap goes on to the
// next; the credits an authorization lists are loaded on the same tap and
// cached for the next one.
func TestLoadFromFreshCache(t *testing.T) {
	w := newLoadWorld(t, 5000, 250)
	w.host.listOthers = true
	w.l.CreditsFresh = time.Minute
	ctx := context.Background()
	start := w.card.File().EPBalance
	// The pull cached cr-1 only (cr-2 came after it), and cr-gone, which
	// the host has since cancelled.
	err := w.store.ApplyPull(ctx, []offline.Credit{
		{ID: "cr-gone", Card: testNumber, AmountFen: 700, Created: time.Unix(1, 0)},
		{ID: "cr-1", Card: testNumber, AmountFen: 5000, Created: time.Unix(2, 0)},
	}, nil, nil, "cursor-1")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := w.tap(t, w.card)
	if err != nil {
		t.Fatal(err)
	}
	if w.host.lookups != 0 {
		t.Errorf("the host was asked for the card's credits %d times with a fresh cache", w.host.lookups)
	}
	got := loadsOf(rep)
	want := []string{"cr-gone applied=false", "cr-1 applied=true", "cr-2 applied=true"}
	if !slices.Equal(got, want) {
		t.Fatalf("loads %q, want %q", got, want)
	}
	if b := w.card.File().EPBalance; b != start+5250 || rep.Balance != b {
		t.Fatalf("card holds %d (report %d), want %d", b, rep.Balance, start+5250)
	}
	cached, err := w.store.CreditsFor(ctx, testNumber)
	if err != nil || len(cached) != 0 {
		t.Fatalf("cache after the tap: %+v, %v; want cr-gone dropped and cr-1, cr-2 on the card", cached, err)
	}
	if !w.host.consumed["cr-1"] || !w.host.consumed["cr-2"] {
		t.Fatalf("host consumed %v", w.host.consumed)
	}

	// A stale cache (no pull for longer than CreditsFresh) asks the host.
	w.l.CreditsFresh = time.Nanosecond
	if _, err := w.tap(t, w.card); err != nil || w.host.lookups != 1 {
		t.Fatalf("tap with a stale cache: %v, %d lookups, want 1", err, w.host.lookups)
	}
}
