// Package hostscale runs the reference host as several `cardhost serve`
// processes on one PostgreSQL database and drives them with the fleet
// simulator (cmd/cardfleet): the terminals' real signed protocol, cards
// simulated in memory with their own keys, no pcscd. It is a package of
// its own so that it runs beside ./integration, which holds the vpcd
// slots.
package hostscale

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver, for the checks

	epursesim "github.com/cardd/cardd/apdu/epurse/sim"
	"github.com/cardd/cardd/host"
	"github.com/cardd/cardd/internal/pgtest"
	"github.com/cardd/cardd/internal/testbin"
	"github.com/cardd/cardd/internal/tlsgen"
	"github.com/cardd/cardd/sync/sim"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testbin.Cleanup()
	os.Exit(code)
}

// instance is one `cardhost serve` process.
type instance struct {
	cmd    *exec.Cmd
	url    string
	exited chan struct{} // closed once the process has ended
}

// serve starts `cardhost serve` on dir with its store in db, over TLS, on
// a free loopback port, and stops it (SIGTERM) when the test ends unless
// it was killed.
func serve(t *testing.T, dir, db string, tls tlsgen.Files) *instance {
	t.Helper()
	cmd := exec.Command(testbin.Build(t, "cardhost"), "serve", "--dir", dir, "--listen", "127.0.0.1:0",
		"--tls-cert", tls.Cert, "--tls-key", tls.Key)
	cmd.Env = append(os.Environ(), "CARDHOST_DB="+db)
	logf, err := os.Create(filepath.Join(t.TempDir(), "serve.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = logf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	in := &instance{cmd: cmd, exited: make(chan struct{})}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default:
			}
		}
		cmd.Wait()
		close(in.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-in.exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			t.Error("cardhost serve did not stop within 15 s of SIGTERM")
		}
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("cardhost serve log (last 4 KB):\n%s", tail(b, 4096))
		}
	})
	select {
	case line := <-lines:
		i := strings.Index(line, "https://")
		if i < 0 {
			t.Fatalf("cardhost serve printed %q, want its https address", line)
		}
		in.url = strings.Fields(line[i:])[0]
	case <-time.After(30 * time.Second):
		t.Fatal("cardhost serve did not say where it listens within 30 s")
	}
	return in
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// cluster is a host directory whose store is a PostgreSQL database, with
// three instances serving it over TLS.
type cluster struct {
	dir, db   string
	tls       tlsgen.Files
	instances []*instance
}

func newCluster(t *testing.T, db string, n int) *cluster {
	t.Helper()
	c := &cluster{dir: filepath.Join(t.TempDir(), "host"), db: db}
	if err := host.InitDir(c.dir, db); err != nil {
		t.Fatal(err)
	}
	var err error
	if c.tls, err = tlsgen.Write(t.TempDir(), []string{"127.0.0.1"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	for range n {
		c.instances = append(c.instances, serve(t, c.dir, db, c.tls))
	}
	return c
}

// fleet starts cardfleet against every instance of c with args; wait
// returns its report once it ends.
func (c *cluster) fleet(t *testing.T, cards string, args ...string) (wait func() *sim.Report) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "report.json")
	full := []string{"--dir", c.dir, "--ca-file", c.tls.CA, "--card-dir", cards, "--json", out, "--pick", "random"}
	for _, in := range c.instances {
		full = append(full, "--host", in.url)
	}
	cmd := exec.Command(testbin.Build(t, "cardfleet"), append(full, args...)...)
	cmd.Env = append(os.Environ(), "CARDHOST_DB="+c.db)
	var text strings.Builder
	cmd.Stdout, cmd.Stderr = &text, &text
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return func() *sim.Report {
		t.Helper()
		err := cmd.Wait()
		t.Logf("cardfleet:\n%s", text.String())
		if err != nil {
			t.Errorf("cardfleet: %v", err)
		}
		b, rerr := os.ReadFile(out)
		if rerr != nil {
			t.Fatal(rerr)
		}
		var rep sim.Report
		if err := json.Unmarshal(b, &rep); err != nil {
			t.Fatal(err)
		}
		return &rep
	}
}

