// Command cardsim simulates the hardware around cardd, so the whole stack can
// run without a reader: an e-purse card, kept in a JSON card file, is put into
// pcscd's virtual reader (the vsmartcard vpcd driver), and cardd reads it
// through PC/SC exactly as it reads a real card.
//
//	cardsim keys new --out masters.json        issuer master keys (the host's HSM stand-in)
//	cardsim card new --out card.json [flags]   create a card file
//	cardsim card --file card.json [flags]      insert the card into a vpcd slot
//	cardsim m1 keys|new [flags]                M1 wallet keys, an M1 card with a wallet
//	cardsim m1 --file m1.json                  insert the M1 card into a vpcd slot
//	cardsim psam new --keys K --out psam.json  a PSAM with the issuer's purchase key
//	cardsim psam --file psam.json              insert the PSAM into vpcd slot 1
//	cardsim replay --trace card.trace          play a recorded card (cardd dump) in a vpcd slot
//	cardsim printer [flags]                    a virtual ESC/POS printer on a pty
//
// Exit codes: 0 success, 1 failure, 2 bad usage.
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/cardd/cardd/apdu/epurse"
	epursesim "github.com/cardd/cardd/apdu/epurse/sim"
	"github.com/cardd/cardd/money"
	"github.com/cardd/cardd/printer/sim"
	"github.com/cardd/cardd/reader/vpcd"
	"github.com/cardd/cardd/redact"
)

const usage = `usage:
  cardsim keys new --out FILE          write new random issuer master keys (mode 0600)
  cardsim card new --out FILE [flags]  create a card file
  cardsim card --file FILE [flags]     insert the card into a vpcd slot and hold it
  cardsim m1 keys --out FILE          write random M1 wallet keys (mode 0600), for mifare.key_file
  cardsim m1 new --out FILE --keys FILE [--uid HEX] [--balance 50.00]
                                       create a MIFARE Classic 1K card with a wallet
  cardsim m1 --file FILE [--tear-write N --tear-mode corrupt|old|new]
                                       insert the M1 card into a vpcd slot and hold it
  cardsim psam new --keys FILE --out FILE [--terminal ID]
                                       create a PSAM file with the issuer's purchase key
  cardsim psam --file FILE [--slot 1]  insert the PSAM into a vpcd slot and hold it
  cardsim replay --trace FILE [--slot 0] [--hold D]
                                       play a trace file (cardd dump, docs/trace.md) as a card in a vpcd slot
  cardsim printer [flags]              run a virtual ESC/POS receipt printer on a pty
  cardsim relay [--link PATH]          run a virtual door relay board on a pty, printing what it gets

Run 'cardsim <command> --help' for the flags.
`

type usageError struct{ error }

func main() { os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr)) }

// Main runs cardsim with args and returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(args) >= 1 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
		fmt.Fprint(stdout, usage)
		return 0
	}
	cmd, rest, ok := lookup(args)
	if !ok {
		fmt.Fprint(stderr, usage)
		return 2
	}
	return exitCode(cmd.run(ctx, rest, stdout, stderr), stderr)
}

