package tap

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/cardd/cardd/apdu"
	"github.com/cardd/cardd/apdu/epurse"
	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/money"
	"github.com/cardd/cardd/offline"
	"github.com/cardd/cardd/redact"
	hostsync "github.com/cardd/cardd/sync"
)

// HostLink is what the on-tap load needs from the host; *sync.Client is one.
type HostLink interface {
	CardCredits(ctx context.Context, card string) (hostapi.CardCreditsResponse, error)
	AuthorizeLoad(ctx context.Context, req hostapi.LoadAuthorizeRequest) (hostapi.LoadAuthorizeResponse, error)
	CompleteLoad(ctx context.Context, req hostapi.LoadCompleteRequest) (hostapi.LoadCompleteResponse, error)
}

// errLoadsWait stops a tap's loads, not the tap: an earlier load's row
// could not be recorded done (afterCard.unrecorded).
var errLoadsWait = errors.New("the tap's loads wait for the next tap")

// Errors that refuse a card before any load (DESIGN.md, "A tap, as data").
var (
	ErrCardDenied  = errors.New("card is on the deny list")
	ErrCardExpired = errors.New("card has expired")
)

// Loader writes pending credits onto a tapped card, exactly once, following
// the money rules of DESIGN.md: write-ahead journal before CREDIT FOR LOAD,
// and an unfinished load resolved from the card's own counter on its next tap.
type Loader struct {
	Store      *offline.Store
	Host       HostLink // nil: no host configured; credits wait
	TerminalID [6]byte
	// BalanceCap refuses a credit that would take the card above it; zero
	// means 1000.00.
	BalanceCap int64
	// HostTimeout bounds each host call made during a tap; zero means 2 s.
	HostTimeout time.Duration
	// CreditsFresh is how young the sync pull's last success must be for
	// the tap to load the credits it cached (offline.Store.CreditsFor)
	// without asking the host first; zero asks the host on every tap.
	// The daemon derives it from the pull interval.
	CreditsFresh time.Duration
	// FreshAfter is when this run of the terminal began: a pull answered
	// before it does not make the cache fresh, since no pull was held
	// while the terminal was down and a credit paid then is not cached.
	// Zero: any pull counts. The daemon sets it to its start.
	FreshAfter time.Time
	Now        func() time.Time // nil: time.Now
	Logger     *slog.Logger     // nil: slog.Default()
	// Receipt, when set, gives the receipt of a load that reached the card
	// (on this tap, or an earlier one as the card's counter shows); it is
	// queued in the transaction that records the load done, so a load
	// never lacks its receipt and never has two. row is the journal row
	// as done, with its TAC. nil: no printer, no receipts.
	Receipt func(cr *CardRead, row offline.Row) (offline.NewReceipt, error)
	// BlockHost, when set, gives the MAC that blocks a deny-listed card's
	// e-purse on the chip (Runner.block, block.go); nil: such a card is
	// refused and left as it is.
	BlockHost BlockHost
}

// LoadResult is one credit's fate on this tap.
type LoadResult struct {
	CreditID   string
	AmountFen  int64
	Note       string
	Subsidy    bool   // a subsidy (补助), not money paid
	Purse      string // the purse it is loaded onto: "EP" or "ED"
	Applied    bool
	NewBalance int64  // the purse's balance after the load, when Applied
	Refused    string // why it was not applied, in words, when not Applied
}

// Recovery is an unfinished load of an earlier tap, resolved on this one.
type Recovery struct {
	JournalID string
	CreditID  string
	AmountFen int64
	Applied   bool // the card's counter shows it happened
}

// LoadReport is what the on-tap load did.
type LoadReport struct {
	Recovered   []Recovery
	Loads       []LoadResult
	Balance     int64 // the card's balance afterwards
	HostOffline bool  // credits, if any, wait for the next tap
}

func (l *Loader) now() time.Time {
	if l.Now != nil {
		return l.Now()
	}
	return time.Now()
}

func (l *Loader) logger() *slog.Logger {
	if l.Logger != nil {
		return l.Logger
	}
	return slog.Default()
}

func (l *Loader) hostCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	d := l.HostTimeout
	if d <= 0 {
		d = 2 * time.Second
	}
	return context.WithTimeout(ctx, d)
}

