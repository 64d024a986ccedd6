// Command cardhost is the reference central host of cardd: it issues cards,
// registers terminals, records money paid online as credits, and serves the
// upstream API through which terminals load those credits onto cards.
//
//	cardhost init --dir D
//	cardhost terminal add --dir D --id 000000000001 --secret-out FILE
//	cardhost terminal list --dir D
//	cardhost card issue --dir D --number N --holder NAME --balance 100.00 [--start YYYY-MM-DD --expiry YYYY-MM-DD] --out card.json
//	cardhost card m1 --dir D --uid 04A1B2C3 [--holder NAME]
//	cardhost card class --dir D --card N --class staff|--clear
//	cardhost credit add --dir D --card N --amount 50.00 [--note wechat] [--operator NAME]
//	cardhost credit list --dir D [--card N]
//	cardhost credit cancel --dir D --id CREDIT [--reason R] [--operator NAME]
//	cardhost credit approve --dir D --id CREDIT [--note N] [--operator NAME]
//	cardhost credit correct --dir D --id CREDIT --reason R [--amount A] [--operator NAME]
//	cardhost credit threshold --dir D [--above 2000.00|--off] [--operator NAME]
//	cardhost credit settle-m1 --dir D --id CREDIT --applied yes|no
//	cardhost deny add --dir D --card N [--reason lost]
//	cardhost deny remove --dir D --card N
//	cardhost access set --dir D --file list.json
//	cardhost access show --dir D
//	cardhost ledger --dir D --card N [--json]
//	cardhost subsidy add --dir D --amount 12.00 --until T [--purse EP|ED] [--from T] [--id B] [--note N] [--cards FILE] CARD...
//	cardhost subsidy list --dir D [--json]
//	cardhost subsidy expire --dir D
//	cardhost topup list --dir D [--card N] [--state unpaid|paid|closed] [--json]
//	cardhost topup show --dir D --id ORDER
//	cardhost topup pay --dir D --id ORDER [--twice] [--delay 2s] [--no-notify]
//	cardhost db copy --dir D --db postgres://... [--from host.db]
//	cardhost serve --dir D [--listen 127.0.0.1:8710] [--balance-cap 1000.00]
//	               [--topup-provider sim --topup-timeout 5m --topup-public-url URL --topup-sim-secret FILE]
//
// Everything it keeps is in the directory D: host.db (SQLite) and
// masters.json (the issuer master keys, the stand-in for an HSM). With
// --db postgres://... (or $CARDHOST_DB) the store is that PostgreSQL
// database instead, which any number of cardhost serve processes share,
// each with a copy of D's masters.json. The work is done by package host;
// this command is its wiring.
//
// Exit codes: 0 success, 1 failure, 2 bad usage or configuration.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"os/user"
	"strings"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/cardd/cardd/host"
)

