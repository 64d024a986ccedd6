package host

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"hash/fnv"
	"net/url"
	"strconv"
	"strings"
	gosync "sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// IsPostgresURL reports whether dsn names a PostgreSQL database (a
// postgres:// or postgresql:// URL) rather than an SQLite file.
func IsPostgresURL(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// DefaultMaxConns is how many PostgreSQL connections one host process opens
// at most, unless the URL's pool_max_conns says otherwise. Several
// instances share one server whose max_connections (100 by default) bounds
// them all: three instances at 10 leave the rest to operators and tools.
const DefaultMaxConns = 10

// minConns is the smallest pool: a job that must run once (exclusive)
// holds its advisory lock on one connection while its transactions take
// another, so a pool of one would have it wait for itself for ever, and
// every request of the process behind it.
const minConns = 2

// The server-side bounds a host session gets unless its URL sets them:
// money rules wait on row locks and on the server, and every such wait is
// bounded. A statement or lock that takes longer fails the request (the
// terminal retries it); a transaction left idle by a stuck process is
// ended by the server rather than holding its locks.
var pgSessionDefaults = map[string]string{
	"statement_timeout":                   "15000",
	"lock_timeout":                        "5000",
	"idle_in_transaction_session_timeout": "30000",
}

// pgConnectTimeout bounds connecting (with TLS and authentication) to the
// server, when the URL has no connect_timeout.
const pgConnectTimeout = 5 * time.Second

// openPostgres opens the host store on the PostgreSQL database the URL
// names and brings its schema up to date. The URL's own pool_max_conns
// (minConns to 1000) sets the pool's bound; it is not sent to the server.
func openPostgres(rawURL string) (*Store, error) {
	shown := RedactURL(rawURL)
	u, err := url.Parse(rawURL)
	if err != nil {
		// url.Parse's error quotes the whole URL, password and all (and an
		// escape error a piece of it): only what to look at is said.
		return nil, fmt.Errorf("database %s: not a URL (a password with %% @ : / ? # or a space must be percent-encoded)", shown)
	}
	q := u.Query()
	maxConns := DefaultMaxConns
	if v := q.Get("pool_max_conns"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < minConns || n > 1000 {
			return nil, fmt.Errorf("database %s: pool_max_conns = %q: want a whole number from %d to 1000", shown, v, minConns)
		}
		maxConns = n
		q.Del("pool_max_conns")
		u.RawQuery = q.Encode()
	}
	cfg, err := pgx.ParseConfig(u.String())
	if err != nil {
		return nil, fmt.Errorf("database %s: %w", shown, err)
	}
	if q.Get("connect_timeout") == "" {
		cfg.ConnectTimeout = pgConnectTimeout
	}
	for k, v := range pgSessionDefaults {
		if _, set := cfg.RuntimeParams[k]; !set {
			cfg.RuntimeParams[k] = v
		}
	}
	db := sql.OpenDB(rebindConnector{stdlib.GetConnector(*cfg)})
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	// A connection is renewed now and then, so a pool follows a failover
	// or a restarted server rather than keeping dead sessions for ever.
	db.SetConnMaxLifetime(30 * time.Minute)
	s := &Store{db: db, path: shown, postgres: true, feed: newFeed(db)}
	ctx, cancel := context.WithTimeout(context.Background(), 2*pgConnectTimeout)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("database %s: %w", shown, err)
	}
	if err := s.migrate(); err != nil {
		db.Close()
		return nil, fmt.Errorf("database %s: %w", shown, err)
	}
	return s, nil
}

// RedactURL is a PostgreSQL URL as logs and messages may show it: without its
// password, in the userinfo or the query, nor any other parameter named a
// password (sslpassword unlocks the client's TLS key). A URL without them
// comes back as it was.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "postgres://(unparsable URL)"
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	q := u.Query()
	if keys := secretParams(q); len(keys) > 0 {
		for _, k := range keys {
			q.Set(k, "xxxxx")
		}
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// secretParams are the query parameters of a store URL that are secrets:
// any named a password.
func secretParams(q url.Values) []string {
	var keys []string
	for k := range q {
		if strings.Contains(strings.ToLower(k), "password") {
			keys = append(keys, k)
		}
	}
	return keys
}

// URLCarriesSecret reports whether a store URL holds a password (or a TLS
// key's passphrase), which no command line should show.
func URLCarriesSecret(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	_, has := u.User.Password()
	return has || len(secretParams(u.Query())) > 0
}

// On PostgreSQL each rule that reads and then writes runs in one of two
// ways, chosen so that it keeps the guarantee SQLite's single writer gave
// it (a transaction sees nothing change under it) across any number of
// host instances, without a SELECT ... FOR UPDATE that each rule would
// have to get right on each row it reads:
//
//   - A rule on one card's money rows (its credits' states,
//     authorizations, purse counters, M1 loads: load, complete, prove not
//     applied, cancel, settle M1) first takes that card's advisory lock,
//     so all of them for a card run one after another cluster-wide, and
//     then runs at REPEATABLE READ, its snapshot taken after the wait.
//     A terminal's journal upload does the same under the terminal's lock.
//   - Every other rule (credits added, top-up orders paid, the deny list,
//     terminals, the access list) runs at SERIALIZABLE: every outcome is
//     that of some order of whole transactions. They are rare beside
//     loads, so SERIALIZABLE's tracking by index page and table costs
//     little there; on loads it aborted transactions of different cards
//     against each other, most of them at 200 loads a second.
//
// PostgreSQL may still abort a transaction (serialization failure 40001,
// deadlock 40P01). Such a transaction changed nothing, so it is run again
// from the start, a bounded number of times, after a short random pause.
const (
	maxTxAttempts = 20
	txRetryBase   = 2 * time.Millisecond
	txRetryCap    = 150 * time.Millisecond
)

// retryable reports whether err aborted a PostgreSQL transaction only
// because another one ran beside it.
func retryable(err error) bool {
	code := pgCode(err)
	return code == "40001" || code == "40P01"
}

// lockNotAvailable is the SQLSTATE of a lock wait cut by lock_timeout.
const lockNotAvailable = "55P03"

// pgCode is the SQLSTATE of a PostgreSQL error err wraps; "" for any other.
func pgCode(err error) string {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return ""
	}
	return pe.Code
}