// command is one of cardsim's commands: the words that name it, and what
// runs it with the arguments after them.
type command struct {
	words []string
	run   func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// commands are looked up in order: "card new" before "card", whose first
// argument would otherwise be "new".
var commands = []command{
	{[]string{"keys", "new"}, func(_ context.Context, a []string, out, _ io.Writer) error { return cmdKeysNew(a, out) }},
	{[]string{"card", "new"}, func(_ context.Context, a []string, out, _ io.Writer) error { return cmdCardNew(a, out) }},
	{[]string{"card"}, cmdCardInsert},
	{[]string{"m1", "keys"}, func(_ context.Context, a []string, out, _ io.Writer) error { return cmdM1Keys(a, out) }},
	{[]string{"m1", "new"}, func(_ context.Context, a []string, out, _ io.Writer) error { return cmdM1New(a, out) }},
	{[]string{"m1"}, cmdM1Insert},
	{[]string{"psam", "new"}, func(_ context.Context, a []string, out, _ io.Writer) error { return cmdPSAMNew(a, out) }},
	{[]string{"psam"}, cmdPSAMInsert},
	{[]string{"replay"}, cmdReplay},
	{[]string{"printer"}, cmdPrinter},
	{[]string{"relay"}, func(ctx context.Context, a []string, out, _ io.Writer) error { return cmdRelay(ctx, a, out) }},
}

// lookup finds the command args name, and the arguments that follow its words.
func lookup(args []string) (command, []string, bool) {
	for _, c := range commands {
		if len(args) >= len(c.words) && slices.Equal(args[:len(c.words)], c.words) {
			return c, args[len(c.words):], true
		}
	}
	return command{}, nil, false
}

// exitCode reports err on stderr and returns the exit status: 0, 2 for a
// usage error, 1 for any other failure.
func exitCode(err error, stderr io.Writer) int {
	switch {
	case err == nil, errors.Is(err, pflag.ErrHelp):
		return 0
	case errors.As(err, new(usageError)):
		fmt.Fprintf(stderr, "cardsim: %v\n", err)
		return 2
	default:
		fmt.Fprintf(stderr, "cardsim: %v\n", err)
		return 1
	}
}

func parse(fs *pflag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	return nil
}

func cmdKeysNew(args []string, stdout io.Writer) error {
	fs := pflag.NewFlagSet("cardsim keys new", pflag.ContinueOnError)
	fs.SetOutput(stdout)
	out := fs.String("out", "", "file to write the master keys to (required; refused if it exists)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return usageError{errors.New("--out is required")}
	}
	if err := epurse.WriteMasterKeyFile(*out, newMasterKeys()); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote issuer master keys to %s (mode 0600)\n", *out)
	return nil
}

func newMasterKeys() epurse.MasterKeys {
	var m epurse.MasterKeys
	for _, k := range []*epurse.Key16{&m.DLK, &m.DPK, &m.DTK} {
		_, _ = rand.Read(k[:]) // never fails on Linux (crypto/rand doc)
	}
	return m
}

func cmdCardNew(args []string, stdout io.Writer) error {
	fs := pflag.NewFlagSet("cardsim card new", pflag.ContinueOnError)
	fs.SetOutput(stdout)
	fs.SortFlags = false
	out := fs.String("out", "", "card file to write (required)")
	number := fs.String("number", "3101000000000001", "card number: 8 to 16 digits for a campus card, 19 for a T-Union card")
	profile := fs.String("profile", "campus", "numbering and layout: campus (our own cards) or tunion (19 digits, T-Union AID, a second purse)")
	holder := fs.String("holder", "", "cardholder name (Chinese is fine: stored as GBK on the card)")
	balance := fs.String("balance", "0.00", "EP balance in yuan, like 100.00")
	start := fs.String("start", "", "first valid day, YYYY-MM-DD (default a year ago, so a --history lies within it)")
	expiry := fs.String("expiry", "", "last valid day, YYYY-MM-DD (default start + 4 years)")
	keys := fs.String("keys", "", "issuer master key file (from 'cardsim keys new'); default: new keys written to OUT.masters.json")
	history := fs.Int("history", 0, "make this many past transactions (loads and purchases) through the card's own commands, 0-50")
	force := fs.Bool("force", false, "overwrite an existing card file")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return usageError{errors.New("--out is required")}
	}
	if *history < 0 || *history > 50 {
		return usageError{fmt.Errorf("--history = %d: want 0 to 50", *history)}
	}
	fen, err := money.Parse(*balance)
	if err != nil || fen < 0 {
		return usageError{fmt.Errorf("--balance = %q: want a non-negative amount like 100.00", *balance)}
	}
	startDate, expiryDate := epurse.DateOf(time.Now().AddDate(-1, 0, 0)), epurse.Date{}
	if *start != "" {
		if startDate, err = epurse.ParseDateString(*start); err != nil {
			return usageError{fmt.Errorf("--start = %q: %v", *start, err)}
		}
	}
	if *expiry != "" {
		if expiryDate, err = epurse.ParseDateString(*expiry); err != nil {
			return usageError{fmt.Errorf("--expiry = %q: %v", *expiry, err)}
		}
	} else {
		expiryDate = epurse.DateOf(time.Date(startDate.Year+4, startDate.Month, startDate.Day, 0, 0, 0, 0, time.UTC))
	}
	if !*force {
		if _, err := os.Stat(*out); err == nil {
			return usageError{fmt.Errorf("%s exists; use --force to overwrite it", *out)}
		}
	}
	var masters epurse.MasterKeys
	keysOut := ""
	if *keys != "" {
		if masters, err = epurse.ReadMasterKeyFile(*keys); err != nil {
			return err
		}
	} else {
		masters = newMasterKeys()
		keysOut = strings.TrimSuffix(*out, filepath.Ext(*out)) + ".masters.json"
	}
	prof := epurse.ProfileNamed(*profile)
	if prof == nil || !slices.Contains(epursesim.IssuableProfiles, prof) {
		return usageError{fmt.Errorf("--profile = %q: want campus or tunion", *profile)}
	}
	f, err := epursesim.NewProfileCardFile(prof, *number, *holder, fen, startDate, expiryDate, masters)
	if err != nil {
		return usageError{err}
	}
	// Keys are written only for a card that will exist: a key file left by
	// a refused card would block the corrected command that follows.
	keyNote := ""
	if keysOut != "" {
		if err := epurse.WriteMasterKeyFile(keysOut, masters); err != nil {
			return err
		}
		keyNote = fmt.Sprintf(" (new issuer master keys in %s)", keysOut)
	}
	if err := f.Save(*out); err != nil {
		return err
	}
	if *history > 0 {
		card := epursesim.NewSimCard(f, *out)
		first := time.Now().UTC().Truncate(time.Second).Add(-time.Duration(*history) * epursesim.HistoryStep)
		if err := epursesim.SeedHistory(card, masters, [6]byte{0x00, 0x00, 0x00, 0x00, 0x10, 0x01}, *history, first); err != nil {
			return fmt.Errorf("making card history: %w", err)
		}
		f = card.File()
	}
	fmt.Fprintf(stdout, "wrote card %s: holder %q, EP balance %s, valid %s to %s, %d transactions, to %s%s\n",
		redact.CardNumber(f.Info.CardNumber), *holder, money.Format(f.EPBalance), startDate, expiryDate, len(f.Log), *out, keyNote)
	return nil
}