// commands is every cardhost command, in the order the usage lists them.
// The dispatcher (run) parses each one's flags, checks them, opens what it
// needs from --dir and closes it after.
var commands = []command{
	{"init", "--dir D", "create a host directory: database and issuer master keys", opensNothing, func() action { return new(initCmd) }},
	{"terminal add", "--dir D --id ID --secret-out F", "register a terminal; its secret goes to F (mode 0600)", opensStore, func() action { return new(terminalAdd) }},
	{"terminal merchant", "--dir D --id ID --set NAME|--clear", "the merchant a terminal sells for, for the daily report", opensStore, func() action { return new(terminalMerchant) }},
	{"terminal list", "--dir D", "registered terminals and their last heartbeat", opensStore, func() action { return new(terminalList) }},
	{"card issue", "--dir D --number N --out F [flags]", "issue a card: its file (for cardsim) and its registration", opensKeys, func() action { return new(cardIssue) }},
	{"card m1", "--dir D --uid U [--holder H]", "register an M1 wallet card by its UID: its id is uid:U", opensStore, func() action { return new(cardM1) }},
	{"card replace", "--dir D --old N --new M [--settle 168h] [--operator O] [--reason R]", "replace a lost (deny-listed) named card: its balance goes to the new one", opensStore, func() action { return new(cardReplace) }},
	{"card class", "--dir D --card N --class C|--clear", "set a card's identity class (student, staff, …) terminals pull", opensStore, func() action { return new(cardClass) }},
	{"card product", "--dir D --card N [--set P]", "show or set a card's product (named, anonymous, …): its cap, replacement, refund", opensStore, func() action { return new(cardProduct) }},
	{"product list", "--dir D [--json]", "card products: cap, replaceable, refundable, validity", opensStore, func() action { return new(productList) }},
	{"product add", "--dir D --name P --cap A [--replaceable] [--refundable] [--valid-until D]", "add a card product", opensStore, func() action { return new(productAdd) }},
	{"product set", "--dir D --name P [--cap A] [--replaceable=B] [--refundable=B] [--valid-until D]", "change a card product; terminals pull it", opensStore, func() action { return new(productSet) }},
	{"card close", "--dir D --card N --reason R [--operator O]", "close a card (销户) whose product allows a refund: its next tap at a POS debits its balance, owed back", opensStore, func() action { return new(cardClose) }},
	{"card closes", "--dir D [--state pending|closed] [--json]", "cards asked to close, and the refunds due of those closed", opensStore, func() action { return new(closeList) }},
	{"refunds due", "--dir D [--json]", "refunds due to the holders of closed cards", opensStore, func() action { return new(refundsDue) }},
	{"credit add", "--dir D --card N --amount A", "record money paid for a card; prints the credit id", opensStore, func() action { return new(creditAdd) }},
	{"credit list", "--dir D [--card N]", "credits and their state", opensStore, func() action { return new(creditList) }},
	{"credit cancel", "--dir D --id C [--reason R]", "withdraw a pending credit no terminal holds a MAC2 for", opensStore, func() action { return new(creditCancel) }},
	{"credit approve", "--dir D --id C [--operator N]", "approve another operator's credit above the threshold", opensStore, func() action { return new(creditApprove) }},
	{"credit correct", "--dir D --id C --reason R [--amount A]", "record a loaded credit as a mistake, owed back", opensStore, func() action { return new(creditCorrect) }},
	{"credit threshold", "--dir D [--above A|--off]", "show or set the amount above which credits wait for approval", opensStore, func() action { return new(creditThreshold) }},
	{"credit settle-m1", "--dir D --id C --applied yes|no", "settle an M1 load no terminal can tell", opensStore, func() action { return new(creditSettleM1) }},
	{"deny add", "--dir D --card N [--reason R]", "put a card (number or uid:UID) on the deny list", opensStore, func() action { return new(denyAdd) }},
	{"deny remove", "--dir D --card N", "lift a card from the deny list", opensStore, func() action { return new(denyRemove) }},
	{"access set", "--dir D --file F", "set the door access list (JSON) door terminals pull", opensStore, func() action { return new(accessSet) }},
	{"access show", "--dir D", "print the door access list with its version", opensStore, func() action { return new(accessShow) }},
	{"ledger", "--dir D --card N [--json]", "a card's credits and their fate", opensStore, func() action { return new(ledger) }},
	{"subsidy add", "--dir D --amount A --until T [--purse EP|ED] [--from T] [--id B] [--cards F] CARD...", "a subsidy batch: one credit per card", opensStore, func() action { return new(subsidyAdd) }},
	{"subsidy list", "--dir D [--json]", "subsidy batches: delivered, pending, withdrawn", opensStore, func() action { return new(subsidyList) }},
	{"subsidy expire", "--dir D", "withdraw now what expired undelivered (serve does it every minute)", opensStore, func() action { return new(subsidyExpire) }},
	{"topup list", "--dir D [--card N] [--state S]", "kiosk top-up orders, newest first", opensStore, func() action { return new(topupList) }},
	{"topup show", "--dir D --id ORDER", "one kiosk top-up order, as JSON", opensStore, func() action { return new(topupShow) }},
	{"topup pay", "--dir D --id ORDER [--twice] [--delay 2s]", "pay a sim order on the running host, as a phone would", opensStore, func() action { return new(topupPay) }},
	{"alarms", "--dir D [--all] [--json]", "alarms for a person (reconciliation, TACs, the cards' books), open first", opensStore, func() action { return new(alarmList) }},
	{"alarms ack", "--dir D ID --note TEXT [--operator NAME]", "acknowledge an alarm with what was found, in the ledger", opensStore, func() action { return new(alarmAck) }},
	{"alerts set", "--dir D [--url U --secret-file F|--disable] [--below A|--off] [--card-number masked|full]", "show or set the balance-alert webhook and default threshold", opensStore, func() action { return new(alertsSet) }},
	{"alerts list", "--dir D [--state queued|sent|failed] [--json]", "balance alerts and their webhook delivery, newest first", opensStore, func() action { return new(alertsList) }},
	{"card alert", "--dir D --card N --below A|--off|--default", "a card's own balance-alert threshold", opensStore, func() action { return new(cardAlert) }},
	{"report daily", "--dir D --date YYYY-MM-DD [--csv|--json]", "the day's settlement (对账) per terminal and merchant: loads, purchases, difference", opensStore, func() action { return new(reportDaily) }},
	{"shift list", "--dir D [--terminal ID] [--json]", "cashiers' closed shifts (班结), checked against the journal", opensStore, func() action { return new(shiftList) }},
	{"db copy", "--dir D --db URL [--from F]", "copy a stopped host's SQLite store into an empty PostgreSQL one, checked", opensNothing, func() action { return new(dbCopy) }},
	{"serve", "--dir D [--listen ADDR]", "serve the upstream API to terminals", opensKeys, func() action { return new(serve) }},
}

