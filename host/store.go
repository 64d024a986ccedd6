package host

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "github.com/mattn/go-sqlite3" // the "sqlite3" database/sql driver
)

// Store is the host's SQLite database: terminals and their secrets, cards,
// credits and their authorizations, the deny list, the change feed the
// terminals pull, uploaded journal rows, spent nonces and the ledger.
// It is safe for concurrent use; every rule that reads and then writes runs
// in one IMMEDIATE transaction, so two requests cannot both see a credit
// pending and both authorize it.
type Store struct {
	db   *sql.DB
	path string
	feed *feed // wakes the pulls held on this Store
}

// dsnOptions are the go-sqlite3 connection parameters (key names from the
// driver's sqlite3.go): durability first (money rule 2 applies at the host
// too), a write lock taken at BEGIN so read-then-write rules never deadlock
// into SQLITE_BUSY halfway, and foreign keys enforced. _sync is parsed after
// _journal by the driver, so FULL wins over the NORMAL that WAL implies.
const dsnOptions = "_sync=FULL&_journal=WAL&_busy_timeout=5000&_txlock=immediate&_fk=1"

// Open opens the database at path, creating it with mode 0600 when it does
// not exist, checks that SQLite really runs with synchronous=FULL and WAL,
// and brings the schema up to date. A database readable by group or others
// is refused: it holds every terminal's secret.
func Open(path string) (*Store, error) { return openDriver("sqlite3", path) }

// openDriver is Open with the database/sql driver registered as driver: a
// test opens the store through a driver that records its statements.
func openDriver(driver, path string) (*Store, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("database %s: %w", path, err)
	}
	if err := ensurePrivateFile(abs); err != nil {
		return nil, err
	}
	// The driver passes a file: DSN to SQLite as a URI, so the path is
	// escaped: a '?' or '#' in a directory name must not start the query.
	dsn := "file:" + (&url.URL{Path: abs}).EscapedPath() + "?" + dsnOptions
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return nil, fmt.Errorf("database %s: %w", path, err)
	}
	s := &Store{db: db, path: abs, feed: newFeed(db)}
	if err := s.checkPragmas(); err != nil {
		db.Close()
		return nil, fmt.Errorf("database %s: %w", path, err)
	}
	if err := s.migrate(); err != nil {
		db.Close()
		return nil, fmt.Errorf("database %s: %w", path, err)
	}
	return s, nil
}

// ensurePrivateFile creates path with mode 0600 if it is missing, so SQLite
// (which copies the database's mode to its -wal and -shm files) never makes
// it world-readable under a lax umask, and refuses an existing one that
// group or others may read.
func ensurePrivateFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("database: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("database: %w", err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("database %s is not a regular file", path)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("database %s has mode %04o, readable by group or others (it holds terminal secrets): run chmod 600 %s", path, perm, path)
	}
	return nil
}

// checkPragmas reads back what the DSN asked for. A driver that silently
// ignored a parameter would otherwise leave the host with a weaker
// durability than it promises.
func (s *Store) checkPragmas() error {
	var mode string
	if err := s.db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil {
		return fmt.Errorf("reading journal_mode: %w", err)
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("journal_mode is %q, want wal", mode)
	}
	var syncMode int
	if err := s.db.QueryRow("PRAGMA synchronous").Scan(&syncMode); err != nil {
		return fmt.Errorf("reading synchronous: %w", err)
	}
	if syncMode < 2 { // 2 FULL, 3 EXTRA
		return fmt.Errorf("synchronous is %d, want 2 (FULL) or more", syncMode)
	}
	var fk int
	if err := s.db.QueryRow("PRAGMA foreign_keys").Scan(&fk); err != nil {
		return fmt.Errorf("reading foreign_keys: %w", err)
	}
	if fk != 1 {
		return errors.New("foreign_keys is off")
	}
	return nil
}

// Path returns the absolute path of the database file.
func (s *Store) Path() string { return s.path }

// Close ends the pulls held on the store and closes the database.
func (s *Store) Close() error {
	s.feed.shut()
	return s.db.Close()
}

// inTx runs fn in one transaction (IMMEDIATE, from the DSN) and commits when
// it returns nil; any error rolls everything back, which is how a refused
// request leaves nothing behind.
func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	// Any commit may have added to the change feed: a held pull hears of
	// it now rather than at the watcher's next tick.
	s.feed.poke()
	return nil
}

// timeLayout is how the store writes instants: UTC with a fixed width, so
// that the text sorts as the time does.
const timeLayout = "2006-01-02T15:04:05.000000Z"

func dbTime(t time.Time) string { return t.UTC().Format(timeLayout) }

// parseDBTime reads what dbTime wrote; the zero time for "" (a NULL).
func parseDBTime(s string) time.Time {
	t, err := time.Parse(timeLayout, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

// rfc3339 renders a stored instant for the wire ("" stays "").
func rfc3339(s string) string {
	if s == "" {
		return ""
	}
	return parseDBTime(s).Format(time.RFC3339)
}