func cmdCardInsert(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := pflag.NewFlagSet("cardsim card", pflag.ContinueOnError)
	fs.SetOutput(stdout)
	fs.SortFlags = false
	file := fs.String("file", "", "card file (from 'cardsim card new'), required; every change the card makes is saved to it")
	slot := fs.Int("slot", 0, "vpcd slot: 0 is \"Virtual PCD 00 00\" on port 35963, 1 the next")
	hold := fs.Duration("hold", 0, "how long the card stays in the reader per tap; 0 holds it until SIGINT or SIGTERM")
	taps := fs.Int("taps", 1, "how many times to tap the card (hold, remove, wait --gap, again); 0 taps until signalled (needs --hold)")
	gap := fs.Duration("gap", time.Second, "time between taps, card out of the field")
	latency := fs.Duration("latency", 0, "delay before each answer; 15ms is a real card at 106 kbit/s")
	tearAfter := fs.Int("tear-after", 0, "pull the card while it answers its Nth APDU: the command takes effect, the answer is lost; 0 never")
	silentAfter := fs.Int("silent-after", 0, "go mute while answering the Nth APDU: the command takes effect, then the card answers nothing more but stays in the field (a hung card); 0 never")
	verbose := fs.Bool("verbose", false, "log each APDU (instruction, lengths and status word only)")
	if err := parse(fs, args); err != nil {
		return err
	}
	switch {
	case *file == "":
		return usageError{errors.New("--file is required")}
	case *slot < 0 || *slot > 15:
		return usageError{fmt.Errorf("--slot = %d: want 0 to 15", *slot)}
	case *hold < 0 || *gap < 0 || *latency < 0 || *tearAfter < 0 || *silentAfter < 0 || *taps < 0:
		return usageError{errors.New("--hold, --gap, --latency, --tear-after, --silent-after and --taps must not be negative")}
	case *hold == 0 && *taps != 1:
		return usageError{errors.New("--taps other than 1 needs --hold: a card held until signalled is tapped once")}
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	f, err := epursesim.LoadCardFile(*file)
	if err != nil {
		return err
	}
	card := epursesim.NewSimCard(f, *file)
	opt := vpcd.Options{Latency: *latency, TearAfter: *tearAfter, SilentAfter: *silentAfter, Logger: log}
	for i := 0; *taps == 0 || i < *taps; i++ {
		if i > 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(*gap):
			}
		}
		tctx, cancel := ctx, context.CancelFunc(func() {})
		if *hold > 0 {
			tctx, cancel = context.WithTimeout(ctx, *hold)
		}
		err := vpcd.Insert(tctx, vpcd.SlotAddr(*slot), card, opt)
		cancel()
		if errors.Is(err, vpcd.ErrTorn) {
			fmt.Fprintf(stdout, "card pulled while answering APDU %d\n", *tearAfter)
			return nil
		}
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
	}
	return nil
}

