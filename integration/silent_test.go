package integration

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	epursesim "github.com/cardd/cardd/apdu/epurse/sim"
	"github.com/cardd/cardd/money"
	"github.com/cardd/cardd/offline"
	"github.com/cardd/cardd/reader/vpcd"
	"github.com/cardd/cardd/tap"
)

// TestSilentCardDoesNotWedgeReaders: a card that stops answering in the
// middle of a tap (it answers SELECT, then nothing, while it stays in the
// field; vpcd then waits for it without a timeout, as many reader drivers
// do) ends its tap as timeout within tap.timeout + 1 s; a card on the other
// reader is read meanwhile and afterwards, /healthz stays healthy for longer
// than its wedge limit, and SIGTERM stops the daemon within 2 s although the
// abandoned exchange is still blocked in pcscd.
func TestSilentCardDoesNotWedgeReaders(t *testing.T) {
	requirePCSC(t)
	const tapTimeout = 3 * time.Second
	_, silentPath := newCardFile(t, "3101000000121212", "静卡", 1200, 2)
	normalFile, normalPath := newCardFile(t, "3101000000343434", "李四", 3400, 2)
	waitEmpty(t, 0)
	waitEmpty(t, 1)
	d := startDaemon(t, "CARDD_READER_CARD_PATTERN=^Virtual PCD 00 0[01]$", "CARDD_TAP_TIMEOUT="+tapTimeout.String())
	api := d.apiAddr(t)
	for _, name := range []string{slot0Reader, slot1Reader} {
		d.waitLine(t, "reader "+name+" added", 10*time.Second, func(m map[string]any) bool {
			return m["event"] == "reader-added" && m["reader"] == name
		})
	}
	onReader := func(name, outcome string) func(map[string]any) bool {
		return func(m map[string]any) bool { return isTap(outcome)(m) && m["reader"] == name }
	}

	// The silent card answers the first APDU (SELECT) and goes mute on the
	// second; the other card arrives on slot 1 while that tap is stuck.
	silent := insert(t, silentPath, 0, vpcd.Options{SilentAfter: 2})
	d.waitLine(t, "silent card inserted", 10*time.Second, func(m map[string]any) bool {
		return m["event"] == "card-inserted" && m["reader"] == slot0Reader
	})
	inserted := time.Now()
	normal := insert(t, normalPath, 1, vpcd.Options{})

	m := d.waitLine(t, "the silent card's tap ending", 30*time.Second, func(m map[string]any) bool {
		return m["msg"] == "tap" && m["reader"] == slot0Reader
	})
	took := time.Since(inserted)
	if m["outcome"] != "timeout" {
		t.Errorf("silent card's tap ended %v (err %v), want timeout", m["outcome"], m["err"])
	}
	if limit := tapTimeout + time.Second; took > limit {
		t.Errorf("silent card's tap ended %v after the card arrived, want within tap.timeout + 1 s = %v", took.Round(time.Millisecond), limit)
	}
	if ms, _ := m["ms"].(float64); time.Duration(ms)*time.Millisecond > tapTimeout+time.Second {
		t.Errorf("silent card's tap logged %v ms, want at most tap.timeout + 1 s", ms)
	}

	// The card on the other reader: read while the silent one lies on its
	// reader, and again after being taken off and put back.
	first := d.waitLine(t, "slot 1 card read", 10*time.Second, onReader(slot1Reader, "ok"))
	if want := money.Format(normalFile.EPBalance); first["card"] != "3101********3434" || first["balance"] != want {
		t.Errorf("slot 1 read %v %v, want 3101********3434 %s", first["card"], first["balance"], want)
	}
	normal.remove(t)
	insert(t, normalPath, 1, vpcd.Options{})
	d.waitLine(t, "slot 1 card read again", 10*time.Second, onReader(slot1Reader, "ok"))

	// A tap loop stuck for 15 s + tap.timeout turns /healthz unhealthy
	// (and systemd's watchdog restarts the daemon): with the silent card
	// still in, it must stay healthy past that.
	for until := inserted.Add(15*time.Second + tapTimeout + 2*time.Second); time.Now().Before(until); time.Sleep(time.Second) {
		resp, err := http.Get("http://" + api + "/healthz")
		if err != nil {
			t.Fatalf("/healthz: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("/healthz = %d %v after the silent card arrived, want 200", resp.StatusCode, time.Since(inserted).Round(time.Second))
		}
	}
	if s := silent.status(); s != "the simulated card was still in the slot" {
		t.Fatalf("the silent card must still be in the field for the stop: %s", s)
	}

	// The bound of the issue: tap.timeout has long passed, and the
	// exchange abandoned then is still blocked inside pcscd.
	d.stop(t, 2*time.Second)
	silent.remove(t)
}

// lateCard answers the command with instruction ins only after delay: the
// command has taken effect on the card, but its answer comes after the
// tap gave up on it.
type lateCard struct {
	vpcd.Card
	ins   byte
	delay time.Duration
}

func (c lateCard) Transmit(cmd []byte) ([]byte, error) {
	resp, err := c.Card.Transmit(cmd)
	if len(cmd) > 1 && cmd[1] == c.ins {
		time.Sleep(c.delay)
	}
	return resp, err
}

// TestLoadSilentCardInDoubt: a card that goes silent on CREDIT FOR LOAD
// (after taking the money), and one whose answer to it comes only after the
// tap's deadline, end their taps as timeout with the journal row unknown:
// the late answer is not acted on. The next tap settles the row from the
// card's counter: the credit is on the card and consumed at the host once.
func TestLoadSilentCardInDoubt(t *testing.T) {
	requirePCSC(t)
	w := newWorld(t)
	count := w.loadTapAPDUs(t, "3101000000600100")
	const creditLoad = 0x52 // the last APDU of a tap with one load
	for _, tc := range []struct {
		name   string
		number string
		insert func(t *testing.T, path string) *inserted
	}{
		{"silent", "3101000000600201", func(t *testing.T, path string) *inserted {
			return insert(t, path, 0, vpcd.Options{SilentAfter: count})
		}},
		{"late answer", "3101000000600202", func(t *testing.T, path string) *inserted {
			f, err := epursesim.LoadCardFile(path)
			if err != nil {
				t.Fatal(err)
			}
			return insertSim(t, lateCard{Card: epursesim.NewSimCard(f, path), ins: creditLoad, delay: 5 * time.Second}, 0, vpcd.Options{})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := w.issue(t, tc.number, 20000)
			id := w.credit(t, tc.number, 3000)
			in := tc.insert(t, path)
			res := waitResult(t, w.results)
			if res.Outcome() != tap.OutcomeTimeout {
				t.Errorf("tap ended %s (%v), want timeout", res.Outcome(), res.Err)
			}
			if limit := 3*time.Second + time.Second; res.ToDone > limit {
				t.Errorf("tap took %v, want within tap.timeout + 1 s", res.ToDone)
			}
			rows, err := w.store.Unresolved(context.Background(), tc.number)
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != 1 || rows[0].State != offline.StateUnknown {
				t.Fatalf("journal after the timed-out CREDIT FOR LOAD: %+v, want one unknown row", rows)
			}
			if tc.name == "late answer" {
				// Let the answer arrive, and be thrown away, before the
				// card leaves.
				time.Sleep(3 * time.Second)
				if rows, _ := w.store.Unresolved(context.Background(), tc.number); len(rows) != 1 || rows[0].State != offline.StateUnknown {
					t.Fatalf("journal after the late answer came: %+v, want still one unknown row", rows)
				}
			}
			in.remove(t)

			again := w.tap(t, path, vpcd.Options{})
			if again.Err != nil {
				t.Fatalf("tap after the timeout: %v", again.Err)
			}
			if again.Load == nil || len(again.Load.Recovered) != 1 || !again.Load.Recovered[0].Applied {
				t.Errorf("want the load recovered from the card as applied, got %+v", again.Load)
			}
			w.checkOnce(t, path, tc.number, id, 20000, 3000)
			if got := w.receipts(t, tc.number); len(got) != 1 {
				t.Errorf("receipts queued %q, want one", got)
			}
		})
	}
}

// TestPOSSilentAtDebit: a card that goes silent on DEBIT FOR PURCHASE (after
// debiting itself) ends the tap as timeout with the purchase row unknown and
// the sale in doubt; its next tap settles the row from the card's counter,
// and the sale is paid exactly once.
func TestPOSSilentAtDebit(t *testing.T) {
	requirePCSC(t)
	w := newHostWorld(t)
	insertPSAM(t, w.hostDir)
	store, till, results := startPOSRunner(t, -1)
	tapOnce := func(path string, opt vpcd.Options) tap.Result {
		in := insert(t, path, 0, opt)
		res := waitResult(t, results)
		in.remove(t)
		return res
	}
	// A clean sale on a new card, to count its APDUs: DEBIT FOR PURCHASE
	// is the last (the PSAM checks the card's MAC2 after it). Another new
	// card's first sale takes the same APDUs.
	count := 0
	if _, err := till.Arm(700, ""); err != nil {
		t.Fatal(err)
	}
	probe := w.issue(t, "3101000000800003", 50000)
	if res := tapOnce(probe, vpcd.Options{OnAPDU: func(n int) { count = n }}); res.Err != nil || !res.Purchase.Paid {
		t.Fatalf("clean sale: %+v %v", res.Purchase, res.Err)
	}

	const number = "3101000000800004"
	path := w.issue(t, number, 50000)
	if _, err := till.Arm(700, ""); err != nil {
		t.Fatal(err)
	}
	res := tapOnce(path, vpcd.Options{SilentAfter: count})
	// In doubt, not timeout: the card may have debited, and a POS told
	// "not paid" takes a second payment.
	if res.Outcome() != tap.OutcomeSaleInDoubt || !errors.Is(res.Err, tap.ErrTapTimeout) {
		t.Errorf("silent DEBIT: tap ended %s (%v), want sale_in_doubt from the timeout", res.Outcome(), res.Err)
	}
	if limit := 3*time.Second + time.Second; res.ToDone > limit {
		t.Errorf("silent DEBIT: tap took %v, want within tap.timeout + 1 s", res.ToDone)
	}
	if res.Purchase != nil && res.Purchase.Paid {
		t.Error("a debit that was never answered reported paid")
	}
	rows, err := store.Unresolved(context.Background(), number)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].State != offline.StateUnknown {
		t.Fatalf("journal after the silent DEBIT: %+v, want one unknown purchase row", rows)
	}
	if _, err := till.Arm(900, ""); !errors.Is(err, tap.ErrSaleInDoubt) {
		t.Errorf("arming another sale while the last is in doubt: %v, want ErrSaleInDoubt", err)
	}

	again := tapOnce(path, vpcd.Options{})
	if again.Err != nil || again.Purchase == nil || !again.Purchase.Paid {
		t.Fatalf("tap after the silent DEBIT: %+v %v", again.Purchase, again.Err)
	}
	if n := len(again.Purchase.Recovered); n != 1 || !again.Purchase.Recovered[0].Applied {
		t.Errorf("recovered %+v, want the silent debit recovered as applied", again.Purchase.Recovered)
	}
	f, err := epursesim.LoadCardFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if f.EPBalance != 50000-700 {
		t.Errorf("card balance %d, want %d: the sale debited once", f.EPBalance, 50000-700)
	}
	done, err := store.PurchasesOn(context.Background(), number, time.Now().Format("20060102"))
	if err != nil {
		t.Fatal(err)
	}
	if len(done) != 1 || done[0].State != offline.StateDone {
		t.Fatalf("purchase rows %+v, want one, done", done)
	}
	checkTAC(t, path, done[0])
}

