package offline

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	sqlite3 "github.com/mattn/go-sqlite3"

	"github.com/cardd/cardd/internal/lockfile"
)

// Errors callers test for with errors.Is.
var (
	// ErrNotFound is wrapped when the journal row asked for does not exist.
	ErrNotFound = errors.New("not found")
	// ErrFinal is wrapped when a done or failed journal row would be
	// changed: those outcomes came from the card and are never rewritten;
	// and when a receipt is not in the state a move starts from.
	ErrFinal = errors.New("row is final")
)

// driverName is our own registration of the SQLite driver, with a hook that
// checks the pragmas of every connection database/sql opens, not just the
// first: the pool opens new connections whenever it likes.
const driverName = "cardd-offline-sqlite3"

func init() {
	sql.Register(driverName, &sqlite3.SQLiteDriver{ConnectHook: checkConn})
}

// Pragma floors. synchronous: 2 is FULL, 3 is EXTRA; 1 (NORMAL, the driver's
// default in WAL mode) may lose the newest commits on power loss.
const (
	minSynchronous = 2
	minBusyTimeout = 1000 // ms: a second process (an operator subcommand) may hold the write lock briefly
	busyTimeoutMS  = 5000
	// maxConns bounds the pool: WAL lets readers run beside the one writer,
	// and writes are serialized by Store.wsem anyway, so a few are plenty.
	maxConns = 4
)

// dsnParams are the driver settings; the key names are mattn/go-sqlite3's
// (_sync, _journal, _busy_timeout, _txlock, _fk); it ignores keys it does not
// know, hence the read-back in checkConn. _txlock=immediate makes every
// transaction take the write lock at BEGIN, so two writers wait for each
// other through the busy timeout instead of one failing with "database is
// locked" when it upgrades a read lock.
var dsnParams = fmt.Sprintf("_sync=FULL&_journal=WAL&_busy_timeout=%d&_txlock=immediate&_fk=1", busyTimeoutMS)

// DSN returns the data source name Open uses for the file at path.
func DSN(path string) string {
	return "file:" + escapeURIPath(path) + "?" + dsnParams
}

// escapeURIPath escapes the characters that would end or corrupt the path
// part of an SQLite file: URI. The driver splits its own settings off at the
// first '?', and SQLite decodes %XX.
func escapeURIPath(p string) string {
	r := strings.NewReplacer("%", "%25", "?", "%3F", "#", "%23")
	return r.Replace(filepath.ToSlash(p))
}

// Store is the open database. Its methods are safe for concurrent use.
type Store struct {
	db       *sql.DB
	path     string
	terminal string
	// wsem serializes this process's write transactions in Go, where
	// waiting honours ctx and is first come first served, rather than in
	// SQLite's busy handler, which sleeps in growing steps. The busy timeout
	// still covers writers in other processes.
	wsem chan struct{}
	now  func() time.Time // the clock; tests move it
}

// Open opens (creating if needed) the store at path for the terminal whose
// 6-byte e-purse id is terminalID in 12 hex digits; it prefixes the ids of
// new journal rows. The directory is created with mode 0700 when missing; the
// database file and its -wal and -shm siblings get mode 0600, since they hold
// card numbers. Open refuses a database whose effective pragmas are weaker
// than synchronous=FULL, journal_mode=WAL, busy_timeout>=1000 ms and
// foreign_keys=on, and a database written by a newer cardd.
func Open(path, terminalID string) (*Store, error) {
	term, err := normTerminal(terminalID)
	if err != nil {
		return nil, err
	}
	if path == "" {
		return nil, errors.New("offline: open: empty database path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("offline: open %s: %w", path, err)
	}
	if err := prepareFile(abs); err != nil {
		return nil, err
	}
	s, err := openDSN(DSN(abs))
	if err != nil {
		return nil, err
	}
	s.path, s.terminal = abs, term
	// SQLite creates -wal and -shm with the database file's mode; set it
	// anyway in case they were left behind by something else. Not on
	// Windows: there the mode is only the read-only bit, ACLs keep others
	// out, and setting it on the -shm SQLite holds is a sharing violation.
	if runtime.GOOS == "windows" {
		return s, nil
	}
	for _, suffix := range []string{"-wal", "-shm"} {
		if err := os.Chmod(abs+suffix, 0o600); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.db.Close()
			return nil, fmt.Errorf("offline: open %s: %w", abs, err)
		}
	}
	return s, nil
}

