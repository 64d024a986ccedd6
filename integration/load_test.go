package integration

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/cardd/cardd/apdu/epurse"
	epursesim "github.com/cardd/cardd/apdu/epurse/sim"
	"github.com/cardd/cardd/host"
	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/offline"
	"github.com/cardd/cardd/reader"
	"github.com/cardd/cardd/reader/vpcd"
	hostsync "github.com/cardd/cardd/sync"
	"github.com/cardd/cardd/tap"
)

const termID = "000000000001"

// world is a reference host on loopback and one terminal in front of it:
// the terminal's journal, its host client and a tap runner with the loader
// on vpcd slot 0.
type world struct {
	hostDir string
	host    *host.Store
	keys    *host.Keys
	srv     *httptest.Server
	store   *offline.Store
	client  *hostsync.Client
	secret  string
	results chan tap.Result
	stop    func()
	// fresh is the runner's tap.Loader.CreditsFresh; zero asks the host
	// on every tap.
	fresh time.Duration
}

func newWorld(t testing.TB) *world {
	t.Helper()
	w := newHostWorld(t)
	var err error
	if w.store, err = offline.Open(filepath.Join(t.TempDir(), "cardd.db"), termID); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.store.Close() })
	w.client = &hostsync.Client{BaseURL: w.srv.URL, TerminalID: termID, Secret: []byte(w.secret)}
	w.startRunner(t)
	return w
}

