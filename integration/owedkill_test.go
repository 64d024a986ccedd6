package integration

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cardd/cardd/apdu/epurse"
	epursesim "github.com/cardd/cardd/apdu/epurse/sim"
	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/reader/vpcd"
)

// hostGate is a reverse proxy in front of `cardhost serve` that goes down
// the moment it has relayed a load authorization: from then on it answers
// every request 502, as a proxy does for a dead upstream, until open is
// called. It counts what reached the host and what it turned away.
type hostGate struct {
	URL   string // the gate's base URL, for the terminal
	proxy *httputil.ReverseProxy

	mu        sync.Mutex
	down      bool
	turned    map[string]int // path → requests answered 502 while down
	completes []int          // the host's status for each /v1/load/complete it got
}

func newHostGate(t *testing.T, base string) *hostGate {
	t.Helper()
	target, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	g := &hostGate{proxy: httputil.NewSingleHostReverseProxy(target), turned: map[string]int{}}
	g.proxy.ModifyResponse = func(res *http.Response) error {
		g.mu.Lock()
		defer g.mu.Unlock()
		switch res.Request.URL.Path {
		case hostapi.PathLoadAuthorize:
			if res.StatusCode == http.StatusOK {
				g.down = true // before the terminal has the MAC2
			}
		case hostapi.PathLoadComplete:
			g.completes = append(g.completes, res.StatusCode)
		}
		return nil
	}
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	g.URL = srv.URL
	return g
}

func (g *hostGate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	down := g.down
	if down {
		g.turned[r.URL.Path]++
	}
	g.mu.Unlock()
	if down {
		w.WriteHeader(http.StatusBadGateway)
		io.WriteString(w, "<html>502 bad gateway</html>")
		return
	}
	g.proxy.ServeHTTP(w, r)
}

// open brings the host back.
func (g *hostGate) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.down = false
}

// state returns whether the gate is down, the completions the host got
// (its status for each) and how many it turned away.
func (g *hostGate) state() (down bool, completes []int, turned int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.down, slices.Clone(g.completes), g.turned[hostapi.PathLoadComplete]
}

// owedRow is the terminal's journal row of a credit's load, read from its
// store: state, the card's TAC, and whether the completion was reported.
func owedRow(t *testing.T, db *sql.DB, creditID string) (state, tac string, reported bool) {
	t.Helper()
	err := db.QueryRow(`SELECT state, tac, completion_reported FROM journal WHERE kind = 'load' AND credit_id = ?`, creditID).Scan(&state, &tac, &reported)
	if err != nil {
		t.Fatalf("the terminal's load row of credit %s: %v", creditID, err)
	}
	return state, tac, reported
}

