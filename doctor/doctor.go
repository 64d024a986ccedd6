// Package doctor checks that a terminal can work: its configuration, pcscd
// and the readers, the receipt printer, the host link and the clock, the
// journal and the permissions of the files that hold card data and secrets.
// `cardd doctor` prints its results; an installer or a monitoring agent can
// call [Run] and read them.
//
// Every check gives a [Result]: PASS, WARN, FAIL, or SKIP when it does not
// apply (no printer configured, no host, pcscd down so no readers to list).
// A failure, and a warning, carries the fix in words. Checks look and do not
// repair, with two exceptions that the daemon itself would make anyway: the
// store is opened as cardd opens it (which migrates an older schema and keeps
// the file at 0600), and the host gets one signed heartbeat.
//
// The checks never fight the running daemon: the printer is left alone while
// cardd holds its lock (the port is then reported as driven by the daemon),
// the journal is opened beside it (SQLite WAL allows that; the store held
// by the daemon is reported, not failed), and pcscd is
// only asked for its readers.
//
// Hardware is reached through function fields of [Options] (DialPCSC,
// OpenPrinter), so the checks can be tested with fakes; nil uses the real
// thing.
package doctor

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/cardd/cardd/config"
	"github.com/cardd/cardd/printer"
)

// Status is a check's verdict.
type Status string

// The verdicts. Only FAIL makes `cardd doctor` exit 1.
const (
	Pass Status = "PASS"
	Warn Status = "WARN" // works, but will bite: say what to change
	Fail Status = "FAIL" // cardd cannot do this part of its work
	Skip Status = "SKIP" // not applicable here, or its prerequisite failed
)

// Names of the checks, in the order Run runs them.
const (
	CheckConfig     = "config"
	CheckPCSCD      = "pcscd"
	CheckCardReader = "card-reader"
	CheckSAMReader  = "sam-reader"
	CheckPrinter    = "printer"
	CheckStoreFiles = "store-files"
	CheckStore      = "store"
	CheckHostSecret = "host-secret"
	CheckHost       = "host"
	CheckHostTLS    = "host-tls"
	CheckClock      = "clock"
	CheckAPIToken   = "api-token"
)

// Result is one check's outcome.
type Result struct {
	// Check names the check (the Check* constants).
	Check string `json:"check"`
	// Status is the verdict.
	Status Status `json:"result"`
	// Detail is one line of what was found.
	Detail string `json:"detail"`
	// Fix is what to do about a FAIL or a WARN, in words; empty otherwise.
	Fix string `json:"fix,omitempty"`
}

// PCSC is what the checks need of a PC/SC context; *scard.Context has it.
type PCSC interface {
	ListReaders() ([]string, error)
	Release() error
}

// Printer is what the checks need of the serial line to the printer;
// *spool.Line has it. Write with no bytes opens the port and sends nothing.
type Printer interface {
	Write(ctx context.Context, p []byte) error
	State(ctx context.Context) (printer.Status, error)
	Close() error
}

// Options tune Run; the zero value checks the real machine.
type Options struct {
	// ConfigFile is the file the configuration was read from, "" for none;
	// it is only reported.
	ConfigFile string
	// Version is cardd's version, sent in the host heartbeat.
	Version string

	// DialPCSC establishes a PC/SC context; nil uses scard.EstablishContext
	// (pcsc-lite, which honours $PCSCLITE_CSOCK_NAME).
	DialPCSC func() (PCSC, error)
	// PCSCTimeout bounds the dial and the reader listing: a wedged pcscd
	// must not hang the doctor. 0 means 5 s.
	PCSCTimeout time.Duration

	// OpenPrinter returns the line to the configured printer, not yet
	// opened; nil builds a spool.Line from cfg.Printer.
	OpenPrinter func(cfg *config.Config) Printer
	// PrinterTimeout bounds the printer check. 0 means 5 s.
	PrinterTimeout time.Duration

	// HTTP is the client for the host; nil means one with HostTimeout.
	HTTP *http.Client
	// HostTimeout bounds the heartbeat. 0 means 10 s.
	HostTimeout time.Duration
	// Now is the terminal's clock; nil means time.Now.
	Now func() time.Time

	// Euid is the user the checks run as, for the ownership of secret
	// files; nil means os.Geteuid.
	Euid func() int
}

func (o *Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

func (o *Options) euid() int {
	if o.Euid != nil {
		return o.Euid()
	}
	return os.Geteuid()
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// Thresholds of the clock check.
const (
	// ClockWarn is the skew from the host's clock above which the clock
	// check warns.
	ClockWarn = 30 * time.Second
	// ClockFail is the skew above which it fails: the host refuses signed
	// requests further off than this (hostapi.MaxSkew).
	ClockFail = 5 * time.Minute
)

// run is one doctor run: the config, the options, and what earlier checks
// found that later ones need.
type run struct {
	cfg  *config.Config
	opts Options

	pcscErr error    // the pcscd check's failure; readers are then not listed
	readers []string // the readers pcscd knows

	secret []byte    // host.secret_file's content, when readable
	hb     heartbeat // the host check's heartbeat, for the clock check
}

// Run runs every check against cfg, a configuration that passed
// validation, and returns their results in a fixed order (the Check*
// constants). It stops early only when ctx ends: the remaining checks then
// fail with ctx's error.
func Run(ctx context.Context, cfg *config.Config, opts Options) []Result {
	r := &run{cfg: cfg, opts: opts}
	checks := []struct {
		name string
		fn   func(context.Context) Result
	}{
		{CheckConfig, r.checkConfig},
		{CheckPCSCD, r.checkPCSCD},
		{CheckCardReader, r.checkCardReader},
		{CheckSAMReader, r.checkSAMReader},
		{CheckPrinter, r.checkPrinter},
		// Before the store is opened: opening it sets the file's mode.
		{CheckStoreFiles, r.checkStoreFiles},
		{CheckStore, r.checkStore},
		{CheckHostSecret, r.checkHostSecret},
		{CheckHost, r.checkHost},
		{CheckHostTLS, r.checkHostTLS},
		{CheckClock, r.checkClock},
		{CheckAPIToken, r.checkAPIToken},
	}
	out := make([]Result, 0, len(checks))
	for _, c := range checks {
		var res Result
		if err := ctx.Err(); err != nil {
			res = fail("not run: "+err.Error(), "run cardd doctor again and let it finish")
		} else {
			res = c.fn(ctx)
		}
		res.Check = c.name
		out = append(out, res)
	}
	return out
}

// Failed reports whether any result is a FAIL.
func Failed(results []Result) bool {
	for _, r := range results {
		if r.Status == Fail {
			return true
		}
	}
	return false
}

// Count returns how many results have status s.
func Count(results []Result, s Status) int {
	n := 0
	for _, r := range results {
		if r.Status == s {
			n++
		}
	}
	return n
}

func pass(format string, a ...any) Result {
	return Result{Status: Pass, Detail: fmt.Sprintf(format, a...)}
}
func skip(format string, a ...any) Result {
	return Result{Status: Skip, Detail: fmt.Sprintf(format, a...)}
}

func fail(detail, fix string) Result { return Result{Status: Fail, Detail: detail, Fix: fix} }
func warn(detail, fix string) Result { return Result{Status: Warn, Detail: detail, Fix: fix} }