// A command is one line of the usage and how to run it.
type command struct {
	name  string // one or two words: "init", "credit add"
	args  string // its flags as the usage shows them
	about string // what it does, in a few words
	opens opens  // what the dispatcher opens from --dir before run
	new   func() action
}

// opens is what a command needs opened from the host directory.
type opens int

const (
	opensNothing opens = iota // the command makes the directory (init)
	opensStore                // host.db
	opensKeys                 // host.db, then masters.json
)

// action is a command's work, in the order the dispatcher calls it.
type action interface {
	// flags adds the command's own flags to fs; --dir is there already.
	flags(fs *pflag.FlagSet)
	// check refuses bad flags, and reads what the command takes from
	// outside the directory, before the directory is opened: bad usage
	// changes nothing and is reported before a bad --dir.
	check() error
	// run does the work with the directory opened as the command asked.
	run(ctx context.Context, e *env) error
}

// env is what an action runs with.
type env struct {
	dir            string
	db             string      // --db: the store's URL; "" for the directory's SQLite file
	st             *host.Store // nil unless the command opens the store
	keys           *host.Keys  // nil unless it opens the keys
	stdout, stderr io.Writer
}

// noCheck is embedded by an action whose flags need no check beyond --dir.
type noCheck struct{}

func (noCheck) check() error { return nil }

// usage lists the commands from the table, so none can be left out.
func usage() string {
	width := 0
	for _, c := range commands {
		width = max(width, len(c.name)+1+len(c.args))
	}
	var b strings.Builder
	b.WriteString("usage: cardhost <command> [flags]\n\ncommands:\n")
	for _, c := range commands {
		fmt.Fprintf(&b, "  %-*s  %s\n", width, c.name+" "+c.args, c.about)
	}
	fmt.Fprintf(&b, "  %-*s  %s\n", width, "version", "print the version")
	b.WriteString("\nRun 'cardhost <command> --help' for the flags of a command.\n")
	return b.String()
}

// usageError is bad usage or configuration: exit code 2.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

func main() { os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr)) }

// Main runs cardhost with args and returns the exit code. SIGINT and
// SIGTERM stop 'serve' gracefully.
func Main(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return run(ctx, args, stdout, stderr)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage())
		return 2
	}
	if args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stdout, usage())
		return 0
	}
	if args[0] == "version" {
		return exitCode("version", versionCmd(args[1:], stdout), stderr)
	}
	// Two words first: "alarms ack" is not "alarms" with an argument.
	var cmd *command
	name, rest := "", args
	if len(args) >= 2 {
		name, rest = args[0]+" "+args[1], args[2:]
		cmd = lookup(name)
	}
	if cmd == nil {
		if cmd = lookup(args[0]); cmd != nil {
			name, rest = args[0], args[1:]
		} else if name == "" {
			name = args[0]
		}
	}
	if cmd == nil {
		fmt.Fprintf(stderr, "cardhost: unknown command %q\n%s", name, usage())
		return 2
	}
	return exitCode(name, cmd.exec(ctx, rest, stdout, stderr), stderr)
}

// exitCode reports err of the command called name and returns the exit code.
func exitCode(name string, err error, stderr io.Writer) int {
	switch {
	case err == nil, errors.Is(err, pflag.ErrHelp):
		return 0
	case errors.As(err, new(usageError)):
		fmt.Fprintf(stderr, "cardhost %s: %v\n", name, err)
		return 2
	default:
		fmt.Fprintf(stderr, "cardhost %s: %v\n", name, err)
		return 1
	}
}

