package integration

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cardd/cardd/apdu/epurse"
	epursesim "github.com/cardd/cardd/apdu/epurse/sim"
	"github.com/cardd/cardd/apdu/mifare"
	mifaresim "github.com/cardd/cardd/apdu/mifare/sim"
	"github.com/cardd/cardd/apdu/psam"
	psamsim "github.com/cardd/cardd/apdu/psam/sim"
	"github.com/cardd/cardd/host"
	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/offline"
	"github.com/cardd/cardd/reader"
	"github.com/cardd/cardd/reader/vpcd"
	"github.com/cardd/cardd/tap"
)

// samTerminal is the terminal id personalised into the test PSAM.
var samTerminal = [6]byte{0x00, 0x00, 0x00, 0x00, 0x30, 0x03}

// insertPSAM personalises a PSAM with the host's purchase master key and
// holds it in vpcd slot 1 until the test ends. It returns the PSAM file and
// the count of APDUs the PSAM has answered.
func insertPSAM(t testing.TB, hostDir string) (string, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	return insertObservedPSAM(t, hostDir, func(int) { n.Add(1) }), &n
}

// insertObservedPSAM is insertPSAM calling onAPDU as vpcd.Options.OnAPDU
// does, for a benchmark that needs to know when each command came.
func insertObservedPSAM(t testing.TB, hostDir string, onAPDU func(int)) string {
	t.Helper()
	f, err := psamsim.NewSAMFileFromKeyFile(filepath.Join(hostDir, host.MastersFile), samTerminal)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "psam.json")
	if err := f.Save(path); err != nil {
		t.Fatal(err)
	}
	remove := holdPSAM(t, psamsim.NewSimPSAM(f, path), onAPDU)
	t.Cleanup(remove)
	return path
}