// stopAtCard stops the daemon's tap loop when the card takes the command
// with instruction ins, then answers it after delay: a SIGTERM (a restart,
// an upgrade) landing while a money command is on the card.
type stopAtCard struct {
	vpcd.Card
	ins   byte
	delay time.Duration
	stop  func()
	once  *sync.Once
}

func (c stopAtCard) Transmit(cmd []byte) ([]byte, error) {
	resp, err := c.Card.Transmit(cmd)
	if len(cmd) > 1 && cmd[1] == c.ins {
		c.once.Do(func() { go c.stop() })
		time.Sleep(c.delay)
	}
	return resp, err
}

// TestStopDuringLoadLetsItFinish: a stop while CREDIT FOR LOAD is on the
// card lets the tap finish, within its deadline, instead of abandoning the
// command: the row is done with the card's TAC, not left in doubt by a
// restart, and the loop stops within tap.timeout + 1 s.
func TestStopDuringLoadLetsItFinish(t *testing.T) {
	requirePCSC(t)
	w := newWorld(t)
	const number = "3101000000600301"
	path := w.issue(t, number, 20000)
	w.credit(t, number, 3000)
	f, err := epursesim.LoadCardFile(path)
	if err != nil {
		t.Fatal(err)
	}
	stop, took := w.stop, make(chan time.Duration, 1)
	card := stopAtCard{Card: epursesim.NewSimCard(f, path), ins: 0x52, delay: time.Second, once: &sync.Once{},
		stop: func() { start := time.Now(); stop(); took <- time.Since(start) }}
	in := insertSim(t, card, 0, vpcd.Options{})
	res := waitResult(t, w.results)
	if res.Load == nil || len(res.Load.Loads) != 1 || !res.Load.Loads[0].Applied {
		t.Fatalf("tap stopped during CREDIT FOR LOAD: %+v (%v), want the load applied", res.Load, res.Err)
	}
	select {
	case d := <-took:
		if d > 3*time.Second+time.Second {
			t.Errorf("the stop took %v, want within tap.timeout + 1 s", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the tap loop did not stop")
	}
	if rows, err := w.store.Unresolved(context.Background(), number); err != nil || len(rows) != 0 {
		t.Fatalf("journal after a stop during the load: %+v %v, want nothing unresolved", rows, err)
	}
	in.remove(t)
	if f, err := epursesim.LoadCardFile(path); err != nil || f.EPBalance != 23000 {
		t.Fatalf("card balance after the load: %v %v, want 230.00", f.EPBalance, err)
	}
}
