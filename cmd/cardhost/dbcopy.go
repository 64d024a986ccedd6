package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/pflag"

	"github.com/cardd/cardd/host"
)

// dbCopy moves a host from its SQLite file up to PostgreSQL: the file
// --dir's host had (or --from), into the database --db (or $CARDHOST_DB)
// names, where cardhost serve then runs with the same --db. The host must
// be stopped: what it wrote after the copy would stay behind in the file.
type dbCopy struct {
	from string
	noCheck
}

func (c *dbCopy) flags(fs *pflag.FlagSet) {
	fs.StringVar(&c.from, "from", "", "the SQLite file to copy (default host.db in --dir)")
}

func (c *dbCopy) run(ctx context.Context, e *env) error {
	if e.db == "" {
		return usagef("--db is required (or $%s): the postgres:// URL of the new, empty database to copy into", DBEnv)
	}
	from := c.from
	if from == "" {
		from = filepath.Join(e.dir, host.DBFile)
	}
	if host.IsPostgresURL(from) {
		return usagef("--from = %q: want the SQLite file of the host to move", host.RedactURL(from))
	}
	// host.Open would make a missing file: a copy of nothing.
	if fi, err := os.Stat(from); err != nil || !fi.Mode().IsRegular() {
		if err == nil {
			err = errors.New("not a regular file")
		}
		return usagef("--from = %q: %v", from, err)
	}
	// Asked before this process opens the file (see SQLiteHolder).
	if pid, err := host.SQLiteHolder(from); err != nil {
		return fmt.Errorf("--from = %q: %w", from, err)
	} else if pid != 0 {
		return fmt.Errorf("%s is open in process %d (a cardhost serve?): stop it first, or what it writes after the copy is lost", from, pid)
	}
	src, err := host.Open(from)
	if err != nil {
		return usagef("--from = %q: %v", from, err)
	}
	defer src.Close()
	dst, err := openStore(e.dir, e.db)
	if err != nil {
		return err
	}
	defer dst.Close()
	report, err := host.CopyStore(ctx, src, dst, host.CopyOptions{})
	if report != nil {
		report.Write(e.stdout)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "copied %s to %s and checked it; run cardhost with --db (or $%s) set to it from now on, and no host on %s again\n", src.Path(), dst.Path(), DBEnv, src.Path())
	return nil
}
