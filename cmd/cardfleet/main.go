// Command cardfleet is a fleet of simulated terminals for the reference
// host (package sync/sim): it registers N terminals, each with its own
// secret, issues cards and adds credits for them in a host directory, then
// drives the real signed protocol against one or several `cardhost serve`
// instances at a set rate (heartbeats, pulls, journal uploads, loads onto
// the simulated cards) and reports per request kind the counts, refusals,
// failures and p50/p99 latencies, and the requests per second held. No
// pcscd is needed: the cards are simulated in memory. docs/fleet.md.
//
//	cardfleet --dir D --host http://127.0.0.1:8710 [--host URL ...] [--ca-file ca.pem]
//	          [--terminals 10 --cards 10 --credits 2 --amount 1.50 --balance 10.00]
//	          [--rate 1 --duration 10s --timeout 10s --drain 10s]
//	          [--mix heartbeat=1,pull=1,journal=1,load=1 --journal-batch 20]
//	          [--pick roundrobin|random] [--shared-cards] [--replay 100]
//	          [--backlog-rows 5000 --backlog-batch 500]
//	          [--json FILE|-] [--card-dir DIR] [--seed N]
//
// Exit codes: 0 the run held the money rules (no credit applied twice,
// every replay refused, every load settled) and the backlog drained; 1 it
// did not, or failed; 2 bad usage.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/cardd/cardd/apdu/epurse"
	"github.com/cardd/cardd/config"
	"github.com/cardd/cardd/host"
	"github.com/cardd/cardd/money"
	hostsync "github.com/cardd/cardd/sync"
	"github.com/cardd/cardd/sync/sim"
)

func main() { os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr)) }

// Main runs cardfleet with args and returns the exit code. SIGINT and
// SIGTERM end the run early; it still reports.
func Main(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	o, err := parse(args, stdout)
	if errors.Is(err, pflag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "cardfleet: %v\n", err)
		return 2
	}
	ok, err := o.run(ctx, stdout)
	if err != nil {
		fmt.Fprintf(stderr, "cardfleet: %v\n", err)
		if errors.As(err, new(usageError)) {
			return 2
		}
		return 1
	}
	if !ok {
		return 1
	}
	return 0
}

// options are the flags, checked.
type options struct {
	dir, db, caFile, jsonOut, cardDir string
	hosts                             []string
	terminals, cards, credits         int
	amount, balance                   int64
	replay                            int
	cfg                               sim.Config
}

// usageError is bad usage: exit code 2.
type usageError struct{ error }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

func parse(args []string, out io.Writer) (*options, error) {
	o := &options{}
	fs := pflag.NewFlagSet("cardfleet", pflag.ContinueOnError)
	fs.SetOutput(out)
	fs.SortFlags = false
	fs.StringVar(&o.dir, "dir", "", "host directory (cardhost init) to register the terminals, cards and credits in (required)")
	fs.StringVar(&o.db, "db", os.Getenv("CARDHOST_DB"), "the host's store when it is PostgreSQL: a postgres:// URL, as cardhost's --db (default $CARDHOST_DB)")
	fs.StringArrayVar(&o.hosts, "host", nil, "base URL of a host instance, like https://10.0.0.5:8710; repeat for several (required)")
	fs.StringVar(&o.caFile, "ca-file", "", "PEM CA that signed the instances' certificates, as cardd's host.ca_file (default: the system's roots)")
	fs.IntVar(&o.terminals, "terminals", 10, "terminal identities to register and run, each with its own secret")
	fs.IntVar(&o.cards, "cards", 10, "cards to issue and load (0 with no load in --mix)")
	fs.IntVar(&o.credits, "credits", 2, "credits to add per card, each of --amount")
	amount := fs.String("amount", "1.50", "amount of each credit, in yuan")
	balance := fs.String("balance", "10.00", "EP balance of each card at issue, in yuan")
	fs.Float64Var(&o.cfg.Rate, "rate", 1, "actions per second of each terminal")
	fs.DurationVar(&o.cfg.Duration, "duration", 10*time.Second, "how long the terminals act")
	fs.DurationVar(&o.cfg.Timeout, "timeout", 10*time.Second, "bound of each request")
	fs.DurationVar(&o.cfg.Drain, "drain", 10*time.Second, "bound of the time after --duration to send again the load completions no instance took")
	mix := fs.String("mix", "heartbeat=1,pull=1,journal=1,load=1", "weights of the actions a terminal takes each tick")
	fs.IntVar(&o.cfg.JournalBatch, "journal-batch", 20, "rows of each journal upload")
	pick := fs.String("pick", "roundrobin", "instance of each request: roundrobin or random")
	fs.BoolVar(&o.cfg.SharedCards, "shared-cards", false, "let several terminals hold a card's INIT FOR LOAD at once, racing for its credits")
	fs.IntVar(&o.replay, "replay", 0, "capture this many signed requests and send each again verbatim to another instance at the end: all must be refused")
	fs.IntVar(&o.cfg.Backlog.Rows, "backlog-rows", 0, "one more terminal, back after a week offline, uploads this many journal rows back to back beside the fleet")
	fs.IntVar(&o.cfg.Backlog.BatchSize, "backlog-batch", 500, "rows of each of its uploads (the daemon's batch is 500)")
	fs.StringVar(&o.jsonOut, "json", "", "write the report as JSON to this file (- for stdout, instead of the text)")
	fs.StringVar(&o.cardDir, "card-dir", "", "keep the card files here, saved with their final state (default: a temporary directory, removed)")
	fs.Uint64Var(&o.cfg.Seed, "seed", 0, "seed of the terminals' choices (0: random)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil, err
		}
		return nil, usageError{err}
	}
	if fs.NArg() > 0 {
		return nil, usagef("unexpected argument %q", fs.Arg(0))
	}
	return o, o.check(*amount, *balance, *mix, *pick)
}

