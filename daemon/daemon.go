// Package daemon assembles and runs cardd's daemon (`cardd run`) from a
// validated configuration: the readers, the store, the host link, the tap's
// steps of the mode (kiosk, POS, door), the printer and the local API.
// cmd/cardd parses flags and loads the configuration; everything that
// decides something about cards, money or doors is assembled here.
package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"sync/atomic"
	"time"

	"github.com/cardd/cardd/apdu/epurse"
	"github.com/cardd/cardd/config"
	"github.com/cardd/cardd/localapi"
	"github.com/cardd/cardd/metrics"
	"github.com/cardd/cardd/money"
	"github.com/cardd/cardd/offline"
	"github.com/cardd/cardd/printer/spool"
	"github.com/cardd/cardd/reader"
	"github.com/cardd/cardd/redact"
	"github.com/cardd/cardd/sdnotify"
	"github.com/cardd/cardd/tap"
)

// Run is `cardd run`: it assembles the daemon of cfg, a configuration
// config.Load has validated, and reads cards until ctx ends.
func Run(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	// config.Validate (in config.Load) has checked door.*, as for cardd
	// config and cardd doctor.
	doorMode := cfg.Mode == config.ModeDoor
	pos := cfg.Mode == config.ModePOS
	storeUsed := cfg.Host.URL != "" || cfg.Printer.Enabled || pos || doorMode
	// Before anything touches the store or the files beside it: a second
	// daemon would settle the first one's rows in flight as interrupted
	// and take over its .api file. Released last, after .api is removed.
	releaseStore, err := lockStore(cfg, storeUsed, log)
	if err != nil {
		return err
	}
	defer releaseStore()
	runner := NewRunner(cfg, log)
	api, err := newAPI(cfg)
	if err != nil {
		return err
	}
	var gauges metrics.Gauges
	gauges.StreamClients = api.Hub.Clients
	gauges.Logger = log
	var mets *metrics.Metrics // made once the store is known, below
	// What the heartbeat tells the host of the printer; the print worker
	// updates it.
	var printerState atomic.Value
	printerState.Store("none")
	if pos {
		// The till exists before the API serves, so a sale can be armed
		// as soon as the API answers.
		api.Till = &tap.Till{MaxPurchase: cfg.POS.MaxPurchaseFen()}
	}
	if storeUsed {
		store, err := openStore(ctx, cfg, log)
		if err != nil {
			return err
		}
		defer func() {
			if err := store.Close(); err != nil {
				log.Error("closing the journal", "err", err)
			}
		}()
		api.Journal = store
		if cfg.Host.URL != "" {
			gauges.JournalQueue = store.QueueDepth
		}
		if cfg.Printer.Enabled {
			gauges.ReceiptsWaiting = store.ReceiptsWaiting
		}
		mets = metrics.New(gauges)
		var onAccess func(string, []byte) error
		if doorMode {
			d, apply, stop, err := newDoor(ctx, cfg, store, log)
			if err != nil {
				return err
			}
			defer stop()
			runner.Door, onAccess = d, apply
		}
		if cfg.Host.URL != "" {
			api.QueueDepth = store.QueueDepth
			stop, err := startHostLink(ctx, cfg, log, runner, store, mets, func() string { return printerState.Load().(string) }, onAccess)
			if err != nil {
				return err
			}
			defer stop()
			if doorMode && !cfg.Door.LoadCredits {
				runner.Loader = nil
			}
		}
		if pos {
			if runner.Loader == nil {
				// No host: no credits to load, but the deny list and the
				// expiry date are still checked on every tap.
				runner.Loader = &tap.Loader{Store: store, TerminalID: cfg.TerminalID(), BalanceCap: cfg.Load.BalanceCapFen(), Logger: log}
			}
			runner.Purchaser = newPurchaser(cfg, store, api.Till, log)
			// A sale whose debit a previous run never saw answered waits
			// for its card again, so the cashier cannot charge it twice.
			if doubt, err := store.InDoubt(ctx, offline.KindPurchase); err != nil {
				return err
			} else if n := len(doubt); n > 0 {
				last := doubt[n-1]
				api.Till.RestoreInDoubt(last.Card, last.ID, last.AmountFen)
				log.Warn("a purchase of the last run is in doubt: its sale waits for that card's next tap",
					"card", redact.CardNumber(last.Card), "journal", last.ID, "amount", money.Format(last.AmountFen), "in_doubt_rows", n)
			}
			if cfg.Mifare.KeyFile != "" {
				w, err := loadWallet(cfg)
				if err != nil {
					return err
				}
				runner.Purchaser.Wallet = &w
			}
		}
		if cfg.Printer.Enabled {
			printerState.Store("starting")
			stop, kick, err := startPrinter(ctx, cfg, store, log, func(s spool.State) {
				state := "ready"
				if !s.Ready {
					state = "not ready: " + s.Problem
				}
				printerState.Store(state)
				mets.PrinterReady(s.Ready)
				api.PrinterState(localapi.PrinterView{Enabled: true, Ready: s.Ready, Answering: s.Answering, Problem: s.Problem})
			})
			if err != nil {
				return err
			}
			defer stop()
			api.Receipts, api.ReceiptsWaiting, api.KickPrinter = store, store.ReceiptsWaiting, kick
			api.BalanceReceipt = balanceReceipt(cfg)
			if runner.Loader != nil {
				runner.Loader.Receipt = loadReceipt(cfg)
			}
			if runner.Purchaser != nil {
				runner.Purchaser.Receipt = purchaseReceipt(cfg)
			}
		}
	}
	healthy := func() error {
		// A tap is bounded by tap.timeout; a loop stuck far longer is wedged.
		if runner.Alive().IsZero() {
			return nil // starting
		}
		if since := time.Since(runner.Alive()); since > 15*time.Second+cfg.Tap.Timeout {
			return fmt.Errorf("the tap loop has not turned for %v", since.Round(time.Second))
		}
		return nil
	}
	api.Healthy = healthy
	if mets == nil {
		mets = metrics.New(gauges)
	}
	api.Metrics = mets.Handler()
	hookAPI(api, mets, runner)
	stopAPI, err := serveAPI(cfg, api, log)
	if err != nil {
		return err
	}
	defer stopAPI()
	log.Info("cardd starting", "mode", cfg.Mode, "terminal", cfg.Terminal.ID, "card_readers", cfg.Reader.CardPattern,
		"sam_reader", cfg.Reader.SAMPattern, "host", cfg.Host.URL)
	// systemd (Type=notify): ready once the API listens and the runner
	// starts; the watchdog is fed only while the tap loop turns.
	if _, err := sdnotify.Ready(); err != nil {
		log.Warn("telling systemd cardd is ready", "err", err)
	}
	_, _ = sdnotify.Status("reading cards")
	wdCtx, stopWatchdog := context.WithCancel(ctx)
	defer stopWatchdog()
	go sdnotify.Run(wdCtx, func() bool { return healthy() == nil })
	err = runner.Run(ctx)
	_, _ = sdnotify.Stopping()
	stopWatchdog()
	log.Info("cardd stopped")
	return err
}

// NewRunner wires the tap runner from a validated config.
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
