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
	// The late authorize is held, not answered: the host commits it only
	// once A gave up and its not_applied was heard (below), in that order
	// however long each took on this machine.
	var late atomic.Bool
	held := make(chan *http.Request, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.URL.Path == hostapi.PathLoadAuthorize && late.Load() {
			body, _ := io.ReadAll(r.Body)
			r2 := r.Clone(context.WithoutCancel(r.Context()))
			r2.Body = io.NopCloser(bytes.NewReader(body))
			select { // one late authorize is held; a second is not committed
			case held <- r2:
			default:
			}
			<-r.Context().Done() // queued behind a busy host: A gives up
			return
		}
		w.h.handler.ServeHTTP(rw, r)
	}))
	t.Cleanup(srv.Close)
	w.tm = newTerminal(t, w.h, termA, srv.URL)
	wallet := m1Wallet
	// Long enough for every answer but the held one, on a slow machine too
	// (the arm64 tests under qemu).
	w.l = &tap.Loader{Store: w.tm.store, Host: w.tm.client, HostTimeout: time.Second, Logger: slog.New(slog.DiscardHandler)}
	w.p = &tap.Purchaser{Store: w.tm.store, Till: &tap.Till{}, Wallet: &wallet, Logger: slog.New(slog.DiscardHandler)}
	c := w.h.credit(t, w.id, 500, "wechat")
	late.Store(true)
	w.tapAt(t, w.l)
	late.Store(false)
	var r2 *http.Request
	select {
	case r2 = <-held:
	case <-time.After(30 * time.Second):
		t.Fatal("the authorize never reached the host")
	}
	// A gave up and told the host its not_applied, which found nothing to
	// void: the credit is still pending.
	rows, err := w.tm.store.LoadsOfCredit(context.Background(), c.ID)
	if err != nil || len(rows) != 1 || rows[0].State != offline.StateFailed || !rows[0].CompletionReported {
		t.Fatalf("A's rows of the credit %+v (%v): want one failed (not applied), its completion reported to the host", rows, err)
	}
	if s := w.creditState(t, c.ID); s != hostapi.CreditPending {
		t.Fatalf("credit %s after A's not_applied, before the late commit: want pending", s)
	}
	rec := httptest.NewRecorder()
	w.h.handler.ServeHTTP(rec, r2) // the host commits it now
	if rec.Code != http.StatusOK {
		t.Fatalf("the late authorize: %d %s", rec.Code, rec.Body)
	}
	if open, err := w.tm.client.CardCredits(context.Background(), w.id); err != nil || open.M1Open == nil {
		t.Fatalf("after the late commit: %+v (%v), want the wallet's load open at the host", open.M1Open, err)
	}
	for range 3 {
		w.tapAt(t, w.l)
	}
	resp, _ := w.tm.client.CardCredits(context.Background(), w.id)
	if w.balance(t) != 1500 {
		t.Fatalf("wallet %d, credit %s, open load %+v: A never settles its own Ref", w.balance(t), w.creditState(t, c.ID), resp.M1Open)
	}
}
