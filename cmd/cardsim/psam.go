package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/spf13/pflag"

	"github.com/cardd/cardd/apdu/psam"
	psamsim "github.com/cardd/cardd/apdu/psam/sim"
	"github.com/cardd/cardd/reader/vpcd"
)

// cmdPSAMNew writes a PSAM file: the purchase master key from the issuer's
// key file (as a card issuer personalises its PSAMs) and a terminal id.
func cmdPSAMNew(args []string, stdout io.Writer) error {
	fs := pflag.NewFlagSet("cardsim psam new", pflag.ContinueOnError)
	fs.SetOutput(stdout)
	fs.SortFlags = false
	keys := fs.String("keys", "", "issuer master key file (from 'cardsim keys new' or 'cardhost init'), required")
	term := fs.String("terminal", "000000000001", "the PSAM's terminal id, 12 hex digits: it goes into every purchase's MAC1 and TAC")
	out := fs.String("out", "", "PSAM file to write (mode 0600), required")
	force := fs.Bool("force", false, "overwrite an existing file")
	app := fs.String("app", "1001", "file id of the purchase application, 4 hex digits (8011 plays a transport-ministry PSAM)")
	keyIndex := fs.Int("key-index", 1, "purchase key index in the application's EF 0x17 (1-255)")
	div := fs.String("diversification", "one", "the purchase key's diversification: one, or two levels by issuer or city code")
	code := fs.Bool("security-code", false, "need the card's security code (80 CA 00 00 09) before INIT SAM FOR PURCHASE")
	if err := parse(fs, args); err != nil {
		return err
	}
	appID, err := hex.DecodeString(*app)
	if err != nil || len(appID) != 2 || (appID[0] == 0 && appID[1] == 0) || (appID[0] == 0x3F && appID[1] == 0) {
		return usageError{fmt.Errorf("--app = %q: want a file id of 4 hex digits, not 0000 or 3F00", *app)}
	}
	if *keyIndex < 1 || *keyIndex > 255 {
		return usageError{fmt.Errorf("--key-index = %d: want 1 to 255", *keyIndex)}
	}
	d, err := psam.ParseDiversification(*div)
	if err != nil {
		return usageError{fmt.Errorf("--diversification = %q: want one, issuer or city", *div)}
	}
	if *keys == "" || *out == "" {
		return usageError{errors.New("--keys and --out are required")}
	}
	b, err := hex.DecodeString(*term)
	if err != nil || len(b) != 6 {
		return usageError{fmt.Errorf("--terminal = %q: want 12 hex digits", *term)}
	}
	if _, err := os.Stat(*out); err == nil && !*force {
		return usageError{fmt.Errorf("%s exists; use --force to overwrite it", *out)}
	}
	var id [6]byte
	copy(id[:], b)
	f, err := psamsim.NewSAMFileFromKeyFile(*keys, id)
	if err != nil {
		return err
	}
	f.AppFileID = uint16(appID[0])<<8 | uint16(appID[1])
	f.KeyIndex, f.Diversification, f.SecurityCode = byte(*keyIndex), d, *code
	if err := f.Save(*out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "PSAM file %s: terminal %X, purchase key from %s, application %04X, key index %d, diversification %s, security code %v\n",
		*out, id, *keys, f.AppFileID, f.KeyIndex, d, *code)
	return nil
}

// cmdPSAMInsert puts the PSAM into a vpcd slot (slot 1, the SAM slot of the
// reader pair, by default) until SIGINT or SIGTERM. The card side answers
// 61xx like a contact SAM; each MAC1's serial is saved before it answers.
func cmdPSAMInsert(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := pflag.NewFlagSet("cardsim psam", pflag.ContinueOnError)
	fs.SetOutput(stdout)
	fs.SortFlags = false
	file := fs.String("file", "", "PSAM file (from 'cardsim psam new'), required")
	slot := fs.Int("slot", 1, "vpcd slot: 1 is \"Virtual PCD 00 01\" on port 35964")
	verbose := fs.Bool("verbose", false, "log each APDU (instruction, lengths and status word only)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *file == "" {
		return usageError{errors.New("--file is required")}
	}
	if *slot < 0 || *slot > 15 {
		return usageError{fmt.Errorf("--slot = %d: want 0 to 15", *slot)}
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	sam, err := psamsim.LoadSimPSAM(*file)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "PSAM %X in slot %d\n", sam.File().TerminalID, *slot)
	err = vpcd.Insert(ctx, vpcd.SlotAddr(*slot), sam, vpcd.Options{Logger: log})
	if ctx.Err() != nil {
		return nil
	}
	return err
}
