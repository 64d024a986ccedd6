package sync_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cardd/cardd/apdu/mifare"
	mifaresim "github.com/cardd/cardd/apdu/mifare/sim"
	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/offline"
	hostsync "github.com/cardd/cardd/sync"
	"github.com/cardd/cardd/tap"
)

var m1Wallet = mifare.Wallet{Sector: 1, ValueBlock: 4, BackupBlock: 5,
	KeyA: mifare.Key{0xA0, 0xA1, 0xA2, 0xA3, 0xA4, 0xA5}, KeyB: mifare.Key{0xB0, 0xB1, 0xB2, 0xB3, 0xB4, 0xB5}, Slots: mifare.KeySlotsACS}

// m1World is the reference host with an M1 wallet registered and credited,
// a terminal whose link to it can be cut, and the wallet in memory.
type m1World struct {
	h    *testHost
	tm   *terminal
	card *mifaresim.SimCard
	id   string // the wallet's card id
	down atomic.Bool
	l    *tap.Loader
	p    *tap.Purchaser
}

func newM1World(t *testing.T, balance int64) *m1World {
	t.Helper()
	w := &m1World{h: newTestHost(t, termA)}
	uid := [4]byte{0x04, 0x11, 0x22, 0x33}
	c, err := w.h.store.RegisterM1(context.Background(), "04112233", "王五", "test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	w.id = c.Number
	f, err := mifaresim.NewCardFile(uid, m1Wallet, balance)
	if err != nil {
		t.Fatal(err)
	}
	w.card = mifaresim.NewSimCard(f, "")
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if w.down.Load() {
			// As a host that is not there: the connection drops.
			hj, _ := rw.(http.Hijacker)
			conn, _, _ := hj.Hijack()
			conn.Close()
			return
		}
		w.h.handler.ServeHTTP(rw, r)
	}))
	t.Cleanup(srv.Close)
	w.tm = newTerminal(t, w.h, termA, srv.URL)
	wallet := m1Wallet
	w.l = &tap.Loader{Store: w.tm.store, Host: w.tm.client, HostTimeout: time.Second, Logger: slog.New(slog.DiscardHandler)}
	w.p = &tap.Purchaser{Store: w.tm.store, Till: &tap.Till{}, Wallet: &wallet, Logger: slog.New(slog.DiscardHandler)}
	return w
}

// tap does what the runner does with an M1 card: read it (settling
// purchases), apply its credits.
func (w *m1World) tap(t *testing.T) (tap.LoadReport, error) {
	t.Helper()
	w.card.Reset()
	rep, st, err := w.p.ReadM1(context.Background(), w.card)
	if err != nil {
		return tap.LoadReport{}, err
	}
	if rep.Card != w.id {
		t.Fatalf("ReadM1 card %q, want %q", rep.Card, w.id)
	}
	return w.l.ApplyM1(context.Background(), w.card, w.p.Wallet, rep.Card, st)
}

