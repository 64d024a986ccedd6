package doctor

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"

	"github.com/cardd/cardd/internal/lockfile"
	"github.com/cardd/cardd/offline"
)

// schemaVersion reads the journal's PRAGMA user_version through a read-only
// connection, before offline.Open would migrate it. It uses the plain
// "sqlite3" driver that go-sqlite3 registers (package offline imports it).
func schemaVersion(ctx context.Context, path string) (int, error) {
	u := url.URL{Scheme: "file", Opaque: strings.NewReplacer("%", "%25", "?", "%3F", "#", "%23").Replace(path),
		RawQuery: "mode=ro&_busy_timeout=5000"}
	db, err := sql.Open("sqlite3", u.String())
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var v int
	err = db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v)
	return v, err
}

// checkStore opens the journal as the daemon does (which migrates an older
// schema, and refuses weak SQLite settings or a newer schema), and runs
// SQLite's quick_check through Store.Check.
func (r *run) checkStore(ctx context.Context) Result {
	path := storePath(r.cfg)
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return missingStore(r.cfg, path)
	}
	if err != nil {
		return fail(fmt.Sprintf("%s: %v", path, err), "check store.path and the permissions of its directory")
	}
	if st.IsDir() {
		return fail(fmt.Sprintf("store.path %s is a directory", path), "store.path names the journal's file, e.g. /var/lib/cardd/cardd.db")
	}
	want := offline.SchemaVersion()
	before, verr := schemaVersion(ctx, path)
	if verr == nil && before > want {
		return fail(fmt.Sprintf("%s has schema version %d, newer than this cardd understands (%d)", path, before, want),
			"run the cardd release that wrote it, or a newer one: an older cardd must not run on a newer journal")
	}
	s, err := offline.Open(path, r.cfg.Terminal.ID)
	if err != nil {
		return fail(fmt.Sprintf("cannot open %s: %s", path, oneLine(err.Error())),
			"the daemon's user must be able to write the file and its directory (ls -l); if SQLite says the file is damaged, stop cardd, keep a copy of the file with its -wal and -shm, and restore it: its unsent rows are money owed to the host")
	}
	defer s.Close()
	if err := s.Check(ctx); err != nil {
		return fail(fmt.Sprintf("%s: %s", path, oneLine(err.Error())),
			fmt.Sprintf("stop cardd and keep a copy of %s with its -wal and -shm before anything else: the unsent journal rows in it are money owed to the host; sqlite3 %s .recover can save what is readable", path, path))
	}
	detail := fmt.Sprintf("%s: schema version %d, quick_check ok, %s", path, want, size(st.Size()))
	if verr == nil && before < want {
		detail += fmt.Sprintf(" (migrated from version %d on opening, as cardd run would)", before)
	}
	if r.cfg.Printer.Enabled {
		if n, err := s.ReceiptsWaiting(ctx); err == nil {
			detail += fmt.Sprintf("; %d receipt(s) waiting to print", n)
		}
	}
	// A daemon holding the store is how it should be while cardd runs:
	// worth saying (a second daemon would exit 2), not a failure.
	if pid, held, err := lockfile.Holder(offline.LockPath(path)); err == nil && held {
		if pid > 0 {
			detail += fmt.Sprintf("; in use by the running cardd (pid %d)", pid)
		} else {
			detail += "; in use by a running cardd"
		}
	}
	return pass("%s", detail)
}

func size(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}
