package sync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	gosync "sync"
	"time"

	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/internal/backoff"
	"github.com/cardd/cardd/offline"
)

// Syncer runs the loops that keep a terminal and its host in step: pull
// credits and deny-list changes, upload the journal and owed load
// completions, and send heartbeats. Each loop backs off (capped, jittered)
// while the host is unreachable and logs the trouble at most once a minute.
type Syncer struct {
	Client *Client
	Store  *offline.Store
	Logger *slog.Logger // nil: slog.Default()

	PullEvery time.Duration // zero: 30 s
	// PullWait is how long the host may hold a pull while nothing is new
	// (hostapi.PullRequest.WaitMS); zero: DefaultPullWait, below zero:
	// plain polls. After a host that holds, the pull loop asks again at
	// once rather than after PullEvery, so a credit paid at the host
	// reaches the cache within moments; a host that does not hold keeps
	// the loop at PullEvery.
	PullWait       time.Duration
	UploadEvery    time.Duration // zero: 5 s
	HeartbeatEvery time.Duration // zero: 60 s
	BatchSize      int           // journal rows per upload; zero: 500
	MaxBackoff     time.Duration // zero: 2 min
	// Heartbeat fills the heartbeat body; nil sends the queue depth only.
	Heartbeat func() hostapi.HeartbeatRequest
	// OnAccessList, when set (door mode), turns on the access-list pull:
	// a new list is stored, then handed to it to be put in force. It
	// returns an error for a list it refuses; the list is then not stored
	// and asked again at the next pull.
	OnAccessList func(version string, body []byte) error

	cancel context.CancelFunc
	wg     gosync.WaitGroup
	kick   chan struct{}
	// noWaitUntil is when the pull asks the host to hold again after it
	// refused wait_ms (an older host of this project); the pull loop's own.
	noWaitUntil time.Time
	// pulled says the pull loop has had an answer since Start: the first
	// pull is plain, so that a fresh cache is known at once (a held one
	// with nothing new would answer only after its wait).
	pulled bool
}

// Start launches the loops; Stop ends them.
func (s *Syncer) Start(ctx context.Context) {
	ctx, s.cancel = context.WithCancel(ctx)
	s.kick = make(chan struct{}, 1)
	s.pulled = false
	for _, loop := range []struct {
		name  string
		every time.Duration
		def   time.Duration
		run   func(context.Context) (more bool, err error)
		kick  bool
	}{
		{"pull", s.PullEvery, defaultPullEvery, s.pullOnce, false},
		{"upload", s.UploadEvery, 5 * time.Second, s.uploadOnce, true},
		{"heartbeat", s.HeartbeatEvery, 60 * time.Second, s.heartbeatOnce, false},
		{"access", s.PullEvery, defaultPullEvery, s.accessOnce, false},
	} {
		if loop.name == "access" && s.OnAccessList == nil {
			continue
		}
		every := loop.every
		if every <= 0 {
			every = loop.def
		}
		var kick <-chan struct{}
		if loop.kick {
			kick = s.kick
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.loop(ctx, loop.name, every, kick, loop.run)
		}()
	}
}

// Stop ends the loops and waits for them; an upload in flight is abandoned
// (its rows stay unacked and go again next time: uploads are idempotent).
func (s *Syncer) Stop() {
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
}

// PullInterval is how often the pull loop runs when the host answers:
// PullEvery, or its default. A tap judges the age of the cached credits by
// it (tap.Loader.CreditsFresh).
func (s *Syncer) PullInterval() time.Duration {
	if s.PullEvery <= 0 {
		return defaultPullEvery
	}
	return s.PullEvery
}

// defaultPullEvery is the pull loop's interval when PullEvery is zero.
const defaultPullEvery = 30 * time.Second

// DefaultPullWait is how long a pull asks the host to hold it when
// PullWait is zero: the host's own cap (host.MaxPullWait) is as long.
const DefaultPullWait = 25 * time.Second

// minHeldGap is the least time between two held pulls that came back
// empty: a host that says it holds but answers at once (or one shutting
// down) is asked again after it, not in a tight loop.
const minHeldGap = time.Second

