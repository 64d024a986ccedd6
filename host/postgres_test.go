package host

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/cardd/cardd/hostapi"
)

func TestRebind(t *testing.T) {
	for in, want := range map[string]string{
		`SELECT 1`:                                    `SELECT 1`,
		`a = ? AND b = ?`:                             `a = $1 AND b = $2`,
		`x = '?' AND y = ?`:                           `x = '?' AND y = $1`,
		`x = 'it''s ?' AND y = ?`:                     `x = 'it''s ?' AND y = $1`,
		`"odd?col" = ?`:                               `"odd?col" = $1`,
		"-- who? what?\nSELECT ?":                     "-- who? what?\nSELECT $1",
		`detail LIKE ? ESCAPE '\' AND card = ?`:       `detail LIKE $1 ESCAPE '\' AND card = $2`,
		`VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`: `VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		`unterminated '?`:                             `unterminated '?`,
		"/* who? */ SELECT ?":                         "/* who? */ SELECT $1",
		`x = E'it\'s ?' AND y = ?`:                    `x = E'it\'s ?' AND y = $1`,
		`x = e'\\' AND y = ?`:                         `x = e'\\' AND y = $1`,
		`DO $$ BEGIN PERFORM '?'; END $$; SELECT ?`:   `DO $$ BEGIN PERFORM '?'; END $$; SELECT $1`,
		`SELECT $f$it's ?$f$, ?`:                      `SELECT $f$it's ?$f$, $1`,
		`SELECT ? FROM "a$b"`:                         `SELECT $1 FROM "a$b"`,
		`SELECT type, ? FROM t`:                       `SELECT type, $1 FROM t`,
	} {
		if got := rebind(in); got != want {
			t.Errorf("rebind(%q) = %q, want %q", in, got, want)
		}
	}
}

// postgresStores opens n host processes' stores on one fresh PostgreSQL
// database, with the test card issued.
func postgresStores(t *testing.T, n int) []*Store {
	t.Helper()
	dsn := postgresURL(t)
	var out []*Store
	for range n {
		st, err := Open(dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		out = append(out, st)
	}
	m, _ := GenerateMasterKeys()
	k, _ := NewKeys(m)
	if _, err := out[0].IssueCard(context.Background(), k, IssueRequest{Number: testNumber}, t.TempDir()+"/c.json", "test", time.Now()); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestPullNeverSkipsAChange: a change whose transaction is still open when
// a later one commits must not be passed by a terminal's cursor. With a
// plain sequence the later change (a larger seq) commits first, is pulled,
// and the cursor is past the earlier one when it commits: that credit or
// deny would never reach the terminals.
func TestPullNeverSkipsAChange(t *testing.T) {
	sts := postgresStores(t, 3)
	ctx := context.Background()
	cursor, err := sts[2].pull(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	// Instance 0: a deny whose transaction stays open.
	slow, err := sts[0].db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Rollback()
	if _, err := slow.Exec(`INSERT INTO changes (kind, card, denied, reason, time) VALUES ('deny', ?, 1, 'lost', ?)`, testNumber, dbTime(time.Now())); err != nil {
		t.Fatal(err)
	}
	// Instance 1: a credit added meanwhile.
	added := make(chan error, 1)
	go func() {
		_, err := sts[1].AddCredit(ctx, testNumber, 100, "", "operator test", time.Now())
		added <- err
	}()
	// Give the credit every chance to commit first, pulling as a terminal
	// would (through instance 2).
	var got []string
	next := cursor.NextCursor
	pullAll := func() {
		t.Helper()
		for {
			c, _ := parseCursor(next)
			r, err := sts[2].pull(ctx, c, 100)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range r.Deny {
				got = append(got, "deny "+d.Reason)
			}
			for _, c := range r.Credits {
				got = append(got, "credit "+strconv.FormatInt(c.AmountFen, 10))
			}
			next = r.NextCursor
			if !r.More {
				return
			}
		}
	}
	deadline := time.Now().Add(700 * time.Millisecond)
	for time.Now().Before(deadline) {
		pullAll()
		time.Sleep(50 * time.Millisecond)
	}
	if err := slow.Commit(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-added:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the credit was never added")
	}
	pullAll()
	if strings.Join(got, ", ") != "deny lost, credit 100" {
		t.Fatalf("pulled %q, want the deny then the credit, each once", got)
	}
}

// TestNonceSpentOnceAcrossInstances: the same nonce offered to three
// instances at once is spent by exactly one of them.
func TestNonceSpentOnceAcrossInstances(t *testing.T) {
	sts := postgresStores(t, 3)
	ctx := context.Background()
	for round := range 20 {
		nonce := newNonce()
		var fresh int
		var mu gosync.Mutex
		var wg gosync.WaitGroup
		for i := range 12 {
			wg.Go(func() {
				seen, err := sts[i%3].spendNonce(ctx, testTerm, nonce, time.Now(), time.Now())
				if err != nil {
					t.Error(err)
					return
				}
				if !seen {
					mu.Lock()
					fresh++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if fresh != 1 {
			t.Fatalf("round %d: nonce spent %d times, want once", round, fresh)
		}
	}
}

// TestExclusiveJobRunsOnce: a job of one name runs in one instance at a
// time; the lock goes back when the job ends, also when it fails.
func TestExclusiveJobRunsOnce(t *testing.T) {
	sts := postgresStores(t, 2)
	ctx := context.Background()
	inside, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		ran, err := sts[0].exclusive(ctx, "expiry", func(context.Context) error {
			close(inside)
			<-release
			return errors.New("the job failed")
		})
		if !ran {
			err = errors.New("the first instance did not run the job")
		}
		done <- err
	}()
	<-inside
	ran, err := sts[1].exclusive(ctx, "expiry", func(context.Context) error { return nil })
	if err != nil || ran {
		t.Fatalf("second instance ran the job beside the first: ran %v, %v", ran, err)
	}
	ran, err = sts[1].exclusive(ctx, "retention", func(context.Context) error { return nil })
	if err != nil || !ran {
		t.Fatalf("another job's name is its own lock: ran %v, %v", ran, err)
	}
	close(release)
	if err := <-done; err == nil || !strings.Contains(err.Error(), "the job failed") {
		t.Fatalf("first instance: %v", err)
	}
	ran, err = sts[1].exclusive(ctx, "expiry", func(context.Context) error { return nil })
	if err != nil || !ran {
		t.Fatalf("after the first ended: ran %v, %v", ran, err)
	}
}

// TestBusyIs503: a transaction that lost on every attempt is answered 503
// busy with Retry-After, not 500: the terminal may send it again.
func TestBusyIs503(t *testing.T) {
	h := NewHandler(nil, nil, Options{})
	w := httptest.NewRecorder()
	h.answerError(w, httptest.NewRequest("POST", hostapi.PathLoadAuthorize, nil), testTerm, fmt.Errorf("%w: %w", ErrBusy, errors.New("40001")))
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != "1" || !strings.Contains(w.Body.String(), `"busy"`) {
		t.Fatalf("answered %d %q %s", w.Code, w.Header().Get("Retry-After"), w.Body)
	}
	w = httptest.NewRecorder()
	h.answerError(w, httptest.NewRequest("POST", hostapi.PathLoadAuthorize, nil), testTerm, errors.New("disk on fire"))
	if w.Code != http.StatusInternalServerError {
		t.Fatalf("another failure answered %d", w.Code)
	}
}

// TestOpenPostgresNeverShowsThePassword: a URL that does not parse (a
// password with an unescaped '%' or a space is the usual cause) must not
// come back in the error, which cardhost prints and logs.
func TestOpenPostgresNeverShowsThePassword(t *testing.T) {
	for _, dsn := range []string{
		"postgres://cardhost:s3cr%zzet@db.example/cardhost",
		"postgres://cardhost:s3cr et@db.example/cardhost?x=%zz",
		"postgresql://cardhost:s3cr\x01et@db.example/cardhost",
	} {
		_, err := Open(dsn)
		if err == nil {
			t.Fatalf("Open(%q) succeeded", dsn)
		}
		if strings.Contains(err.Error(), "s3cr") {
			t.Errorf("Open's error shows the password: %v", err)
		}
		if !strings.Contains(err.Error(), "not a URL") {
			t.Errorf("Open's error does not say what is wrong: %v", err)
		}
	}
}

// TestSmallestPoolRunsAJob: a job that must run once (CloseExpired) holds
// its advisory lock on one connection and runs its transactions on
// others; with a pool of one it would wait for itself, and every request
// of the process behind it. No pool size Open accepts may do that.
func TestSmallestPoolRunsAJob(t *testing.T) {
	dsn := postgresURL(t)
	for n := 1; n <= 2; n++ {
		st, err := Open(withParams(dsn, "pool_max_conns="+strconv.Itoa(n)))
		if err != nil {
			if !strings.Contains(err.Error(), "pool_max_conns") {
				t.Fatal(err)
			}
			continue // refused, and says why
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		ran, err := st.exclusive(ctx, "test-job", func(ctx context.Context) error {
			return st.inTx(ctx, func(*sql.Tx) error { return nil })
		})
		cancel()
		st.Close()
		if !ran || err != nil {
			t.Fatalf("pool_max_conns=%d: the job under its lock: ran %v, %v", n, ran, err)
		}
		return
	}
	t.Fatal("no pool size accepted")
}

// TestHotCardLeavesConnectionsToOthers: loads of one card wait for each
// other; while they do, the process's other requests must still get a
// connection. Were each waiter to hold one of the pool's connections on
// the card's lock, a handful of terminals at one card (or one terminal
// sending the same card's authorization over and over) would hold the
// whole pool, and every other terminal of the instance would wait.
func TestHotCardLeavesConnectionsToOthers(t *testing.T) {
	st, release := cardHeldElsewhere(t, "pool_max_conns=3")
	var wg gosync.WaitGroup
	errs := make(chan error, 5)
	for range 5 {
		wg.Go(func() {
			errs <- st.inCardTx(context.Background(), testNumber, func(*sql.Tx) error { return nil })
		})
	}
	time.Sleep(300 * time.Millisecond) // the loads are waiting
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	var one int
	err := st.db.QueryRowContext(ctx, `SELECT 1`).Scan(&one)
	cancel()
	release()
	wg.Wait()
	close(errs)
	if err != nil {
		t.Fatalf("another request while the card's loads wait: %v", err)
	}
	for err := range errs {
		if err != nil {
			t.Errorf("a load of the card once the other instance was done: %v", err)
		}
	}
}

// TestIssueCardRaceIsErrExists: two instances issuing the same number at
// once register it once, and the second is told so (ErrExists, which
// cardhost reports as a usage error), not handed the database's error.
func TestIssueCardRaceIsErrExists(t *testing.T) {
	st := postgresStores(t, 1)[0]
	const number = "3101000000777777"
	ctx := context.Background()
	other, err := st.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Rollback()
	if _, err := other.Exec(`INSERT INTO cards (number, app_serial, holder, issued, initial_balance_fen, start_date, expiry_date)
		VALUES (?, '00000000000000000000', '', ?, 0, '20260901', '20300831')`, number, dbTime(time.Now())); err != nil {
		t.Fatal(err)
	}
	m, _ := GenerateMasterKeys()
	k, _ := NewKeys(m)
	out := t.TempDir() + "/c.json"
	done := make(chan error, 1)
	go func() {
		_, err := st.IssueCard(ctx, k, IssueRequest{Number: number}, out, "test", time.Now())
		done <- err
	}()
	time.Sleep(300 * time.Millisecond) // IssueCard has read no such card and waits on the insert
	if err := other.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, ErrExists) {
		t.Fatalf("IssueCard of a number another instance issued meanwhile: %v, want ErrExists", err)
	}
	if _, err := os.Lstat(out); err == nil {
		t.Error("the refused card's file was written")
	}
}

// TestRedactURL: what logs and messages show of a store URL keeps none of
// its secrets: the password in the userinfo or the query, nor the
// passphrase of the client's TLS key (sslpassword), and keeps the rest.
func TestRedactURL(t *testing.T) {
	for _, raw := range []string{
		"postgres://cardhost:s3cret@db.example:5432/cardhost?sslmode=verify-full",
		"postgres://cardhost@db.example/cardhost?password=s3cret",
		"postgresql://cardhost@db.example/cardhost?sslmode=verify-full&sslkey=/etc/k.pem&sslpassword=s3cret",
		"postgres://cardhost@db.example/cardhost?SSLPassword=s3cret",
	} {
		got := RedactURL(raw)
		if strings.Contains(got, "s3cret") {
			t.Errorf("RedactURL(%q) = %q: a secret shows", raw, got)
		}
		if !strings.Contains(got, "cardhost@") && !strings.Contains(got, "cardhost:") || !strings.Contains(got, "db.example") {
			t.Errorf("RedactURL(%q) = %q: the user or host is gone", raw, got)
		}
	}
}

// TestLockTimeoutIsBusy: a load that waited its lock_timeout for another
// instance's hold on the card changed nothing, like one that lost every
// serialization: it is ErrBusy (503 with Retry-After: the terminal asks
// again), not a failure of the host for its operator to look into.
func TestLockTimeoutIsBusy(t *testing.T) {
	st, release := cardHeldElsewhere(t, "lock_timeout=200")
	defer release()
	err := st.inCardTx(context.Background(), testNumber, func(*sql.Tx) error { return nil })
	if !errors.Is(err, ErrBusy) {
		t.Fatalf("a load whose card another instance held past lock_timeout: %v, want ErrBusy", err)
	}
}

// cardHeldElsewhere opens a store on a fresh database with the URL
// parameters params, while another instance holds the test card's lock
// until release.
func cardHeldElsewhere(t *testing.T, params string) (st *Store, release func()) {
	t.Helper()
	dsn := postgresURL(t)
	st, err := Open(withParams(dsn, params))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	other, err := Open(dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	_, release, err = other.lockedConn(context.Background(), "card:"+testNumber)
	if err != nil {
		t.Fatal(err)
	}
	return st, release
}

// withParams adds URL query parameters to a store URL that may have some.
func withParams(dsn, params string) string {
	if strings.Contains(dsn, "?") {
		return dsn + "&" + params
	}
	return dsn + "?" + params
}
