package sim

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	gosync "sync"
	"sync/atomic"
	"time"

	"github.com/cardd/cardd/hostapi"
	hostsync "github.com/cardd/cardd/sync"
)

// Mix weighs the actions a terminal takes on each tick: each is chosen
// with probability weight/total. The zero Mix weighs all four alike.
type Mix struct {
	Heartbeat, Pull, Journal, Load int
}

func (m Mix) total() int { return m.Heartbeat + m.Pull + m.Journal + m.Load }

// Config is a fleet run. Hosts, Terminals and, when Mix.Load is above 0,
// Cards are required; every other zero field takes its default.
type Config struct {
	// Hosts are the base URLs of the host instances, like
	// "https://10.0.0.5:8710"; requests are spread over them.
	Hosts []string
	// Random picks the instance of each request at random; false takes
	// them in turn (round-robin).
	Random bool
	// Transport carries the requests; nil is hostsync.NewTransport(nil)
	// (the system's roots for https). For a host with its own CA give
	// hostsync.NewTransport with that CA, as cardd does.
	Transport http.RoundTripper
	// Terminals are the identities that run, one goroutine each.
	Terminals []Terminal
	// Cards are the cards the terminals load; each tap takes one at random.
	Cards []*Card
	// SharedCards lets several terminals hold a card's INIT FOR LOAD at
	// once (a card relayed to, or cloned into, several readers), so that
	// they race for its credits at the host. False keeps a card in one
	// terminal's field for a whole tap, as a real card is.
	SharedCards bool
	// Rate is each terminal's actions per second; default 1.
	Rate float64
	// Mix weighs the actions.
	Mix Mix
	// JournalBatch is the rows of one journal upload; default 20.
	JournalBatch int
	// Duration is how long the terminals act; default 10 s.
	Duration time.Duration
	// Stop, when not nil, ends the terminals' acting once it is closed, if
	// Duration has not ended it first: a run until some work is done (every
	// credit loaded, say), with Duration only its bound.
	Stop <-chan struct{}
	// Timeout bounds each request; default 10 s.
	Timeout time.Duration
	// Drain bounds the time after Duration in which load completions that
	// found no instance are sent again; default 10 s.
	Drain time.Duration
	// Capture records up to this many signed requests (Report.Captured),
	// for Replay.
	Capture int
	// Seed seeds the terminals' choices; 0 takes a random seed.
	Seed uint64
	// Backlog, when its Rows is above 0, is a terminal draining a week's
	// journal beside the fleet (Report.Backlog).
	Backlog Backlog
}

// ErrConfig is wrapped by every refusal of a Config.
var ErrConfig = errors.New("fleet configuration")

func (c *Config) defaults() error {
	switch {
	case len(c.Hosts) == 0:
		return fmt.Errorf("%w: no host", ErrConfig)
	case len(c.Terminals) == 0:
		return fmt.Errorf("%w: no terminal", ErrConfig)
	case c.Rate < 0 || c.Duration < 0 || c.Timeout < 0 || c.Drain < 0 || c.JournalBatch < 0 || c.Capture < 0:
		return fmt.Errorf("%w: a negative rate, duration, timeout, drain, batch or capture", ErrConfig)
	case c.Backlog.Rows < 0 || c.Backlog.BatchSize < 0:
		return fmt.Errorf("%w: a negative backlog", ErrConfig)
	case c.Mix.Heartbeat < 0 || c.Mix.Pull < 0 || c.Mix.Journal < 0 || c.Mix.Load < 0:
		return fmt.Errorf("%w: a negative weight in the mix", ErrConfig)
	}
	if c.Mix.total() == 0 {
		c.Mix = Mix{1, 1, 1, 1}
	}
	if c.Mix.Load > 0 && len(c.Cards) == 0 {
		return fmt.Errorf("%w: loads in the mix but no card", ErrConfig)
	}
	c.Rate = or(c.Rate, 1)
	c.JournalBatch = or(c.JournalBatch, 20)
	c.Duration = or(c.Duration, 10*time.Second)
	c.Timeout = or(c.Timeout, 10*time.Second)
	c.Drain = or(c.Drain, 10*time.Second)
	if c.Seed == 0 {
		c.Seed = rand.Uint64()
	}
	return nil
}

