package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"time"

	"github.com/spf13/pflag"

	"github.com/cardd/cardd/offline"
)

const journalUsage = "usage: cardd journal pending [--store PATH] [--config FILE] [--timeout D] [--verbose]"

// cmdJournal is `cardd journal pending`: how many records the host does not
// hold yet (offline.Owed's Total: journal rows not acknowledged, load
// completions, voids and closed shifts not yet reported), alone on a line;
// with --verbose the breakdown on stderr. The Debian package's removal asks
// it before a purge could delete the journal, which then keeps a copy and
// warns instead. It only reads (offline.OpenReadOnly): a removal must not
// migrate a journal the older cardd reinstalled after it would refuse. A
// store file that does not exist holds nothing: it prints 0 and is not
// created. Any failure, a newer schema included, exits non-zero, which
// makes the package keep the journal.
func cmdJournal(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "pending" {
		return usageErr(journalUsage)
	}
	var store string
	var verbose bool
	timeout := 30 * time.Second
	cfg, err := loadConfig("journal pending", args[1:], func(fs *pflag.FlagSet) {
		fs.StringVar(&store, "store", "", "the journal's SQLite file (default: the configuration's store.path)")
		fs.DurationVar(&timeout, "timeout", timeout, "give up (exit 1) after this long, waiting for a lock included")
		fs.BoolVarP(&verbose, "verbose", "v", false, "print what is owed, kind by kind, on stderr")
	})
	if err != nil {
		return err
	}
	if timeout <= 0 {
		return usageErr("--timeout %v: want a positive duration", timeout)
	}
	if store == "" {
		store = cfg.Store.Path
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	st, err := offline.OpenReadOnly(ctx, store, timeout)
	if errors.Is(err, fs.ErrNotExist) {
		if verbose {
			fmt.Fprintf(stderr, "%s: no such file: nothing owed\n", store)
		}
		_, err := fmt.Fprintln(stdout, 0)
		return err
	}
	if err != nil {
		return fmt.Errorf("journal %s: %w", store, err)
	}
	defer st.Close()
	owed, err := st.Owed(ctx)
	if err != nil {
		return fmt.Errorf("journal %s: %w", store, err)
	}
	if verbose {
		fmt.Fprintf(stderr, "%s: %v\n", store, owed)
	}
	_, err = fmt.Fprintln(stdout, owed.Total())
	return err
}