// prepareFile makes the directory (0700) and the file (0600) before SQLite
// sees them, so the file is never, even briefly, readable by others.
func prepareFile(path string) error {
	if err := prepareDir(path); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("offline: create database file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("offline: create database file: %w", err)
	}
	// An existing file keeps its mode through O_CREATE: tighten it.
	if err := os.Chmod(path, 0o600); err != nil {
		return fmt.Errorf("offline: database file mode: %w", err)
	}
	return nil
}

// prepareDir makes the directory of the database at path (0700) when it is
// missing.
func prepareDir(path string) error {
	dir := filepath.Dir(path)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("offline: create directory for the database: %w", err)
		}
	}
	return nil
}

// LockPath is the lock file beside the store at path, held by the one
// process that runs on the store (the daemon).
func LockPath(path string) string { return path + ".lock" }

// Lock takes the lock of the store at path without waiting, making its
// directory (0700) when missing. The daemon holds it while it runs: it
// settles the rows an earlier run left in intent and owns the files beside
// the store, so a second daemon would take the first one's rows in flight
// for interrupted ones. It returns a *lockfile.HeldError, naming the
// holder's pid, when another process holds it. Commands that only add to
// the store (a receipt to print) open it beside the daemon without it.
func Lock(path string) (*lockfile.Lock, error) {
	if err := prepareDir(path); err != nil {
		return nil, err
	}
	return lockfile.Acquire(LockPath(path))
}

// openDSN opens the database behind dsn, checks its settings and migrates it.
// Open uses it with DSN(path); tests use it with weaker settings to see the
// refusal.
func openDSN(dsn string) (*Store, error) { return openDriver(driverName, dsn) }

// openDriver is openDSN through a registered driver of the caller's choice:
// the query plan test records every statement the store sends.
func openDriver(driver, dsn string) (*Store, error) {
	name, q := splitDSN(dsn)
	// _txlock cannot be read back from SQLite: check what we ask for.
	if lock := q.Get("_txlock"); !strings.EqualFold(lock, "immediate") && !strings.EqualFold(lock, "exclusive") {
		return nil, fmt.Errorf("offline: refusing to open %s: _txlock is %q, want immediate: deferred transactions fail with \"database is locked\" instead of waiting", name, lock)
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return nil, fmt.Errorf("offline: open %s: %w", name, err)
	}
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	s := &Store{db: db, wsem: make(chan struct{}, 1), now: time.Now}
	ctx := context.Background()
	// A connection from the pool runs checkConn; take one now so that a
	// weak setting fails Open instead of the first tap.
	conn, err := db.Conn(ctx)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("offline: refusing to open %s: %w", name, err)
	}
	conn.Close()
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// splitDSN returns the file a DSN names, for messages, and its settings.
func splitDSN(dsn string) (string, url.Values) {
	name, q, _ := strings.Cut(dsn, "?")
	v, _ := url.ParseQuery(q)
	if p, err := url.PathUnescape(strings.TrimPrefix(name, "file:")); err == nil {
		name = p
	}
	return name, v
}