// secretFile writes the terminal's host secret into dir as cardd reads it
// (host.secret_file, 0600) and returns its path.
func (w *world) secretFile(t testing.TB, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "host.secret")
	if err := os.WriteFile(path, []byte(w.secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// newHostWorld is the reference host alone, with terminal termID registered.
func newHostWorld(t testing.TB) *world {
	t.Helper()
	ctx := context.Background()
	w := &world{hostDir: filepath.Join(t.TempDir(), "host")}
	if err := host.InitDir(w.hostDir, ""); err != nil {
		t.Fatal(err)
	}
	var err error
	if w.host, err = host.OpenDir(w.hostDir, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.host.Close() })
	if w.keys, err = host.LoadDirKeys(w.hostDir); err != nil {
		t.Fatal(err)
	}
	secret, err := host.NewTerminalSecret()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.host.AddTerminal(ctx, termID, secret, time.Now()); err != nil {
		t.Fatal(err)
	}
	w.secret = secret
	w.srv = httptest.NewServer(host.NewHandler(w.host, w.keys, host.Options{}))
	t.Cleanup(w.srv.Close)
	return w
}

// startRunner (re)starts the terminal's tap runner on slot 0.
func (w *world) startRunner(t testing.TB) {
	t.Helper()
	w.startRunnerAs(t, w.store, w.client)
}

// startRunnerAs starts a tap runner on slot 0 for the terminal whose store
// and host client are given, after stopping the one running, if any.
func (w *world) startRunnerAs(t testing.TB, store *offline.Store, client *hostsync.Client) {
	t.Helper()
	if w.stop != nil {
		w.stop()
	}
	waitEmpty(t, 0)
	w.results = make(chan tap.Result, 16)
	var id [6]byte
	if _, err := hex.Decode(id[:], []byte(client.TerminalID)); err != nil {
		t.Fatal(err)
	}
	r := &tap.Runner{
		Roles:  reader.Roles{Card: regexp.MustCompile("^" + regexp.QuoteMeta(slot0Reader) + "$")},
		Logger: discardLogger(),
		OnTap:  func(res tap.Result) { w.results <- res },
		Loader: &tap.Loader{Store: store, Host: client, TerminalID: id, Logger: discardLogger(), CreditsFresh: w.fresh,
			Receipt: func(cr *tap.CardRead, row offline.Row) (offline.NewReceipt, error) {
				b, err := json.Marshal(map[string]any{"card": row.Card, "amount_fen": row.AmountFen,
					"balance_fen": row.BalanceFen + row.AmountFen, "journal": row.ID, "tac": row.TAC})
				return offline.NewReceipt{Kind: "topup", Body: b}, err
			}},
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = r.Run(ctx); close(done) }()
	w.stop = func() { cancel(); <-done }
	t.Cleanup(w.stop)
}

// receipts returns the bodies of the original receipts queued in the
// terminal's store for card number.
func (w *world) receipts(t *testing.T, number string) []string {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+w.store.Path()+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT body FROM receipts WHERE copy = 0 AND json_extract(body, '$.card') = ?`, number)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var b string
		if err := rows.Scan(&b); err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// issue makes a card at the host and returns its card file.
func (w *world) issue(t testing.TB, number string, balance int64) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), number+".json")
	_, err := w.host.IssueCard(context.Background(), w.keys, host.IssueRequest{
		Number: number, Holder: "测试", BalanceFen: balance,
		Start: epurse.Date{Year: 2025, Month: 9, Day: 1}, Expiry: epurse.Date{Year: 2029, Month: 8, Day: 31},
	}, path, "test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return path
}

func (w *world) credit(t testing.TB, number string, fen int64) string {
	t.Helper()
	c, err := w.host.AddCredit(context.Background(), number, fen, "wechat", "test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return c.ID
}

// tap inserts the card (with opt), waits for the tap's result, removes it.
func (w *world) tap(t testing.TB, path string, opt vpcd.Options) tap.Result {
	t.Helper()
	in := insert(t, path, 0, opt)
	var res tap.Result
	select {
	case res = <-w.results:
	case <-time.After(15 * time.Second):
		t.Fatal("no tap within 15 s")
	}
	in.remove(t)
	return res
}

// loadTapAPDUs counts the APDUs of a clean tap that loads one credit onto
// a new card with the given number: the last one is CREDIT FOR LOAD.
func (w *world) loadTapAPDUs(t testing.TB, number string) int {
	t.Helper()
	count := 0
	path := w.issue(t, number, 10000)
	w.credit(t, number, 100)
	if res := w.tap(t, path, vpcd.Options{OnAPDU: func(n int) { count = n }}); res.Err != nil {
		t.Fatalf("clean tap: %v", res.Err)
	}
	return count
}

// checkOnce asserts the money rules' end state: the card holds start+credit,
// the host has the credit consumed with a TAC, once.
func (w *world) checkOnce(t *testing.T, path, number, creditID string, start, amount int64) {
	t.Helper()
	f, err := epursesim.LoadCardFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if f.EPBalance != start+amount {
		t.Errorf("card balance %d, want %d + %d exactly once", f.EPBalance, start, amount)
	}
	credits, err := w.host.Credits(context.Background(), number)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range credits {
		if c.ID == creditID && (c.State != hostapi.CreditConsumed || c.ConsumedTAC == "") {
			t.Errorf("host: credit %s is %s (TAC %q), want consumed with a verified TAC", c.ID, c.State, c.ConsumedTAC)
		}
	}
	l, err := w.host.Ledger(context.Background(), number)
	if err != nil {
		t.Fatal(err)
	}
	if l.LoadedFen != amount || l.PendingFen != 0 || l.Alarms != 0 {
		t.Errorf("host ledger: loaded %d, pending %d, alarms %d; want %d, 0, 0", l.LoadedFen, l.PendingFen, l.Alarms, amount)
	}
	rows, err := w.store.Unresolved(context.Background(), number)
	if err != nil || len(rows) != 0 {
		t.Errorf("terminal journal: %d unresolved rows (%v)", len(rows), err)
	}
}

// TestLoadOnTap: a pending 50.00 credit reaches the card on its next tap.
func TestLoadOnTap(t *testing.T) {
	requirePCSC(t)
	w := newWorld(t)
	const number = "3101000000500001"
	path := w.issue(t, number, 10000)
	id := w.credit(t, number, 5000)
	res := w.tap(t, path, vpcd.Options{})
	if res.Err != nil || res.Load == nil || len(res.Load.Loads) != 1 || !res.Load.Loads[0].Applied {
		t.Fatalf("tap: err %v, load %+v", res.Err, res.Load)
	}
	if res.Read.Balance != 10000 || res.Load.Balance != 15000 {
		t.Errorf("balance %d → %d, want 10000 → 15000", res.Read.Balance, res.Load.Balance)
	}
	w.checkOnce(t, path, number, id, 10000, 5000)
	if got := w.receipts(t, number); len(got) != 1 {
		t.Errorf("receipts queued for the load: %q, want one", got)
	}
	db := w.store.Path()
	assertNoKeys(t, w.hostDir, []string{path}, db, db+"-wal", db+"-shm")
	// Tapping again loads nothing more.
	res = w.tap(t, path, vpcd.Options{})
	if res.Err != nil || len(res.Load.Loads) != 0 {
		t.Fatalf("second tap: err %v, loads %+v", res.Err, res.Load.Loads)
	}
	w.checkOnce(t, path, number, id, 10000, 5000)
	if got := w.receipts(t, number); len(got) != 1 {
		t.Errorf("receipts after a second tap: %q, want still one", got)
	}
}

// TestLoadTearEachAPDU pulls the card after each APDU k of a tap with a load
// (the card processes command k, its answer is lost), then taps again: in
// every case the card holds start + credit exactly once and the host has the
// credit consumed on a verified TAC.
func TestLoadTearEachAPDU(t *testing.T) {
	requirePCSC(t)
	w := newWorld(t)
	count := w.loadTapAPDUs(t, "3101000000500100")
	if count != 4 { // the money first: SELECT, GET BALANCE, INIT, CREDIT (issue 13)
		t.Fatalf("a tap with one load took %d APDUs; expected SELECT, GET BALANCE, INIT and CREDIT", count)
	}
	for k := 1; k <= count; k++ {
		number := "31010000005002" + twoDigits(k)
		path := w.issue(t, number, 20000)
		id := w.credit(t, number, 3000)
		torn := w.tap(t, path, vpcd.Options{TearAfter: k})
		if torn.Err == nil {
			t.Errorf("k=%d: torn tap reported no error", k)
		}
		again := w.tap(t, path, vpcd.Options{})
		if again.Err != nil {
			t.Errorf("k=%d: tap after tear: %v", k, again.Err)
		}
		if k == count && (again.Load == nil || len(again.Load.Recovered) != 1 || !again.Load.Recovered[0].Applied) {
			// Torn during CREDIT FOR LOAD: the card took the money, the
			// answer was lost; only the card's counter can say so.
			t.Errorf("k=%d (CREDIT FOR LOAD): want the load recovered from the card as applied, got %+v", k, again.Load)
		}
		w.checkOnce(t, path, number, id, 20000, 3000)
		// The load's receipt is queued once, whichever tap recorded it.
		if got := w.receipts(t, number); len(got) != 1 {
			t.Errorf("k=%d: receipts queued %q, want one", k, got)
		}
		if t.Failed() {
			t.Fatalf("k=%d of %d: stopping", k, count)
		}
	}
}

func twoDigits(n int) string { return string([]byte{byte('0' + n/10%10), byte('0' + n%10)}) }

// TestLoadRandomTears runs many loads onto one card, each tap torn at a
// random APDU and followed by a clean tap: the card and the host's ledger
// always agree on the sum, every credit applied exactly once.
func TestLoadRandomTears(t *testing.T) {
	requirePCSC(t)
	n := 200
	if testing.Short() {
		n = 20
	}
	w := newWorld(t)
	const number = "3101000000600001"
	path := w.issue(t, number, 0)
	rng := rand.New(rand.NewPCG(1, 2)) // fixed: a failure can be replayed
	var sum int64
	for i := range n {
		amount := int64(1 + rng.IntN(500))
		w.credit(t, number, amount)
		sum += amount
		before, err := epursesim.LoadCardFile(path)
		if err != nil {
			t.Fatal(err)
		}
		// SELECT, GET BALANCE, EF 0x16, the log (5 records, or fewer and
		// the 6A83 after them), INIT FOR LOAD, CREDIT FOR LOAD.
		apdus := 3 + min(len(before.Log)+1, 5) + 2
		k := 1 + rng.IntN(apdus)
		w.tap(t, path, vpcd.Options{TearAfter: k})
		if res := w.tap(t, path, vpcd.Options{}); res.Err != nil {
			t.Fatalf("load %d (torn at %d): clean tap failed: %v", i, k, res.Err)
		}
		f, err := epursesim.LoadCardFile(path)
		if err != nil {
			t.Fatal(err)
		}
		l, err := w.host.Ledger(context.Background(), number)
		if err != nil {
			t.Fatal(err)
		}
		if f.EPBalance != sum || l.LoadedFen != sum || l.PendingFen != 0 || l.Alarms != 0 {
			t.Fatalf("load %d (torn at APDU %d): card %d, host loaded %d pending %d alarms %d; want %d", i, k, f.EPBalance, l.LoadedFen, l.PendingFen, l.Alarms, sum)
		}
	}
}

// TestLoadRecoveredAtAnotherTerminal: the card is pulled at terminal A while
// it answers CREDIT FOR LOAD (the money is on the card, A never learns it),
// then tapped at terminal B of the same host, which settles the credit from
// the card's proof; back at A, A's journal row is resolved from the card too.
// The credit is applied once.
func TestLoadRecoveredAtAnotherTerminal(t *testing.T) {
	requirePCSC(t)
	w := newWorld(t) // terminal A: 000000000001
	ctx := context.Background()
	secretB, err := host.NewTerminalSecret()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.host.AddTerminal(ctx, "000000000002", secretB, time.Now()); err != nil {
		t.Fatal(err)
	}
	storeB, err := offline.Open(filepath.Join(t.TempDir(), "b.db"), "000000000002")
	if err != nil {
		t.Fatal(err)
	}
	defer storeB.Close()
	clientB := &hostsync.Client{BaseURL: w.srv.URL, TerminalID: "000000000002", Secret: []byte(secretB)}

	const number = "3101000000900001"
	path := w.issue(t, number, 10000)
	id := w.credit(t, number, 2500)
	// The money first: SELECT, GET BALANCE, then INIT FOR LOAD (3) and
	// CREDIT FOR LOAD (4).
	torn := w.tap(t, path, vpcd.Options{TearAfter: 4})
	if torn.Err == nil {
		t.Fatal("torn tap at A reported no error")
	}
	if rows, _ := w.store.Unresolved(ctx, number); len(rows) != 1 {
		t.Fatalf("terminal A: %d unresolved rows after the tear, want 1", len(rows))
	}
	f, _ := epursesim.LoadCardFile(path)
	if f.EPBalance != 12500 {
		t.Fatalf("the card holds %d after the torn CREDIT, want 12500: the tear must come after the card applied it", f.EPBalance)
	}

	w.startRunnerAs(t, storeB, clientB)
	atB := w.tap(t, path, vpcd.Options{})
	if atB.Err != nil || len(atB.Load.Loads) != 1 || !atB.Load.Loads[0].Applied {
		t.Fatalf("tap at B: err %v, loads %+v; want the credit settled from the card's proof", atB.Err, atB.Load)
	}
	credits, err := w.host.Credits(ctx, number)
	if err != nil || len(credits) != 1 || credits[0].State != hostapi.CreditConsumed {
		t.Fatalf("host after B: %+v, %v; want the credit consumed", credits, err)
	}

	w.startRunnerAs(t, w.store, w.client)
	atA := w.tap(t, path, vpcd.Options{})
	if atA.Err != nil || len(atA.Load.Recovered) != 1 || !atA.Load.Recovered[0].Applied || len(atA.Load.Loads) != 0 {
		t.Fatalf("back at A: err %v, load %+v; want A's row recovered as applied and nothing loaded", atA.Err, atA.Load)
	}
	w.checkOnce(t, path, number, id, 10000, 2500)
}

// TestLoadRefusedCards: a card on the deny list and an expired card are read
// and shown, but nothing is loaded onto them; their credits stay pending.
func TestLoadRefusedCards(t *testing.T) {
	requirePCSC(t)
	w := newWorld(t)
	ctx := context.Background()
	const denied = "3101000000910001"
	path := w.issue(t, denied, 10000)
	w.credit(t, denied, 1000)
	if _, err := w.host.Deny(ctx, denied, "lost", "test", time.Now()); err != nil {
		t.Fatal(err)
	}
	res := w.tap(t, path, vpcd.Options{})
	if res.Outcome() != tap.OutcomeDenied || res.Read == nil || res.Read.Balance != 10000 {
		t.Errorf("denied card: outcome %s, read %v", res.Outcome(), res.Read != nil)
	}
	// Offline too: the terminal remembers the host's word.
	if d, _, err := w.store.Denied(ctx, denied); err != nil || !d {
		t.Errorf("terminal deny list: %v, %v; want the card denied", d, err)
	}

	const expired = "3101000000910002"
	epath := filepath.Join(t.TempDir(), "expired.json")
	if _, err := w.host.IssueCard(ctx, w.keys, host.IssueRequest{Number: expired, BalanceFen: 5000,
		Start: epurse.Date{Year: 2020, Month: 1, Day: 1}, Expiry: epurse.Date{Year: 2024, Month: 12, Day: 31}}, epath, "test", time.Now()); err != nil {
		t.Fatal(err)
	}
	w.credit(t, expired, 1000)
	res = w.tap(t, epath, vpcd.Options{})
	if res.Outcome() != tap.OutcomeExpired || res.Read == nil || res.Read.Balance != 5000 {
		t.Errorf("expired card: outcome %s, read %v", res.Outcome(), res.Read != nil)
	}
	for _, n := range []string{denied, expired} {
		l, err := w.host.Ledger(ctx, n)
		if err != nil || l.LoadedFen != 0 || l.PendingFen != 1000 {
			t.Errorf("%s: host loaded %d, pending %d (%v); want nothing loaded, 10.00 pending", n, l.LoadedFen, l.PendingFen, err)
		}
	}
	for _, p := range []string{path, epath} {
		f, err := epursesim.LoadCardFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if len(f.Log) != 0 {
			t.Errorf("%s: the card has %d transactions; a refused card must not be loaded", p, len(f.Log))
		}
	}
}