// retryWaitAfter is how long the pull polls plainly after the host refused
// wait_ms, before it asks the host to hold again (it may be upgraded).
const retryWaitAfter = time.Hour

// PullWaitTime is how long each pull asks the host to hold it, zero when
// it polls plainly. A held pull answers at least so often.
func (s *Syncer) PullWaitTime() time.Duration {
	switch {
	case s.PullWait < 0:
		return 0
	case s.PullWait == 0:
		return DefaultPullWait
	}
	return s.PullWait
}

// Kick asks the upload loop to run now, after a tap wrote the journal.
func (s *Syncer) Kick() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func (s *Syncer) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// loop runs once every `every`, at once again while there is more to do,
// and with a doubling, jittered backoff after failures.
func (s *Syncer) loop(ctx context.Context, name string, every time.Duration, kick <-chan struct{}, once func(context.Context) (bool, error)) {
	maxBackoff := s.MaxBackoff
	if maxBackoff <= 0 {
		maxBackoff = 2 * time.Minute
	}
	retry := backoff.Backoff{Base: time.Second, Max: maxBackoff}
	var lastLog time.Time
	failing := false
	for {
		more, err := once(ctx)
		wait := every
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			wait = retry.Next()
			if time.Since(lastLog) > time.Minute {
				s.logger().Warn("host sync failing; retrying", "loop", name, "err", err, "retry_in", wait.Round(time.Millisecond))
				lastLog = time.Now()
			}
			failing = true
		default:
			if failing {
				s.logger().Info("host sync recovered", "loop", name)
				failing = false
			}
			retry.Reset()
			if more {
				wait = 0
			}
		}
		if wait == 0 {
			continue
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-kick:
			t.Stop()
		}
	}
}

// CacheCredit is a pending credit the host sent (in a pull, or listed in a
// load's authorization) as the terminal's credits cache keeps it. A
// creation time that does not parse is zero: the cache's own now.
func CacheCredit(c hostapi.Credit) offline.Credit {
	created, _ := time.Parse(time.RFC3339, c.Created)
	// A window the host sent unreadable is kept as none: the host refuses
	// the credit outside its window whatever the terminal tries.
	notBefore, _ := time.Parse(time.RFC3339, c.NotBefore)
	expires, _ := time.Parse(time.RFC3339, c.Expires)
	return offline.Credit{ID: c.ID, Card: c.Card, AmountFen: c.AmountFen, Note: c.Note, Created: created,
		Kind: c.Kind, Subsidy: c.Subsidy, Purse: c.Purse, NotBefore: notBefore, Expires: expires}
}