// checkBooks compares every simulated card's balance with the credits the
// host holds consumed for it, and asks the database what no report can:
// that no credit was applied through two authorizations, that every
// consumed credit names the one terminal whose authorization its TAC
// proved, and that no authorization is left open.
func checkBooks(t *testing.T, db, cards string, rep *sim.Report) {
	t.Helper()
	ctx := context.Background()
	st, err := host.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	entries, err := os.ReadDir(cards)
	if err != nil || len(entries) == 0 {
		t.Fatalf("card dir: %d files, %v", len(entries), err)
	}
	var books []sim.CardBalance
	for _, e := range entries {
		f, err := epursesim.LoadCardFile(filepath.Join(cards, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		c, err := st.Card(ctx, f.Info.CardNumber)
		if err != nil {
			t.Fatal(err)
		}
		books = append(books, sim.CardBalance{Number: c.Number, Initial: c.InitialBalanceFen, Balance: f.EPBalance})
	}
	consumed, total, err := sim.CheckBooks(ctx, st, books)
	if err != nil {
		t.Error(err)
	}
	if total != rep.Loads.AppliedFen || int64(consumed) != rep.Loads.Applied {
		t.Errorf("the host holds %d credits (%d fen) consumed; the fleet's cards applied %d (%d fen)", consumed, total, rep.Loads.Applied, rep.Loads.AppliedFen)
	}
	if l := rep.Loads; l.Applied == 0 || l.Doubled != 0 || l.Unsettled != 0 || l.Consumed != l.Applied {
		t.Errorf("loads %+v: want some applied, each consumed once, none unsettled", l)
	}
	sqldb, err := sql.Open("pgx", db)
	if err != nil {
		t.Fatal(err)
	}
	defer sqldb.Close()
	for _, q := range []struct{ what, query string }{
		{"credits applied through two authorizations",
			`SELECT count(*) FROM (SELECT credit FROM authorizations WHERE state = 'applied' GROUP BY credit HAVING count(*) > 1) x`},
		{"consumed credits without exactly one applied authorization at the terminal that consumed them",
			`SELECT count(*) FROM credits c WHERE c.state = 'consumed' AND 1 <> (SELECT count(*) FROM authorizations a
				WHERE a.credit = c.id AND a.state = 'applied' AND a.terminal = c.consumed_by AND a.tac = c.consumed_tac)`},
		{"credits neither pending nor consumed", `SELECT count(*) FROM credits WHERE state NOT IN ('pending', 'consumed')`},
		{"authorizations left open", `SELECT count(*) FROM authorizations WHERE state = 'open'`},
	} {
		var n int
		if err := sqldb.QueryRowContext(ctx, q.query).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q.what, err)
		}
		if n != 0 {
			t.Errorf("%d %s", n, q.what)
		}
	}
}

// TestThreeInstancesExactlyOnce: three `cardhost serve` on one PostgreSQL
// database; 200 terminals race for the credits of 20 cards they tap at
// once (--shared-cards), each request sent to an instance picked at
// random, with heartbeats, pulls and journal uploads between; then 200
// captured requests are replayed, each to another instance than the one
// that took it. Every credit is consumed once, through one authorization,
// at one terminal; the cards' balances and the host's sums agree; every
// replay is refused.
func TestThreeInstancesExactlyOnce(t *testing.T) {
	db := pgtest.URL(t)
	c := newCluster(t, db, 3)
	cards := filepath.Join(t.TempDir(), "cards")
	rep := c.fleet(t, cards, "--terminals", "200", "--cards", "20", "--credits", "5", "--amount", "2.50", "--shared-cards",
		"--rate", "2", "--duration", "6s", "--drain", "30s", "--mix", "heartbeat=1,pull=1,journal=1,load=4", "--replay", "200")()
	if rep.Replay == nil || rep.Replay.Sent != 200 || rep.Replay.Refused != 200 || rep.Replay.Accepted != 0 {
		t.Errorf("replay %+v: want 200 sent, 200 refused", rep.Replay)
	}
	if a := rep.Kinds[sim.KindAuthorize]; a.OK == 0 || a.Refused["credit_busy"]+a.Refused["credit_consumed"] == 0 {
		t.Errorf("authorizations %+v: want some granted and some refused to a terminal that lost the race", a)
	}
	checkBooks(t, db, cards, rep)
	fmt.Fprintf(os.Stderr, "hostscale: %d loads applied, %d refused or raced, %.0f requests/s\n",
		rep.Loads.Applied, rep.Kinds[sim.KindAuthorize].Requests-rep.Kinds[sim.KindAuthorize].OK, rep.RequestsPerSecond)
}

// TestInstanceKilledAndPostgresRestarted: while 100 terminals load cards
// through three instances, one instance is SIGKILLed and, later,
// PostgreSQL itself is killed and started again (crash recovery). The
// terminals go on through the instances left; a completion that met the
// outage waits in the terminal's outbox and is sent once the database is
// back. Nothing is lost, nothing is applied twice, no load is left
// unsettled.
func TestInstanceKilledAndPostgresRestarted(t *testing.T) {
	pg := pgtest.NewCluster(t)
	db := pg.URL()
	c := newCluster(t, db, 3)
	cards := filepath.Join(t.TempDir(), "cards")
	wait := c.fleet(t, cards, "--terminals", "100", "--cards", "40", "--credits", "6", "--amount", "1.00",
		"--rate", "4", "--duration", "12s", "--drain", "60s", "--timeout", "5s", "--mix", "heartbeat=1,pull=1,journal=1,load=4")
	time.Sleep(3 * time.Second)
	victim := c.instances[1]
	if err := victim.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-victim.exited
	t.Log("instance 1 killed")
	time.Sleep(3 * time.Second)
	if err := pg.Kill(); err != nil {
		t.Fatal(err)
	}
	t.Log("PostgreSQL killed")
	time.Sleep(time.Second)
	if err := pg.Start(); err != nil {
		t.Fatal(err)
	}
	t.Log("PostgreSQL started again")
	rep := wait()
	if rep.Loads.Applied == 0 {
		t.Fatal("no load went through")
	}
	checkBooks(t, db, cards, rep)
}