// check refuses bad flags, naming the flag and its value.
func (o *options) check(amount, balance, mix, pick string) error {
	if o.dir == "" {
		return usagef("--dir is required: the host directory made by 'cardhost init'")
	}
	if len(o.hosts) == 0 {
		return usagef("--host is required: the base URL of a host instance, like http://127.0.0.1:8710")
	}
	for _, h := range o.hosts {
		if u, err := url.Parse(h); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return usagef("--host = %q: want http:// or https:// and host:port", h)
		}
	}
	var err error
	if o.amount, err = money.Parse(amount); err != nil || o.amount <= 0 || o.amount > epurse.MaxAmount {
		return usagef("--amount = %q: want an amount like 1.50, more than 0.00", amount)
	}
	if o.balance, err = money.Parse(balance); err != nil || o.balance < 0 || o.balance > epurse.MaxAmount {
		return usagef("--balance = %q: want an amount like 10.00", balance)
	}
	if o.cfg.Mix, err = parseMix(mix); err != nil {
		return usagef("--mix = %q: %v", mix, err)
	}
	switch pick {
	case "roundrobin":
	case "random":
		o.cfg.Random = true
	default:
		return usagef("--pick = %q: want roundrobin or random", pick)
	}
	return o.checkCounts()
}

// checkCounts refuses counts and bounds out of their range.
func (o *options) checkCounts() error {
	for _, c := range []struct {
		flag string
		v    int
		min  int
	}{{"terminals", o.terminals, 1}, {"cards", o.cards, 0}, {"credits", o.credits, 0}, {"journal-batch", o.cfg.JournalBatch, 1}, {"replay", o.replay, 0}, {"backlog-rows", o.cfg.Backlog.Rows, 0}, {"backlog-batch", o.cfg.Backlog.BatchSize, 1}} {
		if c.v < c.min {
			return usagef("--%s = %d: want %d or more", c.flag, c.v, c.min)
		}
	}
	if o.cfg.Mix.Load > 0 && o.cards == 0 {
		return usagef("--cards = 0 with load=%d in --mix: give cards, or load=0", o.cfg.Mix.Load)
	}
	if o.cfg.Rate <= 0 {
		return usagef("--rate = %v: want more than 0", o.cfg.Rate)
	}
	for flag, d := range map[string]time.Duration{"duration": o.cfg.Duration, "timeout": o.cfg.Timeout, "drain": o.cfg.Drain} {
		if d <= 0 {
			return usagef("--%s = %v: want more than 0", flag, d)
		}
	}
	o.cfg.Capture = o.replay
	return nil
}

// parseMix reads "heartbeat=1,pull=1,journal=1,load=1"; a kind left out
// weighs 0.
func parseMix(s string) (sim.Mix, error) {
	var m sim.Mix
	for part := range strings.SplitSeq(s, ",") {
		name, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		n, err := strconv.Atoi(v)
		if !ok || err != nil || n < 0 {
			return m, fmt.Errorf("%q: want kind=weight, a weight of 0 or more", part)
		}
		switch name {
		case "heartbeat":
			m.Heartbeat = n
		case "pull":
			m.Pull = n
		case "journal":
			m.Journal = n
		case "load":
			m.Load = n
		default:
			return m, fmt.Errorf("%q: the kinds are heartbeat, pull, journal and load", name)
		}
	}
	if m.Heartbeat+m.Pull+m.Journal+m.Load == 0 {
		return m, errors.New("every weight is 0")
	}
	return m, nil
}

