package daemon

import (
	"github.com/cardd/cardd/localapi"
	"github.com/cardd/cardd/metrics"
	"github.com/cardd/cardd/reader"
	"github.com/cardd/cardd/tap"
)

// observer is told what the tap runner sees: each reader event, a tap's
// balance as soon as it is known (Result.Read is then a snapshot), the
// moment the card may leave (a snapshot of the tap so far, not its final
// outcome), and each tap once it is done. It is called on the runner's goroutine and must not
// block for long: the next tap waits for it. A panic is not caught; it
// stops the daemon (systemd restarts it), as a panicking hook always did.
type observer interface {
	ReaderEvent(reader.Event)
	Balance(tap.Result)
	Leave(tap.Result)
	Tap(tap.Result)
}

// observers is the daemon's list of observers, in the order they are told
// of each tap. Before any of them, the runner itself writes the tap's log
// line (tap.Runner, one line per tap, the card number masked).
//
//  1. syncKick: with a host link, the tap's journal rows leave for the host
//     at once rather than at the next upload turn.
//  2. apiEvents: the local API's event stream, which the kiosk page and the
//     POS app read (card.present, card.balance, card.leave, card.tap,
//     reader), and the
//     last card read, for the kiosk page's balance receipt.
//  3. tapMetrics: /metrics' taps by outcome, their duration, and top-ups
//     by outcome.
//
// APDU round trips go to the metrics directly (tap.Runner.OnAPDU): they are
// not taps.
func (d *Daemon) observers() fanOut {
	var obs fanOut
	if d.link != nil {
		obs = append(obs, syncKick{kick: d.link.syncer.Kick})
	}
	return append(obs, apiEvents{api: d.api, roles: d.runner.Roles}, tapMetrics{m: d.metrics})
}

// observe makes obs the runner's observers: the one place the runner's
// hooks are set.
func (d *Daemon) observe(obs fanOut) {
	d.runner.OnEvent, d.runner.OnBalance, d.runner.OnLeave, d.runner.OnTap = obs.ReaderEvent, obs.Balance, obs.Leave, obs.Tap
}

// fanOut tells each of its observers in turn, the next once the one before
// has returned.
type fanOut []observer

// ReaderEvent tells each observer of ev.
func (f fanOut) ReaderEvent(ev reader.Event) {
	for _, o := range f {
		o.ReaderEvent(ev)
	}
}

// Balance tells each observer of a tap's balance.
func (f fanOut) Balance(res tap.Result) {
	for _, o := range f {
		o.Balance(res)
	}
}

// Leave tells each observer that a tap's card may leave.
func (f fanOut) Leave(res tap.Result) {
	for _, o := range f {
		o.Leave(res)
	}
}

// Tap tells each observer of a tap done.
func (f fanOut) Tap(res tap.Result) {
	for _, o := range f {
		o.Tap(res)
	}
}

// ignore is an observer's part for what it is not told of.
type ignore struct{}

func (ignore) ReaderEvent(reader.Event) {}
func (ignore) Balance(tap.Result)       {}
func (ignore) Leave(tap.Result)         {}
func (ignore) Tap(tap.Result)           {}

// syncKick wakes the host link's upload loop after each tap.
type syncKick struct {
	ignore
	kick func()
}

func (s syncKick) Tap(tap.Result) { s.kick() }

// apiEvents feeds the local API: its readers' state, and its event stream.
type apiEvents struct {
	api   *localapi.Server
	roles reader.Roles
}

func (a apiEvents) ReaderEvent(ev reader.Event) {
	a.api.ReaderEvent(ev, a.roles.Of(ev.Reader).String())
}

func (a apiEvents) Balance(res tap.Result) { a.api.Balance(res) }
func (a apiEvents) Leave(res tap.Result)   { a.api.Leave(res) }
func (a apiEvents) Tap(res tap.Result)     { a.api.Tap(res) }

// tapMetrics counts taps and the top-ups they met.
type tapMetrics struct {
	ignore
	m *metrics.Metrics
}

func (t tapMetrics) Tap(res tap.Result) {
	t.m.Tap(string(res.Outcome()), res.ToDone)
	if res.Load == nil {
		return
	}
	for _, l := range res.Load.Loads {
		if l.Applied {
			t.m.Load("applied")
		} else {
			t.m.Load("refused")
		}
	}
	for _, r := range res.Load.Recovered {
		if r.Applied {
			t.m.Load("recovered_applied")
		} else {
			t.m.Load("recovered_not_applied")
		}
	}
}
