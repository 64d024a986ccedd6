// Command cardhost is the reference central host of cardd: it issues cards,
// registers terminals, records money paid online as credits, and serves the
// upstream API through which terminals load those credits onto cards.
//
//	cardhost init --dir D
//	cardhost terminal add --dir D --id 000000000001 --secret-out FILE
//	cardhost terminal list --dir D
//	cardhost card issue --dir D --number N --holder NAME --balance 100.00 [--start YYYY-MM-DD --expiry YYYY-MM-DD] --out card.json
//	cardhost card m1 --dir D --uid 04A1B2C3 [--holder NAME]
//	cardhost credit add --dir D --card N --amount 50.00 [--note wechat]
//	cardhost credit list --dir D [--card N]
//	cardhost credit cancel --dir D --id CREDIT
//	cardhost credit settle-m1 --dir D --id CREDIT --applied yes|no
//	cardhost deny add --dir D --card N [--reason lost]
//	cardhost deny remove --dir D --card N
//	cardhost access set --dir D --file list.json
//	cardhost access show --dir D
//	cardhost ledger --dir D --card N [--json]
//	cardhost serve --dir D [--listen 127.0.0.1:8710] [--balance-cap 1000.00]
//
// Everything it keeps is in the directory D: host.db (SQLite) and
// masters.json (the issuer master keys, the stand-in for an HSM). The work
// is done by package host; this command is its wiring.
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
	"syscall"

	"github.com/spf13/pflag"

	"github.com/cardd/cardd/host"
)

const usage = `usage: cardhost <command> [flags]

commands:
  init --dir D                                   create a host directory: database and issuer master keys
  terminal add --dir D --id ID --secret-out F    register a terminal; its secret goes to F (mode 0600)
  terminal list --dir D                          registered terminals and their last heartbeat
  card issue --dir D --number N --out F [flags]  issue a card: its file (for cardsim) and its registration
  card m1 --dir D --uid U [--holder H]           register an M1 wallet card by its UID: its id is uid:U
  credit add --dir D --card N --amount A         record money paid for a card; prints the credit id
  credit list --dir D [--card N]                 credits and their state
  credit cancel --dir D --id C                   withdraw a pending credit
  credit settle-m1 --dir D --id C --applied yes|no  settle an M1 load no terminal can tell
  deny add|remove --dir D --card N [--reason R]  put a card (number or uid:UID) on the deny list, or lift it
  access set --dir D --file F                    set the door access list (JSON) door terminals pull
  access show --dir D                            print it with its version
  ledger --dir D --card N [--json]               a card's credits and their fate
  serve --dir D [--listen ADDR]                  serve the upstream API to terminals

Run 'cardhost <command> --help' for the flags of a command.
`

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

// commands maps "word" or "word subword" to its function.
var commands = map[string]func(ctx context.Context, args []string, stdout, stderr io.Writer) error{
	"init":             cmdInit,
	"terminal add":     cmdTerminalAdd,
	"terminal list":    cmdTerminalList,
	"card issue":       cmdCardIssue,
	"card m1":          cmdCardM1,
	"credit add":       cmdCreditAdd,
	"credit list":      cmdCreditList,
	"credit cancel":    cmdCreditCancel,
	"credit settle-m1": cmdCreditSettleM1,
	"deny add":         cmdDenyAdd,
	"access set":       cmdAccessSet,
	"access show":      cmdAccessShow,
	"deny remove":      cmdDenyRemove,
	"ledger":           cmdLedger,
	"serve":            cmdServe,
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	if args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stdout, usage)
		return 0
	}
	name, rest := args[0], args[1:]
	cmd := commands[name]
	if cmd == nil && len(args) >= 2 {
		name, rest = args[0]+" "+args[1], args[2:]
		cmd = commands[name]
	}
	if cmd == nil {
		fmt.Fprintf(stderr, "cardhost: unknown command %q\n%s", name, usage)
		return 2
	}
	err := cmd(ctx, rest, stdout, stderr)
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

// newFlags makes a command's flag set with the --dir every command takes.
func newFlags(name string, stdout io.Writer) (*pflag.FlagSet, *string) {
	fs := pflag.NewFlagSet("cardhost "+name, pflag.ContinueOnError)
	fs.SetOutput(stdout)
	fs.SortFlags = false
	dir := fs.String("dir", "", "host directory, made by 'cardhost init' (required)")
	return fs, dir
}

// parse parses flags; a bad flag or a stray argument is a usage error.
func parse(fs *pflag.FlagSet, args []string, dir *string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
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
func openStore(dir string) (*host.Store, error) {
	st, err := host.OpenDir(dir)
	if err != nil {
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
