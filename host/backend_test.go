package host

import (
	"context"
	"net/url"

	"github.com/jackc/pgx/v5"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The host's tests run on both stores: each TestX that opens one is
// eachStore(t, testX), with a subtest per backend. On PostgreSQL every
// transaction is rehearsed (Store.rehearse): run once and rolled back
// before it counts, so each rule is also shown to be safe to run again
// after a serialization failure.

// eachStore runs test once per backend, as the subtests "sqlite" and
// "postgres".
func eachStore(t *testing.T, test func(t *testing.T)) {
	t.Run("sqlite", test)
	t.Run("postgres", test)
}

// onPostgres reports whether t runs under eachStore's "postgres" subtest.
func onPostgres(t testing.TB) bool {
	parts := strings.Split(t.Name(), "/")
	return len(parts) > 1 && parts[1] == "postgres"
}

// storeDSN is where t's store lives: an SQLite file in dir, or a fresh
// PostgreSQL database of its own.
func storeDSN(t testing.TB, dir string) string {
	if onPostgres(t) {
		return postgresURL(t)
	}
	return filepath.Join(dir, DBFile)
}

// postgresURL is a stand-in until internal/pgtest lands.
func postgresURL(t testing.TB) string {
	u := os.Getenv("CARDD_TEST_POSTGRES")
	if u == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("CARDD_TEST_POSTGRES is not set")
		}
		t.Skip("CARDD_TEST_POSTGRES is not set")
	}
	ctx := context.Background()
	c, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	name := "t_" + strings.ToLower(newNonce()[:16])
	if _, err := c.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(ctx, u)
		if err == nil {
			c.Exec(ctx, "DROP DATABASE "+name+" WITH (FORCE)")
			c.Close(ctx)
		}
	})
	pu, _ := url.Parse(u)
	pu.Path = "/" + name
	return pu.String()
}