// lookup is the command called name, or nil.
func lookup(name string) *command {
	for i := range commands {
		if commands[i].name == name {
			return &commands[i]
		}
	}
	return nil
}

// exec parses the command's flags, checks them, opens what it needs from
// --dir, runs it and closes what it opened.
func (c *command) exec(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	a := c.new()
	fs, dir, db := newFlags(c.name, stdout)
	a.flags(fs)
	takes, _ := a.(argsTaker)
	if err := parse(fs, args, dir, takes != nil); err != nil {
		return err
	}
	if takes != nil {
		takes.args(fs.Args())
	}
	if err := checkDB(fs, *db, stderr); err != nil {
		return err
	}
	if err := a.check(); err != nil {
		return err
	}
	e := &env{dir: *dir, db: *db, stdout: stdout, stderr: stderr}
	if c.opens >= opensStore {
		st, err := openStore(*dir, *db)
		if err != nil {
			return err
		}
		defer st.Close()
		e.st = st
	}
	if c.opens >= opensKeys {
		keys, err := openKeys(*dir)
		if err != nil {
			return err
		}
		e.keys = keys
	}
	return a.run(ctx, e)
}

// DBEnv is the environment variable that names the host's store when
// --db is not given: the place for a URL with a password, which a flag
// would show to every local user in the process list.
const DBEnv = "CARDHOST_DB"

// newFlags makes a command's flag set with the --dir and --db every
// command takes.
func newFlags(name string, stdout io.Writer) (fs *pflag.FlagSet, dir, db *string) {
	fs = pflag.NewFlagSet("cardhost "+name, pflag.ContinueOnError)
	fs.SetOutput(stdout)
	fs.SortFlags = false
	dir = fs.String("dir", "", "host directory, made by 'cardhost init' (required)")
	db = fs.String("db", os.Getenv(DBEnv), "the store: a postgres:// URL; empty for the directory's SQLite file (default $"+DBEnv+")")
	return fs, dir, db
}

// checkDB refuses a --db that is neither empty nor a PostgreSQL URL (an
// SQLite file lives in --dir), and warns of a password given on the
// command line.
func checkDB(fs *pflag.FlagSet, db string, stderr io.Writer) error {
	if db == "" {
		return nil
	}
	if !host.IsPostgresURL(db) {
		// A mistyped scheme still carries the password: it is not shown.
		return usagef("--db = %q: want a postgres:// or postgresql:// URL (the SQLite store is host.db in --dir)", host.RedactURL(db))
	}
	if fs.Changed("db") && host.URLCarriesSecret(db) {
		fmt.Fprintf(stderr, "cardhost: warning: --db carries a password, which other local users can read in the process list; use $%s or a PostgreSQL password file\n", DBEnv)
	}
	return nil
}

// argsTaker is an action that takes arguments after its flags (card
// numbers); every other action refuses them.
type argsTaker interface{ args([]string) }

// parse parses flags; a bad flag or, unless withArgs, a stray argument is
// a usage error.
func parse(fs *pflag.FlagSet, args []string, dir *string, withArgs bool) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 && !withArgs {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if *dir == "" {
		return usagef("--dir is required: the host directory made by 'cardhost init'")
	}
	return nil
}

// required refuses an empty required flag.
func required(flag, value string) error {
	if value == "" {
		return usagef("--%s is required", flag)
	}
	return nil
}

// openStore opens the host directory's database; a missing or unsafe one
// is a configuration error naming --dir.
func openStore(dir, db string) (*host.Store, error) {
	st, err := host.OpenDir(dir, db)
	if err != nil {
		if db != "" && !errors.Is(err, host.ErrNotInitialized) {
			return nil, fmt.Errorf("--db: %w", err)
		}
		return nil, usagef("--dir = %q: %v", dir, err)
	}
	return st, nil
}

// openKeys reads the host directory's master keys; a missing or unsafe key
// file is a configuration error naming --dir.
func openKeys(dir string) (*host.Keys, error) {
	k, err := host.LoadDirKeys(dir)
	if err != nil {
		return nil, usagef("--dir = %q: %v", dir, err)
	}
	return k, nil
}

// operator names the person running the command, for the ledger.
func operator() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return "operator " + u.Username
	}
	if name := os.Getenv("USER"); name != "" {
		return "operator " + name
	}
	return "operator"
}