// transport is the link to the instances: cardd's TLS settings
// (config.HostConfig.TLSConfig with --ca-file) on hostsync.NewTransport.
func (o *options) transport() (*http.Transport, error) {
	tc, err := config.HostConfig{CAFile: o.caFile}.TLSConfig()
	if err != nil {
		return nil, usagef("--ca-file: %v", err)
	}
	tr := hostsync.NewTransport(tc)
	tr.MaxIdleConnsPerHost = 256 // thousands of terminals share few instances
	return tr, nil
}

// run provisions the fleet, drives it, replays and reports. ok says
// whether the run held the money rules.
func (o *options) run(ctx context.Context, stdout io.Writer) (ok bool, err error) {
	tr, err := o.transport()
	if err != nil {
		return false, err
	}
	keep := o.cardDir != ""
	if keep {
		if err := os.MkdirAll(o.cardDir, 0o700); err != nil {
			return false, usagef("--card-dir = %q: %v", o.cardDir, err)
		}
	} else {
		if o.cardDir, err = os.MkdirTemp("", "cardfleet-cards-"); err != nil {
			return false, err
		}
		defer os.RemoveAll(o.cardDir)
	}
	if err := o.provision(ctx); err != nil {
		return false, err
	}
	o.cfg.Hosts, o.cfg.Transport = o.hosts, tr
	rep, err := sim.Run(ctx, o.cfg)
	if err != nil && rep == nil {
		return false, err
	}
	if o.replay > 0 {
		rctx, cancel := context.WithTimeout(context.Background(), o.cfg.Drain)
		defer cancel()
		if rep.Replay, err = sim.Replay(rctx, &http.Client{Transport: tr, Timeout: o.cfg.Timeout}, o.hosts, rep.Captured); err != nil {
			return false, err
		}
	}
	for _, c := range o.cfg.Cards {
		if !keep {
			break
		}
		if err := c.File().Save(filepath.Join(o.cardDir, c.Number()+".json")); err != nil {
			return false, err
		}
	}
	if err := o.write(rep, stdout); err != nil {
		return false, err
	}
	l := rep.Loads
	ok = l.Doubled == 0 && l.Unsettled == 0 && (rep.Replay == nil || rep.Replay.Refused == rep.Replay.Sent) &&
		(rep.Backlog == nil || rep.Backlog.Drained)
	return ok, nil
}

// provision registers the terminals, issues the cards (their files into
// o.cardDir) and adds their credits in the host directory, as cardhost's
// commands do.
func (o *options) provision(ctx context.Context) error {
	st, err := host.OpenDir(o.dir, o.db)
	if err != nil {
		return usagef("--dir = %q, --db = %q: %v", o.dir, host.RedactURL(o.db), err)
	}
	defer st.Close()
	keys, err := host.LoadDirKeys(o.dir)
	if err != nil {
		return usagef("--dir = %q: %v", o.dir, err)
	}
	if o.cfg.Terminals, err = sim.NewTerminals(ctx, st, o.terminals); err != nil {
		return err
	}
	if o.cfg.Backlog.Rows > 0 {
		pos, err := sim.NewTerminals(ctx, st, 1)
		if err != nil {
			return err
		}
		o.cfg.Backlog.Terminal = pos[0]
	}
	if o.cfg.Cards, err = sim.IssueCards(ctx, st, keys, o.cardDir, o.cards, o.balance); err != nil {
		return err
	}
	_, err = sim.AddCredits(ctx, st, o.cfg.Cards, o.credits, o.amount)
	return err
}

// write writes the report: JSON to --json, the text to stdout unless the
// JSON goes there.
func (o *options) write(rep *sim.Report, stdout io.Writer) error {
	if o.jsonOut != "-" {
		if err := rep.WriteText(stdout); err != nil {
			return err
		}
	}
	switch o.jsonOut {
	case "":
		return nil
	case "-":
		return rep.WriteJSON(stdout)
	}
	f, err := os.OpenFile(o.jsonOut, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("--json = %q: %w", o.jsonOut, err)
	}
	if err := rep.WriteJSON(f); err != nil {
		f.Close()
		return fmt.Errorf("--json = %q: %w", o.jsonOut, err)
	}
	return f.Close()
}