func (w *m1World) balance(t *testing.T) int64 {
	t.Helper()
	w.card.Reset()
	b, _, err := m1Wallet.Read(w.card)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (w *m1World) creditState(t *testing.T, id string) string {
	t.Helper()
	list, err := w.h.store.Credits(context.Background(), w.id)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range list {
		if c.ID == id {
			return c.State
		}
	}
	t.Fatalf("no credit %s", id)
	return ""
}

func TestM1LoadOnTap(t *testing.T) {
	w := newM1World(t, 1000)
	c1 := w.h.credit(t, w.id, 5000, "wechat")
	c2 := w.h.credit(t, w.id, 250, "subsidy")
	rep, err := w.tap(t)
	if err != nil || len(rep.Loads) != 2 || !rep.Loads[0].Applied || !rep.Loads[1].Applied || rep.Balance != 6250 {
		t.Fatalf("ApplyM1 = %+v, %v", rep, err)
	}
	if b := w.balance(t); b != 6250 {
		t.Fatalf("wallet holds %d, want 6250", b)
	}
	for _, id := range []string{c1.ID, c2.ID} {
		if s := w.creditState(t, id); s != hostapi.CreditConsumed {
			t.Fatalf("credit %s is %s at the host, want consumed", id, s)
		}
	}
	if owed, _ := w.tm.store.CompletionsOwed(context.Background(), 10); len(owed) != 0 {
		t.Fatalf("%d completions still owed", len(owed))
	}
	// Nothing more on the next tap.
	if rep, err := w.tap(t); err != nil || len(rep.Loads) != 0 || w.balance(t) != 6250 {
		t.Fatalf("second tap: %+v, %v, balance %d", rep, err, w.balance(t))
	}
}

// TestM1LoadTorn tears each block write of a load in turn, in each way a
// torn EEPROM write can end: the next tap settles it from the wallet, the
// host hears the truth, and the credit reaches the wallet exactly once.
func TestM1LoadTorn(t *testing.T) {
	for _, mode := range []mifaresim.TearMode{mifaresim.TearCorrupt, mifaresim.TearNotWritten, mifaresim.TearWritten} {
		for n := 1; n <= 2; n++ {
			t.Run(mode.String()+"/write"+string(rune('0'+n)), func(t *testing.T) {
				w := newM1World(t, 1000)
				c := w.h.credit(t, w.id, 700, "wechat")
				w.card.TearNextWriteAt(n, mode)
				rep, err := w.tap(t)
				if n == 1 && !errors.Is(err, mifare.ErrOutcomeUnknown) {
					t.Fatalf("torn value block write: %+v, %v; want ErrOutcomeUnknown", rep, err)
				}
				w.card.TearNextWriteAt(0, mode)
				// The host is down for the repairing tap: the completion
				// waits in the journal and holds back new authorizations.
				w.down.Store(true)
				if _, err := w.tap(t); err != nil {
					t.Fatalf("repairing tap with the host down: %v", err)
				}
				w.down.Store(false)
				if _, err := w.tap(t); err != nil {
					t.Fatalf("tap with the host back: %v", err)
				}
				if b := w.balance(t); b != 1700 {
					t.Fatalf("wallet holds %d, want 1700: the credit exactly once", b)
				}
				if s := w.creditState(t, c.ID); s != hostapi.CreditConsumed {
					t.Fatalf("credit %s at the host, want consumed", s)
				}
				rows, err := w.tm.store.Unresolved(context.Background(), w.id)
				if err != nil || len(rows) != 0 {
					t.Fatalf("unresolved rows %+v, %v", rows, err)
				}
			})
		}
	}
}

// TestM1LoadThenSale: at a POS one tap loads the top-up and then takes the
// sale, which the old balance could not pay.
func TestM1LoadThenSale(t *testing.T) {
	w := newM1World(t, 300)
	w.h.credit(t, w.id, 2000, "wechat")
	w.p.Till.Arm(1500, "")
	w.card.Reset()
	rep, st, err := w.p.ReadM1(context.Background(), w.card)
	if err != nil {
		t.Fatal(err)
	}
	lrep, err := w.l.ApplyM1(context.Background(), w.card, w.p.Wallet, rep.Card, st)
	if err != nil || lrep.Balance != 2300 {
		t.Fatalf("ApplyM1 = %+v, %v", lrep, err)
	}
	rep.Balance = lrep.Balance
	rep, err = w.p.ChargeM1(context.Background(), w.card, rep)
	if err != nil || !rep.Paid || rep.Balance != 800 || w.balance(t) != 800 {
		t.Fatalf("ChargeM1 = %+v, %v; wallet %d", rep, err, w.balance(t))
	}
}

// TestM1DeniedWallet: a wallet the host put on the deny list by its UID
// gets no top-up and no sale, offline too once pulled.
func TestM1DeniedWallet(t *testing.T) {
	w := newM1World(t, 5000)
	c := w.h.credit(t, w.id, 100, "wechat")
	if _, err := w.h.store.Deny(context.Background(), w.id, "lost", "test", time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := w.tap(t); !errors.Is(err, tap.ErrCardDenied) {
		t.Fatalf("tap of a denied wallet: %v, want ErrCardDenied", err)
	}
	if s := w.creditState(t, c.ID); s != hostapi.CreditPending || w.balance(t) != 5000 {
		t.Fatalf("credit %s, wallet %d: a denied wallet must get nothing", s, w.balance(t))
	}
	// Offline: the terminal remembers it.
	w.down.Store(true)
	w.p.Till.Arm(100, "")
	w.card.Reset()
	rep, _, err := w.p.ReadM1(context.Background(), w.card)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.p.ChargeM1(context.Background(), w.card, rep); !errors.Is(err, tap.ErrCardDenied) {
		t.Fatalf("sale on a denied wallet: %v, want ErrCardDenied", err)
	}
	if d, _, err := w.tm.store.Denied(context.Background(), w.id); err != nil || !d {
		t.Fatalf("offline deny list: %v, %v", d, err)
	}
	var rows []offline.Row
	rows, _ = w.tm.store.Unresolved(context.Background(), w.id)
	if len(rows) != 0 {
		t.Fatalf("a refused sale left rows %+v", rows)
	}
}

// TestM1OpenLoadSettledElsewhere: another terminal was authorized for a
// load and never reported (its answer lost, or it died); the next terminal
// to read the wallet settles it from the wallet's balance and sequence,
// whether it happened or not, and the credit reaches the wallet once.
func TestM1OpenLoadSettledElsewhere(t *testing.T) {
	for _, written := range []bool{false, true} {
		t.Run(fmt.Sprintf("written=%v", written), func(t *testing.T) {
			w := newM1World(t, 1000)
			c := w.h.credit(t, w.id, 400, "wechat")
			// "Another terminal": a Ref this terminal's journal does not hold.
			_, err := w.tm.client.AuthorizeLoad(context.Background(), hostapi.LoadAuthorizeRequest{CreditID: c.ID, Card: w.id, Purse: hostapi.PurseM1,
				AmountFen: 400, OldBalanceFen: 1000, OnlineCounter: 0, Ref: "00112233445566FF", Time: time.Now().UTC().Format(hostapi.TimeLayout)})
			if err != nil {
				t.Fatal(err)
			}
			if written {
				if _, err := m1Wallet.Increment(w.card, 400, nil); err != nil {
					t.Fatal(err)
				}
			}
			rep, err := w.tap(t)
			if err != nil {
				t.Fatalf("ApplyM1 = %+v, %v", rep, err)
			}
			if b := w.balance(t); b != 1400 || w.creditState(t, c.ID) != hostapi.CreditConsumed {
				t.Fatalf("wallet %d, credit %s: want 1400, consumed", b, w.creditState(t, c.ID))
			}
			if applied := len(rep.Loads) == 1 && rep.Loads[0].Applied; applied == written {
				t.Fatalf("loads on the tap %+v: want a load only when the other terminal's did not happen", rep.Loads)
			}
		})
	}
}

// TestM1LoadABA: a torn load that did reach the wallet, then a sale
// elsewhere of the same amount, brings the balance back to the one before
// the load. The wallet's sequence tells it apart from a load that did not
// happen: the row is left to the host, not reported as not applied, and
// the credit is not loaded a second time.
func TestM1LoadABA(t *testing.T) {
	w := newM1World(t, 500)
	c := w.h.credit(t, w.id, 100, "wechat")
	w.card.TearNextWriteAt(1, mifaresim.TearWritten)
	if _, err := w.tap(t); !errors.Is(err, mifare.ErrOutcomeUnknown) {
		t.Fatalf("torn: %v", err)
	}
	w.card.TearNextWriteAt(0, mifaresim.TearWritten)
	w.card.Reset()
	if _, err := m1Wallet.Decrement(w.card, 100, nil); err != nil { // a sale at another terminal
		t.Fatal(err)
	}
	rep, err := w.tap(t)
	if err != nil || len(rep.Loads) != 1 || rep.Loads[0].Applied {
		t.Fatalf("tap after: %+v, %v; want the credit held back", rep, err)
	}
	// 500 + 100 (the credit, once) - 100 (the sale).
	if b := w.balance(t); b != 500 || w.creditState(t, c.ID) != hostapi.CreditPending {
		t.Fatalf("wallet holds %d, credit %s; want 500 and the credit open at the host", b, w.creditState(t, c.ID))
	}
	// The operator, reading the terminals' journals, settles it applied.
	if err := w.h.store.SettleM1(context.Background(), c.ID, true, "operator test", time.Now()); err != nil {
		t.Fatal(err)
	}
	if rep, err := w.tap(t); err != nil || len(rep.Loads) != 0 || w.balance(t) != 500 {
		t.Fatalf("tap after the settle: %+v, %v, wallet %d", rep, err, w.balance(t))
	}
}

// TestM1LoadLeftUnknown: a torn load that did not happen, then a sale
// elsewhere: the row is left to the host. Another credit of the wallet is
// held back while the first is open (the host allows one open load per
// wallet), so later taps cannot mistake the wallet's state for the first
// load's; once the operator settles it, both load.
func TestM1LoadLeftUnknown(t *testing.T) {
	w := newM1World(t, 500)
	a := w.h.credit(t, w.id, 100, "wechat")
	w.card.TearNextWriteAt(1, mifaresim.TearNotWritten)
	if _, err := w.tap(t); !errors.Is(err, mifare.ErrOutcomeUnknown) {
		t.Fatalf("torn: %v", err)
	}
	w.card.TearNextWriteAt(0, mifaresim.TearNotWritten)
	w.card.Reset()
	if _, err := m1Wallet.Decrement(w.card, 50, nil); err != nil { // a sale elsewhere: 450
		t.Fatal(err)
	}
	b := w.h.credit(t, w.id, 150, "subsidy")
	for range 2 {
		if _, err := w.tap(t); err != nil {
			t.Fatal(err)
		}
	}
	if w.balance(t) != 450 || w.creditState(t, a.ID) != hostapi.CreditPending || w.creditState(t, b.ID) != hostapi.CreditPending {
		t.Fatalf("wallet %d, A %s, B %s: want 450 and both held back", w.balance(t), w.creditState(t, a.ID), w.creditState(t, b.ID))
	}
	if err := w.h.store.SettleM1(context.Background(), a.ID, false, "operator test", time.Now()); err != nil {
		t.Fatal(err)
	}
	// The host has closed A, so this terminal's unknown row of it no longer
	// holds it back: A and B load.
	rep, err := w.tap(t)
	if err != nil {
		t.Fatal(err)
	}
	if w.balance(t) != 700 || w.creditState(t, a.ID) != hostapi.CreditConsumed || w.creditState(t, b.ID) != hostapi.CreditConsumed {
		t.Fatalf("after the settle: %+v; wallet %d, A %s, B %s", rep, w.balance(t), w.creditState(t, a.ID), w.creditState(t, b.ID))
	}
	// And the old row, still unknown, is never taken for A's new load.
	if rep, err := w.tap(t); err != nil || len(rep.Recovered) != 0 || w.balance(t) != 700 {
		t.Fatalf("tap after: %+v, %v, wallet %d", rep, err, w.balance(t))
	}
}

// twoTerminals is an M1 wallet used at terminals A and B of one host whose
// answers can be delayed (authorize) or failed (complete, 500).
type twoTerminals struct {
	*m1World
	slowAuth, failComplete atomic.Bool
	lb                     *tap.Loader
	// slowDone receives once a slow authorize's late answer was written.
	slowDone chan struct{}
}

func newTwoTerminals(t *testing.T, balance int64) *twoTerminals {
	t.Helper()
	w := &twoTerminals{m1World: &m1World{h: newTestHost(t, termA, termB)}, slowDone: make(chan struct{}, 1)}
	c, err := w.h.store.RegisterM1(context.Background(), "04112233", "王五", "test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	w.id = c.Number
	f, err := mifaresim.NewCardFile([4]byte{0x04, 0x11, 0x22, 0x33}, m1Wallet, balance)
	if err != nil {
		t.Fatal(err)
	}
	w.card = mifaresim.NewSimCard(f, "")
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == hostapi.PathLoadComplete && w.failComplete.Load():
			rw.Header().Set("Content-Type", "application/json")
			rw.WriteHeader(http.StatusInternalServerError)
			json.NewEncoder(rw).Encode(hostapi.Error{Code: "internal_error", Reason: "database is locked"})
		case r.URL.Path == hostapi.PathLoadAuthorize && w.slowAuth.Load():
			rec := httptest.NewRecorder()
			w.h.handler.ServeHTTP(rec, r) // the host commits…
			// …and answers after the terminal gave up: once it closed the
			// connection, however long its timeout took on this machine.
			select {
			case <-r.Context().Done():
			case <-time.After(30 * time.Second):
			}
			rw.WriteHeader(rec.Code)
			rw.Write(rec.Body.Bytes())
			select { // a second slow answer finds the first one told
			case w.slowDone <- struct{}{}:
			default:
			}
		default:
			w.h.handler.ServeHTTP(rw, r)
		}
	}))
	t.Cleanup(srv.Close)
	w.tm = newTerminal(t, w.h, termA, srv.URL)
	b := newTerminal(t, w.h, termB, srv.URL)
	wallet := m1Wallet
	// Long enough for every answer but the slow one, which waits for the
	// terminal to give up, on a slow machine too (the arm64 tests under qemu).
	w.l = &tap.Loader{Store: w.tm.store, Host: w.tm.client, HostTimeout: time.Second, Logger: slog.New(slog.DiscardHandler)}
	w.lb = &tap.Loader{Store: b.store, Host: b.client, HostTimeout: time.Second, Logger: slog.New(slog.DiscardHandler)}
	w.p = &tap.Purchaser{Store: w.tm.store, Till: &tap.Till{}, Wallet: &wallet, Logger: slog.New(slog.DiscardHandler)}
	return w
}

