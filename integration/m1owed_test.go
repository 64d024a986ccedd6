package integration

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/localapi"
	"github.com/cardd/cardd/reader/vpcd"
)

// completionTimes stands in front of a host and notes when each load
// completion reached it, to be set beside the local API's card.leave (the
// daemon stamps each event with the same machine clock): an order, not a
// duration.
type completionTimes struct {
	next http.Handler

	mu sync.Mutex
	at []time.Time
}

func (c *completionTimes) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == hostapi.PathLoadComplete {
		c.mu.Lock()
		c.at = append(c.at, time.Now())
		c.mu.Unlock()
	}
	c.next.ServeHTTP(w, r)
}

func (c *completionTimes) times() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.at)
}

// TestM1LoadKilledWithCompletionOwed is TestLoadKilledWithCompletionOwed
// for an M1 wallet at a POS: `cardd run --mode pos` loads a top-up onto
// the wallet and takes a sale on the same tap, through `cardhost serve`,
// which becomes unreachable right after it authorized the load. The
// completion is sent only after the card was told it may leave (the local
// API's card.leave), and, the host being down, is owed when cardd is
// SIGKILLed. The host comes back and cardd restarts on the same store:
// the sync loop reports the completion exactly once, the host consumes the
// credit once with no alarm, the wallet holds it once (and the sale), and
// a further tap loads nothing.
func TestM1LoadKilledWithCompletionOwed(t *testing.T) {
	requirePCSC(t)
	ctx := context.Background()
	w := newHostWorld(t)
	dir := t.TempDir()
	const start, amount, sale = int64(1000), int64(2000), int64(500)
	wallet := newM1Card(t, dir, [4]byte{0x04, 0x99, 0x88, 0x77}, start)
	const uidCard = "uid:04998877"
	if _, err := w.host.RegisterM1(ctx, "04998877", "", "test", time.Now()); err != nil {
		t.Fatal(err)
	}
	creditID := w.credit(t, uidCard, amount)
	gate := newHostGate(t, startServe(t, w.hostDir))
	sent := &completionTimes{next: gate}
	front := httptest.NewServer(sent)
	t.Cleanup(front.Close)

	storePath := filepath.Join(dir, "cardd.db")
	env := []string{"CARDD_MODE=pos", "CARDD_READER_SAM_PATTERN=^" + regexp.QuoteMeta(slot1Reader) + "$",
		"CARDD_HOST_URL=" + front.URL, "CARDD_HOST_SECRET_FILE=" + w.secretFile(t, dir),
		"CARDD_STORE_PATH=" + storePath, "CARDD_TERMINAL_ID=" + termID, "CARDD_MIFARE_KEY_FILE=" + wallet.keyFile}
	waitEmpty(t, 0)
	d := startDaemon(t, env...)
	events := openEvents(t, d.apiAddr(t))
	d.waitLine(t, "reader added", 10*time.Second, func(m map[string]any) bool { return m["reader"] == slot0Reader })
	paid := posCharge(t, env, "", "5.00", "--wait", "20s")
	in := wallet.insert(t, 0, vpcd.Options{})
	line := d.waitLine(t, "the tap with the load and the sale", 15*time.Second, func(m map[string]any) bool { return m["msg"] == "tap" })
	in.remove(t)
	if out, err := paid(); err != nil || !strings.Contains(out, "paid 5.00: balance 25.00") {
		t.Fatalf("the sale: %v\n%s", err, out)
	}
	if line["outcome"] != "ok" {
		t.Fatalf("the tap ended %v (%v)", line["outcome"], line["err"])
	}

	// The wallet has left with the credit; the host never got the
	// completion. Give the terminal its chance to try (after the card was
	// told it may leave, not while it waited), then check the journal owes
	// it, and kill it.
	leave := events.wait(t, localapi.EventCardLeave)
	store := sqlOpen(t, storePath)
	deadline := time.Now().Add(10 * time.Second)
	for len(sent.times()) == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if at := sent.times(); len(at) == 0 || !at[0].After(leave.Time) {
		t.Fatalf("completions sent at %v, card.leave at %v: want the first after the leave", at, leave.Time)
	}
	down, completes, _ := gate.state()
	if !down || len(completes) != 0 {
		t.Fatalf("gate down %v, completions that reached the host %v: want none before the kill", down, completes)
	}
	if state, _, reported := owedRow(t, store, creditID); state != "done" || reported {
		t.Fatalf("terminal's load row: %s, reported %v; want done, completion owed", state, reported)
	}
	_ = d.cmd.Process.Signal(syscall.SIGKILL)
	<-d.exit

	// The host is back; cardd restarts on the same store and owes it the
	// completion, which its sync loop reports with no tap.
	d = restartOwing(t, gate, env, store, creditID)

	// A further tap, with no sale, loads nothing.
	in = wallet.insert(t, 0, vpcd.Options{})
	line = d.waitLine(t, "the further tap", 15*time.Second, isTap("ok"))
	in.remove(t)
	nothingLoaded(t, line)
	d.stop(t, 15*time.Second)

	if _, completes, _ := gate.state(); !slices.Equal(completes, []int{http.StatusOK}) {
		t.Errorf("the host got completions answered %v, want exactly one, 200", completes)
	}
	if b := wallet.balance(t); b != start+amount-sale {
		t.Errorf("wallet holds %d, want %d + %d once - %d", b, start, amount, sale)
	}
	l, err := w.host.Ledger(ctx, uidCard)
	if err != nil {
		t.Fatal(err)
	}
	if l.LoadedFen != amount || l.PendingFen != 0 || l.Alarms != 0 || len(l.Credits) != 1 {
		t.Fatalf("host ledger: loaded %d, pending %d, alarms %d, %d credits; want %d, 0, 0, 1", l.LoadedFen, l.PendingFen, l.Alarms, len(l.Credits), amount)
	}
	consumed := 0
	for _, ev := range l.Credits[0].Events {
		if ev.Event == "consumed" {
			consumed++
		}
	}
	if c := l.Credits[0]; c.State != hostapi.CreditConsumed || consumed != 1 {
		t.Errorf("host: credit %s with %d consumed events; want consumed once", c.State, consumed)
	}
}