// Apply runs on a card that ReadPurse has just read, in the same session.
// It first settles any unfinished load of this card, then refuses a denied or
// expired card, then loads each pending credit. An error means the tap ended
// early (the card left, or it is refused); the report says what was done up
// to then, and every journal row already tells the truth. The load's last
// commit is done before Apply returns; a Runner leaves it for after the
// card (apply).
func (l *Loader) Apply(ctx context.Context, t apdu.Transmitter, cr *CardRead) (LoadReport, error) {
	after := &afterCard{}
	rep, err := l.apply(ctx, t, cr, after)
	if aerr := after.run(); err == nil {
		err = aerr
	}
	return rep, err
}

// apply is Apply leaving the last commit of the last credit loaded to
// after: the card may leave once CREDIT FOR LOAD has answered.
func (l *Loader) apply(ctx context.Context, t apdu.Transmitter, cr *CardRead, after *afterCard) (LoadReport, error) {
	rep := LoadReport{Balance: cr.Balance}
	card := cr.Info.CardNumber
	// Rule 3 first: an earlier load of this card whose outcome is unknown
	// must be settled from the card before anything else changes it.
	if err := l.recover(ctx, t, cr, &rep, after); err != nil {
		return rep, err
	}
	// Every tap is a journal row: the host sees each card that passed,
	// whether or not money moved.
	read := offline.Row{
		Kind: offline.KindRead, State: offline.StateDone, Card: card, Purse: cr.Purse.String(),
		BalanceFen: rep.Balance, Time: l.now().Format(hostapi.TimeLayout),
	}
	switch {
	case cr.balanceDeferred:
		// A POS tap of an armed sale: the purchase's INITIALIZE answers
		// the balance (its row carries it), the read did not ask for it.
		read.Detail = "balance not read: the armed sale's INITIALIZE FOR PURCHASE answers it"
	case rep.Balance < 0:
		// A card in overdraft, or a T-Union card whose second purse
		// exceeds its purse: a balance field holds no debt (the host
		// refuses one), so the row says it in words.
		read.BalanceFen, read.Detail = 0, "shown balance "+money.Format(rep.Balance)
	}
	if _, err := l.Store.Begin(ctx, read); err != nil {
		return rep, fmt.Errorf("journal of the tap: %w", err)
	}
	if denied, reason, err := l.Store.Denied(ctx, card); err != nil {
		return rep, err
	} else if denied {
		return rep, fmt.Errorf("%w (%s)", ErrCardDenied, reason)
	}
	if today := epurse.DateOf(l.now()); cr.Info.ExpiryDate.Before(today) {
		return rep, fmt.Errorf("%w on %s", ErrCardExpired, cr.Info.ExpiryDate)
	}
	if err := productExpired(ctx, l.Store, card, l.now()); err != nil {
		return rep, err
	}
	if l.Host == nil {
		return rep, nil
	}
	resp, err := l.credits(ctx, card)
	if err != nil {
		if errors.Is(err, hostsync.ErrUnreachable) {
			rep.HostOffline = true
			return rep, nil
		}
		return rep, err
	}
	return rep, l.loadAll(ctx, card, resp, &rep, func(c hostapi.Credit) (LoadResult, []hostapi.Credit, error) {
		return l.loadOne(ctx, t, cr, c, &rep, after)
	})
}

