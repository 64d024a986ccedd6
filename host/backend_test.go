//go:build linux

package host

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/cardd/cardd/internal/pgtest"
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

// postgresURL is a fresh, empty PostgreSQL database for t.
func postgresURL(t testing.TB) string { return pgtest.URL(t) }
