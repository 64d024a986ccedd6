package host

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	gosync "sync"
	"time"

	_ "github.com/mattn/go-sqlite3" // the "sqlite3" database/sql driver
)

// Store is the host's database: terminals and their secrets, cards,
// credits and their authorizations, the deny list, the change feed the
// terminals pull, uploaded journal rows, spent nonces and the ledger.
// It lives in an SQLite file (the default: one machine) or in PostgreSQL
// (any number of host processes on one database); the rules above it are
// the same text for both. It is safe for concurrent use; every rule that
// reads and then writes runs in one transaction that no other can
// interleave with (IMMEDIATE on SQLite, SERIALIZABLE on PostgreSQL), so
// two requests cannot both see a credit pending and both authorize it.
type Store struct {
	db       *sql.DB
	path     string // the SQLite file, or the PostgreSQL URL without its password
	postgres bool
	feed     *feed // wakes the pulls held on this Store

	cards turns // rules on one lock (a card, a terminal) in this process, one at a time (PostgreSQL)

	purgeMu   gosync.Mutex
	lastPurge time.Time // when this process last deleted stale nonces

	// rehearse, set by tests, runs every transaction's function once and
	// rolls it back before the attempt that counts: each rule is then
	// shown to be safe to run again after a serialization failure.
	rehearse bool
}

// dsnOptions are the go-sqlite3 connection parameters (key names from the
// driver's sqlite3.go): durability first (money rule 2 applies at the host
// too), a write lock taken at BEGIN so read-then-write rules never deadlock
// into SQLITE_BUSY halfway, and foreign keys enforced. _sync is parsed after
// _journal by the driver, so FULL wins over the NORMAL that WAL implies.
const dsnOptions = "_sync=FULL&_journal=WAL&_busy_timeout=5000&_txlock=immediate&_fk=1"

// Open opens the host store dsn names: a PostgreSQL database for a
// postgres:// or postgresql:// URL, otherwise the SQLite file at that path.
// Either way the schema is brought up to date.
//
// An SQLite file is created with mode 0600 when it does not exist, and
// SQLite is checked to really run with synchronous=FULL and WAL. A file
// readable by group or others is refused: it holds every terminal's secret.
func Open(dsn string) (*Store, error) {
	if IsPostgresURL(dsn) {
		return openPostgres(dsn)
	}
	return openDriver("sqlite3", dsn)
}

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
	// Windows keeps others out with ACLs; its mode bits say only read-only
	// or not (as config.ReadSecretFile).
	if perm := st.Mode().Perm(); runtime.GOOS != "windows" && perm&0o077 != 0 {
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

// Path returns the absolute path of the SQLite file, or the PostgreSQL URL
// without its password.
func (s *Store) Path() string { return s.path }

// Postgres reports whether the store is a PostgreSQL database.
func (s *Store) Postgres() bool { return s.postgres }

// Close ends the pulls held on the store and closes the database.
func (s *Store) Close() error {
	s.feed.shut()
	return s.db.Close()
}

// inTx runs fn in one transaction and commits when it returns nil; any
// error rolls everything back, which is how a refused request leaves
// nothing behind. On PostgreSQL a transaction aborted only by a concurrent
// one (see retryable) is run again from the start, so fn must set every
// result it hands out of the transaction anew on each call.
func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return s.runTx(ctx, "", fn)
}

// inCardTx is inTx for a rule that reads and writes one card's money rows
// (its credits' states, authorizations, purse counters and M1 loads):
// loading, completing, proving a load not applied, cancelling a credit,
// settling an M1 load. Terminals race for one card through different
// instances. On PostgreSQL every such rule first takes the card's session
// advisory lock (before BEGIN, so the snapshot is taken after the wait)
// and then runs at REPEATABLE READ: the lock already puts the rules of
// one card in a single line, so they need no SERIALIZABLE, whose
// conflict tracking by index page and table (not by card) aborted
// transactions of different cards against each other: at 200 loads a
// second most of them were aborted and run again several times.
// The rules of one process on one lock first take turns among themselves
// (Store.cards), so the waiters of a busy card hold no connection the rest
// of the fleet needs.
func (s *Store) inCardTx(ctx context.Context, card string, fn func(tx *sql.Tx) error) error {
	return s.runTx(ctx, "card:"+card, fn)
}

// inTerminalTx is inTx for a rule that touches only one terminal's rows
// (its journal upload), under that terminal's lock like inCardTx: two
// uploads of one terminal take turns, and uploads of different terminals
// never abort each other.
func (s *Store) inTerminalTx(ctx context.Context, terminal string, fn func(tx *sql.Tx) error) error {
	return s.runTx(ctx, "terminal:"+terminal, fn)
}

// runTx runs fn as inTx describes, under the advisory lock named lock on
// PostgreSQL unless lock is "".
func (s *Store) runTx(ctx context.Context, lock string, fn func(tx *sql.Tx) error) error {
	var opts *sql.TxOptions // SQLite: IMMEDIATE, from the DSN
	switch {
	case s.postgres && lock != "":
		opts = &sql.TxOptions{Isolation: sql.LevelRepeatableRead}
	case s.postgres:
		opts = &sql.TxOptions{Isolation: sql.LevelSerializable}
	}
	pause := txRetryBase
	for attempt := 1; ; attempt++ {
		err := s.tryTx(ctx, lock, opts, fn, s.rehearse && attempt == 1)
		if err == nil {
			// Any commit may have added to the change feed: a held pull
			// hears of it now rather than at the watcher's next tick.
			s.feed.poke()
			return nil
		}
		if pgCode(err) == lockNotAvailable {
			// The wait for a lock reached lock_timeout: nothing changed,
			// and waiting again would double the bound.
			return fmt.Errorf("%w: %w", ErrBusy, err)
		}
		if !retryable(err) && !errors.Is(err, errRehearsed) {
			return err
		}
		if attempt == maxTxAttempts {
			return fmt.Errorf("%w: %w", ErrBusy, err)
		}
		// A random pause up to a doubling bound: two transactions that met
		// once should not meet again at once.
		t := time.NewTimer(time.Duration(rand.Int64N(int64(pause))) + time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		pause = min(2*pause, txRetryCap)
	}
}

// errRehearsed ends a rehearsal (Store.rehearse) after fn succeeded.
var errRehearsed = errors.New("rehearsal rolled back")

func (s *Store) tryTx(ctx context.Context, lock string, opts *sql.TxOptions, fn func(tx *sql.Tx) error, rehearsal bool) error {
	var begin interface {
		BeginTx(context.Context, *sql.TxOptions) (*sql.Tx, error)
	} = s.db
	if lock != "" && s.postgres {
		done, err := s.cards.take(ctx, lock)
		if err != nil {
			return err
		}
		defer done()
		conn, release, err := s.lockedConn(ctx, lock)
		if err != nil {
			return err
		}
		defer release()
		begin = conn
	}
	tx, err := begin.BeginTx(ctx, opts)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if rehearsal {
		tx.Rollback()
		return errRehearsed
	}
	return tx.Commit()
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

// sqlBool is how both stores keep a flag: an integer, 1 or 0.
func sqlBool(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// rfc3339 renders a stored instant for the wire ("" stays "").
func rfc3339(s string) string {
	if s == "" {
		return ""
	}
	return parseDBTime(s).Format(time.RFC3339)
}