// credits are the card's credits to load. When the sync pull is fresh,
// they are those it cached, and no one is asked while the card waits: the
// authorization of the first lists any others (loadAll), and a fresh cache
// with nothing for the card loads nothing. A top-up paid in the app a
// moment ago is not missed by that: the pull is held at the host and
// answered as soon as the credit is added (sync.Syncer.PullWait), so it is
// in the cache within about a second. When some are cached, the host's
// authorization lists any paid since (loadAll); an older host that sends
// no list is not asked again: that would cost every such tap a round
// trip, and the credit waits safely at the host for the next pull. Stale
// (or CreditsFresh zero), the host is asked. A credit whose completion the
// host is still owed is left out either way (notOwed).
func (l *Loader) credits(ctx context.Context, card string) (hostapi.CardCreditsResponse, error) {
	if fresh, err := l.cacheFresh(ctx); err != nil {
		return hostapi.CardCreditsResponse{}, err
	} else if fresh {
		cached, err := l.Store.CreditsFor(ctx, card)
		if err != nil {
			return hostapi.CardCreditsResponse{}, err
		}
		resp := hostapi.CardCreditsResponse{Credits: make([]hostapi.Credit, 0, len(cached))}
		for _, c := range cached {
			resp.Credits = append(resp.Credits, hostCredit(c))
		}
		resp.Credits, err = l.notOwed(ctx, card, resp.Credits)
		return resp, err
	}
	hctx, cancel := l.hostCtx(ctx)
	resp, err := l.Host.CardCredits(hctx, card)
	cancel()
	if err != nil {
		if errors.Is(err, hostsync.ErrUnreachable) {
			return resp, err
		}
		return resp, fmt.Errorf("asking the host for credits: %w", err)
	}
	resp.Credits, err = l.notOwed(ctx, card, resp.Credits)
	return resp, err
}

// cacheFresh reports whether the sync pull's last success is younger than
// CreditsFresh, so that the cached credits are the host's, as of then. A
// LoadNow tap (asksHost) never takes the cache: it is for a credit paid a
// moment ago, which no pull has brought yet.
func (l *Loader) cacheFresh(ctx context.Context) (bool, error) {
	if l.CreditsFresh <= 0 || asksHost(ctx) {
		return false, nil
	}
	at, err := l.Store.CursorUpdated(ctx, offline.PullCursor)
	if err != nil || at.IsZero() || at.Before(l.FreshAfter) {
		return false, err
	}
	// The store's clock, not l.Now; a clock stepped back is stale.
	age := time.Since(at)
	return age >= 0 && age < l.CreditsFresh, nil
}

// notOwed is credits without those whose load's completion this
// terminal still owes the host (the sync loop reports it after the tap).
// Done, the credit is on the card, which the host learns from the TAC.
// Failed (the card's proof that it did not happen), the host still holds
// the old authorization: a new one for the same credit before that proof
// reaches the host would let the late proof release a credit that the
// new load put on the card. Either waits for the report.
func (l *Loader) notOwed(ctx context.Context, card string, credits []hostapi.Credit) ([]hostapi.Credit, error) {
	if len(credits) == 0 {
		return credits, nil
	}
	owed, err := l.Store.CompletionsOwedOf(ctx, card)
	if err != nil {
		return nil, err
	}
	waits := map[string]bool{}
	for _, r := range owed {
		waits[r.CreditID] = true
	}
	return slices.DeleteFunc(credits, func(c hostapi.Credit) bool { return waits[c.ID] }), nil
}

// hostCredit is a cached credit as the host sends it.
func hostCredit(c offline.Credit) hostapi.Credit {
	h := hostapi.Credit{ID: c.ID, Card: c.Card, AmountFen: c.AmountFen, Note: c.Note,
		Created: c.Created.Format(time.RFC3339), State: hostapi.CreditPending,
		Kind: c.Kind, Subsidy: c.Subsidy, Purse: c.Purse}
	if !c.NotBefore.IsZero() {
		h.NotBefore = c.NotBefore.UTC().Format(time.RFC3339)
	}
	if !c.Expires.IsZero() {
		h.Expires = c.Expires.UTC().Format(time.RFC3339)
	}
	return h
}

// loadAll loads the credits of resp, the host's answer for card, one by
// one with one, unless the host says the card is denied. It stops at the
// first error (the tap is over) and when the host went away. An
// authorization that lists the card's other pending credits (one returns
// them, non-nil, even empty) replaces those still to load: the host's word
// is newer than the cache's. An older host sends no list (nil): the queue
// goes on.
func (l *Loader) loadAll(ctx context.Context, card string, resp hostapi.CardCreditsResponse, rep *LoadReport, one func(hostapi.Credit) (LoadResult, []hostapi.Credit, error)) error {
	if resp.Denied {
		// The host knows first; remember it for when it is offline.
		if err := l.Store.SetDenied(ctx, card, true, resp.Reason); err != nil {
			return err
		}
		return fmt.Errorf("%w (%s)", ErrCardDenied, resp.Reason)
	}
	queue := resp.Credits
	tried := map[string]bool{}
	for len(queue) > 0 {
		c := queue[0]
		queue = queue[1:]
		if tried[c.ID] || c.Card != card {
			continue
		}
		tried[c.ID] = true
		res, others, err := one(c)
		if res.CreditID != "" {
			rep.Loads = append(rep.Loads, res)
		}
		if errors.Is(err, errLoadsWait) {
			return nil
		}
		if err != nil {
			return err
		}
		if rep.HostOffline {
			break
		}
		if others != nil {
			queue = others
		}
	}
	return nil
}

