package psam_test

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/cardd/cardd/apdu"
	"github.com/cardd/cardd/apdu/epurse"
	epursesim "github.com/cardd/cardd/apdu/epurse/sim"
	"github.com/cardd/cardd/apdu/psam"
	psamsim "github.com/cardd/cardd/apdu/psam/sim"
)

// The issuer master keys of the reference host: the card is issued with
// them, the PSAM is made from the same key file, and the host's TAC check
// uses them.
var masters = epurse.MasterKeys{
	DLK: epurse.Key16{0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11},
	DPK: epurse.Key16{0x3F, 0x01, 0x3F, 0x01, 0x3F, 0x01, 0x3F, 0x01, 0x3F, 0x01, 0x3F, 0x01, 0x3F, 0x01, 0x3F, 0x01},
	DTK: epurse.Key16{0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF, 0xFE, 0xDC, 0xBA, 0x98, 0x76, 0x54, 0x32, 0x10},
}

var term = [6]byte{0x01, 0x23, 0x00, 0x03, 0x3D, 0x11}

// rig is a card and a PSAM, both file-backed, as cardsim runs them.
type rig struct {
	card     *epursesim.SimCard
	sam      *psamsim.SimPSAM
	samPath  string
	keyFile  string
	cardPath string
}

func newRig(t *testing.T, balance int64) *rig {
	t.Helper()
	dir := t.TempDir()
	r := &rig{samPath: filepath.Join(dir, "psam.json"), keyFile: filepath.Join(dir, "masters.json"), cardPath: filepath.Join(dir, "card.json")}
	if err := epurse.WriteMasterKeyFile(r.keyFile, masters); err != nil {
		t.Fatal(err)
	}
	cf, err := epursesim.NewCardFile("3101234567890001", "张三", balance, epurse.Date{Year: 2024, Month: 1, Day: 1}, epurse.Date{Year: 2029, Month: 12, Day: 31}, masters)
	if err != nil {
		t.Fatal(err)
	}
	if err := cf.Save(r.cardPath); err != nil {
		t.Fatal(err)
	}
	r.card = epursesim.NewSimCard(cf, r.cardPath)
	sf, err := psamsim.NewSAMFileFromKeyFile(r.keyFile, term)
	if err != nil {
		t.Fatal(err)
	}
	if err := sf.Save(r.samPath); err != nil {
		t.Fatal(err)
	}
	if r.sam, err = psamsim.LoadSimPSAM(r.samPath); err != nil {
		t.Fatal(err)
	}
	return r
}

// purchase is what the POS does for one tap, in the order of docs/psam.md,
// and what it learns.
type purchase struct {
	serial     uint32
	appSerial  [10]byte
	init       epurse.PurchaseInit
	tac, mac2  [4]byte
	mac2Result error
}

func (r *rig) purchase(t *testing.T, info psam.Info, amount int64, when time.Time) purchase {
	t.Helper()
	var p purchase
	fci, err := epurse.Select(r.card)
	if err != nil {
		t.Fatalf("card select: %v", err)
	}
	p.appSerial = fci.Info.AppSerial
	// The card's INIT carries the PSAM's terminal id: the PSAM puts that id
	// into MAC1, and the card checks MAC1 with the id of its INIT.
	if p.init, err = epurse.InitPurchase(r.card, epurse.PurseEP, 1, amount, info.TerminalID); err != nil {
		t.Fatalf("card INIT: %v", err)
	}
	serial, mac1, err := psam.InitForPurchase(r.sam, psam.PurchaseMAC1Input{
		Card: p.init, Amount: amount, Type: epurse.TxEPPurchase, When: when, CardSerial: p.appSerial[:],
	})
	if err != nil {
		t.Fatalf("PSAM MAC1: %v", err)
	}
	p.serial = serial
	// (Here the POS commits its write-ahead journal row: DESIGN.md rule 2.)
	if p.tac, p.mac2, err = epurse.DebitPurchase(r.card, serial, when, mac1); err != nil {
		t.Fatalf("card DEBIT: %v", err)
	}
	p.mac2Result = psam.VerifyMAC2(r.sam, p.mac2)
	return p
}

