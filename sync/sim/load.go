package sim

import (
	"context"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/cardd/cardd/hostapi"
	hostsync "github.com/cardd/cardd/sync"
)

// tap loads one pending credit onto a card taken at random, the way the
// daemon's load step does: the card's credits from the host, INITIALIZE
// FOR LOAD on the card, authorize (MAC2), CREDIT FOR LOAD (TAC), complete.
func (t *terminal) tap(ctx, acting context.Context) {
	cards := t.f.cfg.Cards
	c := cards[t.rng.IntN(len(cards))]
	if !t.f.cfg.SharedCards {
		if !c.take(acting) {
			return
		}
		defer c.release()
	}
	t.f.rec.load(func(l *LoadReport) { l.Taps++ })
	pending := t.cache[c.Number()]
	if len(pending) == 0 && !t.askCredits(ctx, c.Number()) {
		return
	}
	pending = t.cache[c.Number()]
	if len(pending) == 0 {
		t.f.rec.load(func(l *LoadReport) { l.NoCredit++ })
		return
	}
	// Any of them, not the oldest: terminals holding the same card's
	// credits then race for the same and for different credits.
	cr := pending[t.rng.IntN(len(pending))]
	li, err := c.initLoad(cr.AmountFen, t.id)
	if err != nil {
		t.f.rec.load(func(l *LoadReport) { l.CardErrors++ })
		return
	}
	when := time.Now().UTC().Truncate(time.Second)
	req := hostapi.LoadAuthorizeRequest{
		CreditID: cr.ID, Card: c.Number(), Purse: "EP", AmountFen: cr.AmountFen,
		OldBalanceFen: li.OldBalance, OnlineCounter: li.OnlineCounter, KeyVersion: li.KeyVersion, AlgID: li.AlgID,
		Random: hexUpper(li.Random[:]), MAC1: hexUpper(li.MAC1[:]), Time: when.Format(hostapi.TimeLayout),
	}
	var auth hostapi.LoadAuthorizeResponse
	// The same INIT answer to another instance is a retry the host
	// answers with the same MAC2, so a failover may resend it as it is.
	if err := t.call(ctx, KindAuthorize, func(ctx context.Context, cl *hostsync.Client) error {
		var err error
		auth, err = cl.AuthorizeLoad(ctx, req)
		return err
	}); err != nil {
		if hostsync.HasCode(err, hostapi.CodeCreditConsumed) || hostsync.HasCode(err, hostapi.CodeNotFound) {
			t.drop(c.Number(), cr.ID) // the cache was stale
		}
		return
	}
	if auth.Credits != nil {
		t.cache[c.Number()] = auth.Credits // the card's others, as the host has them now
	}
	at, mac2, err := readAuth(auth)
	if err != nil {
		t.f.rec.failed(KindAuthorize, "bad_answer")
		return
	}
	tac, err := c.creditLoad(at, mac2)
	if err != nil {
		// The card refused the MAC2, or (shared cards) another terminal's
		// INIT ended this session: prove the load did not happen.
		t.f.rec.load(func(l *LoadReport) { l.CardErrors++ })
		t.notApplied(ctx, c, cr, li.OnlineCounter)
		return
	}
	t.f.rec.appliedCredit(cr.ID, cr.AmountFen)
	t.drop(c.Number(), cr.ID)
	t.complete(ctx, hostapi.LoadCompleteRequest{CreditID: cr.ID, Card: c.Number(), Counter: li.OnlineCounter, TAC: hexUpper(tac[:])})
}

// askCredits asks the host for a card's pending credits and caches them,
// as the daemon does when its cache has none; false when no answer came.
func (t *terminal) askCredits(ctx context.Context, card string) bool {
	return t.call(ctx, KindCredits, func(ctx context.Context, cl *hostsync.Client) error {
		r, err := cl.CardCredits(ctx, card)
		if err == nil {
			t.cache[card] = r.Credits
		}
		return err
	}) == nil
}

// drop takes a credit out of the terminal's cache.
func (t *terminal) drop(card, id string) {
	if list, met := t.cache[card]; met {
		t.cache[card] = slices.DeleteFunc(list, func(c hostapi.Credit) bool { return c.ID == id })
	}
}

// readAuth reads the time and MAC2 of an authorization.
func readAuth(a hostapi.LoadAuthorizeResponse) (time.Time, [4]byte, error) {
	var mac2 [4]byte
	when, err := time.Parse(hostapi.TimeLayout, a.Time)
	if err != nil {
		return when, mac2, err
	}
	b, err := hex.DecodeString(a.MAC2)
	if err != nil || len(b) != len(mac2) {
		return when, mac2, errors.New("authorize answered a MAC2 that is not 4 bytes of hex")
	}
	copy(mac2[:], b)
	return when, mac2, nil
}

// notApplied closes an authorization the card did not apply with a fresh
// INIT FOR LOAD at the same counter. A card that moved past it cannot
// prove that; the authorization stays open, counted unsettled.
func (t *terminal) notApplied(ctx context.Context, c *Card, cr hostapi.Credit, counter uint16) {
	probe, err := c.initLoad(cr.AmountFen, t.id)
	if err != nil || probe.OnlineCounter != counter {
		t.f.rec.load(func(l *LoadReport) { l.Unsettled++ })
		return
	}
	t.complete(ctx, hostapi.LoadCompleteRequest{
		CreditID: cr.ID, Card: c.Number(), Counter: counter, NotApplied: true,
		ProbeOldBalanceFen: probe.OldBalance, ProbeAmountFen: cr.AmountFen,
		ProbeRandom: hexUpper(probe.Random[:]), ProbeMAC1: hexUpper(probe.MAC1[:]),
	})
}

// complete reports a load's outcome; when no instance decides, the report
// waits in the terminal's outbox and goes again before its next action.
func (t *terminal) complete(ctx context.Context, req hostapi.LoadCompleteRequest) {
	err := t.call(ctx, KindComplete, func(ctx context.Context, cl *hostsync.Client) error {
		r, err := cl.CompleteLoad(ctx, req)
		if err == nil {
			t.f.rec.load(func(l *LoadReport) {
				switch {
				case r.State == hostapi.CreditConsumed && !req.NotApplied:
					l.Consumed++
				case req.NotApplied:
					l.NotApplied++
				}
			})
		}
		return err
	})
	if retryable(err) {
		t.outbox = append(t.outbox, req)
	}
}

// flush sends the outbox again, oldest first.
func (t *terminal) flush(ctx context.Context) {
	queued := t.outbox
	t.outbox = nil
	for i, req := range queued {
		if ctx.Err() != nil {
			t.outbox = append(t.outbox, queued[i:]...)
			return
		}
		t.complete(ctx, req)
	}
}

// drain flushes the outbox until it is empty or ctx ends.
func (t *terminal) drain(ctx context.Context) {
	for len(t.outbox) > 0 {
		t.flush(ctx)
		if len(t.outbox) == 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func hexUpper(b []byte) string { return strings.ToUpper(hex.EncodeToString(b)) }