// holdPSAM puts sam into vpcd slot 1 and returns once pcscd lists it;
// remove takes it out and waits until pcscd sees the slot empty.
func holdPSAM(t testing.TB, sam *psamsim.SimPSAM, onAPDU func(int)) (remove func()) {
	t.Helper()
	waitEmpty(t, 1)
	ctx, cancel := context.WithCancel(context.Background())
	exited := make(chan struct{})
	var insertErr error
	go func() {
		insertErr = vpcd.Insert(ctx, vpcd.SlotAddr(1), sam, vpcd.Options{OnAPDU: onAPDU})
		close(exited)
	}()
	remove = func() {
		cancel()
		<-exited
		waitEmpty(t, 1)
	}
	// Until pcscd lists the PSAM, a sale finds slot 1 empty ("no PSAM"):
	// a test that taps at once would fail by the machine's speed.
	deadline := time.Now().Add(10 * time.Second)
	for !cardPresent(t, "Virtual PCD 00 01") {
		select {
		case <-exited:
			t.Fatalf("the PSAM left slot 1 before pcscd saw it: %v", insertErr)
		default:
		}
		if time.Now().After(deadline) {
			remove()
			t.Fatal("pcscd does not see the PSAM in slot 1 after 10 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return remove
}

// purchaseRows returns the purchase rows of card in a terminal's store.
func purchaseRows(t *testing.T, storePath, card string) []offline.Row {
	t.Helper()
	st, err := offline.Open(storePath, termID)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rows, err := st.PurchasesOn(context.Background(), card, time.Now().Format("20060102"))
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// checkTAC verifies a purchase row's TAC with the card's own TAC key: the
// card computed it over the PSAM's terminal id and serial.
func checkTAC(t *testing.T, cardPath string, row offline.Row) {
	t.Helper()
	f, err := epursesim.LoadCardFile(cardPath)
	if err != nil {
		t.Fatal(err)
	}
	when, err := time.ParseInLocation("20060102150405", row.Time, time.Local)
	if err != nil {
		t.Fatal(err)
	}
	want, err := epurse.PurchaseTAC(f.Keys.DTK, row.AmountFen, epurse.TxEPPurchase, samTerminal, row.TermSerial, when)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.ToUpper(row.TAC); got != strings.ToUpper(hexOf(want[:])) {
		t.Errorf("row %s: TAC %s, the card's key gives %X", row.ID, row.TAC, want)
	}
}

func hexOf(b []byte) string {
	const digits = "0123456789ABCDEF"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&0x0F])
	}
	return string(out)
}

// posCharge runs `cardd pos charge` against the running daemon and returns
// once it said the sale is armed; wait gives its exit error and output.
func posCharge(t *testing.T, env []string, stdin string, args ...string) (wait func() (string, error)) {
	t.Helper()
	cmd := exec.Command(binary(t, "cardd"), append([]string{"pos", "charge"}, args...)...)
	cmd.Env = append(append(os.Environ(), "CARDD_CONFIG="), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var errb strings.Builder
	cmd.Stderr = &errb
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	var lines []string
	if sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) == 0 || !strings.Contains(lines[0], "armed") {
		_ = cmd.Wait()
		t.Fatalf("cardd pos charge %v: %q, stderr %q", args, lines, errb.String())
	}
	return func() (string, error) {
		for sc.Scan() {
			lines = append(lines, sc.Text())
		}
		err := cmd.Wait()
		return strings.Join(lines, "\n") + errb.String(), err
	}
}

// TestPOSPurchaseThroughDaemon: `cardd run` in mode pos with the simulated
// PSAM in slot 1; sales armed with `cardd pos charge`. One tap loads the
// pending top-up and then debits the sale; insufficient balance is refused
// with nothing written; above the daily limit the PIN is asked, and given,
// verified on the card.
func TestPOSPurchaseThroughDaemon(t *testing.T) {
	requirePCSC(t)
	w := newHostWorld(t)
	insertPSAM(t, w.hostDir)
	dir := t.TempDir()
	secretFile := w.secretFile(t, dir)
	storePath := filepath.Join(dir, "cardd.db")
	env := []string{"CARDD_MODE=pos", "CARDD_READER_SAM_PATTERN=^" + regexp.QuoteMeta(slot1Reader) + "$",
		"CARDD_HOST_URL=" + w.srv.URL, "CARDD_HOST_SECRET_FILE=" + secretFile,
		"CARDD_STORE_PATH=" + storePath, "CARDD_TERMINAL_ID=" + termID, "CARDD_POS_DAILY_LIMIT=30.00"}
	const number = "3101000000800001"
	path := w.issue(t, number, 10000)
	w.credit(t, number, 2000)

	waitEmpty(t, 0)
	d := startDaemon(t, env...)
	d.waitLine(t, "reader added", 10*time.Second, func(m map[string]any) bool { return m["reader"] == slot1Reader && m["role"] == "sam" })

	// 100.00 + 20.00 top-up - 12.50 in one tap.
	wait := posCharge(t, env, "", "12.50", "--wait", "20s")
	in := insert(t, path, 0, vpcd.Options{Latency: 5 * time.Millisecond})
	out, err := wait()
	in.remove(t)
	if err != nil || !strings.Contains(out, "paid 12.50: balance 107.50") {
		t.Fatalf("cardd pos charge 12.50: %v\n%s", err, out)
	}
	rows := purchaseRows(t, storePath, number)
	if len(rows) != 1 || rows[0].State != offline.StateDone || rows[0].AmountFen != 1250 || rows[0].TermSerial == 0 {
		t.Fatalf("purchase rows %+v", rows)
	}
	checkTAC(t, path, rows[0])
	if l, err := w.host.Ledger(context.Background(), number); err != nil || l.LoadedFen != 2000 || l.PendingFen != 0 {
		t.Fatalf("host ledger %+v %v: the top-up should be loaded on the same tap", l, err)
	}

	// More than the card holds: refused, nothing written.
	wait = posCharge(t, env, "", "200.00", "--wait", "20s")
	in = insert(t, path, 0, vpcd.Options{})
	out, err = wait()
	in.remove(t)
	if err == nil || !strings.Contains(out, "insufficient_balance") {
		t.Fatalf("charge over the balance: %v\n%s", err, out)
	}
	if n := len(purchaseRows(t, storePath, number)); n != 1 {
		t.Fatalf("%d purchase rows after a refused sale, want 1", n)
	}

	// 12.50 spent today; 20.00 more is over 30.00: the PIN is asked.
	wait = posCharge(t, env, "", "20.00", "--wait", "20s")
	in = insert(t, path, 0, vpcd.Options{})
	out, err = wait()
	in.remove(t)
	if err == nil || !strings.Contains(out, "pin_required") {
		t.Fatalf("charge over the daily limit without PIN: %v\n%s", err, out)
	}
	wait = posCharge(t, env, epursesim.DefaultPIN+"\n", "20.00", "--pin-stdin", "--wait", "20s")
	in = insert(t, path, 0, vpcd.Options{})
	out, err = wait()
	in.remove(t)
	if err != nil || !strings.Contains(out, "paid 20.00: balance 87.50") {
		t.Fatalf("charge over the daily limit with the PIN: %v\n%s", err, out)
	}
	f, err := epursesim.LoadCardFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if f.EPBalance != 8750 {
		t.Fatalf("card balance %d, want 8750", f.EPBalance)
	}
	// The purchases reach the host's journal.
	deadline := time.Now().Add(15 * time.Second)
	for {
		n, err := w.host.JournalCount(context.Background(), termID)
		if err == nil && n >= 4 { // 4 taps' reads, a load, 2 purchases
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("host holds %d journal rows of the terminal (%v)", n, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	_ = d.cmd.Process.Signal(os.Interrupt)
	if err := <-d.exit; err != nil {
		t.Fatalf("cardd exited with %v", err)
	}
}

// startPOSRunner runs an in-process POS tap runner: cards on slot 0, the
// PSAM on slot 1, a fresh store, no host. It returns the store, the till and
// the taps' results.
func startPOSRunner(t testing.TB, dailyLimit int64) (*offline.Store, *tap.Till, chan tap.Result) {
	t.Helper()
	return startProfiledPOSRunner(t, dailyLimit, psam.Profiles{})
}

// startProfiledPOSRunner is startPOSRunner speaking to the PSAM as
// profiles say.
func startProfiledPOSRunner(t testing.TB, dailyLimit int64, profiles psam.Profiles) (*offline.Store, *tap.Till, chan tap.Result) {
	t.Helper()
	store, err := offline.Open(filepath.Join(t.TempDir(), "cardd.db"), termID)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	till := &tap.Till{}
	results := make(chan tap.Result, 16)
	r := &tap.Runner{
		Roles: reader.Roles{Card: regexp.MustCompile("^" + regexp.QuoteMeta(slot0Reader) + "$"),
			SAM: regexp.MustCompile("^" + regexp.QuoteMeta(slot1Reader) + "$")},
		Logger:    discardLogger(),
		OnTap:     func(res tap.Result) { results <- res },
		Loader:    &tap.Loader{Store: store, Logger: discardLogger()},
		Purchaser: &tap.Purchaser{Store: store, Till: till, DailyLimit: dailyLimit, PSAMProfiles: profiles, Logger: discardLogger()},
	}
	runRunner(t, r)
	return store, till, results
}

// TestPOSPurchaseCardPulledAtEveryAPDU pulls the card while it answers each
// APDU of a purchase tap in turn (the command takes effect, its answer is
// lost), then taps it again: the sale is debited exactly once, its row is
// done with the card's TAC, recovered with GET TRANSACTION PROVE when the
// DEBIT itself was torn.
func TestPOSPurchaseCardPulledAtEveryAPDU(t *testing.T) {
	requirePCSC(t)
	w := newHostWorld(t)
	insertPSAM(t, w.hostDir)
	store, till, results := startPOSRunner(t, -1)
	const number = "3101000000800002"
	path := w.issue(t, number, 50000)
	pullAtEveryAPDU(t, path, number, store, till, results)
}

// pullAtEveryAPDU is TestPOSPurchaseCardPulledAtEveryAPDU on the card at
// path through the runner of store, till and results.
func pullAtEveryAPDU(t *testing.T, path, number string, store *offline.Store, till *tap.Till, results chan tap.Result) {
	t.Helper()
	tapOnce := func(opt vpcd.Options) (tap.Result, bool) {
		var answered atomic.Int64
		opt.OnAPDU = func(n int) { answered.Store(int64(n)) }
		in := insert(t, path, 0, opt)
		select {
		case res := <-results:
			in.remove(t)
			// vpcd counts the torn APDU too: it reached the card.
			return res, opt.TearAfter > 0 && answered.Load() >= int64(opt.TearAfter)
		case <-time.After(15 * time.Second):
			t.Fatalf("no tap within 15 s: %s", in.status())
		}
		return tap.Result{}, false
	}
	balance := int64(50000)
	recoveredApplied := 0
	for k := 1; ; k++ {
		if _, err := till.Arm(700, ""); err != nil && !errors.Is(err, tap.ErrSaleInDoubt) {
			t.Fatal(err)
		}
		res, torn := tapOnce(vpcd.Options{TearAfter: k})
		if !torn {
			// Past the tap's last APDU: this tap paid normally.
			if res.Err != nil || res.Purchase == nil || !res.Purchase.Paid {
				t.Fatalf("k=%d: untorn tap: %+v %v", k, res.Purchase, res.Err)
			}
			balance -= 700
			t.Logf("a purchase tap is %d APDUs; torn at each of them", k-1)
			break
		}
		again, _ := tapOnce(vpcd.Options{})
		if again.Err != nil || again.Purchase == nil || !again.Purchase.Paid {
			t.Fatalf("k=%d: tap after the tear: %+v %v", k, again.Purchase, again.Err)
		}
		for _, rec := range again.Purchase.Recovered {
			if rec.Applied {
				recoveredApplied++
			}
		}
		balance -= 700
		f, err := epursesim.LoadCardFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if f.EPBalance != balance {
			t.Fatalf("k=%d: card balance %d, want %d (one debit per sale)", k, f.EPBalance, balance)
		}
		if _, ok := till.Armed(); ok {
			t.Fatalf("k=%d: the sale is still armed after it was paid", k)
		}
		if k > 40 {
			t.Fatal("a purchase tap should not take 40 APDUs")
		}
	}
	rows, err := store.PurchasesOn(context.Background(), number, time.Now().Format("20060102"))
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range rows {
		if row.State != offline.StateDone {
			t.Errorf("row %s is %s (%s)", row.ID, row.State, row.Detail)
			continue
		}
		checkTAC(t, path, row)
	}
	if want := int((50000 - balance) / 700); len(rows) != want {
		t.Errorf("%d purchase rows not failed, want %d (one per sale)", len(rows), want)
	}
	if recoveredApplied != 1 {
		t.Errorf("%d purchases recovered as applied; want 1, the tap torn at DEBIT FOR PURCHASE", recoveredApplied)
	}
}

// TestPOSM1Wallet: `cardd run` in mode pos with mifare.key_file; an M1 card
// (MIFARE Classic, no e-purse) pays from its wallet. A purchase whose value
// block write is torn (the card leaves with the block half written) is
// repaired from the backup block on the next tap and paid exactly once.
func TestPOSM1Wallet(t *testing.T) {
	requirePCSC(t)
	w := newHostWorld(t)
	insertPSAM(t, w.hostDir)
	dir := t.TempDir()
	wallet := newM1Card(t, dir, [4]byte{0x04, 0x11, 0x22, 0x33}, 5000)
	storePath := filepath.Join(dir, "cardd.db")
	secretFile := w.secretFile(t, dir)
	env := []string{"CARDD_MODE=pos", "CARDD_READER_SAM_PATTERN=^" + regexp.QuoteMeta(slot1Reader) + "$",
		"CARDD_HOST_URL=" + w.srv.URL, "CARDD_HOST_SECRET_FILE=" + secretFile,
		"CARDD_STORE_PATH=" + storePath, "CARDD_TERMINAL_ID=" + termID, "CARDD_MIFARE_KEY_FILE=" + wallet.keyFile}
	ctx := context.Background()
	const uidCard = "uid:04112233"
	if _, err := w.host.RegisterM1(ctx, "04112233", "王五", "test", time.Now()); err != nil {
		t.Fatal(err)
	}
	credit1 := w.credit(t, uidCard, 2000)
	waitEmpty(t, 0)
	d := startDaemon(t, env...)
	d.waitLine(t, "reader added", 10*time.Second, func(m map[string]any) bool { return m["reader"] == slot0Reader })
	m1 := func(tear int) *inserted { return wallet.insert(t, tear, vpcd.Options{}) }
	balance := func() int64 { return wallet.balance(t) }

	// One tap loads the 20.00 paid in the app, then pays 12.50.
	wait := posCharge(t, env, "", "12.50", "--wait", "20s")
	in := m1(0)
	out, err := wait()
	in.remove(t)
	if err != nil || !strings.Contains(out, "paid 12.50: balance 57.50") {
		t.Fatalf("M1 load and purchase: %v\n%s", err, out)
	}
	if b := balance(); b != 5750 {
		t.Fatalf("wallet holds %d, want 5750", b)
	}
	creditState := func(id string) string {
		list, err := w.host.Credits(ctx, uidCard)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range list {
			if c.ID == id {
				return c.State
			}
		}
		return "missing"
	}
	if s := creditState(credit1); s != hostapi.CreditConsumed {
		t.Fatalf("credit %s at the host after the load, want consumed", s)
	}

	// The load's value block write torn: the tap ends, the next one
	// repairs the wallet from its backup, tells the host the load did not
	// happen, loads it again and pays.
	credit2 := w.credit(t, uidCard, 300)
	wait = posCharge(t, env, "", "5.00", "--wait", "20s")
	in = m1(1)
	out, err = wait()
	in.remove(t)
	if err == nil {
		t.Fatalf("a tap with a torn load was reported paid:\n%s", out)
	}
	wait = posCharge(t, env, "", "5.00", "--wait", "20s")
	in = m1(0)
	out, err = wait()
	in.remove(t)
	if err != nil || !strings.Contains(out, "paid 5.00: balance 55.50") {
		t.Fatalf("tap after the torn load: %v\n%s", err, out)
	}
	if b := balance(); b != 5550 || creditState(credit2) != hostapi.CreditConsumed {
		t.Fatalf("wallet holds %d, credit %s: want 5550 and consumed (3.00 loaded once)", b, creditState(credit2))
	}

	// The value block write torn: the card leaves, the sale waits for it.
	wait = posCharge(t, env, "", "5.00", "--wait", "20s")
	in = m1(1)
	out, err = wait()
	in.remove(t)
	if err == nil {
		t.Fatalf("a torn M1 purchase was reported paid:\n%s", out)
	}
	wait = posCharge(t, env, "", "5.00", "--wait", "20s")
	in = m1(0)
	out, err = wait()
	in.remove(t)
	if err != nil || !strings.Contains(out, "paid 5.00: balance 50.50") {
		t.Fatalf("tap after the torn write: %v\n%s", err, out)
	}
	if b := balance(); b != 5050 {
		t.Fatalf("wallet holds %d, want 5050: one debit of 5.00", b)
	}
	rows := purchaseRows(t, storePath, uidCard)
	var done int
	for _, r := range rows {
		if r.State == offline.StateDone {
			done++
		}
	}
	if done != 3 || len(rows) != 3 {
		t.Fatalf("purchase rows %+v: want 3 done", rows)
	}

	// Reported lost at the host by its UID: the next tap learns it and
	// refuses the sale; the wallet keeps its money.
	if _, err := w.host.Deny(ctx, uidCard, "lost", "test", time.Now()); err != nil {
		t.Fatal(err)
	}
	wait = posCharge(t, env, "", "1.00", "--wait", "3s")
	in = m1(0)
	d.waitLine(t, "tap", 10*time.Second, func(m map[string]any) bool { return m["outcome"] == "card_denied" })
	out, err = wait()
	in.remove(t)
	if err == nil || !strings.Contains(out, "no tap paid") {
		t.Fatalf("a deny-listed wallet paid:\n%s", out)
	}
	if b := balance(); b != 5050 {
		t.Fatalf("wallet holds %d after the refused sale, want 5050", b)
	}
	_ = d.cmd.Process.Signal(os.Interrupt)
	if err := <-d.exit; err != nil {
		t.Fatalf("cardd exited with %v", err)
	}
}

// m1Card is a simulated M1 wallet card in a file, with the 0600 wallet key
// file a POS is configured with (mifare.key_file).
type m1Card struct {
	keyFile, path string
	wallet        mifare.Wallet
}

// newM1Card writes a key file and a card holding balance fen into dir.
func newM1Card(t *testing.T, dir string, uid [4]byte, balance int64) *m1Card {
	t.Helper()
	c := &m1Card{keyFile: filepath.Join(dir, "wallet-keys.json"), path: filepath.Join(dir, "m1.json")}
	keys := `{"sector":2,"value_block":8,"backup_block":9,"key_a":"A0A1A2A3A4A5","key_b":"B0B1B2B3B4B5"}`
	if err := os.WriteFile(c.keyFile, []byte(keys), 0o600); err != nil {
		t.Fatal(err)
	}
	var err error
	if c.wallet, err = mifare.ParseWalletFile([]byte(keys), mifare.KeySlotsACS); err != nil {
		t.Fatal(err)
	}
	f, err := mifaresim.NewCardFile(uid, c.wallet, balance)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Save(c.path); err != nil {
		t.Fatal(err)
	}
	return c
}

// insert puts the card in slot 0; tear > 0 tears that block write from
// now (corrupt), as a card pulled while it writes.
func (c *m1Card) insert(t *testing.T, tear int, opt vpcd.Options) *inserted {
	t.Helper()
	f, err := mifaresim.LoadCardFile(c.path)
	if err != nil {
		t.Fatal(err)
	}
	card := mifaresim.NewSimCard(f, c.path)
	if tear > 0 {
		card.TearNextWriteAt(tear, mifaresim.TearCorrupt)
	}
	return insertSim(t, card, 0, opt)
}

// balance reads the wallet from the card's file.
func (c *m1Card) balance(t *testing.T) int64 {
	t.Helper()
	f, err := mifaresim.LoadCardFile(c.path)
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := c.wallet.Read(mifaresim.NewSimCard(f, ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
