// Command cardd is the card terminal daemon: it reads e-purse cards tapped on
// PC/SC readers. Subcommands:
//
//	cardd run      the daemon (kiosk mode): one structured log line per tap
//	cardd scan     wait for one tap, print what the card holds, exit
//	cardd dump     record one tap as a trace file (docs/trace.md)
//	cardd config   print the effective configuration, secrets masked
//	cardd version  print the version (set with -ldflags "-X
//	               github.com/cardd/cardd/internal/buildinfo.Version=...")
//
// Configuration comes from defaults, a YAML file (--config or CARDD_CONFIG),
// CARDD_* environment variables and flags, in that order; see package config.
// Exit codes: 0 success, 1 the work failed (a tap, pcscd), 2 bad usage or
// configuration, or a store.path another cardd run holds.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/cardd/cardd/apdu/epurse"
	"github.com/cardd/cardd/apdu/mifare"
	"github.com/cardd/cardd/apdu/psam"
	"github.com/cardd/cardd/config"
	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/internal/buildinfo"
	"github.com/cardd/cardd/internal/lockfile"
	"github.com/cardd/cardd/localapi"
	"github.com/cardd/cardd/metrics"
	"github.com/cardd/cardd/money"
	"github.com/cardd/cardd/offline"
	"github.com/cardd/cardd/printer/spool"
	"github.com/cardd/cardd/reader"
	"github.com/cardd/cardd/redact"
	"github.com/cardd/cardd/sdnotify"
	hostsync "github.com/cardd/cardd/sync"
	"github.com/cardd/cardd/tap"
)

const usage = `usage: cardd <command> [flags]

commands:
  run      run the daemon: read every card tapped, log one line per tap
  scan     wait for one tap, print the card's purse, exit
  dump [--out FILE] [--keep-personal]
           record one tap as a trace file (docs/trace.md), for a card read wrong
  config   print the effective configuration (secrets masked)
  doctor   check pcscd, readers, printer, host, clock, store and file modes
  print-test
           queue a test page and wait until it is printed
  receipts reprint-last
           print the last receipt again, marked as a copy
  pos charge AMOUNT [--pin-stdin] [--wait D]
           arm a sale at a running POS (mode pos) for the next tap
  pos cancel
           drop the armed sale
  version  print the version

Run 'cardd <command> --help' for the flags of a command.
`

// exitError carries a process exit code through the command functions.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageErr(format string, a ...any) error {
	return &exitError{code: 2, err: fmt.Errorf(format, a...)}
}

func main() {
	os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr))
}

// Main runs cardd with args and returns the exit code; tests call it directly.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch cmd, rest := args[0], args[1:]; cmd {
	case "run":
		err = cmdRun(ctx, rest, stderr)
	case "scan":
		err = cmdScan(ctx, rest, stdout, stderr)
	case "dump":
		err = cmdDump(ctx, rest, stdout, stderr)
	case "config":
		err = cmdConfig(rest, stdout)
	case "print-test":
		err = cmdPrintTest(ctx, rest, stdout, stderr)
	case "receipts":
		err = cmdReceipts(ctx, rest, stdout, stderr)
	case "doctor":
		err = cmdDoctor(ctx, rest, stdout, stderr)
	case "pos":
		err = cmdPOS(ctx, rest, stdout, stderr)
	case "version":
		err = cmdVersion(rest, stdout)
	default:
		err = usageErr("unknown command %q (want run, scan, dump, config, doctor, print-test, receipts, pos or version)", cmd)
	}
	if err == nil {
		return 0
	}
	if errors.Is(err, pflag.ErrHelp) {
		return 0
	}
	code := 1
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
	}
	// One line per problem: errors.Join already separates them with newlines.
	fmt.Fprintf(stderr, "cardd: %v\n", strings.ReplaceAll(err.Error(), "\n", "\ncardd: "))
	return code
}

// cmdVersion prints the version alone on a line, for scripts and bug reports.
func cmdVersion(args []string, stdout io.Writer) error {
	fs := pflag.NewFlagSet("version", pflag.ContinueOnError)
	if err := fs.Parse(args); err != nil {
		return &exitError{code: 2, err: err}
	}
	if fs.NArg() > 0 {
		return usageErr("version takes no arguments, got %q", fs.Arg(0))
	}
	_, err := fmt.Fprintln(stdout, version)
	return err
}

