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
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/cardd/cardd/config"
	"github.com/cardd/cardd/daemon"
	"github.com/cardd/cardd/internal/buildinfo"
	"github.com/cardd/cardd/sdnotify"
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
  pos void [SALE] [--amount A] [--cashier ID]
           void the last sale (or SALE) within pos.void_window; its refund goes to the card
  pos shift open --cashier ID | pos shift close
           open the cashier's shift; close it, printing its summary (班结)
  journal pending [--store PATH] [--verbose]
           print how many records (rows, completions, voids, shifts) the host lacks
  service install|uninstall|start|stop|run
           the Windows service (docs/windows.md)
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
	case "journal":
		err = cmdJournal(ctx, rest, stdout, stderr)
	case "version":
		err = cmdVersion(rest, stdout)
	case "service":
		err = cmdService(ctx, rest, stdout, stderr)
	default:
		err = usageErr("unknown command %q (want run, scan, dump, config, doctor, print-test, receipts, pos, journal, service or version)", cmd)
	}
	if err == nil {
		return 0
	}
	if errors.Is(err, pflag.ErrHelp) {
		return 0
	}
	code := 1
	var ee *exitError
	var ce *daemon.ConfigError
	if errors.As(err, &ee) {
		code = ee.code
	} else if errors.As(err, &ce) {
		code = 2
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

func cmdConfig(args []string, stdout io.Writer) error {
	cfg, err := loadConfig("config", args, nil)
	if err != nil {
		return err
	}
	return cfg.WriteEffective(stdout)
}

// cmdRun is `cardd run`: the daemon of the configuration (package daemon),
// until SIGINT or SIGTERM, telling systemd how it goes.
func cmdRun(ctx context.Context, args []string, stderr io.Writer) error {
	cfg, err := loadConfig("run", args, nil)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
	d, err := daemon.Open(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer d.Close()
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
	go sdnotify.Run(wdCtx, func() bool { return d.Healthy() == nil })
	err = d.Run(ctx)
	_, _ = sdnotify.Stopping()
	stopWatchdog()
	log.Info("cardd stopped")
	return err
}

// version is cardd's version as the heartbeat, the status API, doctor, dump
// traces and cardd version report it: set at build time or read from the
// build info (package buildinfo).
var version = buildinfo.String()