// uniqueViolation reports whether err is PostgreSQL's refusal of a row
// whose key another transaction has written.
func uniqueViolation(err error) bool { return pgCode(err) == "23505" }

// ErrBusy is wrapped when a transaction lost to concurrent ones on every
// attempt: the request fails (the terminal asks again) rather than waiting
// without bound.
var ErrBusy = errors.New("store busy: the transaction met concurrent ones on every attempt")

// lockKey turns a job's name into a PostgreSQL advisory lock key, the same
// in every instance.
func lockKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte("cardhost:" + name))
	return int64(h.Sum64())
}

// exclusive runs job unless another host process on the same database is
// running the job of that name; ran says which. On PostgreSQL the guard
// is a session advisory lock, released when job returns or the process's
// connection dies; an SQLite file has one machine and its jobs are
// idempotent, so there it simply runs.
func (s *Store) exclusive(ctx context.Context, name string, job func(context.Context) error) (ran bool, err error) {
	if !s.postgres {
		return true, job(ctx)
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	key := lockKey(name)
	var got bool
	if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock(?)`, key).Scan(&got); err != nil {
		return false, err
	}
	if !got {
		return false, nil
	}
	defer unlock(conn, key)
	return true, job(ctx)
}

// cardTurnWait bounds how long a load waits in this process for the
// other loads of its card here, as lock_timeout bounds the wait on the
// database's lock: like a lost serialization, it ends in ErrBusy and the
// terminal asks again.
const cardTurnWait = 5 * time.Second

// turns makes the loads of one card in one process take turns before any
// of them takes a connection: only the one whose turn it is waits on the
// card's advisory lock (for the loads of the other instances), so however
// many terminals press one card, it ties up one of the process's
// connections and the others serve the rest of the fleet.
type turns struct {
	mu  gosync.Mutex
	key map[string]*turn
}

type turn struct {
	ch      chan struct{} // holds a token while the turn is taken
	waiters int           // takers and waiters: the entry goes at 0
}

// take waits for name's turn, at most cardTurnWait; done gives it back.
func (ts *turns) take(ctx context.Context, name string) (done func(), err error) {
	ts.mu.Lock()
	if ts.key == nil {
		ts.key = map[string]*turn{}
	}
	t := ts.key[name]
	if t == nil {
		t = &turn{ch: make(chan struct{}, 1)}
		ts.key[name] = t
	}
	t.waiters++
	ts.mu.Unlock()
	leave := func() {
		ts.mu.Lock()
		if t.waiters--; t.waiters == 0 {
			delete(ts.key, name)
		}
		ts.mu.Unlock()
	}
	timer := time.NewTimer(cardTurnWait)
	defer timer.Stop()
	select {
	case t.ch <- struct{}{}:
		return func() { <-t.ch; leave() }, nil
	case <-ctx.Done():
		leave()
		return nil, ctx.Err()
	case <-timer.C:
		leave()
		return nil, fmt.Errorf("%w: other loads of the card in this process held it for %v", ErrBusy, cardTurnWait)
	}
}

// lockedConn takes a connection from the pool and waits on it for the
// session advisory lock of name (bounded by ctx and the session's
// lock_timeout). release gives the lock and the connection back.
func (s *Store) lockedConn(ctx context.Context, name string) (conn *sql.Conn, release func(), err error) {
	conn, err = s.db.Conn(ctx)
	if err != nil {
		return nil, nil, err
	}
	key := lockKey(name)
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock(?)`, key); err != nil {
		conn.Close()
		return nil, nil, err
	}
	return conn, func() { unlock(conn, key); conn.Close() }, nil
}

// unlock gives back a session advisory lock before its connection returns
// to the pool, with a context of its own: the caller's may have ended.
func unlock(conn *sql.Conn, key int64) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_unlock(?)`, key); err != nil {
		// An unlock that failed leaves the lock on the session: the
		// session is closed rather than pooled.
		conn.Raw(func(any) error { return driver.ErrBadConn })
	}
}
