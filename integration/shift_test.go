package integration

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	epursesim "github.com/cardd/cardd/apdu/epurse/sim"
	"github.com/cardd/cardd/host"
	"github.com/cardd/cardd/money"
	"github.com/cardd/cardd/offline"
	"github.com/cardd/cardd/printer"
	"github.com/cardd/cardd/printer/sim"
	"github.com/cardd/cardd/printer/spool"
	"github.com/cardd/cardd/reader/vpcd"
)

// posShift runs `cardd pos shift ARGS` against the running daemon: its
// output and exit code.
func posShift(t *testing.T, env []string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(binary(t, "cardd"), append([]string{"pos", "shift"}, args...)...)
	cmd.Env = append(append(os.Environ(), "CARDD_CONFIG="), env...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	case err != nil:
		t.Fatalf("cardd pos shift %v: %v\n%s", args, err, out)
	}
	return string(out), 0
}

// shiftRows are the purchase rows of shift id in a terminal's store, read
// back as `cardd dump` of the journal would show them.
func shiftRows(t *testing.T, storePath string, id int64) []offline.Row {
	t.Helper()
	st, err := offline.Open(storePath, termID)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rows, err := st.List(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []offline.Row
	for _, r := range rows {
		if r.Kind == offline.KindPurchase && r.Sale.Shift == id {
			out = append(out, r)
		}
	}
	return out
}

// summaryOf totals rows as the close-out slip lists them, by the test's
// own sums: each period and class, the total, split sales, PIN overrides
// and the sales in doubt, label and value as printed; voids and voidFen are
// the voids the test made.
func summaryOf(rows []offline.Row, voids int, voidFen int64) map[string]string {
	type tot struct {
		n   int
		fen int64
	}
	groups := map[offline.ShiftGroup]tot{}
	var all, split, pin, doubt tot
	var collect int64
	for _, r := range rows {
		switch r.State {
		case offline.StateUnknown, offline.StateIntent:
			doubt.n, doubt.fen = doubt.n+1, doubt.fen+r.AmountFen
			continue
		case offline.StateDone:
		default:
			continue
		}
		k := offline.ShiftGroup{Period: r.Sale.Period, Class: r.Sale.Class}
		g := groups[k]
		groups[k] = tot{g.n + 1, g.fen + r.AmountFen}
		all.n, all.fen = all.n+1, all.fen+r.AmountFen
		if r.Sale.CollectFen > 0 {
			split.n, split.fen, collect = split.n+1, split.fen+r.AmountFen, collect+r.Sale.CollectFen
		}
		if r.Sale.PINVerified {
			pin.n, pin.fen = pin.n+1, pin.fen+r.AmountFen
		}
	}
	out := map[string]string{
		spool.CountLabel(spool.LabelTotal, all.n):       money.Format(all.fen),
		spool.CountLabel(spool.LabelSplitCard, split.n): money.Format(split.fen),
		spool.LabelSplitDue:                             money.Format(collect),
		spool.CountLabel(spool.LabelPINOver, pin.n):     money.Format(pin.fen),
		spool.CountLabel(spool.LabelVoids, voids):       money.Format(voidFen),
		spool.CountLabel(spool.LabelInDoubt, doubt.n):   money.Format(doubt.fen),
	}
	for k, g := range groups {
		out[spool.CountLabel(spool.GroupLabel(k), g.n)] = money.Format(g.fen)
	}
	return out
}

// TestPOSShiftCloseOut: `cardd run --mode pos` with the simulated PSAM and
// the virtual printer. With pos.require_shift and no shift open, a lunch
// tap ends no_shift and a charge exits 2, nothing debited. `cardd pos shift
// open --cashier C007` opens the shift (a second open exits 2); in a fixed-price lunch a student card
// pays 12.00 and a staff card the staff price 15.00 with nothing armed;
// the daemon is restarted with a keyed dinner: a student card pays a keyed
// 8.50 (which the cashier then voids), the staff card 20.00 over the daily limit with its PIN, a split
// 30.00 on a staff card of 18.40 pays 18.40 and leaves 11.60, and a card
// pulled during DEBIT leaves a sale in doubt. `cardd pos shift close`
// prints the 班结 slip: every line equals the sums of the shift's journal
// rows, and the known figures; a second close exits 2. The daemon's host
// is `cardhost serve`: the shift goes up with the journal, and `cardhost
// shift list` shows it with the same totals, checked ok against the rows.
func TestPOSShiftCloseOut(t *testing.T) {
	requirePCSC(t)
	w := newHostWorld(t)
	insertPSAM(t, w.hostDir)
	dir := t.TempDir()
	storePath := filepath.Join(dir, "cardd.db")
	link := filepath.Join(dir, "printer")
	p := openPrinter(t, link, sim.Options{})
	lunch, _ := periodsAround(t)
	lunch = strings.Replace(lunch, `max_count: 1}`, `max_count: 1, class_prices: {staff: "15.00"}}`, 1)
	dinner := strings.Replace(strings.Replace(lunch, "name: lunch", "name: dinner", 1),
		`mode: fixed, price: "12.00", max_count: 1, class_prices: {staff: "15.00"}`, "mode: keyed", 1)
	hostURL := startServe(t, w.hostDir)
	secretFile := w.secretFile(t, dir)
	env := func(periods string) []string {
		return append([]string{"CARDD_MODE=pos", "CARDD_READER_SAM_PATTERN=^" + regexp.QuoteMeta(slot1Reader) + "$",
			"CARDD_HOST_URL=" + hostURL, "CARDD_HOST_SECRET_FILE=" + secretFile,
			"CARDD_STORE_PATH=" + storePath, "CARDD_TERMINAL_ID=" + termID, "CARDD_POS_PERIODS=" + periods,
			"CARDD_POS_DAILY_LIMIT=30.00", `CARDD_POS_CLASSES={student: ["01"], staff: ["02"]}`}, printerEnv(link)...)
	}
	issue := func(number string, balance int64, cardType uint16) string {
		path := w.issue(t, number, balance)
		f, err := epursesim.LoadCardFile(path)
		if err != nil {
			t.Fatal(err)
		}
		f.Info.CardType = cardType
		if err := f.Save(path); err != nil {
			t.Fatal(err)
		}
		return path
	}
	const student, staff = 0x0100, 0x0200
	student1 := issue("3101000000820001", 10000, student)
	staff1 := issue("3101000000820002", 10000, staff)
	student2 := issue("3101000000820003", 10000, student)
	staffSplit := issue("3101000000820004", 1840, staff)
	student3 := issue("3101000000820005", 10000, student)
	start := func(e []string) *daemon {
		waitEmpty(t, 0)
		d := startDaemon(t, e...)
		d.waitLine(t, "reader added", 10*time.Second, func(m map[string]any) bool { return m["reader"] == slot1Reader && m["role"] == "sam" })
		return d
	}
	fixedTap := func(d *daemon, path string) map[string]any {
		in := insert(t, path, 0, vpcd.Options{})
		m := d.waitLine(t, "the tap", 20*time.Second, func(m map[string]any) bool { return m["msg"] == "tap" })
		if err := in.remove(t); err != nil {
			t.Fatal(err)
		}
		return m
	}
	charge := func(envs []string, path string, opt vpcd.Options, stdin string, args ...string) (string, error) {
		wait := posCharge(t, envs, stdin, append(args, "--wait", "20s")...)
		in := insert(t, path, 0, opt)
		out, err := wait()
		in.remove(t)
		return out, err
	}

	// Lunch sells only within a shift (pos.require_shift).
	envLunch := append(env(lunch), "CARDD_POS_REQUIRE_SHIFT=true")
	d := start(envLunch)
	if out, code := posShift(t, envLunch, "close"); code != 2 || !strings.Contains(out, "no shift is open") {
		t.Fatalf("close with no shift open: exit %d\n%s", code, out)
	}
	if m := fixedTap(d, student1); m["outcome"] != "no_shift" || m["paid"] != false {
		t.Fatalf("lunch with no shift open: %v", m)
	}
	if out, code := posChargeRefused(t, envLunch, "12.00"); code != 2 || !strings.Contains(out, "no cashier's shift is open") {
		t.Fatalf("cardd pos charge with no shift open: exit %d\n%s", code, out)
	}
	if f, err := epursesim.LoadCardFile(student1); err != nil || f.EPBalance != 10000 {
		t.Fatalf("card after the refused lunch: %+v %v", f, err)
	}
	out, code := posShift(t, envLunch, "open", "--cashier", "C007")
	if code != 0 || !strings.Contains(out, "cashier C007 opened") {
		t.Fatalf("cardd pos shift open: exit %d\n%s", code, out)
	}
	if out, code := posShift(t, envLunch, "open", "--cashier", "C008"); code != 2 || !strings.Contains(out, "already open") {
		t.Fatalf("second open: exit %d\n%s", code, out)
	}
	if m := fixedTap(d, student1); m["outcome"] != "ok" || m["sale_amount"] != "12.00" || m["paid"] != true {
		t.Fatalf("student lunch: %v", m)
	}
	if m := fixedTap(d, staff1); m["outcome"] != "ok" || m["sale_amount"] != "15.00" || m["paid"] != true {
		t.Fatalf("staff lunch: %v", m)
	}
	d.stop(t, 10*time.Second)

	// Dinner, keyed: the shift is the store's, and outlives the restart.
	envDinner := env(dinner)
	d = start(envDinner)
	if out, code := posShift(t, envDinner); code != 0 || !strings.Contains(out, "cashier C007 open since") {
		t.Fatalf("the shift after a restart: exit %d\n%s", code, out)
	}
	var apdus lockedBuffer
	if out, err := charge(envDinner, student2, vpcd.Options{Logger: slog.New(slog.NewJSONHandler(&apdus, &slog.HandlerOptions{Level: slog.LevelDebug}))},
		"", "8.50"); err != nil || !strings.Contains(out, "paid") {
		t.Fatalf("keyed 8.50: %v\n%s", err, out)
	}
	debitAt := apduNumber(t, apdus.String(), "54")
	// The cashier voids that sale (the card gone: its refund waits for
	// the card's next tap): the close-out counts the void, and the sale
	// stays in the sales, as the card paid it.
	if out, code := posVoid(t, envDinner, "--cashier", "C007"); code != 0 || !strings.Contains(out, "8.50") {
		t.Fatalf("cardd pos void of the 8.50: exit %d\n%s", code, out)
	}
	// 15.00 spent today; 20.00 more is over 30.00: the PIN takes it.
	if out, err := charge(envDinner, staff1, vpcd.Options{}, epursesim.DefaultPIN+"\n", "20.00", "--pin-stdin"); err != nil || !strings.Contains(out, "paid") {
		t.Fatalf("20.00 with the PIN: %v\n%s", err, out)
	}
	if out, err := charge(envDinner, staffSplit, vpcd.Options{}, "", "30.00", "--split"); err != nil || !strings.Contains(out, "collect 11.60") {
		t.Fatalf("split 30.00: %v\n%s", err, out)
	}
	// A card like student2, pulled during DEBIT: in doubt at the close.
	if out, err := charge(envDinner, student3, vpcd.Options{TearAfter: debitAt}, "", "6.00"); err == nil || !strings.Contains(out, "IN DOUBT") {
		t.Fatalf("6.00 pulled at DEBIT (APDU %d): %v\n%s", debitAt, err, out)
	}

	before := len(p.Receipts())
	out, code = posShift(t, envDinner, "close")
	if code != 0 || !strings.Contains(out, "shift 1 of cashier C007 closed") || !strings.Contains(out, "IN DOUBT: 1 sales, 6.00") {
		t.Fatalf("cardd pos shift close: exit %d\n%s", code, out)
	}
	if out, code := posShift(t, envDinner, "close"); code != 2 || !strings.Contains(out, "no shift is open") {
		t.Fatalf("second close: exit %d\n%s", code, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var slip []string
	for slip == nil {
		got, err := p.WaitReceipts(ctx, before+1)
		if err != nil {
			t.Fatalf("the close-out slip was not printed: %v", err)
		}
		for _, r := range got[before:] {
			if slices.Contains(r.Lines, "班结") {
				slip = r.Lines
			}
		}
		before = len(got)
	}
	// The shift reaches the host, with the journal's rows, checked ok.
	var held []host.Shift
	deadline := time.Now().Add(20 * time.Second)
	for {
		held = nil
		if err := json.Unmarshal([]byte(cardhostCLI(t, w.hostDir, "shift", "list", "--terminal", termID, "--json")), &held); err != nil {
			t.Fatal(err)
		}
		if len(held) == 1 && held[0].Check.State == host.ShiftOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the host holds shifts %+v 20 s after the close, want shift 1 checked ok", held)
		}
		time.Sleep(200 * time.Millisecond)
	}
	d.stop(t, 10*time.Second)

	rows := shiftRows(t, storePath, 1)
	want := summaryOf(rows, 1, 850)
	// What the test knows independently of the journal, too.
	for label, value := range map[string]string{
		"lunch/student 1笔": "12.00", "lunch/staff 1笔": "15.00", "dinner/student 1笔": "8.50", "dinner/staff 2笔": "38.40",
		"合计 5笔": "73.90", "冲正 1笔": "8.50", "组合支付 1笔": "18.40", "组合待收": "11.60", "密码消费 1笔": "20.00", "未决 1笔": "6.00",
	} {
		if want[label] != value {
			t.Errorf("the journal's rows give %q = %q, want %q", label, want[label], value)
		}
	}
	if t.Failed() {
		t.Fatalf("the shift's rows: %+v", rows)
	}
	hs := held[0].Summary
	if hs.Shift != 1 || hs.Cashier != "C007" || want[spool.CountLabel(spool.LabelTotal, hs.Count)] != money.Format(hs.SumFen) ||
		want[spool.LabelSplitDue] != money.Format(hs.SplitCollectFen) || want[spool.CountLabel(spool.LabelPINOver, hs.PINCount)] != money.Format(hs.PINFen) ||
		want[spool.CountLabel(spool.LabelInDoubt, hs.InDoubtCount)] != money.Format(hs.InDoubtFen) || len(hs.Groups) != 4 ||
		want[spool.CountLabel(spool.LabelVoids, hs.VoidCount)] != money.Format(hs.VoidFen) {
		t.Errorf("the host holds %+v, not the journal's sums %v", hs, want)
	}
	for _, g := range hs.Groups {
		if label := spool.CountLabel(spool.GroupLabel(offline.ShiftGroup{Period: g.Period, Class: g.Class}), g.Count); want[label] != money.Format(g.SumFen) {
			t.Errorf("the host's group %+v is not the journal's (%v)", g, want)
		}
	}
	cols := printer.Layout58.Cols
	labels := make([]string, 0, len(want))
	for l := range want {
		labels = append(labels, l)
	}
	slices.Sort(labels)
	for _, label := range labels {
		value := want[label]
		line := label + strings.Repeat(" ", cols-printer.Width(label)-printer.Width(value)) + value
		if !slices.Contains(slip, line) {
			t.Errorf("the slip lacks %q (the journal's sum):\n%s", line, strings.Join(slip, "\n"))
		}
	}
	// Nothing on the slip beyond the journal's groups and the fixed lines.
	groups := 0
	for _, l := range slip {
		if strings.Contains(l, "/") && strings.Contains(l, "笔") {
			groups++
		}
	}
	if groups != 4 {
		t.Errorf("the slip lists %d period/class lines, the journal 4:\n%s", groups, strings.Join(slip, "\n"))
	}
	t.Logf("the close-out slip:\n%s", strings.Join(slip, "\n"))
}