// listed is the host's list of a card's other credits, checked as a
// cached one is (the card's, an id, an amount above zero: a 0 would make
// INIT FOR LOAD fail and end the tap, a sale included) and without those
// whose completion is owed. Never nil: the host sent a list.
func (l *Loader) listed(ctx context.Context, card string, list []hostapi.Credit) ([]hostapi.Credit, error) {
	ok := make([]hostapi.Credit, 0, len(list))
	for _, o := range list {
		if o.Card == card && o.AmountFen > 0 && o.ID != "" {
			ok = append(ok, o)
		} else {
			l.logger().Warn("the host listed a credit that cannot be loaded; skipped", "card", redact.CardNumber(card), "credit", o.ID, "amount", o.AmountFen)
		}
	}
	return l.notOwed(ctx, card, ok)
}

// recache is the work, for after the card, that makes the cache of card
// the host's list: the credits listed are cached, so the next tap knows
// them without asking, and those the cache holds but the host listed not
// (loaded elsewhere, cancelled) are dropped. loading is the credit this
// authorization was for, which the list leaves out.
func (l *Loader) recache(ctx context.Context, card, loading string, list []hostapi.Credit) func() error {
	return func() error {
		keep := map[string]bool{loading: true}
		cache := make([]offline.Credit, 0, len(list))
		for _, o := range list {
			keep[o.ID] = true
			cache = append(cache, hostsync.CacheCredit(o))
		}
		if err := l.Store.PutCredits(ctx, cache); err != nil {
			l.logger().Warn("caching the credits the host listed", "err", err)
		}
		cached, err := l.Store.CreditsFor(ctx, card)
		if err != nil {
			l.logger().Warn("reading the cache to drop what the host no longer lists", "err", err)
			return nil
		}
		var gone []string
		for _, c := range cached {
			if !keep[c.ID] {
				gone = append(gone, c.ID)
			}
		}
		if len(gone) > 0 {
			if err := l.Store.DropCredits(ctx, gone); err != nil {
				l.logger().Warn("dropping credits the host no longer lists", "err", err)
			}
		}
		return nil
	}
}

// loadOne applies one credit: INITIALIZE FOR LOAD, host authorization,
// write-ahead journal row, CREDIT FOR LOAD; the row done and its
// completion to the host are left to after the card (the row is durable,
// and its completion owed, from the write-ahead on: when the report fails
// the sync loop makes it).
// others are the card's other pending credits when the host's
// authorization listed them.
func (l *Loader) loadOne(ctx context.Context, t apdu.Transmitter, cr *CardRead, c hostapi.Credit, rep *LoadReport, after *afterCard) (res LoadResult, others []hostapi.Credit, err error) {
	res, err = l.loadCredit(ctx, t, cr, c, rep, after, &others)
	return res, others, err
}