// checkConn reads the effective pragmas of a new connection back and refuses
// it when any is weaker than the journal needs.
func checkConn(c *sqlite3.SQLiteConn) error {
	num := func(name string) (int64, error) {
		v, err := pragma(c, name)
		if err != nil {
			return 0, err
		}
		n, ok := v.(int64)
		if !ok {
			return 0, fmt.Errorf("PRAGMA %s: unexpected value %v", name, v)
		}
		return n, nil
	}
	if n, err := num("synchronous"); err != nil {
		return err
	} else if n < minSynchronous {
		return fmt.Errorf("PRAGMA synchronous is %d (%s), want 2 (FULL) or 3 (EXTRA): a committed journal row could be lost on power loss", n, syncName(n))
	}
	v, err := pragma(c, "journal_mode")
	if err != nil {
		return err
	}
	if mode := fmt.Sprint(asString(v)); !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("PRAGMA journal_mode is %q, want \"wal\"", mode)
	}
	if n, err := num("busy_timeout"); err != nil {
		return err
	} else if n < minBusyTimeout {
		return fmt.Errorf("PRAGMA busy_timeout is %d ms, want at least %d: a writer would fail instead of waiting", n, minBusyTimeout)
	}
	if n, err := num("foreign_keys"); err != nil {
		return err
	} else if n != 1 {
		return fmt.Errorf("PRAGMA foreign_keys is %d, want 1", n)
	}
	return nil
}

func syncName(n int64) string {
	switch n {
	case 0:
		return "OFF"
	case 1:
		return "NORMAL"
	case 2:
		return "FULL"
	case 3:
		return "EXTRA"
	}
	return "?"
}

func asString(v driver.Value) string {
	if b, ok := v.([]byte); ok {
		return string(b)
	}
	return fmt.Sprint(v)
}

// pragma reads one pragma's value through the driver's own connection.
func pragma(c *sqlite3.SQLiteConn, name string) (driver.Value, error) {
	rows, err := c.Query("PRAGMA "+name, nil)
	if err != nil {
		return nil, fmt.Errorf("PRAGMA %s: %w", name, err)
	}
	defer rows.Close()
	dest := make([]driver.Value, len(rows.Columns()))
	if len(dest) != 1 {
		return nil, fmt.Errorf("PRAGMA %s: %d columns", name, len(dest))
	}
	if err := rows.Next(dest); err != nil {
		if err == io.EOF {
			return nil, fmt.Errorf("PRAGMA %s: no value", name)
		}
		return nil, fmt.Errorf("PRAGMA %s: %w", name, err)
	}
	return dest[0], nil
}

// Path is the absolute path of the database file.
func (s *Store) Path() string { return s.path }

// TerminalID is the terminal id new journal rows are prefixed with.
func (s *Store) TerminalID() string { return s.terminal }

// Close closes the database. Every commit that returned is already on disk;
// Close only releases the file.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("offline: close: %w", err)
	}
	return nil
}

// Check runs SQLite's quick_check, for the doctor: nil means the file is
// sound; otherwise the error lists what SQLite found.
func (s *Store) Check(ctx context.Context) error {
	rows, err := s.db.QueryContext(ctx, "PRAGMA quick_check")
	if err != nil {
		return fmt.Errorf("offline: quick_check: %w", err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var msg string
		if err := rows.Scan(&msg); err != nil {
			return fmt.Errorf("offline: quick_check: %w", err)
		}
		if msg != "ok" {
			problems = append(problems, msg)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("offline: quick_check: %w", err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("offline: quick_check found %d problem(s): %s", len(problems), strings.Join(problems, "; "))
	}
	return nil
}

// write runs fn in one immediate transaction and commits it; the commit is
// durable when write returns nil. what names the operation in errors.
func (s *Store) write(ctx context.Context, what string, fn func(tx *sql.Tx) error) error {
	select {
	case s.wsem <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("offline: %s: %w", what, ctx.Err())
	}
	defer func() { <-s.wsem }()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("offline: %s: begin transaction: %w", what, err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return fmt.Errorf("offline: %s: %w", what, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("offline: %s: commit: %w", what, err)
	}
	return nil
}

// normTerminal checks a terminal id and returns it in upper case, the form
// hex travels in (hostapi), so "0102030405a6" and "0102030405A6" name the
// same terminal in row ids.
func normTerminal(id string) (string, error) {
	if len(id) != 12 {
		return "", fmt.Errorf("offline: terminal id %q: want 12 hex digits", id)
	}
	for _, c := range id {
		if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
			return "", fmt.Errorf("offline: terminal id %q: want 12 hex digits", id)
		}
	}
	return strings.ToUpper(id), nil
}
