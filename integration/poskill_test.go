package integration

import (
	"math/rand/v2"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"

	epursesim "github.com/cardd/cardd/apdu/epurse/sim"
	"github.com/cardd/cardd/money"
	"github.com/cardd/cardd/offline"
	"github.com/cardd/cardd/reader/vpcd"
)

// TestPOSPurchaseDaemonKilled SIGKILLs `cardd run --mode pos` (no host, no
// daily limit: the card is sent SELECT, INITIALIZE FOR PURCHASE and DEBIT
// FOR PURCHASE only, the balance read by none of them but INITIALIZE) at a
// random moment of an e-purse card's tap of an armed sale: before the row,
// between the row and DEBIT, after DEBIT and before the row is done, after
// the card left. It restarts the daemon (a sale in doubt comes back, tied
// to the card) and taps again: the card is debited exactly the sales the
// journal holds done, each with the card's TAC, and none is left in doubt.
func TestPOSPurchaseDaemonKilled(t *testing.T) {
	requirePCSC(t)
	n := 20
	if testing.Short() {
		n = 5
	}
	w := newHostWorld(t)
	insertPSAM(t, w.hostDir)
	dir := t.TempDir()
	storePath := filepath.Join(dir, "cardd.db")
	env := []string{"CARDD_MODE=pos", "CARDD_READER_SAM_PATTERN=^" + regexp.QuoteMeta(slot1Reader) + "$",
		"CARDD_STORE_PATH=" + storePath, "CARDD_TERMINAL_ID=" + termID, "CARDD_POS_DAILY_LIMIT=0"}
	const number = "3101000000800099"
	const start = 100000
	path := w.issue(t, number, start)
	rng := rand.New(rand.NewPCG(7, 8))
	for i := range n {
		killMidSale(t, i, env, money.Format(int64(1+rng.IntN(500))), time.Duration(rng.IntN(80))*time.Millisecond,
			func(opt vpcd.Options) *inserted { return insert(t, path, 0, opt) })

		f, err := epursesim.LoadCardFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var paid int64
		for _, r := range purchaseRows(t, storePath, number) {
			switch r.State {
			case offline.StateDone:
				paid += r.AmountFen
				checkTAC(t, path, r)
			case offline.StateIntent, offline.StateUnknown:
				t.Fatalf("round %d: purchase %s still in doubt after the card's tap (%s)", i, r.ID, r.Detail)
			}
		}
		if f.EPBalance != start-paid {
			t.Fatalf("round %d: card holds %d, the journal's sales done %d: want %d", i, f.EPBalance, paid, start-paid)
		}
	}
	var states string
	if err := sqlOpen(t, storePath).QueryRow(`SELECT group_concat(state || ' ' || n, ', ') FROM
		(SELECT state, count(*) AS n FROM journal WHERE kind = 'purchase' GROUP BY state)`).Scan(&states); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d rounds; purchase rows: %s", n, states)
}

// killMidSale is one round of a kill test at a POS: `cardd run` with env
// is started, a sale of amount armed, the card put in slot 0 (in), at
// 15 ms an APDU, and the daemon SIGKILLed delay after it saw the card;
// then it is started again, the card tapped once more (a tap ending ok)
// and the daemon stopped.
func killMidSale(t *testing.T, round int, env []string, amount string, delay time.Duration, in func(vpcd.Options) *inserted) {
	t.Helper()
	waitEmpty(t, 0)
	d := startDaemon(t, env...)
	d.waitLine(t, "reader added", 10*time.Second, func(m map[string]any) bool { return m["reader"] == slot0Reader })
	sale := posCharge(t, env, "", amount, "--wait", "10s")
	card := in(vpcd.Options{Latency: 15 * time.Millisecond})
	d.waitLine(t, "card seen", 10*time.Second, func(m map[string]any) bool {
		return m["event"] == "card-inserted" && m["reader"] == slot0Reader // not the PSAM's
	})
	time.Sleep(delay)
	_ = d.cmd.Process.Signal(syscall.SIGKILL)
	<-d.exit
	_, _ = sale() // paid before the kill, or cut off: the journal says
	card.removeAfterKill(t, 0)

	d = startDaemon(t, env...)
	d.waitLine(t, "reader added", 10*time.Second, func(m map[string]any) bool { return m["reader"] == slot0Reader })
	card = in(vpcd.Options{})
	d.waitLine(t, "tap after restart", 15*time.Second, isTap("ok"))
	card.remove(t)
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	if err := <-d.exit; err != nil {
		t.Fatalf("round %d: cardd exited with %v after SIGTERM", round, err)
	}
}