func (l *Loader) loadCredit(ctx context.Context, t apdu.Transmitter, cr *CardRead, c hostapi.Credit, rep *LoadReport, after *afterCard, others *[]hostapi.Credit) (LoadResult, error) {
	res := LoadResult{CreditID: c.ID, AmountFen: c.AmountFen, Note: c.Note, Subsidy: c.Kind == hostapi.CreditSubsidy, Purse: cr.Purse.String()}
	// A credit loaded before this one on the tap is recorded and reported
	// first: the host authorizes a card's next load only once the last is
	// completed. Only a tap with several credits pays for that with the
	// card in the field.
	if err := after.run(); err != nil {
		l.logger().Warn("the last commit of an earlier load", "err", err)
	}
	if after.unrecorded != nil {
		res.Refused = "the last load of this tap is not recorded yet: this one waits for the next tap"
		return res, errLoadsWait
	}
	purse, init, ok, err := l.initLoad(t, cr, c, rep, &res)
	if !ok || err != nil {
		return res, err
	}
	when := l.now().Truncate(time.Second)
	hctx, cancel := l.hostCtx(ctx)
	auth, err := l.Host.AuthorizeLoad(hctx, hostapi.LoadAuthorizeRequest{
		CreditID: c.ID, Card: cr.Info.CardNumber, Purse: purse.String(), AmountFen: c.AmountFen,
		OldBalanceFen: init.OldBalance, OnlineCounter: init.OnlineCounter,
		KeyVersion: init.KeyVersion, AlgID: init.AlgID,
		Random: hexUpper(init.Random[:]), MAC1: hexUpper(init.MAC1[:]),
		Time: when.Format(hostapi.TimeLayout),
	})
	cancel()
	switch {
	case err == nil:
	case errors.Is(err, hostsync.ErrUnreachable):
		rep.HostOffline = true
		res.Refused = "host unreachable: the top-up applies on a later tap"
		return res, nil
	case hostsync.HasCode(err, hostapi.CodeCreditBusy):
		// Another terminal was authorized for this card a moment ago and
		// may be loading it now: nothing is wrong, the credit waits for a
		// later tap (by then that terminal has finished, or its hold ran
		// out). No journal row: nothing was sent to the card.
		res.Refused = "being loaded at another terminal: it waits, tap again in a moment"
		return res, nil
	case hostsync.HasCode(err, hostapi.CodeCreditPending):
		// Another tap (here or at another terminal) was authorized for this
		// credit and the card's counter has moved since: the card's proof
		// of its last load settles it.
		return res, l.settleInFlight(ctx, t, cr, c, purse, init, &res)
	case hostsync.HasCode(err, hostapi.CodeCreditConsumed), hostsync.HasCode(err, hostapi.CodeNotFound):
		// The host, which is the truth, holds the credit no more (loaded
		// elsewhere, cancelled): the cache forgets it. INIT FOR LOAD
		// changed nothing on the card; the next credit goes on.
		res.Refused = err.Error()
		if derr := l.Store.DropCredits(ctx, []string{c.ID}); derr != nil {
			l.logger().Warn("dropping a credit the host no longer holds from the cache", "credit", c.ID, "err", derr)
		}
		return res, nil
	case hostsync.HasCode(err, hostapi.CodeCardDenied):
		// The host denied the card since the last pull (a fresh cache
		// skips CardCredits, whose Denied would have said it): the same
		// as that answer, so that no sale follows on this tap and the
		// deny list holds it when the host is offline.
		reason := err.Error()
		var he *hostsync.HostError
		if errors.As(err, &he) && he.Reason != "" {
			reason = he.Reason
		}
		if derr := l.Store.SetDenied(ctx, cr.Info.CardNumber, true, reason); derr != nil {
			return res, derr
		}
		res.Refused = "the host denies the card: " + reason
		return res, fmt.Errorf("%w (%s)", ErrCardDenied, reason)
	default:
		res.Refused = err.Error()
		return res, nil
	}
	if auth.Credits != nil {
		// The host's list of the card's other credits, as of its answer:
		// newer than the cache, it replaces what the tap would still try
		// (loadAll), even empty.
		if *others, err = l.listed(ctx, cr.Info.CardNumber, auth.Credits); err != nil {
			return res, err
		}
		after.add(l.recache(ctx, cr.Info.CardNumber, c.ID, *others))
	}
	mac2, err := decode4(auth.MAC2)
	if err != nil {
		res.Refused = "host sent a malformed MAC2: " + err.Error()
		return res, nil
	}
	// The MAC2 covers the time the host answered with; the card must get
	// exactly that one.
	if when, err = time.Parse(hostapi.TimeLayout, auth.Time); err != nil {
		res.Refused = fmt.Sprintf("host sent a malformed time %q", auth.Time)
		return res, nil
	}
	// Rule 2: the row is on disk before the card can change.
	row, err := l.Store.Begin(ctx, offline.Row{
		Kind: offline.KindLoad, State: offline.StateIntent, Card: cr.Info.CardNumber, Purse: purse.String(),
		Counter: init.OnlineCounter, BalanceFen: init.OldBalance, AmountFen: c.AmountFen,
		CreditID: c.ID, MAC2: auth.MAC2, Time: auth.Time, Detail: subsidyNote(c),
	})
	if err != nil {
		return res, fmt.Errorf("journal before CREDIT FOR LOAD: %w", err)
	}
	tac, err := epurse.CreditLoad(t, when, mac2)
	if err != nil {
		if _, answered := apdu.SW(err); answered {
			// The card answered no (9302 and the like): nothing happened.
			l.finish(ctx, row.ID, offline.StateFailed, "", withSubsidy(row, "card refused CREDIT FOR LOAD: "+err.Error()))
			res.Refused = "the card refused the load: " + err.Error()
			return res, nil
		}
		// No answer: it may or may not have happened. The card will say on
		// its next tap (rule 3).
		l.finish(ctx, row.ID, offline.StateUnknown, "", withSubsidy(row, "no answer to CREDIT FOR LOAD: "+err.Error()))
		return res, err
	}
	row.State, row.TAC = offline.StateDone, hexUpper(tac[:])
	after.add(func() error {
		if err := l.storeDone(ctx, cr, row, ""); err != nil {
			// The row stays in intent, which the card's next tap settles;
			// the money is on the card, so the tap's outcome stands.
			l.logger().Error("journal update failed; the next tap resolves it from the card", "journal", row.ID, "err", err)
			after.unrecorded = err
		}
		return nil
	})
	after.report(func() { l.complete(ctx, row.ID) })
	res.Applied, res.NewBalance = true, init.OldBalance+c.AmountFen
	if purse == cr.Purse {
		rep.Balance = cr.shownAfter(init.OldBalance, c.AmountFen)
		res.NewBalance = rep.Balance
	}
	l.logger().Info("credit loaded", loadedAttrs(cr, c, purse, res.NewBalance, init.OnlineCounter)...)
	return res, nil
}