// cmdPrinter runs a virtual receipt printer until SIGINT or SIGTERM (ctx).
// SIGUSR1 toggles paper out, SIGUSR2 toggles the cover. Each state change
// and each receipt (printed or lost) is written to stdout.
func cmdPrinter(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := pflag.NewFlagSet("cardsim printer", pflag.ContinueOnError)
	fs.SetOutput(stdout)
	fs.SortFlags = false
	link := fs.String("link", "/tmp/cardd-printer", "symbolic link to the pty's slave side: the port cardd opens (\"\" makes none)")
	dir := fs.String("dir", "", "directory to write each receipt to, as receipt-0001.txt and on (default: none)")
	paperOut := fs.Bool("paper-out", false, "start out of paper (SIGUSR1 toggles)")
	coverOpen := fs.Bool("cover-open", false, "start with the cover open (SIGUSR2 toggles)")
	offline := fs.Bool("offline", false, "start offline (an automatically recoverable error)")
	silent := fs.Bool("silent", false, "never answer DLE EOT status queries, as on a one-way link")
	alwaysOffline := fs.Bool("always-offline", false, "answer every status query as offline, but print")
	baud := fs.Int("baud", 0, "pace reading to a serial line of this many baud, like 9600 or 115200; 0 does not pace")
	verbose := fs.Bool("verbose", false, "log each status query and receipt")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *baud < 0 {
		return usageError{fmt.Errorf("--baud = %d: want 0 or a positive rate", *baud)}
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	// Receipts are printed from the printer's goroutine, state changes from
	// this one.
	var mu sync.Mutex
	say := func(format string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(stdout, format, a...)
	}
	opt := sim.Options{
		Link:          *link,
		Dir:           *dir,
		Initial:       sim.State{PaperOut: *paperOut, CoverOpen: *coverOpen, Offline: *offline},
		Silent:        *silent,
		AlwaysOffline: *alwaysOffline,
		BaudDelay:     *baud,
		Logger:        log,
		OnReceipt: func(r sim.Receipt) {
			file := ""
			if *dir != "" {
				file = " " + filepath.Join(*dir, sim.FileName(r.Seq))
			}
			say("=== receipt %d, %d bytes%s\n%s", r.Seq, r.Bytes, file, r.Render())
		},
		OnLost: func(r sim.Receipt) {
			say("=== receipt LOST (received while the printer was not ready), %d bytes\n%s", r.Bytes, r.Render())
		},
	}
	p, err := sim.Open(opt)
	if err != nil {
		return err
	}
	defer p.Close()

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGUSR1, syscall.SIGUSR2)
	defer signal.Stop(sig)

	port := p.Path()
	if *link != "" {
		port = *link + " -> " + port
	}
	say("printer on %s, %s; kill -USR1 %d toggles paper out, kill -USR2 %d toggles the cover\n",
		port, p.State(), os.Getpid(), os.Getpid())
	for {
		select {
		case <-ctx.Done():
			st := p.Stats()
			say("stopping: %d printed, %d lost, %d status queries\n", st.Printed, st.Lost, st.StatusQueries)
			return nil
		case <-p.Done():
			if err := p.Err(); err != nil {
				return err
			}
			return errors.New("printer stopped")
		case s := <-sig:
			switch s {
			case syscall.SIGUSR1:
				p.SetPaperOut(!p.State().PaperOut)
			case syscall.SIGUSR2:
				p.SetCoverOpen(!p.State().CoverOpen)
			}
			say("state: %s\n", p.State())
		}
	}
}