// tapAt taps the wallet at the terminal whose loader is l.
func (w *twoTerminals) tapAt(t *testing.T, l *tap.Loader) tap.LoadReport {
	t.Helper()
	w.card.Reset()
	st, err := m1Wallet.ReadState(w.card)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := l.ApplyM1(context.Background(), w.card, w.p.Wallet, w.id, st)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// TestM1SlowAuthorize: the host records an authorization but answers after
// terminal A gave up. A wrote nothing and says so (its journal row is
// written before it asks); whatever arrives first, the wallet's next tap,
// at another terminal, loads both credits once.
func TestM1SlowAuthorize(t *testing.T) {
	w := newTwoTerminals(t, 1000)
	c1 := w.h.credit(t, w.id, 500, "wechat")
	w.slowAuth.Store(true)
	if rep := w.tapAt(t, w.l); len(rep.Loads) != 1 || rep.Loads[0].Applied {
		t.Fatalf("slow authorize: %+v", rep)
	}
	w.slowAuth.Store(false)
	select { // the slow answer is done
	case <-w.slowDone:
	case <-time.After(30 * time.Second):
		t.Fatal("the slow authorize's answer was not written within 30 s")
	}
	c2 := w.h.credit(t, w.id, 300, "subsidy")
	rep := w.tapAt(t, w.lb)
	if len(rep.Loads) != 2 || !rep.Loads[0].Applied || !rep.Loads[1].Applied || w.balance(t) != 1800 {
		t.Fatalf("terminal B: %+v, wallet %d; want both loaded, 1800", rep, w.balance(t))
	}
	for _, c := range []hostapi.Credit{c1, c2} {
		if s := w.creditState(t, c.ID); s != hostapi.CreditConsumed {
			t.Fatalf("credit %s is %s", c.ID, s)
		}
	}
}

// TestM1CompletionOn500: a completion the host answers 500 stays owed (the
// sync loop retries it; a 5xx is no verdict), and the credit is consumed
// once the host answers.
func TestM1CompletionOn500(t *testing.T) {
	w := newTwoTerminals(t, 1000)
	w.l.HostTimeout = time.Second
	c1 := w.h.credit(t, w.id, 500, "wechat")
	w.failComplete.Store(true)
	if rep := w.tapAt(t, w.l); len(rep.Loads) != 1 || !rep.Loads[0].Applied {
		t.Fatalf("load: %+v", rep)
	}
	s := &hostsync.Syncer{Client: w.tm.client, Store: w.tm.store, Logger: slog.New(slog.DiscardHandler),
		PullEvery: fast, UploadEvery: fast, HeartbeatEvery: fast, MaxBackoff: fast}
	s.Start(context.Background())
	defer s.Stop()
	// The journal still goes up meanwhile: one completion the host cannot
	// take holds nothing else back.
	waitFor(t, "the journal uploaded", func() bool { return w.tm.queueDepth(t) == 0 })
	time.Sleep(200 * time.Millisecond) // several rounds of 500
	if owed, _ := w.tm.store.CompletionsOwed(context.Background(), 10); len(owed) != 1 {
		t.Fatalf("%d completions owed after the host's 500s, want 1", len(owed))
	}
	w.failComplete.Store(false)
	waitFor(t, "the completion reported", func() bool {
		owed, _ := w.tm.store.CompletionsOwed(context.Background(), 10)
		return len(owed) == 0
	})
	if s := w.creditState(t, c1.ID); s != hostapi.CreditConsumed || w.balance(t) != 1500 {
		t.Fatalf("credit %s, wallet %d", s, w.balance(t))
	}
}