func TestPurchaseCardAndPSAM(t *testing.T) {
	r := newRig(t, 10000)
	info, err := psam.Open(r.sam)
	if err != nil {
		t.Fatal(err)
	}
	if info.TerminalID != term {
		t.Fatalf("terminal id % X", info.TerminalID)
	}
	when := time.Date(2025, 3, 14, 12, 5, 9, 0, time.UTC)
	p := r.purchase(t, info, 1250, when)
	if p.mac2Result != nil {
		t.Fatalf("PSAM refused the card's MAC2: %v", p.mac2Result)
	}
	if p.serial != 1 {
		t.Errorf("first serial %d, want 1", p.serial)
	}
	// The host's check of the TAC, with the DTK diversified from the masters.
	dtk := masters.Diversify(p.appSerial[:]).DTK
	want, err := epurse.PurchaseTAC(dtk, 1250, epurse.TxEPPurchase, term, p.serial, when)
	if err != nil || want != p.tac {
		t.Fatalf("TAC % X, host computes % X (%v)", p.tac, want, err)
	}
	// The balance dropped once.
	if bal, err := epurse.GetBalance(r.card, epurse.PurseEP); err != nil || bal != 10000-1250 {
		t.Fatalf("balance %d, %v; want %d", bal, err, 10000-1250)
	}
	f := r.card.File()
	if len(f.Log) != 1 || f.Log[0].Amount != 1250 || f.Log[0].TerminalID != term || f.EPOfflineCounter != 1 {
		t.Fatalf("card log %+v, offline counter %d", f.Log, f.EPOfflineCounter)
	}
	// The same MAC1 cannot debit twice: the card's INIT is spent.
	if _, _, err := epurse.DebitPurchase(r.card, p.serial, when, [4]byte{}); !errors.Is(err, apdu.ErrConditionsOfUse) {
		t.Fatalf("second DEBIT: %v, want 6985", err)
	}
	if bal, _ := epurse.GetBalance(r.card, epurse.PurseEP); bal != 10000-1250 {
		t.Fatalf("balance after a refused replay %d", bal)
	}
	// One MAC1, one MAC2 check.
	if err := psam.VerifyMAC2(r.sam, p.mac2); !errors.Is(err, apdu.ErrConditionsOfUse) {
		t.Fatalf("second MAC2 check: %v, want 6985", err)
	}
	// The next purchase gets the next serial.
	q := r.purchase(t, info, 300, when.Add(time.Minute))
	if q.mac2Result != nil || q.serial != 2 {
		t.Fatalf("second purchase: serial %d, MAC2 %v", q.serial, q.mac2Result)
	}
	if bal, _ := epurse.GetBalance(r.card, epurse.PurseEP); bal != 10000-1250-300 {
		t.Fatalf("balance %d", bal)
	}
}

func TestPurchaseWrongMAC2Refused(t *testing.T) {
	r := newRig(t, 5000)
	info, err := psam.Open(r.sam)
	if err != nil {
		t.Fatal(err)
	}
	when := time.Date(2025, 3, 14, 12, 5, 9, 0, time.UTC)
	fci, err := epurse.Select(r.card)
	if err != nil {
		t.Fatal(err)
	}
	pi, err := epurse.InitPurchase(r.card, epurse.PurseEP, 1, 100, info.TerminalID)
	if err != nil {
		t.Fatal(err)
	}
	serial, mac1, err := psam.InitForPurchase(r.sam, psam.PurchaseMAC1Input{Card: pi, Amount: 100, Type: epurse.TxEPPurchase, When: when, CardSerial: fci.Info.AppSerial[:]})
	if err != nil {
		t.Fatal(err)
	}
	_, mac2, err := epurse.DebitPurchase(r.card, serial, when, mac1)
	if err != nil {
		t.Fatal(err)
	}
	mac2[3] ^= 0x01
	if err := psam.VerifyMAC2(r.sam, mac2); !errors.Is(err, apdu.ErrMACInvalid) {
		t.Fatalf("corrupted MAC2: %v, want 9302", err)
	}
	mac2[3] ^= 0x01
	if err := psam.VerifyMAC2(r.sam, mac2); !errors.Is(err, apdu.ErrConditionsOfUse) {
		t.Fatalf("right MAC2 after a refused check: %v, want 6985 (the session is spent)", err)
	}
}

