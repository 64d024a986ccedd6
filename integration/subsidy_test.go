package integration

import (
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	epursesim "github.com/cardd/cardd/apdu/epurse/sim"
	"github.com/cardd/cardd/host"
	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/printer/sim"
	"github.com/cardd/cardd/reader/vpcd"
)

// subsidyTerminal starts `cardd run` (kiosk) as terminal id on the vpcd
// reader named, against the host at base, and waits for its reader; it
// returns the daemon, its local API's address and its store's path.
func subsidyTerminal(t *testing.T, w *world, base, id, reader string, extra ...string) (*daemon, string, string) {
	t.Helper()
	dir := t.TempDir()
	env := append([]string{"CARDD_READER_CARD_PATTERN=^" + reader + "$", "CARDD_HOST_URL=" + base,
		"CARDD_HOST_SECRET_FILE=" + w.secretFile(t, dir), "CARDD_STORE_PATH=" + filepath.Join(dir, "cardd.db"), "CARDD_TERMINAL_ID=" + id}, extra...)
	d := startDaemon(t, env...)
	addr := d.apiAddr(t) // logged before the readers
	d.waitLine(t, "reader added", 10*time.Second, func(m map[string]any) bool { return m["reader"] == reader })
	return d, addr, filepath.Join(dir, "cardd.db")
}

// waitBatchCached waits, bounded, until the terminal stores at paths have
// pulled the n credits of subsidy batch: the operator's batch reaches the
// terminals through the held pull, in about a second.
func waitBatchCached(t *testing.T, batch string, n int, paths ...string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for _, path := range paths {
		db := sqlOpen(t, path)
		for {
			var got int
			err := db.QueryRow(`SELECT count(*) FROM credits WHERE subsidy = ?`, batch).Scan(&got)
			if err == nil && got == n {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("terminal store %s holds %d credits of subsidy %s (%v) after 15 s, want %d", path, got, batch, err, n)
			}
			time.Sleep(50 * time.Millisecond)
		}
		db.Close()
	}
}

// subsidyTap inserts the card at path into slot with opt, waits for the
// tap's log line at d and removes the card; it returns the line.
func subsidyTap(t *testing.T, d *daemon, path string, slot int, opt vpcd.Options) map[string]any {
	t.Helper()
	in := insert(t, path, slot, opt)
	m := d.waitLine(t, "the tap", 15*time.Second, func(m map[string]any) bool { return m["msg"] == "tap" })
	in.remove(t)
	return m
}

// tapLoads is the loads a tap's log line lists.
func tapLoads(m map[string]any) string {
	b, _ := json.Marshal(m["loads"])
	return string(b)
}