// restartOwing opens the gate and starts cardd with env on the store that
// owes the completion of creditID's load, and waits until its sync loop
// has reported it (the host got one): within 30 s, with no tap.
func restartOwing(t *testing.T, gate *hostGate, env []string, store *sql.DB, creditID string) *daemon {
	t.Helper()
	gate.open()
	d := startDaemon(t, env...)
	d.waitLine(t, "reader added", 10*time.Second, func(m map[string]any) bool { return m["reader"] == slot0Reader })
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, completes, _ := gate.state()
		if _, _, reported := owedRow(t, store, creditID); reported && len(completes) > 0 {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("the owed completion was not reported within 30 s of the restart (host got %v)", completes)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// nothingLoaded fails t when the tap logged in line loaded a credit.
func nothingLoaded(t *testing.T, line map[string]any) {
	t.Helper()
	for _, l := range loadsLogged(line) {
		// "<credit> +<amount> applied", or "... recovered from journal
		// ...: applied=true": either would be the credit a second time.
		if strings.HasSuffix(l, " applied") || strings.HasSuffix(l, "applied=true") {
			t.Errorf("the further tap logged %q: want nothing loaded", l)
		}
	}
}

// loadsLogged are the "loads" of a tap's log line.
func loadsLogged(m map[string]any) []string {
	var out []string
	l, _ := m["loads"].([]any)
	for _, x := range l {
		out = append(out, fmt.Sprint(x))
	}
	return out
}

// TestLoadKilledWithCompletionOwed: `cardd run` loads a credit onto a card
// through `cardhost serve`; the host becomes unreachable right after it
// authorized the load, so the card leaves with the credit on it while the
// completion (the card's TAC) has not reached the host, and cardd is
// SIGKILLed with the completion owed in its journal (issue 13: a crash
// after the card has left but before the completion reached the host).
// The host comes back and cardd restarts on the same store: the completion
// reaches the host exactly once, the host holds the credit consumed once
// with the card's own TAC, the card holds the credit once, and a further
// tap of the card loads nothing. It holds whether the completion is first
// tried during the tap or after the card left.
func TestLoadKilledWithCompletionOwed(t *testing.T) {
	requirePCSC(t)
	ctx := context.Background()
	w := newHostWorld(t)
	const number, start, amount = "3101000000960001", int64(10000), int64(1250)
	path := w.issue(t, number, start)
	creditID := w.credit(t, number, amount)
	gate := newHostGate(t, startServe(t, w.hostDir))

	dir := t.TempDir()
	storePath := filepath.Join(dir, "cardd.db")
	env := []string{"CARDD_HOST_URL=" + gate.URL, "CARDD_HOST_SECRET_FILE=" + w.secretFile(t, dir),
		"CARDD_STORE_PATH=" + storePath, "CARDD_TERMINAL_ID=" + termID}
	waitEmpty(t, 0)
	d := startDaemon(t, env...)
	d.waitLine(t, "reader added", 10*time.Second, func(m map[string]any) bool { return m["reader"] == slot0Reader })
	in := insert(t, path, 0, vpcd.Options{})
	line := d.waitLine(t, "the tap with the load", 15*time.Second, func(m map[string]any) bool { return m["msg"] == "tap" })
	in.remove(t)
	want := fmt.Sprintf("%s +%s applied", creditID, "12.50")
	if got := loadsLogged(line); !slices.Contains(got, want) {
		t.Fatalf("tap logged loads %q (outcome %v, err %v), want %q", got, line["outcome"], line["err"], want)
	}

	// The card has left with the credit; the host never got the TAC. Give
	// the terminal its chance to try (during the tap or after it), then
	// check the journal owes the completion, and kill it.
	store := sqlOpen(t, storePath)
	deadline := time.Now().Add(10 * time.Second)
	for _, _, turned := gate.state(); turned == 0 && time.Now().Before(deadline); _, _, turned = gate.state() {
		time.Sleep(50 * time.Millisecond)
	}
	down, completes, turned := gate.state()
	if !down || len(completes) != 0 {
		t.Fatalf("gate down %v, completions that reached the host %v: want none before the kill", down, completes)
	}
	t.Logf("completions turned away before the kill: %d", turned)
	state, tac, reported := owedRow(t, store, creditID)
	if state != "done" || len(tac) != 8 || reported {
		t.Fatalf("terminal's load row: %s, TAC %q, reported %v; want done with the card's TAC, completion owed", state, tac, reported)
	}
	if cs, err := w.host.Credits(ctx, number); err != nil || len(cs) != 1 || cs[0].State != hostapi.CreditPending {
		t.Fatalf("host credits %+v (%v): want the credit still pending before the kill", cs, err)
	}
	_ = d.cmd.Process.Signal(syscall.SIGKILL)
	<-d.exit

	// The host is back; cardd restarts on the same store and owes it the
	// completion.
	d = restartOwing(t, gate, env, store, creditID)

	// A further tap loads nothing.
	in = insert(t, path, 0, vpcd.Options{})
	line = d.waitLine(t, "the further tap", 15*time.Second, isTap("ok"))
	in.remove(t)
	if line["balance"] != "112.50" || line["balance_after"] != "112.50" {
		t.Errorf("the further tap: balance %v, after it %v; want 112.50 both", line["balance"], line["balance_after"])
	}
	nothingLoaded(t, line)
	d.stop(t, 15*time.Second)

	if _, completes, _ := gate.state(); !slices.Equal(completes, []int{http.StatusOK}) {
		t.Errorf("the host got completions answered %v, want exactly one, 200", completes)
	}
	// The card's own TAC of its last load, at the counter the host
	// authorized (GET TRANSACTION PROVE for the counter after it).
	f, err := epursesim.LoadCardFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if f.EPBalance != start+amount {
		t.Errorf("card balance %d, want %d + %d exactly once", f.EPBalance, start, amount)
	}
	hostDB := sqlOpen(t, filepath.Join(w.hostDir, "host.db"))
	var counter int64
	if err := hostDB.QueryRow(`SELECT counter FROM authorizations WHERE credit = ? AND state = 'applied'`, creditID).Scan(&counter); err != nil {
		t.Fatalf("the applied authorization of credit %s: %v", creditID, err)
	}
	card := epursesim.NewSimCard(f, "")
	if _, err := epurse.Select(card); err != nil {
		t.Fatal(err)
	}
	_, cardTAC, err := epurse.GetTransactionProve(card, epurse.TxEPLoad, uint16(counter)+1)
	if err != nil {
		t.Fatal(err)
	}
	if tac != fmt.Sprintf("%X", cardTAC) {
		t.Errorf("the terminal journaled TAC %s, the card proves %X", tac, cardTAC)
	}
	l, err := w.host.Ledger(ctx, number)
	if err != nil {
		t.Fatal(err)
	}
	if l.LoadedFen != amount || l.PendingFen != 0 || l.Alarms != 0 || len(l.Credits) != 1 {
		t.Fatalf("host ledger: loaded %d, pending %d, alarms %d, %d credits; want %d, 0, 0, 1", l.LoadedFen, l.PendingFen, l.Alarms, len(l.Credits), amount)
	}
	c := l.Credits[0]
	consumed := 0
	for _, ev := range c.Events {
		if ev.Event == "consumed" {
			consumed++
		}
	}
	if c.State != hostapi.CreditConsumed || c.ConsumedTAC != fmt.Sprintf("%X", cardTAC) || consumed != 1 {
		t.Errorf("host: credit %s with TAC %s, %d consumed events; want consumed once on the card's TAC %X", c.State, c.ConsumedTAC, consumed, cardTAC)
	}
}
