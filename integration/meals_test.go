package integration

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	epursesim "github.com/cardd/cardd/apdu/epurse/sim"
	"github.com/cardd/cardd/reader/vpcd"
)

// periodsAround are pos.periods (CARDD_POS_PERIODS) with a fixed-price
// lunch of 12.00, once per card, whose window holds now and the next 20
// minutes; periodsElsewhere a lunch whose window does not hold now. The
// daemon's clock is the machine's: the windows are made to fit it, not
// the other way round.
func periodsAround(t *testing.T) (around, elsewhere string) {
	t.Helper()
	now := time.Now()
	midnight := time.Date(now.Year(), now.Month(), now.Day(), 24, 0, 0, 0, now.Location())
	if left := midnight.Sub(now); left < 3*time.Minute {
		// A window cannot cross midnight: wait for the new day (bounded).
		time.Sleep(left + time.Second)
		now = time.Now()
	}
	hhmm := func(t time.Time) string { return t.Format("15:04") }
	start := now.Add(-2 * time.Minute)
	if start.Day() != now.Day() {
		start = time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, now.Location())
	}
	end := "24:00"
	if e := now.Add(20 * time.Minute); e.Day() == now.Day() {
		end = hhmm(e)
	}
	const lunch = `[{name: lunch, start: "%s", end: "%s", mode: fixed, price: "12.00", max_count: 1}]`
	around = fmt.Sprintf(lunch, hhmm(start), end)
	elsewhere = fmt.Sprintf(lunch, "00:00", "01:00")
	if now.Hour() < 12 {
		elsewhere = fmt.Sprintf(lunch, "23:00", "24:00")
	}
	return around, elsewhere
}

// TestPOSFixedLunchOncePerCard: `cardd run --mode pos` with a fixed-price
// lunch (12.00, once per card) around now. A tap with nothing armed pays
// 12.00 and the log names the period; the card's second tap is refused by
// the count limit, nothing debited; `cardd pos charge` of another amount
// is refused (exit 2). A second terminal (another terminal id and journal,
// the same readers) refuses the second lunch from the card's log alone.
// With the windows elsewhere, the tap and the charge are refused as
// outside every meal period.
func TestPOSFixedLunchOncePerCard(t *testing.T) {
	requirePCSC(t)
	w := newHostWorld(t)
	insertPSAM(t, w.hostDir)
	const number = "3101000000800016"
	path := w.issue(t, number, 10000)
	around, elsewhere := periodsAround(t)
	dir := t.TempDir()
	storeA, storeB := filepath.Join(dir, "a.db"), filepath.Join(dir, "b.db")
	env := func(store, terminal, periods string) []string {
		return []string{"CARDD_MODE=pos", "CARDD_READER_SAM_PATTERN=^" + regexp.QuoteMeta(slot1Reader) + "$",
			"CARDD_STORE_PATH=" + store, "CARDD_TERMINAL_ID=" + terminal, "CARDD_POS_PERIODS=" + periods}
	}
	start := func(e []string) *daemon {
		waitEmpty(t, 0)
		d := startDaemon(t, e...)
		d.waitLine(t, "reader added", 10*time.Second, func(m map[string]any) bool { return m["reader"] == slot1Reader && m["role"] == "sam" })
		return d
	}
	tapLine := func(d *daemon) map[string]any {
		in := insert(t, path, 0, vpcd.Options{})
		m := d.waitLine(t, "the tap", 20*time.Second, func(m map[string]any) bool { return m["msg"] == "tap" })
		if err := in.remove(t); err != nil {
			t.Fatal(err)
		}
		return m
	}
	balance := func() int64 {
		f, err := epursesim.LoadCardFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return f.EPBalance
	}

	// Terminal A: lunch with nothing armed, then the second lunch refused.
	envA := env(storeA, termID, around)
	d := start(envA)
	if m := tapLine(d); m["outcome"] != "ok" || m["period"] != "lunch" || m["sale_amount"] != "12.00" || m["paid"] != true {
		t.Fatalf("the lunch tap: %v", m)
	}
	if b := balance(); b != 8800 {
		t.Fatalf("card balance %d after lunch, want 8800", b)
	}
	rows := purchaseRows(t, storeA, number)
	if len(rows) != 1 || rows[0].AmountFen != 1200 || rows[0].State != "done" {
		t.Fatalf("purchase rows %+v", rows)
	}
	checkTAC(t, path, rows[0])
	m := tapLine(d)
	if m["outcome"] != "meal_limit" || !strings.Contains(fmt.Sprint(m["err"]), "count limit") || m["paid"] != false {
		t.Fatalf("the second lunch at terminal A: %v", m)
	}
	if out, code := posChargeRefused(t, envA, "12.50"); code != 2 || !strings.Contains(out, "lunch is fixed price 12.00, not 12.50") {
		t.Fatalf("cardd pos charge 12.50 in the fixed lunch: exit %d\n%s", code, out)
	}
	d.stop(t, 10*time.Second)
	if b, n := balance(), len(purchaseRows(t, storeA, number)); b != 8800 || n != 1 {
		t.Fatalf("after the refused lunch: balance %d, %d purchase rows", b, n)
	}

	// Terminal B: its own journal knows nothing; the card's log stops it.
	d = start(env(storeB, "000000000002", around))
	if m := tapLine(d); m["outcome"] != "meal_limit" || !strings.Contains(fmt.Sprint(m["err"]), "1 of the 1") {
		t.Fatalf("the second lunch at terminal B: %v", m)
	}
	d.stop(t, 10*time.Second)
	if b, n := balance(), len(purchaseRows(t, storeB, number)); b != 8800 || n != 0 {
		t.Fatalf("after terminal B: balance %d, %d purchase rows there", b, n)
	}

	// Outside every period: the tap and the charge are refused.
	envOut := env(storeB, "000000000002", elsewhere)
	d = start(envOut)
	if m := tapLine(d); m["outcome"] != "outside_meal_periods" || !strings.Contains(fmt.Sprint(m["err"]), "outside every meal period") {
		t.Fatalf("a tap outside the periods: %v", m)
	}
	if out, code := posChargeRefused(t, envOut, "12.00"); code != 2 || !strings.Contains(out, "outside every meal period") {
		t.Fatalf("cardd pos charge outside the periods: exit %d\n%s", code, out)
	}
	d.stop(t, 10*time.Second)
	if b := balance(); b != 8800 {
		t.Fatalf("card balance %d outside the periods, want 8800", b)
	}
}

// posChargeRefused runs `cardd pos charge` expecting a refusal: its output
// and exit code.
func posChargeRefused(t *testing.T, env []string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(binary(t, "cardd"), append([]string{"pos", "charge"}, args...)...)
	cmd.Env = append(append(os.Environ(), "CARDD_CONFIG="), env...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("cardd pos charge %v: %v\n%s", args, err, out)
	}
	return string(out), ee.ExitCode()
}