func TestPurchaseMAC1ForAnotherTerminalIsRefusedByCard(t *testing.T) {
	r := newRig(t, 5000)
	info, err := psam.Open(r.sam)
	if err != nil {
		t.Fatal(err)
	}
	fci, _ := epurse.Select(r.card)
	other := [6]byte{9, 9, 9, 9, 9, 9}
	pi, err := epurse.InitPurchase(r.card, epurse.PurseEP, 1, 100, other)
	if err != nil {
		t.Fatal(err)
	}
	when := time.Date(2025, 3, 14, 12, 5, 9, 0, time.UTC)
	serial, mac1, err := psam.InitForPurchase(r.sam, psam.PurchaseMAC1Input{Card: pi, Amount: 100, Type: epurse.TxEPPurchase, When: when, CardSerial: fci.Info.AppSerial[:]})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := epurse.DebitPurchase(r.card, serial, when, mac1); !errors.Is(err, apdu.ErrMACInvalid) {
		t.Fatalf("DEBIT with a MAC1 of terminal %X for an INIT of %X: %v, want 9302", info.TerminalID, other, err)
	}
	if bal, _ := epurse.GetBalance(r.card, epurse.PurseEP); bal != 5000 {
		t.Fatalf("balance %d", bal)
	}
}

func TestSerialPersistsAcrossReopen(t *testing.T) {
	r := newRig(t, 10000)
	info, err := psam.Open(r.sam)
	if err != nil {
		t.Fatal(err)
	}
	when := time.Date(2025, 3, 14, 12, 0, 0, 0, time.UTC)
	var last uint32
	for i := range 3 {
		p := r.purchase(t, info, 10, when.Add(time.Duration(i)*time.Minute))
		if p.mac2Result != nil || p.serial != last+1 {
			t.Fatalf("purchase %d: serial %d after %d, MAC2 %v", i+1, p.serial, last, p.mac2Result)
		}
		last = p.serial
	}
	// A MAC1 asked for and never used still spends its serial.
	r.card.Reset()
	fci, _ := epurse.Select(r.card)
	pi, _ := epurse.InitPurchase(r.card, epurse.PurseEP, 1, 10, info.TerminalID)
	s, _, err := psam.InitForPurchase(r.sam, psam.PurchaseMAC1Input{Card: pi, Amount: 10, Type: epurse.TxEPPurchase, When: when, CardSerial: fci.Info.AppSerial[:]})
	if err != nil || s != last+1 {
		t.Fatalf("unused MAC1: serial %d, %v", s, err)
	}
	last = s

	// The SAM is pulled and the daemon restarts: a new process loads the file.
	onDisk, err := psamsim.LoadSAMFile(r.samPath)
	if err != nil || onDisk.Serial != last {
		t.Fatalf("serial on disk %d, %v; want %d", onDisk.Serial, err, last)
	}
	if r.sam, err = psamsim.LoadSimPSAM(r.samPath); err != nil {
		t.Fatal(err)
	}
	if info, err = psam.Open(r.sam); err != nil {
		t.Fatal(err)
	}
	r.card.Reset()
	p := r.purchase(t, info, 10, when.Add(time.Hour))
	if p.mac2Result != nil || p.serial != last+1 {
		t.Fatalf("after reopen: serial %d, want %d; MAC2 %v", p.serial, last+1, p.mac2Result)
	}
	if bal, _ := epurse.GetBalance(r.card, epurse.PurseEP); bal != 10000-4*10 {
		t.Fatalf("balance %d, want %d", bal, 10000-4*10)
	}
}

func TestKeyVersionMismatch(t *testing.T) {
	r := newRig(t, 5000)
	info, err := psam.Open(r.sam)
	if err != nil {
		t.Fatal(err)
	}
	fci, _ := epurse.Select(r.card)
	pi, err := epurse.InitPurchase(r.card, epurse.PurseEP, 1, 100, info.TerminalID)
	if err != nil {
		t.Fatal(err)
	}
	pi.KeyVersion = 0x02 // a card issued under a key this PSAM does not hold
	_, _, err = psam.InitForPurchase(r.sam, psam.PurchaseMAC1Input{Card: pi, Amount: 100, Type: epurse.TxEPPurchase, When: time.Now(), CardSerial: fci.Info.AppSerial[:]})
	if !errors.Is(err, apdu.ErrKeyIndex) {
		t.Fatalf("%v, want 9403", err)
	}
	if got := r.sam.File().Serial; got != 0 {
		t.Fatalf("a refused INIT SAM spent serial %d", got)
	}
}
