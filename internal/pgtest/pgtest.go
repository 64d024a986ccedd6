//go:build linux

// Package pgtest gives tests a real PostgreSQL. URL hands a test an empty
// database of its own on the cluster that scripts/test starts for the run
// (named by CARDD_TEST_POSTGRES); NewCluster starts a private cluster that a
// test may stop, restart and crash.
//
// Without PostgreSQL both skip the test, except under CI=true, where they
// fail it: there a missing PostgreSQL is a broken setup, and a skipped test
// would pass the host's PostgreSQL store untested.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvURL is the environment variable naming the shared test cluster: a
// postgres:// URL of a superuser, as scripts/test and scripts/with-postgres
// export it.
const EnvURL = "CARDD_TEST_POSTGRES"

// timeout bounds each wait on PostgreSQL: a connection, a CREATE or DROP
// DATABASE, an initdb, a start or a stop. Generous, since the machine that
// runs the tests may be busy; a hang still ends.
const timeout = 60 * time.Second

// URL returns the URL of a new, empty database on the cluster named by
// CARDD_TEST_POSTGRES, for this test alone; the database is dropped when
// the test ends, connections still open to it included. Without
// CARDD_TEST_POSTGRES the test is skipped, or fails under CI=true.
func URL(t testing.TB) string {
	t.Helper()
	admin := os.Getenv(EnvURL)
	if admin == "" {
		unavailable(t, EnvURL+" is not set: run the tests through scripts/test, or by hand through "+
			"scripts/with-postgres (scripts/with-postgres go test -run TestName ./host)")
	}
	cfg, err := pgx.ParseConfig(admin)
	if err != nil {
		t.Fatalf("pgtest: %s: %v", EnvURL, err)
	}
	// Named without the password.
	cluster := fmt.Sprintf("%s@%s:%d", cfg.User, cfg.Host, cfg.Port)
	name := "cardd_test_" + randomHex(8)
	dbURL, err := withDatabase(admin, name)
	if err != nil {
		t.Fatalf("pgtest: %s: %v", EnvURL, err)
	}
	ident := pgx.Identifier{name}.Sanitize()
	if err := adminExec(admin, "CREATE DATABASE "+ident); err != nil {
		t.Fatalf("pgtest: create database %s on %s: %v", name, cluster, err)
	}
	t.Cleanup(func() {
		// FORCE: a pool the test forgot to close must not leave the
		// database behind on a cluster that serves the whole run.
		if err := adminExec(admin, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop database %s on %s: %v", name, cluster, err)
		}
	})
	return dbURL
}

// withDatabase returns the postgres:// URL admin with its database path
// replaced by name, everything else as it was. Not through net/url: pgx
// reads URLs as libpq does (several hosts, '+' not a space), which net/url
// would refuse or re-encode.
func withDatabase(admin, name string) (string, error) {
	scheme := "postgres://"
	rest, ok := strings.CutPrefix(admin, scheme)
	if !ok {
		scheme = "postgresql://"
		if rest, ok = strings.CutPrefix(admin, scheme); !ok {
			return "", errors.New("not a postgres:// URL (a key=value string names no database to replace)")
		}
	}
	authority, query := rest, ""
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		authority = rest[:i]
		if j := strings.IndexByte(rest, '?'); j >= 0 {
			query = rest[j:]
		}
	}
	u := scheme + authority + "/" + name + query
	// A dbname= parameter would override the path.
	cfg, err := pgx.ParseConfig(u)
	if err != nil {
		return "", err
	}
	if cfg.Database != name {
		return "", fmt.Errorf("names database %q whatever its path says (a dbname parameter?)", cfg.Database)
	}
	return u, nil
}

// adminExec runs one statement on its own connection to the admin URL:
// CREATE and DROP DATABASE cannot run inside a transaction or a pool's
// reused session state.
func adminExec(admin, sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

// unavailable ends a test that has no PostgreSQL: a skip on a developer's
// machine, a failure under CI=true.
func unavailable(t testing.TB, reason string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal("pgtest: " + reason)
	}
	t.Skip("pgtest: " + reason)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never returns an error since Go 1.24
	return hex.EncodeToString(b)
}
