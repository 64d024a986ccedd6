package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/pflag"

	"github.com/cardd/cardd/apdu/mifare"
	mifaresim "github.com/cardd/cardd/apdu/mifare/sim"
	"github.com/cardd/cardd/internal/atomicfile"
	"github.com/cardd/cardd/money"
	"github.com/cardd/cardd/reader/vpcd"
)

// cmdM1Keys writes a wallet key file with random keys A and B: what a
// campus gives its POS terminals (mifare.key_file) and its card issuing.
func cmdM1Keys(args []string, stdout io.Writer) error {
	fs := pflag.NewFlagSet("cardsim m1 keys", pflag.ContinueOnError)
	fs.SetOutput(stdout)
	fs.SortFlags = false
	out := fs.String("out", "", "wallet key file to write (mode 0600), required")
	sector := fs.Int("sector", 1, "the wallet's sector, 1..15; the value block is its first block, the backup its second")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return usageError{errors.New("--out is required")}
	}
	if *sector < 1 || *sector > 15 {
		return usageError{fmt.Errorf("--sector = %d: want 1 to 15", *sector)}
	}
	if _, err := os.Stat(*out); err == nil {
		return usageError{fmt.Errorf("%s exists; not overwriting wallet keys (cards written with them would become unreadable)", *out)}
	}
	f := mifare.WalletFile{Sector: byte(*sector), ValueBlock: byte(*sector * 4), BackupBlock: byte(*sector*4 + 1)}
	for _, k := range []*mifare.Key{&f.KeyA, &f.KeyB} {
		if _, err := rand.Read(k[:]); err != nil {
			return err
		}
	}
	if err := atomicfile.WriteJSON(*out, f, 0o600); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wallet keys %s: sector %d, value block %d, backup %d\n", *out, f.Sector, f.ValueBlock, f.BackupBlock)
	return nil
}

// cmdM1New issues a simulated MIFARE Classic 1K card with a wallet.
func cmdM1New(args []string, stdout io.Writer) error {
	fs := pflag.NewFlagSet("cardsim m1 new", pflag.ContinueOnError)
	fs.SetOutput(stdout)
	fs.SortFlags = false
	out := fs.String("out", "", "card file to write (mode 0600), required")
	keys := fs.String("keys", "", "wallet key file (from 'cardsim m1 keys'), required")
	uid := fs.String("uid", "", "the card's 4-byte UID, 8 hex digits (default random)")
	balance := fs.String("balance", "0.00", "the wallet's balance in yuan")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *out == "" || *keys == "" {
		return usageError{errors.New("--out and --keys are required")}
	}
	fen, err := money.Parse(*balance)
	if err != nil || fen < 0 || fen > mifare.MaxBalance {
		return usageError{fmt.Errorf("--balance = %q: want an amount like 50.00", *balance)}
	}
	var id [4]byte
	if *uid == "" {
		if _, err := rand.Read(id[:]); err != nil {
			return err
		}
	} else if b, err := hex.DecodeString(*uid); err != nil || len(b) != 4 {
		return usageError{fmt.Errorf("--uid = %q: want 8 hex digits", *uid)}
	} else {
		copy(id[:], b)
	}
	kb, err := os.ReadFile(*keys)
	if err != nil {
		return err
	}
	w, err := mifare.ParseWalletFile(kb, mifare.KeySlotsACS)
	if err != nil {
		return err
	}
	f, err := mifaresim.NewCardFile(id, w, fen)
	if err != nil {
		return err
	}
	if err := f.Save(*out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "M1 card %s: UID %X, wallet %s\n", *out, id, money.Format(fen))
	return nil
}

// cmdM1Insert holds a simulated M1 card in a vpcd slot, optionally tearing
// one of its block writes.
func cmdM1Insert(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := pflag.NewFlagSet("cardsim m1", pflag.ContinueOnError)
	fs.SetOutput(stdout)
	fs.SortFlags = false
	file := fs.String("file", "", "card file (from 'cardsim m1 new'), required; every write is saved to it")
	slot := fs.Int("slot", 0, "vpcd slot")
	hold := fs.Duration("hold", 0, "how long the card stays in; 0 until SIGINT or SIGTERM")
	tearWrite := fs.Int("tear-write", 0, "tear the Nth block write: the card leaves while writing; 0 never")
	tearMode := fs.String("tear-mode", "corrupt", "what a torn write leaves: corrupt (half written), old or new")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *file == "" {
		return usageError{errors.New("--file is required")}
	}
	modes := map[string]mifaresim.TearMode{"corrupt": mifaresim.TearCorrupt, "old": mifaresim.TearNotWritten, "new": mifaresim.TearWritten}
	mode, ok := modes[*tearMode]
	if !ok {
		return usageError{fmt.Errorf("--tear-mode = %q: want corrupt, old or new", *tearMode)}
	}
	if *slot < 0 || *slot > 15 || *hold < 0 || *tearWrite < 0 {
		return usageError{errors.New("--slot is 0 to 15; --hold and --tear-write must not be negative")}
	}
	f, err := mifaresim.LoadCardFile(*file)
	if err != nil {
		return err
	}
	card := mifaresim.NewSimCard(f, *file)
	if *tearWrite > 0 {
		card.TearNextWriteAt(*tearWrite, mode)
	}
	if *hold > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *hold)
		defer cancel()
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	fmt.Fprintf(stdout, "M1 card %X in slot %d\n", f.UID, *slot)
	start := time.Now()
	err = vpcd.Insert(ctx, vpcd.SlotAddr(*slot), card, vpcd.Options{Logger: log})
	if errors.Is(err, vpcd.ErrTorn) {
		fmt.Fprintf(stdout, "card pulled while writing a block, after %v\n", time.Since(start).Round(time.Millisecond))
		return nil
	}
	if ctx.Err() != nil {
		return nil
	}
	return err
}
