package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/spf13/pflag"

	"github.com/cardd/cardd/offline"
)

// cmdJournal is `cardd journal pending`: the number of journal rows the host
// does not hold yet (offline.Store.NotAcked), alone on a line. The Debian
// package's removal asks it before the journal could be deleted by a purge,
// which then keeps a copy and warns instead. A store file that does not
// exist holds no rows: it prints 0 and is not created.
func cmdJournal(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "pending" {
		return usageErr("usage: cardd journal pending [--store PATH] [--config FILE]")
	}
	var store string
	cfg, err := loadConfig("journal pending", args[1:], func(fs *pflag.FlagSet) {
		fs.StringVar(&store, "store", "", "the journal's SQLite file (default: the configuration's store.path)")
	})
	if err != nil {
		return err
	}
	if store == "" {
		store = cfg.Store.Path
	}
	if _, err := os.Stat(store); errors.Is(err, fs.ErrNotExist) {
		_, err := fmt.Fprintln(stdout, 0)
		return err
	} else if err != nil {
		return fmt.Errorf("journal %s: %w", store, err)
	}
	st, err := offline.Open(store, cfg.Terminal.ID)
	if err != nil {
		return err
	}
	defer st.Close()
	n, err := st.NotAcked(ctx)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, n)
	return err
}