// loadedAttrs are the log attributes of a credit loaded: a subsidy's batch
// only when it is one.
func loadedAttrs(cr *CardRead, c hostapi.Credit, purse epurse.Purse, balance int64, counter uint16) []any {
	attrs := []any{"card", redact.CardNumber(cr.Info.CardNumber), "credit", c.ID, "purse", purse.String(),
		"amount", money.Format(c.AmountFen), "balance", money.Format(balance), "counter", counter}
	if c.Subsidy != "" {
		attrs = append(attrs, "subsidy", c.Subsidy)
	}
	return attrs
}

// initLoad is the start of a credit's load: the purse it goes onto (a
// subsidy's own, within its window), the balance cap, and INITIALIZE FOR
// LOAD, which changes nothing on the card. ok is false when the credit is
// not loaded on this tap, res.Refused saying why; an error ends the tap.
func (l *Loader) initLoad(t apdu.Transmitter, cr *CardRead, c hostapi.Credit, rep *LoadReport, res *LoadResult) (purse epurse.Purse, init epurse.LoadInit, ok bool, err error) {
	if why := subsidyWaits(c, l.now()); why != "" {
		res.Refused = why
		return purse, init, false, nil
	}
	purse, err = loadPurse(c, cr.Purse)
	if err != nil {
		res.Refused = err.Error()
		return purse, init, false, nil
	}
	res.Purse = purse.String()
	capFen, overCap, why, err := l.loadCap(context.Background(), cr.Info.CardNumber, l.ownCap(), "the card")
	if err != nil || why != "" {
		res.Refused = why
		return purse, init, false, err
	}
	// The cap is on what the purse holds, as the host checks it: a second
	// purse lowers the balance shown, not the money on the card.
	if held := cr.purseOf(rep.Balance); purse == cr.Purse && held+c.AmountFen > capFen {
		res.Refused = overCap(held, c.AmountFen)
		return purse, init, false, nil
	}
	init, err = epurse.InitLoad(t, purse, 1, c.AmountFen, l.TerminalID)
	if _, answered := apdu.SW(err); answered && purse != cr.Purse {
		// The other purse than the one read said no (an ED that wants a
		// PIN, or none at all): INITIALIZE changed nothing, the subsidy
		// waits, and the tap goes on; ending it would refuse the card's
		// every sale until the subsidy expired.
		res.Refused = fmt.Sprintf("the card refused the %v purse's load: %v", purse, err)
		return purse, init, false, nil
	}
	if err != nil {
		return purse, init, false, err
	}
	// Another purse than the one read: INITIALIZE FOR LOAD told its
	// balance, which nothing has changed.
	if held := init.OldBalance; purse != cr.Purse && held+c.AmountFen > capFen {
		res.Refused = fmt.Sprintf("the %v purse: %s", purse, overCap(held, c.AmountFen))
		return purse, init, false, nil
	}
	return purse, init, true, nil
}

