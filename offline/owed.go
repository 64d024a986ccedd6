package offline

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

	sqlite3 "github.com/mattn/go-sqlite3"
)

// Owed is what the store still owes the host, outbox by outbox: every record
// of money whose loss the host could not make up, because it never got it.
// A store whose Total is not 0 must not be deleted (the package's purge
// asks `cardd journal pending`). The counts are of separate messages: a
// load row unacknowledged and owing its completion counts in both Rows and
// Completions, since both must reach the host.
type Owed struct {
	// Rows are the journal rows whose current version the host does not
	// hold (acked_rev < rev): in intent, not yet sent, sent but not
	// acknowledged, or refused by the host.
	Rows int
	// Completions are the loads whose completion (the card's TAC, or proof
	// that the load did not apply) the host has not accepted. Reporting
	// one does not touch rev, so an acknowledged row can still owe it.
	Completions int
	// Voids are the cashier's voids (refunds) the host has not answered.
	Voids int
	// Shifts are the closed shifts the host has not acknowledged.
	Shifts int
}

// Total is the sum of the outboxes: 0 only when the host holds everything.
func (o Owed) Total() int { return o.Rows + o.Completions + o.Voids + o.Shifts }

// String is the breakdown for people, e.g. "rows 2, completions 1, voids 0,
// shifts 0".
func (o Owed) String() string {
	return fmt.Sprintf("rows %d, completions %d, voids %d, shifts %d", o.Rows, o.Completions, o.Voids, o.Shifts)
}

// owedCounts are the outboxes Owed counts, each with the table it needs: a
// store of an older schema that lacks the table has nothing of that kind.
// The columns the queries name are all in the migration that made their
// table, so the table's presence is enough.
var owedCounts = []struct {
	table, query string
	field        func(*Owed) *int
}{
	{"journal", `SELECT count(*) FROM journal WHERE acked_rev < rev`, func(o *Owed) *int { return &o.Rows }},
	{"journal", `SELECT count(*) FROM journal WHERE ` + owedWhere, func(o *Owed) *int { return &o.Completions }},
	{"voids", `SELECT count(*) FROM voids WHERE state = 'owed'`, func(o *Owed) *int { return &o.Voids }},
	{"shifts", `SELECT count(*) FROM shifts WHERE closed > 0 AND uploaded = 0`, func(o *Owed) *int { return &o.Shifts }},
}

// Owed counts what the store still owes the host. The counts are one
// SELECT, so they are of one instant, without a transaction (the daemon's
// store begins each one with the write lock). On a store opened with
// OpenReadOnly at an older schema, an outbox whose table is not there yet
// counts 0.
func (s *Store) Owed(ctx context.Context) (Owed, error) {
	var o Owed
	tables := map[string]bool{}
	rows, err := s.db.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'table'`)
	if err != nil {
		return o, fmt.Errorf("offline: what the host is owed: list tables: %w", err)
	}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return o, fmt.Errorf("offline: what the host is owed: list tables: %w", err)
		}
		tables[name] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return o, fmt.Errorf("offline: what the host is owed: list tables: %w", err)
	}
	cols := make([]string, len(owedCounts))
	dest := make([]any, len(owedCounts))
	for i, c := range owedCounts {
		cols[i] = "0"
		if tables[c.table] {
			cols[i] = "(" + c.query + ")"
		}
		dest[i] = c.field(&o)
	}
	if err := s.db.QueryRowContext(ctx, `SELECT `+strings.Join(cols, ", ")).Scan(dest...); err != nil {
		return Owed{}, fmt.Errorf("offline: what the host is owed: %w", err)
	}
	return o, nil
}

// readOnlyDriver opens stores for OpenReadOnly: without checkConn, whose
// pragma floors are for a store that writes (and whose settings a read-only
// connection could not set).
const readOnlyDriver = "cardd-offline-sqlite3-ro"

func init() { sql.Register(readOnlyDriver, &sqlite3.SQLiteDriver{}) }

// ErrSchemaNewer is wrapped by OpenReadOnly for a store a newer cardd wrote:
// it may keep records in places this one does not know of.
var ErrSchemaNewer = errors.New("schema newer than this cardd")

// OpenReadOnly opens the existing store at path for reading only, for an
// operator's question asked while the daemon may be stopped, running, or
// being removed: it creates no store (a missing file is an error wrapping
// fs.ErrNotExist), changes no mode, runs no migration, and refuses every
// statement that would write (PRAGMA query_only). The -wal and -shm of a
// store in WAL mode are SQLite's business as for any reader: if none were
// there, SQLite makes them to read and, being the last connection, removes
// them at Close; if a crashed daemon left commits in the -wal, that Close
// checkpoints them into the file, as the daemon's next start would. busy
// bounds the wait for a lock another process holds. A store at a newer
// schema than SchemaVersion is refused (ErrSchemaNewer); one at an older
// schema is read as it is.
func OpenReadOnly(ctx context.Context, path string, busy time.Duration) (*Store, error) {
	if path == "" {
		return nil, errors.New("offline: open read-only: empty database path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("offline: open %s read-only: %w", path, err)
	}
	// SQLite's mode=ro would not create the file either, but its error
	// ("unable to open database file") does not say why.
	if _, err := os.Stat(abs); err != nil {
		return nil, fmt.Errorf("offline: open %s read-only: %w", abs, err)
	}
	db, err := sql.Open(readOnlyDriver, readOnlyDSN(abs, busy))
	if err != nil {
		return nil, fmt.Errorf("offline: open %s read-only: %w", abs, err)
	}
	db.SetMaxOpenConns(1)
	var v int
	if err := db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		db.Close()
		return nil, fmt.Errorf("offline: open %s read-only: read schema version: %w%s", abs, err, walHint(err))
	}
	if v > SchemaVersion() {
		db.Close()
		return nil, fmt.Errorf("offline: %s: %w: its schema version is %d, this cardd knows up to %d", abs, ErrSchemaNewer, v, SchemaVersion())
	}
	return &Store{db: db, path: abs, wsem: make(chan struct{}, 1), now: time.Now}, nil
}

// readOnlyDSN is the data source name of OpenReadOnly: mode=rw, which never
// creates the file, rather than mode=ro, since a read-only connection to a
// WAL store creates its -wal and -shm and cannot remove them, leaving them
// behind (TestOpenReadOnlyLeavesStore); query_only refuses writes instead.
// The busy timeout is in whole milliseconds, at least 1 (0 would not wait).
// Not immutable: a running daemon's commits may be in the -wal.
func readOnlyDSN(abs string, busy time.Duration) string {
	ms := max(busy.Milliseconds(), 1)
	q := url.Values{"mode": {"rw"}, "_query_only": {"1"}, "_busy_timeout": {fmt.Sprint(ms)}}
	return "file:" + escapeURIPath(abs) + "?" + q.Encode()
}

// walHint explains SQLite's "attempt to write a readonly database" or
// "unable to open database file" when reading a store in WAL mode: a reader
// needs the -wal and -shm, or a directory it may make them in.
func walHint(err error) string {
	var se sqlite3.Error
	if errors.As(err, &se) && (se.Code == sqlite3.ErrReadonly || se.Code == sqlite3.ErrCantOpen) {
		return " (a store in WAL mode is read through its -wal and -shm: they must exist or the directory must let this user make them; run as the store's owner)"
	}
	return ""
}
