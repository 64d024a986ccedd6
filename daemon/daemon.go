// Package daemon assembles and runs cardd's daemon (`cardd run`) from a
// validated configuration: the readers, the store, the host link, the steps
// of a tap in the mode configured, the printer, the local API, and the
// observers told of each tap. cmd/cardd parses flags, loads the
// configuration and talks to systemd; everything that decides something
// about cards, money or doors is assembled here.
//
// One file per mode says what a tap does there and builds exactly what it
// needs: kiosk.go, pos.go, door.go. observers.go is the list of what is
// told of each tap, in order.
package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cardd/cardd/apdu/epurse"
	"github.com/cardd/cardd/config"
	"github.com/cardd/cardd/localapi"
	"github.com/cardd/cardd/metrics"
	"github.com/cardd/cardd/offline"
	"github.com/cardd/cardd/reader"
	"github.com/cardd/cardd/tap"
)

// Daemon is one `cardd run`: the tap runner and what its mode puts around
// it. Open assembles and starts it, Run reads cards, Close stops it.
type Daemon struct {
	cfg *config.Config
	log *slog.Logger
	// started is when Open began: pulls of an earlier run are older.
	started time.Time

	runner  *tap.Runner
	api     *localapi.Server
	metrics *metrics.Metrics
	store   *offline.Store // nil: this daemon keeps no journal
	link    *hostLink      // nil: no host configured
	// printerState is what the heartbeat tells the host of the printer
	// (a string); the print worker updates it.
	printerState atomic.Value

	// ctx ends with Close, or with the context given to Open: the host
	// link, the printer and the purge stop on it.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // the goroutines the daemon runs itself
	// closers stop what Open started; Close runs them last first.
	closers []func()
}

// A mode is what one of cardd's modes (config.Mode*) puts around the tap
// runner; each is defined in its own file.
type mode struct {
	// journal says whether the mode keeps a journal (offline.Store) with
	// this configuration.
	journal func(*config.Config) bool
	// assemble gives the runner the mode's steps of a tap. The store (when
	// the mode keeps one) and the metrics exist already; the printer is
	// started after it, the observers set and the API served last.
	assemble func(*Daemon) error
}

// modes are the modes by config.Mode; config.Validate admits no other.
var modes = map[string]mode{
	config.ModeKiosk: kioskMode,
	config.ModePOS:   posMode,
	config.ModeDoor:  doorMode,
}

// KeepsJournal says whether `cardd run` with cfg keeps a journal (the
// store at store.path): the mode decides (kiosk.go, pos.go, door.go).
// cardd doctor asks it too, so a missing journal is judged by the same rule.
func KeepsJournal(cfg *config.Config) bool {
	m, ok := modes[cfg.Mode]
	return ok && m.journal(cfg)
}