// TestSubsidyThroughServe: `cardhost serve` and two `cardd run` terminals,
// A on vpcd slot 0 and B on slot 1. `cardhost subsidy add` grants 12.00 to
// three cards: card X picks it up at A (the tap event and the receipt say
// 补助), card Y at B, each once (tapped again at the other terminal,
// nothing more); card Z is pulled at A after each APDU of the load in
// turn, up to CREDIT FOR LOAD whose answer is lost, and tapped at B, which
// settles it from the card's proof, then back at A, which resolves its own
// row from the card: the subsidy is on each card exactly once, by the card
// balances and the host's ledger. An ED subsidy goes onto X's ED. A batch
// whose window ends never loads, at either terminal, before the host's
// expiry job has run and after it withdrew it; `cardhost subsidy list`
// counts it withdrawn.
func TestSubsidyThroughServe(t *testing.T) {
	requirePCSC(t)
	w := newHostWorld(t)
	ctx := context.Background()
	const termB = "000000000002"
	secretB, err := host.NewTerminalSecret()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.host.AddTerminal(ctx, termB, secretB, time.Now()); err != nil {
		t.Fatal(err)
	}
	base := startServe(t, w.hostDir)
	const numberX, numberY, numberZ = "3101000000970001", "3101000000970002", "3101000000970003"
	pathX, pathY, pathZ := w.issue(t, numberX, 10000), w.issue(t, numberY, 10000), w.issue(t, numberZ, 10000)

	waitEmpty(t, 0)
	waitEmpty(t, 1)
	link := filepath.Join(t.TempDir(), "printer")
	p := openPrinter(t, link, sim.Options{})
	a, addrA, storeA := subsidyTerminal(t, w, base, termID, slot0Reader, printerEnv(link)...)
	events := openEvents(t, addrA)
	wB := *w
	wB.secret = secretB
	b, _, storeB := subsidyTerminal(t, &wB, base, termB, slot1Reader)

	until := time.Now().Add(time.Hour).Format(time.RFC3339)
	out := cardhostCLI(t, w.hostDir, "subsidy", "add", "--id", "dec-lunch", "--amount", "12.00", "--until", until, "--note", "十二月午餐补助", numberX, numberY, numberZ)
	if !strings.Contains(out, "12.00 onto the EP purse of 3 cards") {
		t.Fatalf("subsidy add: %s", out)
	}
	// The same batch again changes nothing.
	if out := cardhostCLI(t, w.hostDir, "subsidy", "add", "--id", "dec-lunch", "--amount", "12.00", "--until", until, numberX, numberY, numberZ); !strings.Contains(out, "nothing changed") {
		t.Fatalf("second subsidy add: %s", out)
	}
	waitBatchCached(t, "dec-lunch", 3, storeA, storeB)

	// X at A: the whole tap, its APDUs logged to find CREDIT FOR LOAD's number.
	var apdus lockedBuffer
	m := subsidyTap(t, a, pathX, 0, vpcd.Options{Logger: slog.New(slog.NewJSONHandler(&apdus, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if m["outcome"] != "ok" || !strings.Contains(tapLoads(m), "+12.00 applied") {
		t.Fatalf("X at A: %v", m)
	}
	creditAt := apduNumber(t, apdus.String(), "52")
	e := events.wait(t, "card.tap")
	if e.Tap == nil || len(e.Tap.Loads) != 1 || e.Tap.Loads[0].Kind != "subsidy" || e.Tap.Loads[0].Message != "补助 12.00 元已到账" {
		t.Fatalf("X's card.tap event %+v, want the subsidy said 补助 12.00 元已到账", e.Tap)
	}
	rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	rc, err := p.WaitReceipts(rctx, 1)
	cancel()
	if err != nil || !strings.Contains(rc[0].Text(), "补助到账") || !strings.Contains(rc[0].Text(), "补助金额") {
		t.Fatalf("X's receipt (%v): want it titled 补助到账\n%v", err, rc)
	}
	// X at B, Y at B, Y at A.
	if m := subsidyTap(t, b, pathX, 1, vpcd.Options{}); m["outcome"] != "ok" || strings.Contains(tapLoads(m), "applied") {
		t.Fatalf("X again at B: %v", m)
	}
	if m := subsidyTap(t, b, pathY, 1, vpcd.Options{}); m["outcome"] != "ok" || !strings.Contains(tapLoads(m), "+12.00 applied") {
		t.Fatalf("Y at B: %v", m)
	}
	if m := subsidyTap(t, a, pathY, 0, vpcd.Options{}); m["outcome"] != "ok" || strings.Contains(tapLoads(m), "applied") {
		t.Fatalf("Y again at A: %v", m)
	}

	// Z at A, pulled after each APDU of the load in turn: before CREDIT
	// FOR LOAD nothing happens; after it the card holds the money and A
	// never heard so.
	for k := 1; k <= creditAt; k++ {
		if m := subsidyTap(t, a, pathZ, 0, vpcd.Options{TearAfter: k}); m["outcome"] == "ok" {
			t.Fatalf("Z pulled after APDU %d: the tap reports ok: %v", k, m)
		}
		f, err := epursesim.LoadCardFile(pathZ)
		if err != nil {
			t.Fatal(err)
		}
		if want := map[bool]int64{false: 10000, true: 11200}[k == creditAt]; f.EPBalance != want {
			t.Fatalf("Z after the pull at APDU %d of %d: holds %d, want %d", k, creditAt, f.EPBalance, want)
		}
	}
	// At B: the host's authorization for A is settled from the card's proof.
	if m := subsidyTap(t, b, pathZ, 1, vpcd.Options{}); m["outcome"] != "ok" || !strings.Contains(tapLoads(m), "+12.00 applied") {
		t.Fatalf("Z at B: %v", m)
	}
	// Back at A: A's row resolved from the card, nothing loaded again.
	if m := subsidyTap(t, a, pathZ, 0, vpcd.Options{}); m["outcome"] != "ok" || !strings.Contains(tapLoads(m), "applied=true") || strings.Contains(tapLoads(m), "+12.00 applied") {
		t.Fatalf("Z back at A: %v", m)
	}

	// An ED subsidy for X: onto its ED, at B.
	cardhostCLI(t, w.hostDir, "subsidy", "add", "--id", "dec-ed", "--purse", "ED", "--amount", "3.00", "--until", until, numberX)
	waitBatchCached(t, "dec-ed", 1, storeB)
	if m := subsidyTap(t, b, pathX, 1, vpcd.Options{}); m["outcome"] != "ok" || !strings.Contains(tapLoads(m), "+3.00 applied") {
		t.Fatalf("X's ED subsidy at B: %v", m)
	}

	// A batch whose window closes before anyone taps.
	late := time.Now().Add(3 * time.Second).Truncate(time.Second)
	cardhostCLI(t, w.hostDir, "subsidy", "add", "--id", "late", "--amount", "5.00", "--until", late.Format(time.RFC3339), numberX, numberY)
	waitBatchCached(t, "late", 2, storeA, storeB) // cached: the terminals must refuse it themselves
	time.Sleep(time.Until(late) + time.Second)
	if m := subsidyTap(t, a, pathX, 0, vpcd.Options{}); m["outcome"] != "ok" || strings.Contains(tapLoads(m), "applied") {
		t.Fatalf("X at A after the late batch expired: %v", m)
	}
	if m := subsidyTap(t, b, pathY, 1, vpcd.Options{}); m["outcome"] != "ok" || strings.Contains(tapLoads(m), "applied") {
		t.Fatalf("Y at B after the late batch expired: %v", m)
	}
	cardhostCLI(t, w.hostDir, "subsidy", "expire")
	if m := subsidyTap(t, b, pathX, 1, vpcd.Options{}); m["outcome"] != "ok" || strings.Contains(tapLoads(m), "applied") {
		t.Fatalf("X at B after the late batch was withdrawn: %v", m)
	}
	var list []host.Subsidy
	if err := json.Unmarshal([]byte(cardhostCLI(t, w.hostDir, "subsidy", "list", "--json")), &list); err != nil {
		t.Fatal(err)
	}
	got := map[string]host.Subsidy{}
	for _, s := range list {
		got[s.ID] = s
	}
	if s := got["dec-lunch"]; s.Cards != 3 || s.Delivered != 3 || s.Pending != 0 || s.Withdrawn != 0 {
		t.Errorf("dec-lunch %+v, want 3 delivered", s)
	}
	if s := got["late"]; s.Cards != 2 || s.Delivered != 0 || s.Pending != 0 || s.Withdrawn != 2 {
		t.Errorf("late %+v, want 2 withdrawn", s)
	}

	// Each card: the subsidy on it once, by the card and by the host.
	for _, c := range []struct {
		number, path string
		ep, ed       int64
	}{{numberX, pathX, 11200, 300}, {numberY, pathY, 11200, 0}, {numberZ, pathZ, 11200, 0}} {
		f, err := epursesim.LoadCardFile(c.path)
		if err != nil {
			t.Fatal(err)
		}
		if f.EPBalance != c.ep || f.EDBalance != c.ed {
			t.Errorf("card %s holds EP %d ED %d, want EP %d ED %d", c.number, f.EPBalance, f.EDBalance, c.ep, c.ed)
		}
		l, err := w.host.Ledger(ctx, c.number)
		if err != nil {
			t.Fatal(err)
		}
		if want := c.ep - 10000 + c.ed; l.LoadedFen != want || l.PendingFen != 0 || l.Alarms != 0 {
			t.Errorf("card %s: host loaded %d, pending %d, alarms %d; want %d, 0, 0", c.number, l.LoadedFen, l.PendingFen, l.Alarms, want)
		}
		credits, err := w.host.Credits(ctx, c.number)
		if err != nil {
			t.Fatal(err)
		}
		for _, cr := range credits {
			if cr.Subsidy == "dec-lunch" && (cr.State != hostapi.CreditConsumed || cr.ConsumedTAC == "") {
				t.Errorf("card %s: credit %s is %s (TAC %q), want consumed on a verified TAC", c.number, cr.ID, cr.State, cr.ConsumedTAC)
			}
		}
	}
}
