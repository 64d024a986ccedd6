package integration

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/cardd/cardd/money"
	"github.com/cardd/cardd/offline"
	"github.com/cardd/cardd/reader/vpcd"
)

// TestPOSM1DaemonKilled SIGKILLs `cardd run --mode pos` at a random moment
// of an M1 wallet's tap with a top-up and a sale (the card answers slowly,
// so the kill lands anywhere from the UID read to after the debit: before a
// journal row, between it and the host's authorization, between that and a
// value block write, between the write and the journal's done, before the
// report), restarts it and taps again: every credit reaches the wallet
// exactly once, the host consumes each once with no alarm, and the wallet
// is debited exactly the sales the journal holds done, none in doubt.
func TestPOSM1DaemonKilled(t *testing.T) {
	requirePCSC(t)
	n := 25
	if testing.Short() {
		n = 5
	}
	w := newHostWorld(t)
	dir := t.TempDir()
	secretFile := w.secretFile(t, dir)
	wallet := newM1Card(t, dir, [4]byte{0x04, 0x55, 0x66, 0x77}, 1000)
	const uidCard = "uid:04556677"
	if _, err := w.host.RegisterM1(context.Background(), "04556677", "", "test", time.Now()); err != nil {
		t.Fatal(err)
	}
	env := []string{"CARDD_MODE=pos", "CARDD_READER_SAM_PATTERN=^" + regexp.QuoteMeta(slot1Reader) + "$",
		"CARDD_HOST_URL=" + w.srv.URL, "CARDD_HOST_SECRET_FILE=" + secretFile,
		"CARDD_STORE_PATH=" + filepath.Join(dir, "cardd.db"), "CARDD_TERMINAL_ID=" + termID, "CARDD_MIFARE_KEY_FILE=" + wallet.keyFile}
	rng := rand.New(rand.NewPCG(5, 6))
	storePath := filepath.Join(dir, "cardd.db")
	var sum int64
	for i := range n {
		amount := int64(1 + rng.IntN(900))
		w.credit(t, uidCard, amount)
		sum += amount

		// The tap is about 20 APDUs of 15 ms and three host calls, then
		// the sale: the kill lands anywhere in it.
		killMidSale(t, i, env, money.Format(int64(1+rng.IntN(100))), time.Duration(rng.IntN(500))*time.Millisecond,
			func(opt vpcd.Options) *inserted { return wallet.insert(t, 0, opt) })

		balance := wallet.balance(t)
		l, err := w.host.Ledger(context.Background(), uidCard)
		if err != nil {
			t.Fatal(err)
		}
		var paid int64
		for _, r := range purchaseRows(t, storePath, uidCard) {
			switch r.State {
			case offline.StateDone:
				paid += r.AmountFen
			case offline.StateIntent, offline.StateUnknown:
				t.Fatalf("round %d: purchase %s still in doubt after the wallet's tap", i, r.ID)
			}
		}
		if balance != 1000+sum-paid || l.LoadedFen != sum || l.PendingFen != 0 || l.Alarms != 0 {
			t.Fatalf("round %d: wallet %d (sales done %d), host loaded %d pending %d alarms %d; want %d loaded once",
				i, balance, paid, l.LoadedFen, l.PendingFen, l.Alarms, sum)
		}
	}
	// Where the kills landed, as the journal tells it: a load row that is
	// not done was cut short (failed: settled as not applied; unknown: the
	// host closed it).
	var states string
	store := sqlOpen(t, storePath)
	if err := store.QueryRow(`SELECT group_concat(kind || ' ' || state || ' ' || n, ', ') FROM
		(SELECT kind, state, count(*) AS n FROM journal WHERE kind IN ('load', 'purchase') GROUP BY kind, state)`).Scan(&states); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d rounds; M1 rows: %s", n, states)
}
