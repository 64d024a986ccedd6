package integration

import (
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	epursesim "github.com/cardd/cardd/apdu/epurse/sim"
	psamsim "github.com/cardd/cardd/apdu/psam/sim"
	"github.com/cardd/cardd/host"
	"github.com/cardd/cardd/reader/vpcd"
	"github.com/cardd/cardd/tap"
	"github.com/ebfe/scard"
)

// TestPOSPSAMSetUpOncePerSession, through pcscd: the first sale sets the
// PSAM up; the next, after a pause longer than pcscd takes to power down
// an idle card, sends the card SELECT, INITIALIZE and DEBIT only and the
// PSAM only INIT SAM FOR PURCHASE, its GET RESPONSE and CREDIT SAM FOR
// PURCHASE: the kept connection kept the PSAM powered in its application.
// The PSAM pulled and put back (a power cycle), or reset by another
// application, between two sales: the next one sets it up again and pays.
func TestPOSPSAMSetUpOncePerSession(t *testing.T) {
	requirePCSC(t)
	w := newHostWorld(t)
	f, err := psamsim.NewSAMFileFromKeyFile(filepath.Join(w.hostDir, host.MastersFile), samTerminal)
	if err != nil {
		t.Fatal(err)
	}
	samPath := filepath.Join(t.TempDir(), "psam.json")
	if err := f.Save(samPath); err != nil {
		t.Fatal(err)
	}
	var samAPDUs atomic.Int64
	count := func(int) { samAPDUs.Add(1) }
	remove := holdPSAM(t, psamsim.NewSimPSAM(f, samPath), count)
	removed := false
	t.Cleanup(func() {
		if !removed {
			remove()
		}
	})
	_, till, results := startPOSRunner(t, -1)
	const number = "3101000000800077"
	path := w.issue(t, number, 50000)
	balance := int64(50000)

	sale := func(what string, amount int64) (psamSent int64, res tap.Result) {
		t.Helper()
		if _, err := till.Arm(amount, ""); err != nil {
			t.Fatal(err)
		}
		before := samAPDUs.Load()
		in := insert(t, path, 0, vpcd.Options{})
		res = waitResult(t, results)
		in.remove(t)
		if res.Err != nil || res.Purchase == nil || !res.Purchase.Paid || !res.Purchase.MAC2Verified {
			t.Fatalf("%s: not paid: %+v %v", what, res.Purchase, res.Err)
		}
		balance -= amount
		cf, err := epursesim.LoadCardFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if cf.EPBalance != balance {
			t.Fatalf("%s: card holds %d, want %d", what, cf.EPBalance, balance)
		}
		return samAPDUs.Load() - before, res
	}

	first, res := sale("first sale", 700)
	if first <= 3 {
		t.Fatalf("first sale: %d PSAM APDUs; want the set-up before INIT SAM FOR PURCHASE", first)
	}
	if res.CardAPDUs != 3 {
		t.Errorf("first sale: %d card APDUs before the card could leave, want 3 (SELECT, INITIALIZE, DEBIT)", res.CardAPDUs)
	}
	// pcscd powers an idle card down within about a second (vpcd.Insert).
	time.Sleep(3 * time.Second)
	second, res := sale("second sale", 700)
	if second != 3 {
		t.Errorf("second sale: %d PSAM APDUs, want 3 (INIT SAM FOR PURCHASE, GET RESPONSE, CREDIT SAM FOR PURCHASE)", second)
	}
	if res.CardAPDUs != 3 {
		t.Errorf("second sale: %d card APDUs, want 3", res.CardAPDUs)
	}

	// Pulled and put back: the PSAM starts in its MF again.
	remove()
	removed = true
	sam, err := psamsim.LoadSimPSAM(samPath)
	if err != nil {
		t.Fatal(err)
	}
	remove = holdPSAM(t, sam, count)
	removed = false
	third, _ := sale("sale after the PSAM was put back", 700)
	if third <= 3 {
		t.Errorf("sale after the PSAM was put back: %d PSAM APDUs; want the set-up again", third)
	}
	fourth, _ := sale("the next sale", 700)
	if fourth != 3 {
		t.Errorf("the sale after that: %d PSAM APDUs, want 3", fourth)
	}

	// Another application resets the PSAM: the kept connection does not
	// resume (SCARD_W_RESET_CARD), and the next sale sets it up again.
	resetByAnother(t, slot1Reader)
	fifth, _ := sale("sale after another application reset the PSAM", 700)
	if fifth <= 3 {
		t.Errorf("sale after the reset: %d PSAM APDUs; want the set-up again", fifth)
	}
}

// resetByAnother resets the card in reader as another application would:
// its own PC/SC connection, closed with SCARD_RESET_CARD.
func resetByAnother(t *testing.T, reader string) {
	t.Helper()
	pctx, err := scard.EstablishContext()
	if err != nil {
		t.Fatal(err)
	}
	defer pctx.Release()
	c, err := pctx.Connect(reader, scard.ShareShared, scard.ProtocolAny)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Disconnect(scard.ResetCard); err != nil {
		t.Fatal(err)
	}
}
