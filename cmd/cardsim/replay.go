package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/spf13/pflag"

	"github.com/cardd/cardd/apdu/trace"
	"github.com/cardd/cardd/reader/vpcd"
)

// cmdReplay plays a trace file (docs/trace.md) as a card in a vpcd slot
// until SIGINT or SIGTERM, or for --hold: a card an integrator dumped
// answers cardd as it answered there.
func cmdReplay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := pflag.NewFlagSet("cardsim replay", pflag.ContinueOnError)
	fs.SetOutput(stdout)
	fs.SortFlags = false
	file := fs.String("trace", "", "trace file (from 'cardd dump' or the corpus), required")
	slot := fs.Int("slot", 0, "vpcd slot: 0 is \"Virtual PCD 00 00\" on port 35963, 1 the next")
	hold := fs.Duration("hold", 0, "how long the card stays in the reader; 0 holds it until SIGINT or SIGTERM")
	verbose := fs.Bool("verbose", false, "log each APDU (instruction, lengths and status word only)")
	if err := parse(fs, args); err != nil {
		return err
	}
	switch {
	case *file == "":
		return usageError{errors.New("--trace is required")}
	case *slot < 0 || *slot > 15:
		return usageError{fmt.Errorf("--slot = %d: want 0 to 15", *slot)}
	case *hold < 0:
		return usageError{fmt.Errorf("--hold = %v: must not be negative", *hold)}
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	f, err := os.Open(*file)
	if err != nil {
		return err
	}
	tr, err := trace.Parse(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("%s: %w", *file, err)
	}
	card := trace.NewCard(tr)
	card.OnMiss = func(cmd, answer []byte) {
		// What the trace lacks is what a developer needs to see; a VERIFY's
		// data is a PIN, so only its header is shown.
		shown := cmd
		if len(cmd) > 4 && cmd[1] == 0x20 {
			shown = cmd[:4]
		}
		log.Info("command not in the trace", "command", fmt.Sprintf("%X", shown), "answered", fmt.Sprintf("%X", answer))
	}
	src, _ := tr.Get("source")
	fmt.Fprintf(stdout, "replaying %s (%d exchanges; source: %s) in slot %d\n", *file, len(tr.Exchanges), src, *slot)
	if *hold > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *hold)
		defer cancel()
	}
	err = vpcd.Insert(ctx, vpcd.SlotAddr(*slot), card, vpcd.Options{Logger: log})
	if ctx.Err() != nil {
		return nil
	}
	return err
}
