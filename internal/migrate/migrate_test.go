package migrate

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/mattn/go-sqlite3"
)

func open(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(t.TempDir(), "m.db")+"?_txlock=immediate&_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func version(t *testing.T, db *sql.DB) int {
	t.Helper()
	var v int
	if err := db.QueryRow("PRAGMA user_version").Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func tables(t *testing.T, db *sql.DB) string {
	t.Helper()
	rows, err := db.Query("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	return strings.Join(names, ",")
}

var steps = []string{
	"CREATE TABLE a (x INTEGER)",
	"CREATE TABLE b (y INTEGER); INSERT INTO a VALUES (1)",
}

// A new file gets every step in order; a second Run runs none (it would
// fail on CREATE TABLE); a step appended later runs alone.
func TestRunStepsOnceInOrder(t *testing.T) {
	ctx := context.Background()
	db := open(t)
	if err := Run(ctx, WithDB(db), steps); err != nil {
		t.Fatal(err)
	}
	if v, got := version(t, db), tables(t, db); v != 2 || got != "a,b" {
		t.Fatalf("after Run: version %d, tables %q; want 2, a,b", v, got)
	}
	if err := Run(ctx, WithDB(db), steps); err != nil {
		t.Fatalf("second Run: %v", err)
	}
	more := append(steps[:len(steps):len(steps)], "CREATE TABLE c (z INTEGER)")
	if err := Run(ctx, WithDB(db), more); err != nil {
		t.Fatalf("Run with a step appended: %v", err)
	}
	var n int
	if err := db.QueryRow("SELECT count(*) FROM a").Scan(&n); err != nil || n != 1 {
		t.Fatalf("rows in a = %d, %v; want 1 (step 2 ran once)", n, err)
	}
	if v, got := version(t, db), tables(t, db); v != 3 || got != "a,b,c" {
		t.Fatalf("after the appended step: version %d, tables %q; want 3, a,b,c", v, got)
	}
}

// A failing step is rolled back whole, with its number: the database stays
// at the last good version, and the error names the version it could not
// reach.
func TestFailingStepLeavesAWholeVersion(t *testing.T) {
	db := open(t)
	bad := append(steps[:1:1], "CREATE TABLE half (x INTEGER); NOT SQL")
	err := Run(context.Background(), WithDB(db), bad)
	if err == nil || !strings.Contains(err.Error(), "migration to version 2") {
		t.Fatalf("err = %v, want one naming version 2", err)
	}
	if v, got := version(t, db), tables(t, db); v != 1 || got != "a" {
		t.Fatalf("after the failed step: version %d, tables %q; want 1, a", v, got)
	}
}

// A database newer than the code is refused with a NewerError and left as
// it was; so is a negative version.
func TestNewerAndInvalidRefused(t *testing.T) {
	db := open(t)
	if _, err := db.Exec("PRAGMA user_version = 7"); err != nil {
		t.Fatal(err)
	}
	err := Run(context.Background(), WithDB(db), steps)
	var newer *NewerError
	if !errors.As(err, &newer) || newer.Version != 7 || newer.Known != 2 {
		t.Fatalf("err = %v, want a NewerError{7, 2}", err)
	}
	if !strings.Contains(err.Error(), "newer") {
		t.Errorf("error %q does not say newer", err)
	}
	if v, got := version(t, db), tables(t, db); v != 7 || got != "" {
		t.Fatalf("refused database changed: version %d, tables %q", v, got)
	}
	if _, err := db.Exec("PRAGMA user_version = -1"); err != nil {
		t.Fatal(err)
	}
	if err := Run(context.Background(), WithDB(db), steps); err == nil || !strings.Contains(err.Error(), "invalid") {
		t.Fatalf("version -1: err = %v, want invalid", err)
	}
}

// The InTx a store passes is the one used, once per step plus the final
// check, so cardd's serialized writer covers the migration too.
func TestRunUsesTheGivenTransaction(t *testing.T) {
	db := open(t)
	calls := 0
	inTx := func(ctx context.Context, fn func(*sql.Tx) error) error {
		calls++
		return WithDB(db)(ctx, fn)
	}
	if err := Run(context.Background(), inTx, steps); err != nil {
		t.Fatal(err)
	}
	if calls != len(steps)+1 {
		t.Errorf("%d transactions, want %d (one per step and one that finds nothing to do)", calls, len(steps)+1)
	}
}