func or[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// fleet is what the terminals of one run share.
type fleet struct {
	cfg  Config
	rec  *recorder
	next atomic.Uint64 // round-robin position
}

// Run drives the fleet for cfg.Duration (or until cfg.Stop), then sends again for at most
// cfg.Drain the load completions no instance took, and reports. It ends
// early when ctx does. A load whose completion is still unsent at the end
// is counted in Report.Loads.Unsettled.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	tr := cfg.Transport
	if tr == nil {
		t := hostsync.NewTransport(nil)
		t.MaxIdleConnsPerHost = 256 // thousands of terminals share few instances
		tr = t
	}
	capt := &capture{next: tr, max: cfg.Capture}
	hc := &http.Client{Transport: capt, Timeout: cfg.Timeout}
	f := &fleet{cfg: cfg, rec: newRecorder()}
	terms := make([]*terminal, len(cfg.Terminals))
	for i, id := range cfg.Terminals {
		t, err := f.newTerminal(id, hc, uint64(i))
		if err != nil {
			return nil, err
		}
		terms[i] = t
	}
	var backlog *terminal
	if cfg.Backlog.Rows > 0 {
		t, err := f.newTerminal(cfg.Backlog.Terminal, hc, uint64(len(terms)))
		if err != nil {
			return nil, err
		}
		backlog = t
	}
	start := time.Now()
	acting, stop := context.WithTimeout(ctx, cfg.Duration)
	defer stop()
	if cfg.Stop != nil {
		go func() {
			select {
			case <-cfg.Stop:
				stop()
			case <-acting.Done():
			}
		}()
	}
	var backlogRep *BacklogReport
	backlogDone := make(chan struct{})
	go func() {
		defer close(backlogDone)
		if backlog != nil {
			backlogRep = backlog.drainBacklog(ctx, acting, cfg.Backlog)
		}
	}()
	each(terms, func(t *terminal) { t.run(ctx, acting) })
	<-backlogDone
	draining, stopDrain := context.WithTimeout(ctx, cfg.Drain)
	defer stopDrain()
	each(terms, func(t *terminal) { t.drain(draining) })
	rep := f.rec.report(time.Since(start))
	rep.Terminals, rep.Cards, rep.Hosts = len(cfg.Terminals), len(cfg.Cards), len(cfg.Hosts)
	for _, t := range terms {
		rep.Loads.Unsettled += int64(len(t.outbox))
	}
	rep.Captured = capt.got
	rep.Backlog = backlogRep
	return rep, ctx.Err()
}

// each runs fn for every terminal at once and waits for them all.
func each(terms []*terminal, fn func(t *terminal)) {
	var wg gosync.WaitGroup
	for _, t := range terms {
		wg.Go(func() { fn(t) })
	}
	wg.Wait()
}

// terminal is one identity of the fleet as it runs.
type terminal struct {
	f       *fleet
	id      [6]byte
	clients []*hostsync.Client // one per instance, in Config.Hosts order
	rng     *rand.Rand
	cursor  string // of its pulls
	seq     int64  // of its journal rows
	outbox  []hostapi.LoadCompleteRequest
	// cache holds, per card the terminal has met, the pending credits it
	// knows of: from the card's credits, an authorization's answer and
	// the pulls. It goes stale as other terminals load them, as the
	// daemon's does, and the host must refuse what it offers then.
	cache map[string][]hostapi.Credit
}

func (f *fleet) newTerminal(id Terminal, hc *http.Client, n uint64) (*terminal, error) {
	t := &terminal{f: f, cache: map[string][]hostapi.Credit{}, rng: rand.New(rand.NewPCG(f.cfg.Seed, n))}
	if b, err := hex.DecodeString(id.ID); err != nil || len(b) != len(t.id) {
		return nil, fmt.Errorf("%w: terminal id %q: want 12 hex digits", ErrConfig, id.ID)
	} else {
		copy(t.id[:], b)
	}
	for _, h := range f.cfg.Hosts {
		t.clients = append(t.clients, &hostsync.Client{BaseURL: h, TerminalID: id.ID, Secret: id.Secret, HTTP: hc})
	}
	return t, nil
}

// run acts once per tick until acting ends. Requests run under ctx, so
// that the end of acting cuts no request short: each is bounded by the
// client's timeout.
func (t *terminal) run(ctx, acting context.Context) {
	every := time.Duration(float64(time.Second) / t.f.cfg.Rate)
	// A random phase, so that thousands of terminals do not tick at once.
	first := time.NewTimer(time.Duration(t.rng.Int64N(int64(every) + 1)))
	defer first.Stop()
	select {
	case <-acting.Done():
		return
	case <-first.C:
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		t.flush(ctx)
		t.act(ctx, acting)
		select {
		case <-acting.Done():
			return
		case <-tick.C:
		}
	}
}

// act takes one action, chosen by the mix.
func (t *terminal) act(ctx, acting context.Context) {
	m := t.f.cfg.Mix
	n := t.rng.IntN(m.total())
	switch {
	case n < m.Heartbeat:
		t.heartbeat(ctx)
	case n < m.Heartbeat+m.Pull:
		t.pull(ctx)
	case n < m.Heartbeat+m.Pull+m.Journal:
		t.journal(ctx)
	default:
		t.tap(ctx, acting)
	}
}