// recover settles this card's unfinished loads from its counter: an INIT FOR
// LOAD (which changes nothing on the card) shows the current counter; one
// more than the row's means the load happened and GET TRANSACTION PROVE
// gives its TAC; the same means it did not.
func (l *Loader) recover(ctx context.Context, t apdu.Transmitter, cr *CardRead, rep *LoadReport, after *afterCard) error {
	rows, err := l.Store.Unresolved(ctx, cr.Info.CardNumber)
	if err != nil {
		return err
	}
	for _, row := range rows {
		if row.Kind != offline.KindLoad {
			continue
		}
		// The row's purse: a subsidy may have been loaded onto the
		// other one than the tap reads.
		purse := rowPurse(row, cr.Purse)
		probe, err := epurse.InitLoad(t, purse, 1, row.AmountFen, l.TerminalID)
		if err != nil {
			return err
		}
		rec := Recovery{JournalID: row.ID, CreditID: row.CreditID, AmountFen: row.AmountFen}
		switch probe.OnlineCounter {
		case row.Counter + 1:
			_, tac, err := epurse.GetTransactionProve(t, purse.LoadType(), row.Counter+1)
			if err != nil {
				return fmt.Errorf("proof of load %s: %w", row.ID, err)
			}
			row.State, row.TAC = offline.StateDone, hexUpper(tac[:])
			if err := l.storeDone(ctx, cr, row, withSubsidy(row, "recovered: the card's counter moved")); err != nil {
				return err
			}
			rec.Applied = true
			after.report(func() { l.complete(ctx, row.ID) })
		case row.Counter:
			proof := hostsync.NotAppliedProof{OldBalanceFen: probe.OldBalance, AmountFen: row.AmountFen,
				Random: hexUpper(probe.Random[:]), MAC1: hexUpper(probe.MAC1[:])}
			if err := l.Store.FinishNotApplied(ctx, row.ID, proof.Encode(), withSubsidy(row, "recovered: the card's counter did not move, the load did not happen")); err != nil {
				return err
			}
			// Told at once, on this rare tap, so that the credit can be
			// loaded on it (notOwed); a TAC waits for the sync loop.
			l.complete(ctx, row.ID)
		default:
			// Several loads since (elsewhere): this terminal cannot tell
			// which was ours; the host can, from the TACs it verifies.
			l.finish(ctx, row.ID, offline.StateUnknown, "", withSubsidy(row, fmt.Sprintf("card counter %d, journal counter %d: left to the host", probe.OnlineCounter, row.Counter)))
			continue
		}
		l.logger().Info("unfinished load resolved from the card", "card", redact.CardNumber(row.Card), "journal", row.ID,
			"credit", row.CreditID, "applied", rec.Applied)
		rep.Recovered = append(rep.Recovered, rec)
	}
	if len(rep.Recovered) > 0 {
		b, err := cr.balanceNow(t)
		if err != nil {
			return err
		}
		rep.Balance = b
	}
	return nil
}

