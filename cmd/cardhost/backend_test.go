//go:build linux

package main

import (
	"strings"
	"testing"

	"github.com/cardd/cardd/internal/pgtest"
)

// Every cardhost command works on both stores: each TestX that runs them is
// eachStore(t, testX), with a subtest per backend. The "postgres" one puts
// a fresh database in $CARDHOST_DB, which every command takes as its --db.

func eachStore(t *testing.T, test func(t *testing.T)) {
	t.Run("sqlite", func(t *testing.T) {
		t.Setenv(DBEnv, "")
		test(t)
	})
	t.Run("postgres", func(t *testing.T) {
		t.Setenv(DBEnv, pgtest.URL(t))
		test(t)
	})
}

// onPostgres reports whether t runs under eachStore's "postgres" subtest.
func onPostgres(t testing.TB) bool {
	parts := strings.Split(t.Name(), "/")
	return len(parts) > 1 && parts[1] == "postgres"
}