// call sends one request of kind through the instance the fleet picks;
// when that instance does not answer, or answers 5xx (its database is
// down, say), it is sent again (signed anew) to the next, at most once per
// instance.
func (t *terminal) call(ctx context.Context, kind string, fn func(ctx context.Context, c *hostsync.Client) error) error {
	n := len(t.clients)
	first := int(t.f.next.Add(1)) % n
	if t.f.cfg.Random {
		first = t.rng.IntN(n)
	}
	var err error
	for i := range n {
		idx := (first + i) % n
		start := time.Now()
		err = fn(context.WithValue(ctx, hostKey{}, idx), t.clients[idx])
		t.f.rec.request(kind, time.Since(start), err)
		if !retryable(err) && i > 0 {
			t.f.rec.failedOver(kind)
		}
		if !retryable(err) || ctx.Err() != nil {
			return err
		}
	}
	return err
}

// retryable says whether err leaves the request's fate to another try:
// no answer, or a 5xx, which the host answers when it could not decide.
// A 4xx is the host's decision and stands.
func retryable(err error) bool {
	var he *hostsync.HostError
	return errors.Is(err, hostsync.ErrUnreachable) || errors.As(err, &he) && he.Status >= 500
}

func (t *terminal) heartbeat(ctx context.Context) {
	req := hostapi.HeartbeatRequest{Version: "cardfleet", QueueDepth: len(t.outbox), Readers: []string{"fleet simulator"}}
	_ = t.call(ctx, KindHeartbeat, func(ctx context.Context, c *hostsync.Client) error {
		_, err := c.Heartbeat(ctx, req)
		return err
	})
}

// pull asks for the changes since the terminal's cursor, applies them to
// its cache and moves the cursor on. Only cards the terminal has met are
// cached, which keeps ten thousand terminals from each holding every
// credit; a tap on another card asks for its credits.
func (t *terminal) pull(ctx context.Context) {
	_ = t.call(ctx, KindPull, func(ctx context.Context, c *hostsync.Client) error {
		r, err := c.Pull(ctx, t.cursor, 0, 0)
		if err != nil {
			return err
		}
		t.cursor = r.NextCursor
		for _, cr := range r.Credits {
			list, met := t.cache[cr.Card]
			switch {
			case cr.State != hostapi.CreditPending:
				t.drop(cr.Card, cr.ID)
			case met && !slices.ContainsFunc(list, func(x hostapi.Credit) bool { return x.ID == cr.ID }):
				t.cache[cr.Card] = append(list, cr)
			}
		}
		return nil
	})
}

// journal uploads a batch of purchase rows such as a canteen POS writes.
func (t *terminal) journal(ctx context.Context) {
	rows := t.rows(t.f.cfg.JournalBatch)
	_ = t.call(ctx, KindJournal, func(ctx context.Context, c *hostsync.Client) error {
		_, err := upload(ctx, c, rows)
		return err
	})
}

// upload sends a batch of rows and returns how many the host acked; a
// refused row makes the error, with the first refusal's code, so that the
// report counts it.
func upload(ctx context.Context, c *hostsync.Client, rows []hostapi.JournalRow) (int, error) {
	r, err := c.UploadJournal(ctx, rows)
	if err == nil && len(r.Refused) > 0 {
		f := r.Refused[0]
		err = &hostsync.HostError{Status: f.Status, Code: f.Code, Reason: f.Reason}
	}
	return len(r.Acked), err
}

// rows makes the terminal's next n journal rows: done purchases on the
// fleet's cards (or made-up numbers), ids TERMINAL-SEQ.
func (t *terminal) rows(n int) []hostapi.JournalRow {
	rows := make([]hostapi.JournalRow, n)
	now := time.Now().Format(time.RFC3339)
	for i := range rows {
		t.seq++
		card := fmt.Sprintf("39%014d", t.rng.Int64N(1e14))
		if cs := t.f.cfg.Cards; len(cs) > 0 {
			card = cs[t.rng.IntN(len(cs))].Number()
		}
		var tac [4]byte
		for j := range tac {
			tac[j] = byte(t.rng.UintN(256))
		}
		rows[i] = hostapi.JournalRow{
			ID: fmt.Sprintf("%X-%d", t.id, t.seq), Kind: "purchase", State: "done", Card: card, Purse: "EP",
			Counter: uint16(t.seq), BalanceFen: 100000, AmountFen: 100 + t.rng.Int64N(2000),
			TAC: fmt.Sprintf("%X", tac), TermSerial: uint32(t.seq), Time: now,
		}
	}
	return rows
}
