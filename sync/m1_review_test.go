package sync_test

import (
	"bytes"
	"context"
	"errors"
	"io"
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
	"github.com/cardd/cardd/tap"
)

// TestM1OwnRowClosedByTheHost: A's torn load (not written) is voided by B,
// which loads the same credit from the same state. A's next tap must not
// judge its old row from the wallet (which now looks like "happened"): the
// host closed it, so A only marks it settled there. No false alarm, and
// A's journal claims no load it never made.
func TestM1OwnRowClosedByTheHost(t *testing.T) {
	w := newTwoTerminals(t, 1000)
	w.l.HostTimeout = time.Second
	c := w.h.credit(t, w.id, 500, "wechat")
	w.card.TearNextWriteAt(1, mifaresim.TearNotWritten)
	w.card.Reset()
	st, err := m1Wallet.ReadState(w.card)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.l.ApplyM1(context.Background(), w.card, w.p.Wallet, w.id, st); !errors.Is(err, mifare.ErrOutcomeUnknown) {
		t.Fatalf("torn at A: %v", err)
	}
	w.card.TearNextWriteAt(0, mifaresim.TearNotWritten)
	if rep := w.tapAt(t, w.lb); len(rep.Loads) != 1 || !rep.Loads[0].Applied || w.balance(t) != 1500 {
		t.Fatalf("B: %+v wallet %d", rep, w.balance(t))
	}
	w.tapAt(t, w.l)
	l, _ := w.h.store.Ledger(context.Background(), w.id)
	rows, _ := w.tm.store.LoadsOfCredit(context.Background(), c.ID)
	if l.Alarms != 0 || rows[0].State == offline.StateDone || w.balance(t) != 1500 || w.creditState(t, c.ID) != hostapi.CreditConsumed {
		t.Fatalf("A judged its voided load applied: %d alarm(s), A's row %s", l.Alarms, rows[0].State)
	}
}

// TestM1OwnRefCommittedLate: the host commits A's authorization after A
// gave up and after A's not_applied for that Ref ("never authorized:
// nothing to void"). The open load is A's Ref with A's row closed: A
// settles it from the wallet like another terminal's, and loads.
func TestM1OwnRefCommittedLate(t *testing.T) {
	w := &twoTerminals{m1World: &m1World{h: newTestHost(t, termA, termB)}}
	c0, err := w.h.store.RegisterM1(context.Background(), "04112233", "x", "test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	w.id = c0.Number
	f, _ := mifaresim.NewCardFile([4]byte{0x04, 0x11, 0x22, 0x33}, m1Wallet, 1000)
	w.card = mifaresim.NewSimCard(f, "")
	var late atomic.Bool
	committed := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.URL.Path == hostapi.PathLoadAuthorize && late.Load() {
			body, _ := io.ReadAll(r.Body)
			// Queued behind a busy host, abort not seen: the host commits
			// after the terminal gave up, however long that took here.
			select {
			case <-r.Context().Done():
			case <-time.After(30 * time.Second):
			}
			defer func() {
				select {
				case committed <- struct{}{}:
				default:
				}
			}()
			r2 := r.Clone(context.WithoutCancel(r.Context()))
			r2.Body = io.NopCloser(bytes.NewReader(body))
			w.h.handler.ServeHTTP(httptest.NewRecorder(), r2)
			return
		}
		w.h.handler.ServeHTTP(rw, r)
	}))
	t.Cleanup(srv.Close)
	w.tm = newTerminal(t, w.h, termA, srv.URL)
	wallet := m1Wallet
	// Long enough for every answer but the late one, on a slow machine too
	// (the arm64 tests under qemu).
	w.l = &tap.Loader{Store: w.tm.store, Host: w.tm.client, HostTimeout: time.Second, Logger: slog.New(slog.DiscardHandler)}
	w.p = &tap.Purchaser{Store: w.tm.store, Till: &tap.Till{}, Wallet: &wallet, Logger: slog.New(slog.DiscardHandler)}
	c := w.h.credit(t, w.id, 500, "wechat")
	late.Store(true)
	w.tapAt(t, w.l)
	late.Store(false)
	select {
	case <-committed:
	case <-time.After(30 * time.Second):
		t.Fatal("the late authorize was not committed within 30 s")
	}
	for range 3 {
		w.tapAt(t, w.l)
	}
	resp, _ := w.tm.client.CardCredits(context.Background(), w.id)
	if w.balance(t) != 1500 {
		t.Fatalf("wallet %d, credit %s, open load %+v: A never settles its own Ref", w.balance(t), w.creditState(t, c.ID), resp.M1Open)
	}
}