// pullOnce applies one page of changes and its cursor in one transaction.
func (s *Syncer) pullOnce(ctx context.Context) (bool, error) {
	cursor, err := s.Store.Cursor(ctx, offline.PullCursor)
	if err != nil {
		return false, err
	}
	wait := s.PullWaitTime()
	if !s.pulled || time.Now().Before(s.noWaitUntil) {
		wait = 0
	}
	start := time.Now()
	r, err := s.Client.Pull(ctx, cursor, 0, wait)
	if wait > 0 && refusedWait(err) {
		// An older host of this project refuses the field it does not
		// know: poll plainly, at the interval, and try again later.
		s.logger().Info("the host does not hold pulls; polling at the interval", "interval", s.PullInterval(), "err", err)
		s.noWaitUntil = time.Now().Add(retryWaitAfter)
		wait = 0
		r, err = s.Client.Pull(ctx, cursor, 0, 0)
	}
	if err != nil {
		return false, err
	}
	var put []offline.Credit
	var drop []string
	for _, c := range r.Credits {
		if c.State != hostapi.CreditPending {
			drop = append(drop, c.ID)
			continue
		}
		put = append(put, CacheCredit(c))
	}
	deny := make([]offline.DenyChange, 0, len(r.Deny))
	for _, d := range r.Deny {
		deny = append(deny, offline.DenyChange{Card: d.Card, Denied: d.Denied, Reason: d.Reason})
	}
	classes := make([]offline.ClassChange, 0, len(r.Classes))
	for _, c := range r.Classes {
		classes = append(classes, offline.ClassChange{Card: c.Card, Class: c.Class})
	}
	closes := make([]offline.CloseChange, 0, len(r.Closes))
	for _, c := range r.Closes {
		closes = append(closes, offline.CloseChange{Card: c.Card, ID: c.ID})
	}
	page := offline.PullPage{Put: put, Drop: drop, Deny: deny, Classes: classes, Closes: closes, Cursor: r.NextCursor}
	pageProducts(&page, r)
	if err := s.Store.ApplyPage(ctx, page); err != nil {
		return false, err
	}
	if len(classes) > 0 {
		s.logger().Info("identity classes updated", "changes", len(classes))
	}
	if len(deny) > 0 {
		// A lost card is refused from here on, offline too: worth a line
		// for the operator who just reported it.
		s.logger().Info("deny list updated", "changes", len(deny))
	}
	if !s.pulled {
		s.pulled = true
		// Now the held pulls, if the host holds.
		return s.PullWaitTime() > 0 || r.More, nil
	}
	if wait <= 0 || !r.Held {
		// A host that ignores wait_ms answered at once: keep the interval.
		return r.More, nil
	}
	if len(r.Credits)+len(r.Deny)+len(r.Classes)+len(r.CardProducts)+len(r.Closes) == 0 {
		// Empty and sooner than held: no tight loop on such a host.
		t := time.NewTimer(minHeldGap - time.Since(start))
		defer t.Stop()
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-t.C:
		}
	}
	return true, nil
}

// refusedWait reports whether err is a host's refusal of the wait_ms field.
func refusedWait(err error) bool {
	var he *HostError
	return errors.As(err, &he) && he.Code == hostapi.CodeBadRequest && strings.Contains(he.Reason, "wait_ms")
}

// accessOnce pulls the door access list when the host's version differs
// from the stored one: checked by OnAccessList, then stored.
func (s *Syncer) accessOnce(ctx context.Context) (bool, error) {
	version, _, err := s.Store.AccessList(ctx)
	if err != nil {
		return false, err
	}
	r, err := s.Client.Access(ctx, version)
	if err != nil || !r.Changed {
		return false, err
	}
	if r.Version == "" || len(r.List) == 0 {
		// The host has no list (any more): no card is on it.
		r.List = []byte("{}")
	}
	if err := s.OnAccessList(r.Version, r.List); err != nil {
		return false, fmt.Errorf("access list %s from the host: %w", r.Version, err)
	}
	if err := s.Store.SaveAccessList(ctx, r.Version, r.List); err != nil {
		return false, err
	}
	s.logger().Info("access list updated", "version", r.Version)
	return false, nil
}

