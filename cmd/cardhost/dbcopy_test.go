//go:build linux

package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cardd/cardd/host"
	"github.com/cardd/cardd/internal/pgtest"
)

// postgresURL is a fresh PostgreSQL database for t, dropped after it.
func postgresURL(t *testing.T) string { return pgtest.URL(t) }

// TestDBCopy: an SQLite host directory moved up with cardhost db copy: the
// report names every table, and the commands then find the same credits,
// deny list and ledger on PostgreSQL; a second copy into the same database
// is refused and changes nothing.
func TestDBCopy(t *testing.T) {
	t.Setenv(DBEnv, "")
	dir, _, _ := setup(t)
	out, _ := wantCode(t, 0, "credit", "add", "--dir", dir, "--card", number, "--amount", "12.34")
	id := strings.TrimSpace(out)
	wantCode(t, 0, "deny", "add", "--dir", dir, "--card", "6222020000000017", "--reason", "lost")
	ledgerBefore, _ := wantCode(t, 0, "ledger", "--dir", dir, "--card", number)
	termsBefore, _ := wantCode(t, 0, "terminal", "list", "--dir", dir)

	db := postgresURL(t)
	out, _ = wantCode(t, 0, "db", "copy", "--dir", dir, "--db", db)
	for _, want := range []string{"schema version", "credits", "journal", "ledger", "nonces", "cards: 1 compared", "all equal", "next changes.seq: 3", "copied "} {
		if !strings.Contains(out, want) {
			t.Errorf("db copy lacks %q:\n%s", want, out)
		}
	}
	t.Setenv(DBEnv, db) // as the operator runs the host from now on
	out, _ = wantCode(t, 0, "credit", "list", "--dir", dir, "--card", number)
	if !strings.Contains(out, id) || !strings.Contains(out, "12.34") || !strings.Contains(out, "pending") {
		t.Fatalf("credit list on PostgreSQL:\n%s", out)
	}
	if out, _ := wantCode(t, 0, "ledger", "--dir", dir, "--card", number); out != ledgerBefore {
		t.Fatalf("ledger on PostgreSQL:\n%s\nwant\n%s", out, ledgerBefore)
	}
	if out, _ := wantCode(t, 0, "terminal", "list", "--dir", dir); out != termsBefore {
		t.Fatalf("terminal list on PostgreSQL:\n%s\nwant\n%s", out, termsBefore)
	}

	_, errOut := wantCode(t, 1, "db", "copy", "--dir", dir)
	if !strings.Contains(errOut, "not empty") || !strings.Contains(errOut, "has rows") {
		t.Fatalf("a second copy: %s", errOut)
	}
	if out, _ := wantCode(t, 0, "credit", "list", "--dir", dir, "--card", number); strings.Count(out, id) != 1 {
		t.Fatalf("after a refused copy:\n%s", out)
	}
}

// TestDBCopyUsage: a copy without a target, from a file that is not there
// or from a URL, is bad usage (exit 2) naming the flag and its value.
func TestDBCopyUsage(t *testing.T) {
	t.Setenv(DBEnv, "")
	dir := filepath.Join(t.TempDir(), "host")
	wantCode(t, 0, "init", "--dir", dir)
	missing := filepath.Join(dir, "old.db")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--dir", dir}, "--db is required"},
		{[]string{"--dir", dir, "--db", "postgres://127.0.0.1:1/x", "--from", missing}, `--from = "` + missing + `"`},
		{[]string{"--dir", dir, "--db", "postgres://127.0.0.1:1/x", "--from", "postgres://u:secret@h/db"}, `--from = "postgres://u:xxxxx@h/db": want the SQLite file`},
		{[]string{"--dir", dir, "--db", filepath.Join(dir, "host.db")}, "--db = "},
	} {
		_, errOut := wantCode(t, 2, append([]string{"db", "copy"}, c.args...)...)
		if !strings.Contains(errOut, c.want) {
			t.Errorf("db copy %q: %s, want %q", c.args, errOut, c.want)
		}
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("a refused copy made %s: %v", missing, err)
	}
}

// holdEnv names, in a child process of TestDBCopyRefusesARunningHost, the
// SQLite file to keep open.
const holdEnv = "CARDHOST_TEST_HOLD_DB"

// TestHelperHoldsHostDB is not a test: run by TestDBCopyRefusesARunningHost
// as its own child process, it keeps a store open, as a running host
// does, until its stdin closes.
func TestHelperHoldsHostDB(t *testing.T) {
	path := os.Getenv(holdEnv)
	if path == "" {
		return
	}
	st, err := host.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
}

// TestDBCopyRefusesARunningHost: while another process has host.db open,
// db copy refuses, naming that process, and writes nothing.
func TestDBCopyRefusesARunningHost(t *testing.T) {
	t.Setenv(DBEnv, "")
	dir, _, _ := setup(t)
	db := postgresURL(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperHoldsHostDB$")
	cmd.Env = append(os.Environ(), holdEnv+"="+filepath.Join(dir, host.DBFile))
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer stdin.Close()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if line != "ready\n" {
		t.Fatalf("helper process: %q, %v", line, err)
	}
	_, errOut := wantCode(t, 1, "db", "copy", "--dir", dir, "--db", db)
	if want := fmt.Sprintf("is open in process %d", cmd.Process.Pid); !strings.Contains(errOut, want) {
		t.Fatalf("db copy beside a running host: %s, want %q", errOut, want)
	}
	out, _ := wantCode(t, 0, "terminal", "list", "--dir", dir, "--db", db)
	if strings.Contains(out, "000000000001") {
		t.Fatalf("the refused copy wrote to PostgreSQL:\n%s", out)
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper process: %v", err)
	}
	// Stopped, the host's file copies.
	wantCode(t, 0, "db", "copy", "--dir", dir, "--db", db)
}