// settleInFlight completes a credit authorized on an earlier tap whose
// outcome only the card knows: its proof of the last load (counter = the
// card's counter now) is offered to the host, which verifies the TAC.
func (l *Loader) settleInFlight(ctx context.Context, t apdu.Transmitter, cr *CardRead, c hostapi.Credit, purse epurse.Purse, init epurse.LoadInit, res *LoadResult) error {
	if init.OnlineCounter == 0 {
		res.Refused = "host holds an authorization the card cannot have used"
		return nil
	}
	_, tac, err := epurse.GetTransactionProve(t, purse.LoadType(), init.OnlineCounter)
	if err != nil {
		if _, answered := apdu.SW(err); answered {
			res.Refused = "credit authorized on an earlier tap; the card has no proof of it: " + err.Error()
			return nil
		}
		return err
	}
	hctx, cancel := l.hostCtx(ctx)
	out, err := l.Host.CompleteLoad(hctx, hostapi.LoadCompleteRequest{CreditID: c.ID, Card: cr.Info.CardNumber, Counter: init.OnlineCounter - 1, TAC: hexUpper(tac[:])})
	cancel()
	if err != nil || out.State != hostapi.CreditConsumed {
		res.Refused = fmt.Sprintf("credit authorized on an earlier tap is not settled yet (%v)", err)
		return nil
	}
	res.Applied, res.NewBalance = true, init.OldBalance
	if purse == cr.Purse {
		res.NewBalance = cr.shownAfter(init.OldBalance, 0)
	}
	res.Refused = ""
	return nil
}

// finish records a row's outcome. A failure to write it leaves the row in
// intent, which the next tap resolves from the card just the same: logged,
// not fatal.
func (l *Loader) finish(ctx context.Context, id, state, tac, detail string) {
	if err := l.Store.Finish(ctx, id, state, tac, detail); err != nil {
		l.logger().Error("journal update failed; the next tap resolves it from the card", "journal", id, "state", state, "err", err)
	}
}

// storeDone records load row done, with its receipt when receipts are on.
func (l *Loader) storeDone(ctx context.Context, cr *CardRead, row offline.Row, detail string) error {
	return recordDone(ctx, l.Store, l.Receipt, l.logger(), cr, row, detail)
}

// recordDone records a money row done with its TAC, and queues its receipt
// in the same transaction when receipt is set. A receipt that cannot be made
// (a bug, never the card's doing) must not cost the record of the money: the
// row is recorded without it and the error logged.
func recordDone(ctx context.Context, st *offline.Store, receipt func(*CardRead, offline.Row) (offline.NewReceipt, error),
	log *slog.Logger, cr *CardRead, row offline.Row, detail string) error {
	if receipt != nil {
		rc, err := receipt(cr, row)
		if err == nil {
			return st.FinishPrint(ctx, row.ID, offline.StateDone, row.TAC, detail, rc)
		}
		log.Error("making the receipt of a "+row.Kind+"; recorded without it", "journal", row.ID, "err", err)
	}
	return st.Finish(ctx, row.ID, offline.StateDone, row.TAC, detail)
}

// complete reports a finished load row to the host; when the host cannot
// be reached the row stays owed and the sync loop reports it later. An
// e-purse load done is reported after the card has left (afterCard); a
// load found not to have happened at once, before its credit is loaded
// again (notOwed).
func (l *Loader) complete(ctx context.Context, id string) {
	if l.Host == nil {
		return
	}
	row, err := l.Store.Get(ctx, id)
	if err != nil {
		l.logger().Warn("reading journal row to report", "journal", id, "err", err)
		return
	}
	req, err := hostsync.CompletionRequest(row)
	if err != nil {
		l.logger().Warn("load completion", "journal", id, "err", err)
		return
	}
	hctx, cancel := l.hostCtx(ctx)
	_, err = l.Host.CompleteLoad(hctx, req)
	cancel()
	if err != nil {
		l.logger().Warn("load completion not reported yet; will retry", "journal", id, "err", err)
		return
	}
	if err := l.Store.MarkCompletionReported(ctx, id); err != nil {
		l.logger().Warn("marking completion reported", "journal", id, "err", err)
	}
}

func hexUpper(b []byte) string {
	const digits = "0123456789ABCDEF"
	out := make([]byte, 2*len(b))
	for i, c := range b {
		out[2*i], out[2*i+1] = digits[c>>4], digits[c&0x0F]
	}
	return string(out)
}

func decode4(s string) ([4]byte, error) {
	var out [4]byte
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 4 {
		return out, fmt.Errorf("%q is not 4 bytes of hex", s)
	}
	copy(out[:], b)
	return out, nil
}