// uploadOnce reports owed load completions first (they release or consume
// money at the host), then owed voids, then one batch of journal rows.
func (s *Syncer) uploadOnce(ctx context.Context) (bool, error) {
	batch := s.BatchSize
	if batch <= 0 {
		batch = 500
	}
	owed, err := s.Store.CompletionsOwed(ctx, batch)
	if err != nil {
		return false, err
	}
	// A completion the host could not take now (5xx, 401, 429) stays owed
	// and is retried after the backoff; it does not hold back the others
	// or the journal.
	var later error
	for _, row := range owed {
		req, err := CompletionRequest(row)
		if err != nil {
			s.logger().Error("cannot report load completion", "journal", row.ID, "err", err)
			continue
		}
		_, err = s.Client.CompleteLoad(ctx, req)
		var he *HostError
		switch {
		case err == nil, HasCode(err, hostapi.CodeCreditConsumed):
			// Consumed already (the card's proof reached the host through
			// another terminal): nothing more is owed.
		case errors.As(err, &he) && he.Status >= 400 && he.Status < 500 &&
			he.Status != http.StatusUnauthorized && he.Status != http.StatusTooManyRequests:
			// The host verified and refused; retrying the same proof cannot
			// change its answer. Keep it visible, stop owing it. (A 5xx,
			// a 401 from a skewed clock or a 429 is the host's trouble
			// or the link's, not an answer: the completion stays owed.)
			s.logger().Error("host refused a load completion", "journal", row.ID, "credit", row.CreditID, "err", err)
		case errors.As(err, &he):
			later = err
			continue
		default:
			return false, err
		}
		if err := s.Store.MarkCompletionReported(ctx, row.ID); err != nil {
			return false, err
		}
	}
	// A void carries its sale: it does not wait for the journal's turn.
	if err := s.sendVoids(ctx, batch); err != nil {
		later = errors.Join(later, err)
	}
	// Closed shifts (班结) go up with the journal; one the host cannot
	// take now stays owed and does not hold back the rows.
	if err := s.uploadShifts(ctx); err != nil {
		later = errors.Join(later, err)
	}
	rows, err := s.Store.Unacked(ctx, batch)
	if err != nil || len(rows) == 0 {
		return false, errors.Join(err, later)
	}
	up := make([]hostapi.JournalRow, len(rows))
	for i, r := range rows {
		up[i] = r.HostRow()
	}
	resp, err := s.Client.UploadJournal(ctx, up)
	if refusesPSAMTerminal(err) {
		// A host older than the field refuses the whole batch for it
		// (strict bodies): the rows go up as they did before it, and
		// the host verifies no purchase TAC.
		for i := range up {
			up[i].PSAMTerminal = ""
		}
		resp, err = s.Client.UploadJournal(ctx, up)
	}
	if err != nil {
		return false, err
	}
	if err := s.Store.Ack(ctx, resp.Acked); err != nil {
		return false, err
	}
	if err := s.hostRefused(ctx, up, resp.Refused); err != nil {
		return false, err
	}
	return len(rows) == batch && later == nil, later
}

// refusesPSAMTerminal says whether err is a host's refusal of a journal
// batch for its rows' psam_terminal, a field it does not know.
func refusesPSAMTerminal(err error) bool {
	var he *HostError
	return errors.As(err, &he) && he.Code == hostapi.CodeBadRequest && strings.Contains(he.Reason, `unknown field "psam_terminal"`)
}

// hostRefused records the rows the host refused, so they are kept but not
// sent again unchanged (the answer would not change: a malformed row, or a
// settled row the host holds otherwise), and logs each once as an error: a
// terminal's record of money the host will not take needs a person. A row
// is named by its index in the batch, checked against its id.
func (s *Syncer) hostRefused(ctx context.Context, up []hostapi.JournalRow, refused []hostapi.JournalRefusal) error {
	if len(refused) == 0 {
		return nil
	}
	marks := make([]offline.HostRefusal, 0, len(refused))
	for _, rf := range refused {
		if rf.Index < 0 || rf.Index >= len(up) || up[rf.Index].ID != rf.ID {
			s.logger().Warn("host refused a journal row the batch does not have at that place; it stays owed", "index", rf.Index, "id", rf.ID, "code", rf.Code)
			continue
		}
		marks = append(marks, offline.HostRefusal{ID: rf.ID, Reason: rf.Code + ": " + rf.Reason})
	}
	marked, err := s.Store.RefusedByHost(ctx, marks)
	for _, m := range marked {
		s.logger().Error("host refused a journal row; kept here, not sent again unless it changes", "journal", m.ID, "reason", m.Reason)
	}
	return err
}

func (s *Syncer) heartbeatOnce(ctx context.Context) (bool, error) {
	var req hostapi.HeartbeatRequest
	if s.Heartbeat != nil {
		req = s.Heartbeat()
	}
	// No heartbeat rather than a depth of 0 it could not read: the host
	// takes an empty queue as proof that this terminal holds no row it
	// lacks (a lost card's replacement settles early on it).
	depth, err := s.Store.QueueDepth(ctx)
	if err != nil {
		return false, fmt.Errorf("heartbeat: %w", err)
	}
	req.QueueDepth = depth
	_, err = s.Client.Heartbeat(ctx, req)
	return false, err
}
