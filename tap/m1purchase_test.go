package tap

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/cardd/cardd/apdu/mifare"
	mifaresim "github.com/cardd/cardd/apdu/mifare/sim"
	"github.com/cardd/cardd/offline"
)

var testWallet = mifare.Wallet{Sector: 1, ValueBlock: 4, BackupBlock: 5,
	KeyA: mifare.Key{0xA0, 0xA1, 0xA2, 0xA3, 0xA4, 0xA5}, KeyB: mifare.Key{0xB0, 0xB1, 0xB2, 0xB3, 0xB4, 0xB5}, Slots: mifare.KeySlotsACS}

const m1Card = "uid:04A1B2C3"

func newM1World(t *testing.T, balance int64) (*mifaresim.SimCard, *Purchaser, *Till, *offline.Store) {
	t.Helper()
	f, err := mifaresim.NewCardFile([4]byte{0x04, 0xA1, 0xB2, 0xC3}, testWallet, balance)
	if err != nil {
		t.Fatal(err)
	}
	st, err := offline.Open(filepath.Join(t.TempDir(), "cardd.db"), "000000000001")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	till := &Till{}
	w := testWallet
	p := &Purchaser{Store: st, Till: till, Wallet: &w, Logger: slog.New(slog.DiscardHandler),
		Now: func() time.Time { return time.Date(2026, 11, 23, 12, 0, 0, 0, time.Local) }}
	return mifaresim.NewSimCard(f, ""), p, till, st
}

func walletBalance(t *testing.T, card *mifaresim.SimCard) int64 {
	t.Helper()
	card.Reset()
	b, _, err := testWallet.Read(card)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestM1Purchase(t *testing.T) {
	card, p, till, st := newM1World(t, 5000)
	till.Arm(1250, "")
	rep, err := chargeM1(p, card)
	if err != nil || !rep.Paid || rep.Balance != 3750 {
		t.Fatalf("ChargeM1 = %+v, %v", rep, err)
	}
	if b := walletBalance(t, card); b != 3750 {
		t.Fatalf("wallet holds %d", b)
	}
	row, err := st.Get(context.Background(), rep.JournalID)
	if err != nil || row.State != offline.StateDone || row.Card != m1Card || row.Purse != PurseM1 || row.BalanceFen != 5000 || row.AmountFen != 1250 {
		t.Fatalf("row %+v, %v", row, err)
	}
	// Over the balance: refused, nothing written.
	till.Arm(3751, "")
	card.Reset()
	if _, err := chargeM1(p, card); !errors.Is(err, ErrInsufficientBalance) {
		t.Fatalf("over the balance: %v", err)
	}
	if rows, _ := st.PurchasesOn(context.Background(), m1Card, "20261123"); len(rows) != 1 {
		t.Fatalf("%d purchase rows", len(rows))
	}
	// Over the daily limit: refused, an M1 card has no PIN.
	p.DailyLimit = 2000
	till.Arm(800, "123456")
	card.Reset()
	if _, err := chargeM1(p, card); !errors.Is(err, ErrPINRequired) {
		t.Fatalf("over the daily limit: %v", err)
	}
}

// TestM1PurchaseTornAtEveryWrite tears each block write of a purchase (and
// of the repair before it) in each way a write can tear, then taps again:
// the wallet is repaired and the sale paid exactly once.
func TestM1PurchaseTornAtEveryWrite(t *testing.T) {
	for _, mode := range []mifaresim.TearMode{mifaresim.TearCorrupt, mifaresim.TearNotWritten, mifaresim.TearWritten} {
		for n := 1; n <= 2; n++ {
			t.Run(fmt.Sprintf("%v/write%d", mode, n), func(t *testing.T) {
				card, p, till, st := newM1World(t, 5000)
				till.Arm(700, "")
				card.TearNextWriteAt(n, mode)
				first, err := chargeM1(p, card)
				switch {
				case n == 1 && err == nil:
					t.Fatal("a purchase torn at the value block write reported no error")
				case n == 2 && (err != nil || !first.Paid):
					// The value block holds the new balance: paid; only
					// the backup is stale, and the next read repairs it.
					t.Fatalf("torn at the backup write: %+v, %v; want paid", first, err)
				}
				card.Reset()
				rep, err := chargeM1(p, card)
				if err != nil || (n == 1 && !rep.Paid) {
					t.Fatalf("tap again: %+v, %v", rep, err)
				}
				if b := walletBalance(t, card); b != 4300 {
					t.Fatalf("wallet holds %d, want one debit of 700 from 5000", b)
				}
				rows, err := st.PurchasesOn(context.Background(), m1Card, "20261123")
				if err != nil || len(rows) != 1 || rows[0].State != offline.StateDone {
					t.Fatalf("purchase rows %+v, %v", rows, err)
				}
				if _, ok := till.Armed(); ok {
					t.Fatal("sale still armed")
				}
			})
		}
	}
}

// chargeM1 is what the runner does with an M1 card at a POS without a
// host: ReadM1, then ChargeM1.
func chargeM1(p *Purchaser, card *mifaresim.SimCard) (PurchaseReport, error) {
	rep, _, err := p.ReadM1(context.Background(), card)
	if err != nil {
		return rep, err
	}
	return p.ChargeM1(context.Background(), card, rep)
}