// loadConfig parses the flags of a subcommand and loads the configuration.
// extra registers the subcommand's own flags.
func loadConfig(name string, args []string, extra func(*pflag.FlagSet)) (*config.Config, error) {
	cfg, rest, err := loadConfigArgs(name, args, extra)
	if err == nil && len(rest) > 0 {
		return nil, usageErr("unexpected argument %q", rest[0])
	}
	return cfg, err
}

// loadConfigArgs is loadConfig for a subcommand that takes arguments: it
// returns those that are not flags.
func loadConfigArgs(name string, args []string, extra func(*pflag.FlagSet)) (*config.Config, []string, error) {
	fs := pflag.NewFlagSet("cardd "+name, pflag.ContinueOnError)
	fs.SortFlags = false
	config.RegisterFlags(fs)
	if extra != nil {
		extra(fs)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil, nil, err
		}
		return nil, nil, usageErr("%v", err)
	}
	cfg, err := config.Load(fs)
	if err != nil {
		return nil, nil, &exitError{code: 2, err: err}
	}
	return cfg, fs.Args(), nil
}

// newLogger builds the daemon's slog logger from the config.
func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.Log.SlogLevel()}
	if cfg.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// newRunner wires the tap runner from a validated config.
func newRunner(cfg *config.Config, log *slog.Logger) *tap.Runner {
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

func cmdConfig(args []string, stdout io.Writer) error {
	cfg, err := loadConfig("config", args, nil)
	if err != nil {
		return err
	}
	return cfg.WriteEffective(stdout)
}

func cmdRun(ctx context.Context, args []string, stderr io.Writer) error {
	cfg, err := loadConfig("run", args, nil)
	if err != nil {
		return err
	}
	// config.Validate (in loadConfig) has checked door.*, as for cardd
	// config and cardd doctor.
	doorMode := cfg.Mode == config.ModeDoor
	log := newLogger(cfg, stderr)
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
	runner := newRunner(cfg, log)
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

// newPurchaser wires the POS purchase step from a validated config.
func newPurchaser(cfg *config.Config, store *offline.Store, till *tap.Till, log *slog.Logger) *tap.Purchaser {
	var apps []psam.App
	for _, a := range cfg.POS.SAMAppList() {
		apps = append(apps, psam.App{FileID: a.FileID, AID: a.AID})
	}
	logFile := byte(0x18)
	if len(cfg.EPurse.LogFiles) > 0 {
		logFile = byte(cfg.EPurse.LogFiles[0])
	}
	return &tap.Purchaser{Store: store, Till: till, SAMApps: apps, PSAMProfiles: cfg.PSAM.Profiles(), TerminalID: cfg.TerminalID(),
		DailyLimit: cfg.POS.DailyLimitFen(), LogFile: logFile, LogContinues: len(cfg.EPurse.LogFiles) == 1, Logger: log}
}

// loadWallet reads mifare.key_file (0600) into the M1 wallet.
func loadWallet(cfg *config.Config) (mifare.Wallet, error) {
	b, err := config.ReadSecretFile(cfg.Mifare.KeyFile)
	if err != nil {
		return mifare.Wallet{}, &exitError{code: 2, err: fmt.Errorf("mifare.key_file: %w", err)}
	}
	slots := mifare.KeySlotsACS
	if cfg.Mifare.SlotConvention == "nonvolatile" {
		slots = mifare.KeySlotsNonVolatile
	}
	w, err := mifare.ParseWalletFile(b, slots)
	if err != nil {
		return mifare.Wallet{}, &exitError{code: 2, err: fmt.Errorf("mifare.key_file %s: %w", cfg.Mifare.KeyFile, err)}
	}
	return w, nil
}

// lockRetry is how long lockStore tries a held store lock again before it
// gives up: longer than any probe of cardd doctor holds it.
var lockRetry = 2 * time.Second

// lockStore takes the store's lock for `cardd run` (offline.Lock): exit 2
// naming the holder when another daemon has it. A daemon that keeps no
// journal (used is false) still guards the .api file beside the store, but
// does not make the store's directory for that: where it cannot lock, it
// cannot write .api either, and runs unlocked as before.
func lockStore(cfg *config.Config, used bool, log *slog.Logger) (release func(), err error) {
	var l *lockfile.Lock
	var held *lockfile.HeldError
	// cardd doctor asks who holds the lock by taking it for an instant: a
	// daemon starting then must not exit 2 (systemd does not restart on 2),
	// so a held lock is tried again for a moment before it counts.
	for deadline := time.Now().Add(lockRetry); ; time.Sleep(50 * time.Millisecond) {
		if used {
			l, err = offline.Lock(cfg.Store.Path)
		} else {
			l, err = lockfile.Acquire(offline.LockPath(cfg.Store.Path))
		}
		if !errors.As(err, &held) || time.Now().After(deadline) {
			break
		}
	}
	switch {
	case errors.As(err, &held):
		holder := "another cardd"
		if held.PID > 0 {
			holder = "cardd pid " + strconv.Itoa(held.PID)
		}
		return nil, &exitError{code: 2, err: fmt.Errorf("store %s is in use by %s (%s): one daemon per store; stop it, or give this one its own store.path", cfg.Store.Path, holder, held.Path)}
	case err != nil && used:
		return nil, fmt.Errorf("store.path %s: %w", cfg.Store.Path, err)
	case err != nil:
		log.Debug("no store lock: this daemon keeps no journal and cannot write beside store.path", "err", err)
		return func() {}, nil
	}
	return func() { l.Release() }, nil
}

// openStore opens the journal and settles what a killed daemon left in
// intent. Without a host or a printer cardd only reads cards and does not
// touch the store.
func openStore(ctx context.Context, cfg *config.Config, log *slog.Logger) (*offline.Store, error) {
	store, err := offline.Open(cfg.Store.Path, cfg.Terminal.ID)
	if err != nil {
		return nil, err
	}
	// Rows a killed daemon left in intent are in doubt: the card decides on
	// its next tap (money rule 3).
	if n, err := store.RecoverInterrupted(ctx); err != nil {
		store.Close()
		return nil, err
	} else if n > 0 {
		log.Warn("journal rows of an interrupted run are in doubt; each card settles its own on its next tap", "rows", n)
	}
	return store, nil
}

// startHostLink starts the sync loops and gives the runner its on-tap
// loader. Without a host there is nothing to load.
func startHostLink(ctx context.Context, cfg *config.Config, log *slog.Logger, runner *tap.Runner, store *offline.Store, mets *metrics.Metrics, printer func() string, onAccess func(string, []byte) error) (stop func(), err error) {
	secret, err := config.ReadSecretFile(cfg.Host.SecretFile)
	if err != nil {
		return nil, &exitError{code: 2, err: fmt.Errorf("host.secret_file: %w", err)}
	}
	client := &hostsync.Client{BaseURL: cfg.Host.URL, TerminalID: cfg.Terminal.ID, Secret: secret,
		HTTP: &http.Client{Timeout: 10 * time.Second, Transport: mets.Transport(nil)}}
	syncer := &hostsync.Syncer{Client: client, Store: store, Logger: log,
		Heartbeat: func() hostapi.HeartbeatRequest {
			hb := hostapi.HeartbeatRequest{Version: version, Printer: printer()}
			if n, err := store.ReceiptsWaiting(ctx); err == nil {
				hb.Extra = map[string]string{"receipts_waiting": strconv.Itoa(n)}
			}
			return hb
		}, OnAccessList: onAccess}
	syncer.Start(ctx)
	runner.Loader = &tap.Loader{Store: store, Host: client, TerminalID: cfg.TerminalID(),
		BalanceCap: cfg.Load.BalanceCapFen(), Logger: log}
	runner.OnTap = func(tap.Result) { syncer.Kick() }

	purgeCtx, cancelPurge := context.WithCancel(ctx)
	purged := make(chan struct{})
	go func() {
		defer close(purged)
		purgeLoop(purgeCtx, store, cfg.Store.Retention, log)
	}()
	return func() {
		cancelPurge()
		<-purged
		syncer.Stop()
	}, nil
}

// purgeLoop deletes acknowledged journal rows and printed receipts older
// than the retention, at start and every six hours (DESIGN.md, money
// rule 5).
func purgeLoop(ctx context.Context, store *offline.Store, retention time.Duration, log *slog.Logger) {
	for {
		if n, err := store.Purge(ctx, time.Now().Add(-retention)); err != nil {
			log.Warn("purging old journal rows", "err", err)
		} else if n > 0 {
			log.Info("purged acknowledged journal rows", "rows", n, "older_than", retention)
		}
		if n, err := store.PurgeReceipts(ctx, time.Now().Add(-retention)); err != nil {
			log.Warn("purging old receipts", "err", err)
		} else if n > 0 {
			log.Info("purged printed receipts", "receipts", n, "older_than", retention)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(6 * time.Hour):
		}
	}
}

// version is cardd's version as the heartbeat, the status API, doctor, dump
// traces and cardd version report it: set at build time or read from the
// build info (package buildinfo).
var version = buildinfo.String()