// Open assembles the daemon of cfg, a configuration config.Load has
// validated, and starts all but the tap loop: the store, the host link, the
// printer and the local API (listening when Open returns). The daemon's
// background work ends with ctx or Close. An error that trying again does
// not cure is a *ConfigError.
func Open(ctx context.Context, cfg *config.Config, log *slog.Logger) (*Daemon, error) {
	m, ok := modes[cfg.Mode]
	if !ok {
		return nil, &ConfigError{Err: fmt.Errorf("mode %q: not a mode of this cardd", cfg.Mode)}
	}
	d := &Daemon{cfg: cfg, log: log, started: time.Now()}
	d.ctx, d.cancel = context.WithCancel(ctx)
	d.printerState.Store("none")
	if err := d.open(m); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// open builds the daemon in the order its parts depend on each other.
func (d *Daemon) open(m mode) error {
	journal := m.journal(d.cfg)
	// Before anything touches the store or the files beside it: a second
	// daemon would settle the first one's rows in flight as interrupted
	// and take over its .api file. Released last, after .api is removed.
	release, err := lockStore(d.cfg, journal, d.log)
	if err != nil {
		return err
	}
	d.onClose(release)
	d.runner = NewRunner(d.cfg, d.log)
	if d.api, err = newAPI(d.cfg); err != nil {
		return err
	}
	if journal {
		if err := d.openStore(); err != nil {
			return err
		}
	}
	d.metrics = metrics.New(d.gauges())
	d.runner.OnAPDU = d.metrics.APDU
	if err := m.assemble(d); err != nil {
		return err
	}
	if d.cfg.Printer.Enabled {
		if err := d.startPrinter(); err != nil {
			return err
		}
	}
	d.api.Healthy = d.Healthy
	d.api.Metrics = d.metrics.Handler()
	d.observe(d.observers())
	stopAPI, err := serveAPI(d.cfg, d.api, d.log)
	if err != nil {
		return err
	}
	d.onClose(stopAPI)
	return nil
}

// Run reads cards until ctx ends (a clean stop: nil) or the reader monitor
// fails for good.
func (d *Daemon) Run(ctx context.Context) error {
	return d.runner.Run(ctx)
}

// Close stops what Open started, the last started first: the API (and its
// runtime file), the printer, the host link, the door's relay (locked), the
// store, and last the store's lock. Call it once Run has returned.
func (d *Daemon) Close() {
	d.cancel()
	d.wg.Wait()
	for i := len(d.closers) - 1; i >= 0; i-- {
		d.closers[i]()
	}
	d.closers = nil
}

// onClose adds f to what Close stops.
func (d *Daemon) onClose(f func()) { d.closers = append(d.closers, f) }

// Healthy is nil while the tap loop turns; /healthz and the systemd
// watchdog ask it.
func (d *Daemon) Healthy() error {
	// A tap is bounded by tap.timeout; a loop stuck far longer is wedged.
	alive := d.runner.Alive()
	if alive.IsZero() {
		return nil // starting
	}
	if since := time.Since(alive); since > 15*time.Second+d.cfg.Tap.Timeout {
		return fmt.Errorf("the tap loop has not turned for %v", since.Round(time.Second))
	}
	return nil
}

// gauges are the metrics read at scrape time: the host's queue with a host
// link, the print queue with a printer, both from the store every mode keeps
// when it has either.
func (d *Daemon) gauges() metrics.Gauges {
	g := metrics.Gauges{StreamClients: d.api.Hub.Clients, Logger: d.log}
	if d.store != nil && d.cfg.Host.URL != "" {
		g.JournalQueue = d.store.QueueDepth
	}
	if d.store != nil && d.cfg.Printer.Enabled {
		g.ReceiptsWaiting = d.store.ReceiptsWaiting
	}
	return g
}

// newLoader is the on-tap load of the card's pending top-ups, link nil
// meaning no host. Without a host there is nothing to load, but a Loader
// still journals the tap, settles the card's unfinished loads of earlier
// taps from its counter, and refuses a card on the deny list or past its
// expiry date (tap.Loader.Apply): the POS relies on that.
func (d *Daemon) newLoader(link *hostLink) *tap.Loader {
	l := &tap.Loader{Store: d.store, TerminalID: d.cfg.TerminalID(), BalanceCap: d.cfg.Load.BalanceCapFen(), Logger: d.log}
	if link != nil {
		// Only so: a nil *sync.Client in the interface would be a host.
		l.Host = link.client
		l.BlockHost = link.client // a denied e-purse is blocked on the chip
		l.CreditsFresh = creditsFresh(link.syncer.PullInterval(), link.syncer.PullWaitTime())
		// A pull of an earlier run says nothing of what was paid while
		// the daemon was down: stale until this run's first pull.
		l.FreshAfter = d.started
	}
	if d.cfg.Printer.Enabled {
		l.Receipt = loadReceipt(d.cfg)
	}
	return l
}

// creditsFresh is how long after the pull's last answer the cached credits
// are trusted (tap.Loader.CreditsFresh): two of the longest gaps between
// answers, one missed turn. A pull the host holds answers at least every
// wait (sooner when something changed), one it does not every interval;
// which one the host does is learnt at run time, so the longer counts.
// Older, a tap asks the host.
func creditsFresh(interval, wait time.Duration) time.Duration {
	return 2 * max(interval, wait)
}

// NewRunner is the tap runner of a validated config with the read alone:
// no mode's steps, no observers. cardd scan and dump use it so; Open adds
// the mode.
func NewRunner(cfg *config.Config, log *slog.Logger) *tap.Runner {
	roles := reader.Roles{Card: regexp.MustCompile(cfg.Reader.CardPattern)} // validated by config
	if cfg.Reader.SAMPattern != "" {
		roles.SAM = regexp.MustCompile(cfg.Reader.SAMPattern)
	}
	purse := epurse.PurseEP
	if cfg.EPurse.Purse == config.PurseED {
		purse = epurse.PurseED
	}
	sfis := make([]byte, len(cfg.EPurse.LogFiles))
	for i, f := range cfg.EPurse.LogFiles {
		sfis[i] = byte(f)
	}
	return &tap.Runner{
		Roles:   roles,
		Timeout: cfg.Tap.Timeout,
		Logger:  log,
		Read: tap.ReadOptions{
			AIDs:       cfg.EPurse.AIDBytes(),
			OwnIssuers: cfg.EPurse.OwnIssuerIDs(),
			Purse:      purse,
			LogFiles:   sfis,
			LogRecords: cfg.EPurse.LogRecords,
			Logger:     log,
		},
	}
}
