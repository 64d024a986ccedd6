package epursesim

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/cardd/cardd/apdu"
	"github.com/cardd/cardd/apdu/epurse"
)

// The host side of these tests holds the issuer master keys, as the
// reference host (load) and the PSAM (purchase) do, and diversifies them
// with the serial the card reports: nothing is taken from the card file.
var testMasters = epurse.MasterKeys{
	DLK:  epurse.Key16{0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11},
	DPK:  epurse.Key16{0x3F, 0x01, 0x3F, 0x01, 0x3F, 0x01, 0x3F, 0x01, 0x3F, 0x01, 0x3F, 0x01, 0x3F, 0x01, 0x3F, 0x01},
	DTK:  epurse.Key16{0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF, 0xFE, 0xDC, 0xBA, 0x98, 0x76, 0x54, 0x32, 0x10},
	DAMK: epurse.Key16{0x07, 0xDB, 0xBE, 0x1E, 0x85, 0xDC, 0x56, 0x2C, 0x94, 0x83, 0x4B, 0x17, 0x14, 0x3A, 0x14, 0xDC},
}

var testTerm = [6]byte{0x00, 0x11, 0x22, 0x33, 0x44, 0x55}

const testNumber = "3101234567890001"

func newTestFile(t *testing.T, balance int64) *CardFile {
	t.Helper()
	f, err := NewCardFile(testNumber, "张三", balance, epurse.Date{Year: 2024, Month: 1, Day: 1}, epurse.Date{Year: 2029, Month: 12, Day: 31}, testMasters)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// newTestCard returns a card saved at a file in a temporary directory, and
// the file's path.
func newTestCard(t *testing.T, balance int64) (*SimCard, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "card.json")
	f := newTestFile(t, balance)
	if err := f.Save(path); err != nil {
		t.Fatal(err)
	}
	return NewSimCard(f, path), path
}

// selected selects the application the way the daemon does and returns the
// card keys the host derives from the serial in the FCI.
func selected(t *testing.T, c apdu.Transmitter) epurse.CardKeys {
	t.Helper()
	fci, err := epurse.Select(c)
	if err != nil {
		t.Fatalf("Select: %v", err)
	}
	if fci.Info == nil || fci.Info.CardNumber != testNumber || !bytes.Equal(fci.AID, epurse.AIDCityCard) {
		t.Fatalf("Select = %+v", fci)
	}
	return testMasters.Diversify(fci.Info.AppSerial[:])
}

// load runs a whole load with the host side computed here, checking MAC1 and
// the TAC, and returns the INIT answer and the TAC.
func load(t *testing.T, c apdu.Transmitter, keys epurse.CardKeys, p epurse.Purse, amount int64, when time.Time) (epurse.LoadInit, [4]byte) {
	t.Helper()
	li, err := epurse.InitLoad(c, p, 1, amount, testTerm)
	if err != nil {
		t.Fatalf("InitLoad: %v", err)
	}
	seslk := epurse.SessionKeyLoad(keys.DLK, li.Random, li.OnlineCounter)
	if mac1, err := epurse.LoadMAC1(seslk, li.OldBalance, amount, p.LoadType(), testTerm); err != nil || mac1 != li.MAC1 {
		t.Fatalf("host: card MAC1 %X, computed %X (%v)", li.MAC1, mac1, err)
	}
	mac2, err := epurse.LoadMAC2(seslk, amount, p.LoadType(), testTerm, when)
	if err != nil {
		t.Fatal(err)
	}
	tac, err := epurse.CreditLoad(c, when, mac2)
	if err != nil {
		t.Fatalf("CreditLoad: %v", err)
	}
	want, err := epurse.LoadTAC(keys.DTK, li.OldBalance+amount, li.OnlineCounter, amount, p.LoadType(), testTerm, when)
	if err != nil || tac != want {
		t.Fatalf("host: card TAC %X, computed %X (%v)", tac, want, err)
	}
	return li, tac
}

// purchase runs a whole purchase with the PSAM side computed here.
func purchase(t *testing.T, c apdu.Transmitter, keys epurse.CardKeys, p epurse.Purse, amount int64, serial uint32, when time.Time) epurse.PurchaseInit {
	t.Helper()
	pi, err := epurse.InitPurchase(c, p, 1, amount, testTerm)
	if err != nil {
		t.Fatalf("InitPurchase: %v", err)
	}
	sespk := epurse.SessionKeyPurchase(keys.DPK, pi.Random, pi.OfflineCounter, serial)
	mac1, err := epurse.PurchaseMAC1(sespk, amount, p.PurchaseType(), testTerm, when)
	if err != nil {
		t.Fatal(err)
	}
	tac, mac2, err := epurse.DebitPurchase(c, serial, when, mac1)
	if err != nil {
		t.Fatalf("DebitPurchase: %v", err)
	}
	if want, _ := epurse.PurchaseMAC2(sespk, amount); mac2 != want {
		t.Fatalf("PSAM: card MAC2 %X, computed %X", mac2, want)
	}
	if want, _ := epurse.PurchaseTAC(keys.DTK, amount, p.PurchaseType(), testTerm, serial, when); tac != want {
		t.Fatalf("host: card TAC %X, computed %X", tac, want)
	}
	return pi
}

func balance(t *testing.T, c apdu.Transmitter, p epurse.Purse) int64 {
	t.Helper()
	v, err := epurse.GetBalance(c, p)
	if err != nil {
		t.Fatalf("GetBalance: %v", err)
	}
	return v
}

var when0 = time.Date(2026, 11, 20, 12, 1, 2, 0, time.UTC)

func TestLoad(t *testing.T) {
	c, path := newTestCard(t, 1000)
	keys := selected(t, c)
	li, tac := load(t, c, keys, epurse.PurseEP, 5000, when0)
	if li.OldBalance != 1000 || li.OnlineCounter != 0 || li.KeyVersion != 1 || li.AlgID != 0 {
		t.Errorf("InitLoad = %+v", li)
	}
	if got := balance(t, c, epurse.PurseEP); got != 6000 {
		t.Errorf("balance = %d, want 6000", got)
	}
	recs, err := epurse.ReadLog(c, LogSFI, 10)
	want := epurse.LogRecord{Counter: 0, Amount: 5000, Type: epurse.TxEPLoad, TerminalID: testTerm, Time: when0}
	if err != nil || len(recs) != 1 || recs[0] != want {
		t.Errorf("log = %+v, %v; want [%+v]", recs, err, want)
	}
	// The card saved before it answered.
	f, err := LoadCardFile(path)
	if err != nil || f.EPBalance != 6000 || f.EPOnlineCounter != 1 {
		t.Fatalf("saved file: %v, %v", f, err)
	}
	// GET TRANSACTION PROVE: counter after the load, the same TAC, and the
	// MAC2 the card accepted; even after the card was pulled and came back.
	c.Reset()
	selected(t, c)
	mac, tac2, err := epurse.GetTransactionProve(c, epurse.TxEPLoad, li.OnlineCounter+1)
	if err != nil || tac2 != tac {
		t.Errorf("GetTransactionProve = %X, %v; want TAC %X", tac2, err, tac)
	}
	seslk := epurse.SessionKeyLoad(keys.DLK, li.Random, li.OnlineCounter)
	if mac2, _ := epurse.LoadMAC2(seslk, 5000, epurse.TxEPLoad, testTerm, when0); mac != mac2 {
		t.Errorf("prove MAC = %X, want the MAC2 %X", mac, mac2)
	}
	if _, _, err := epurse.GetTransactionProve(c, epurse.TxEPLoad, li.OnlineCounter); !errors.Is(err, apdu.ErrMACNotAvailable) {
		t.Errorf("prove with the INIT's counter: err = %v, want ErrMACNotAvailable", err)
	}
	if _, _, err := epurse.GetTransactionProve(c, epurse.TxEPPurchase, 1); !errors.Is(err, apdu.ErrMACNotAvailable) {
		t.Errorf("prove of a purchase never made: err = %v", err)
	}
}

func TestLoadED(t *testing.T) {
	c, _ := newTestCard(t, 0)
	keys := selected(t, c)
	load(t, c, keys, epurse.PurseED, 300, when0)
	if ed, ep := balance(t, c, epurse.PurseED), balance(t, c, epurse.PurseEP); ed != 300 || ep != 0 {
		t.Errorf("ED %d EP %d, want 300 and 0", ed, ep)
	}
	recs, _ := epurse.ReadLog(c, LogSFI, 1)
	if len(recs) != 1 || recs[0].Type != epurse.TxEDLoad {
		t.Errorf("log = %+v", recs)
	}
}

func TestLoadBadMAC2ChangesNothing(t *testing.T) {
	c, path := newTestCard(t, 1000)
	keys := selected(t, c)
	before, _ := os.ReadFile(path)
	li, err := epurse.InitLoad(c, epurse.PurseEP, 1, 5000, testTerm)
	if err != nil {
		t.Fatal(err)
	}
	seslk := epurse.SessionKeyLoad(keys.DLK, li.Random, li.OnlineCounter)
	mac2, _ := epurse.LoadMAC2(seslk, 5001, epurse.TxEPLoad, testTerm, when0) // for another amount
	if _, err := epurse.CreditLoad(c, when0, mac2); !errors.Is(err, apdu.ErrMACInvalid) {
		t.Fatalf("err = %v, want ErrMACInvalid", err)
	}
	// The INIT is spent: even the right MAC2 is refused now.
	good, _ := epurse.LoadMAC2(seslk, 5000, epurse.TxEPLoad, testTerm, when0)
	if _, err := epurse.CreditLoad(c, when0, good); !errors.Is(err, apdu.ErrConditionsOfUse) {
		t.Errorf("credit after a refused MAC2: err = %v, want ErrConditionsOfUse", err)
	}
	if got := balance(t, c, epurse.PurseEP); got != 1000 {
		t.Errorf("balance = %d, want 1000", got)
	}
	if li2, err := epurse.InitLoad(c, epurse.PurseEP, 1, 5000, testTerm); err != nil || li2.OnlineCounter != li.OnlineCounter {
		t.Errorf("counter moved: %+v, %v", li2, err)
	}
	if recs, err := epurse.ReadLog(c, LogSFI, 10); err != nil || len(recs) != 0 {
		t.Errorf("log = %+v, %v", recs, err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Error("the card file changed")
	}
}

func TestCreditWithoutInit(t *testing.T) {
	c, _ := newTestCard(t, 1000)
	keys := selected(t, c)
	if _, err := epurse.CreditLoad(c, when0, [4]byte{}); !errors.Is(err, apdu.ErrConditionsOfUse) {
		t.Errorf("no INIT: err = %v, want ErrConditionsOfUse", err)
	}
	// Another command between INIT and CREDIT ends the INIT.
	li, _ := epurse.InitLoad(c, epurse.PurseEP, 1, 100, testTerm)
	balance(t, c, epurse.PurseEP)
	mac2, _ := epurse.LoadMAC2(epurse.SessionKeyLoad(keys.DLK, li.Random, li.OnlineCounter), 100, epurse.TxEPLoad, testTerm, when0)
	if _, err := epurse.CreditLoad(c, when0, mac2); !errors.Is(err, apdu.ErrConditionsOfUse) {
		t.Errorf("GET BALANCE in between: err = %v, want ErrConditionsOfUse", err)
	}
	// So does a power cycle.
	li, _ = epurse.InitLoad(c, epurse.PurseEP, 1, 100, testTerm)
	c.Reset()
	selected(t, c)
	mac2, _ = epurse.LoadMAC2(epurse.SessionKeyLoad(keys.DLK, li.Random, li.OnlineCounter), 100, epurse.TxEPLoad, testTerm, when0)
	if _, err := epurse.CreditLoad(c, when0, mac2); !errors.Is(err, apdu.ErrConditionsOfUse) {
		t.Errorf("after Reset: err = %v, want ErrConditionsOfUse", err)
	}
	// A purchase INIT does not arm a CREDIT.
	if _, err := epurse.InitPurchase(c, epurse.PurseEP, 1, 100, testTerm); err != nil {
		t.Fatal(err)
	}
	if _, err := epurse.CreditLoad(c, when0, mac2); !errors.Is(err, apdu.ErrConditionsOfUse) {
		t.Errorf("after a purchase INIT: err = %v", err)
	}
	if _, _, err := epurse.DebitPurchase(c, 1, when0, [4]byte{}); !errors.Is(err, apdu.ErrConditionsOfUse) {
		t.Errorf("debit without INIT: err = %v", err)
	}
}

// The recovery of DESIGN.md money rule 3: the answer to CREDIT FOR LOAD was
// lost; on the next tap the INIT probe shows the counter rose, and GET
// TRANSACTION PROVE gives the TAC.
func TestInterruptedLoadRecovery(t *testing.T) {
	c, _ := newTestCard(t, 1000)
	keys := selected(t, c)
	li, err := epurse.InitLoad(c, epurse.PurseEP, 1, 700, testTerm)
	if err != nil {
		t.Fatal(err)
	}
	seslk := epurse.SessionKeyLoad(keys.DLK, li.Random, li.OnlineCounter)
	mac2, _ := epurse.LoadMAC2(seslk, 700, epurse.TxEPLoad, testTerm, when0)
	lost := apdu.TransmitterFunc(func(cmd []byte) ([]byte, error) {
		c.Transmit(cmd) // the card acts…
		return nil, errors.New("card removed")
	})
	if _, err := epurse.CreditLoad(lost, when0, mac2); err == nil {
		t.Fatal("the lost answer was not an error")
	}
	c.Reset()
	selected(t, c)
	probe, err := epurse.InitLoad(c, epurse.PurseEP, 1, 700, testTerm)
	if err != nil || probe.OnlineCounter != li.OnlineCounter+1 || probe.OldBalance != 1700 {
		t.Fatalf("probe = %+v, %v: the load should show", probe, err)
	}
	c.Reset() // the probe's INIT is never completed
	selected(t, c)
	_, tac, err := epurse.GetTransactionProve(c, epurse.TxEPLoad, probe.OnlineCounter)
	want, _ := epurse.LoadTAC(keys.DTK, 1700, li.OnlineCounter, 700, epurse.TxEPLoad, testTerm, when0)
	if err != nil || tac != want {
		t.Errorf("recovered TAC = %X, %v; want %X", tac, err, want)
	}
}

func TestPurchase(t *testing.T) {
	c, path := newTestCard(t, 10000)
	keys := selected(t, c)
	pi := purchase(t, c, keys, epurse.PurseEP, 1234, 0x00010002, when0)
	if pi.Balance != 10000 || pi.OfflineCounter != 0 || pi.Overdraft != 0 {
		t.Errorf("InitPurchase = %+v", pi)
	}
	if got := balance(t, c, epurse.PurseEP); got != 10000-1234 {
		t.Errorf("balance = %d", got)
	}
	recs, _ := epurse.ReadLog(c, LogSFI, 10)
	if len(recs) != 1 || recs[0].Type != epurse.TxEPPurchase || recs[0].Amount != 1234 || recs[0].Counter != 0 {
		t.Errorf("log = %+v", recs)
	}
	mac, tac, err := epurse.GetTransactionProve(c, epurse.TxEPPurchase, 1)
	sespk := epurse.SessionKeyPurchase(keys.DPK, pi.Random, 0, 0x00010002)
	wantMAC, _ := epurse.PurchaseMAC2(sespk, 1234)
	wantTAC, _ := epurse.PurchaseTAC(keys.DTK, 1234, epurse.TxEPPurchase, testTerm, 0x00010002, when0)
	if err != nil || mac != wantMAC || tac != wantTAC {
		t.Errorf("prove = %X %X %v", mac, tac, err)
	}
	if f, err := LoadCardFile(path); err != nil || f.EPBalance != 10000-1234 || f.EPOfflineCounter != 1 {
		t.Errorf("saved: %v, %v", f, err)
	}
}

func TestPurchaseBadMAC1(t *testing.T) {
	c, _ := newTestCard(t, 10000)
	keys := selected(t, c)
	pi, _ := epurse.InitPurchase(c, epurse.PurseEP, 1, 100, testTerm)
	// MAC1 made for serial 1 but sent with serial 2: the session key differs.
	mac1, _ := epurse.PurchaseMAC1(epurse.SessionKeyPurchase(keys.DPK, pi.Random, pi.OfflineCounter, 1), 100, epurse.TxEPPurchase, testTerm, when0)
	if _, _, err := epurse.DebitPurchase(c, 2, when0, mac1); !errors.Is(err, apdu.ErrMACInvalid) {
		t.Errorf("err = %v, want ErrMACInvalid", err)
	}
	if got := balance(t, c, epurse.PurseEP); got != 10000 {
		t.Errorf("balance = %d", got)
	}
}

func TestInsufficientBalance(t *testing.T) {
	c, _ := newTestCard(t, 99)
	selected(t, c)
	if _, err := epurse.InitPurchase(c, epurse.PurseEP, 1, 100, testTerm); !errors.Is(err, apdu.ErrInsufficientBalance) {
		t.Errorf("err = %v, want ErrInsufficientBalance", err)
	}
	if _, err := epurse.InitPurchase(c, epurse.PurseEP, 1, 99, testTerm); err != nil {
		t.Errorf("the whole balance: %v", err)
	}
}

func TestKeyIndexAndCounterLimits(t *testing.T) {
	f := newTestFile(t, 1000)
	f.EPOfflineCounter = 0xFFFF
	f.EPOnlineCounter = 0xFFFF
	c := NewSimCard(f, "")
	selected(t, c)
	if _, err := epurse.InitLoad(c, epurse.PurseEP, 2, 1, testTerm); !errors.Is(err, apdu.ErrKeyIndex) {
		t.Errorf("key index 2: err = %v", err)
	}
	if _, err := epurse.InitPurchase(c, epurse.PurseEP, 1, 1, testTerm); !errors.Is(err, apdu.ErrCounterAtMaximum) {
		t.Errorf("purchase counter FFFF: err = %v", err)
	}
	if _, err := epurse.InitLoad(c, epurse.PurseEP, 1, 1, testTerm); !errors.Is(err, apdu.ErrCounterAtMaximum) {
		t.Errorf("load counter FFFF: err = %v", err)
	}
	f = newTestFile(t, 1000)
	f.MaxBalance = 1500
	c = NewSimCard(f, "")
	selected(t, c)
	if _, err := epurse.InitLoad(c, epurse.PurseEP, 1, 501, testTerm); !errors.Is(err, apdu.ErrConditionsOfUse) {
		t.Errorf("load beyond max_balance: err = %v", err)
	}
}

func TestLogWrapsNewestFirst(t *testing.T) {
	c, path := newTestCard(t, 100000)
	keys := selected(t, c)
	for i := range 12 {
		purchase(t, c, keys, epurse.PurseEP, int64(i+1), uint32(i), when0.Add(time.Duration(i)*time.Minute))
	}
	recs, err := epurse.ReadLog(c, LogSFI, 10)
	if err != nil || len(recs) != 10 {
		t.Fatalf("ReadLog = %d records, %v", len(recs), err)
	}
	for i, r := range recs {
		// Newest first: purchase 12 (counter 11, 12 fen) down to purchase 3.
		if r.Counter != uint16(11-i) || r.Amount != int64(12-i) || !r.Time.Equal(when0.Add(time.Duration(11-i)*time.Minute)) {
			t.Errorf("record %d = %+v", i+1, r)
		}
	}
	if _, err := apdu.Transceive(c, apdu.Command{CLA: 0x00, INS: 0xB2, P1: 11, P2: 0xC4, Ne: 23}); !errors.Is(err, apdu.ErrRecordNotFound) {
		t.Errorf("record 11: err = %v, want ErrRecordNotFound", err)
	}
	if f, _ := LoadCardFile(path); len(f.Log) != 10 || f.Log[0].Counter != 11 {
		t.Errorf("saved log: %d records", len(f.Log))
	}
}

func TestLogPastEnd(t *testing.T) {
	c, _ := newTestCard(t, 100)
	keys := selected(t, c)
	if recs, err := epurse.ReadLog(c, LogSFI, 10); err != nil || len(recs) != 0 {
		t.Errorf("new card: %+v, %v", recs, err)
	}
	purchase(t, c, keys, epurse.PurseEP, 1, 1, when0)
	if _, err := apdu.Transceive(c, apdu.Command{CLA: 0x00, INS: 0xB2, P1: 2, P2: 0xC4, Ne: 23}); !errors.Is(err, apdu.ErrRecordNotFound) {
		t.Errorf("record 2: err = %v, want ErrRecordNotFound", err)
	}
	if recs, err := epurse.ReadLog(c, LogSFI, 10); err != nil || len(recs) != 1 {
		t.Errorf("ReadLog = %+v, %v", recs, err)
	}
}

func TestZeroFilledEmptyRecords(t *testing.T) {
	f := newTestFile(t, 100)
	f.ZeroFilledEmptyRecords = true
	c := NewSimCard(f, "")
	keys := selected(t, c)
	purchase(t, c, keys, epurse.PurseEP, 1, 1, when0)
	data, err := apdu.Transceive(c, apdu.Command{CLA: 0x00, INS: 0xB2, P1: 2, P2: 0xC4, Ne: 23})
	if err != nil || !bytes.Equal(data, make([]byte, 23)) {
		t.Errorf("unused slot = %X, %v; want zeros", data, err)
	}
	if recs, err := epurse.ReadLog(c, LogSFI, 10); err != nil || len(recs) != 1 {
		t.Errorf("ReadLog = %+v, %v", recs, err)
	}
}

func TestSeparateLoadLog(t *testing.T) {
	f := newTestFile(t, 100)
	f.LoadLogSFI = 0x1A
	c := NewSimCard(f, "")
	keys := selected(t, c)
	load(t, c, keys, epurse.PurseEP, 50, when0)
	purchase(t, c, keys, epurse.PurseEP, 20, 1, when0)
	loads, err1 := epurse.ReadLog(c, 0x1A, 10)
	buys, err2 := epurse.ReadLog(c, LogSFI, 10)
	if err1 != nil || err2 != nil || len(loads) != 1 || loads[0].Type != epurse.TxEPLoad || len(buys) != 1 || buys[0].Type != epurse.TxEPPurchase {
		t.Errorf("loads %+v (%v), purchases %+v (%v)", loads, err1, buys, err2)
	}
}

func TestUnknownFiles(t *testing.T) {
	c, _ := newTestCard(t, 100)
	if _, err := epurse.Select(c, []byte{0xA0, 0, 0, 0, 0x99}); err != nil {
		// Falls back to 1001, which this card has.
		t.Errorf("unknown AID then 1001: %v", err)
	}
	if _, err := apdu.Transceive(c, apdu.Command{CLA: 0x00, INS: 0xA4, P1: 0x04, Data: []byte{0xA0, 0, 0, 0, 0x99}, Ne: 256}); !errors.Is(err, apdu.ErrFileNotFound) {
		t.Errorf("unknown AID: err = %v", err)
	}
	if _, err := apdu.Transceive(c, apdu.Command{CLA: 0x00, INS: 0xA4, Data: []byte{0x10, 0x02}, Ne: 256}); !errors.Is(err, apdu.ErrFileNotFound) {
		t.Errorf("file 1002: err = %v", err)
	}
	if _, err := apdu.Transceive(c, apdu.Command{CLA: 0x00, INS: 0xB0, P1: 0x97, Ne: 10}); !errors.Is(err, apdu.ErrFileNotFound) {
		t.Errorf("EF 0x17: err = %v", err)
	}
	if _, err := epurse.ReadLog(c, 0x19, 10); !errors.Is(err, apdu.ErrFileNotFound) {
		t.Errorf("log SFI 0x19: err = %v", err)
	}
	f := newTestFile(t, 100)
	f.Holder = nil
	anon := NewSimCard(f, "")
	selected(t, anon)
	if _, err := epurse.ReadHolder(anon); !errors.Is(err, apdu.ErrFileNotFound) {
		t.Errorf("anonymous card EF 0x16: err = %v", err)
	}
}

func TestBeforeSelect(t *testing.T) {
	c, _ := newTestCard(t, 100)
	if _, err := epurse.GetBalance(c, epurse.PurseEP); !errors.Is(err, apdu.ErrConditionsOfUse) {
		t.Errorf("GET BALANCE: err = %v, want ErrConditionsOfUse", err)
	}
	if _, err := epurse.ReadIssuerInfo(c); !errors.Is(err, apdu.ErrFileNotFound) {
		t.Errorf("READ BINARY: err = %v, want ErrFileNotFound", err)
	}
	if _, err := epurse.ReadLog(c, LogSFI, 1); !errors.Is(err, apdu.ErrFileNotFound) {
		t.Errorf("READ RECORD: err = %v, want ErrFileNotFound", err)
	}
	if _, err := epurse.InitLoad(c, epurse.PurseEP, 1, 1, testTerm); !errors.Is(err, apdu.ErrConditionsOfUse) {
		t.Errorf("INIT: err = %v", err)
	}
	// MF and PSE select; the PSE directory names the application.
	if _, err := apdu.Transceive(c, apdu.Command{CLA: 0x00, INS: 0xA4, Data: []byte{0x3F, 0x00}, Ne: 256}); err != nil {
		t.Errorf("select MF: %v", err)
	}
	fci, err := apdu.Transceive(c, apdu.Command{CLA: 0x00, INS: 0xA4, P1: 0x04, Data: []byte("1PAY.SYS.DDF01"), Ne: 256})
	if f, perr := epurse.ParseFCI(fci); err != nil || perr != nil || string(f.AID) != "1PAY.SYS.DDF01" {
		t.Errorf("select PSE: %X, %v, %v", fci, err, perr)
	}
	dir, err := apdu.Transceive(c, apdu.Command{CLA: 0x00, INS: 0xB2, P1: 1, P2: 0x0C, Ne: 256})
	ts, _ := apdu.ParseTLV(dir)
	if aid, ok := apdu.FindTLV(ts, 0x4F); err != nil || !ok || !bytes.Equal(aid.Value, epurse.AIDCityCard) {
		t.Errorf("PSE record 1 = %X, %v", dir, err)
	}
	if _, err := epurse.GetBalance(c, epurse.PurseEP); !errors.Is(err, apdu.ErrConditionsOfUse) {
		t.Errorf("GET BALANCE in the PSE: err = %v", err)
	}
}

func TestSelectByEveryRoute(t *testing.T) {
	c, _ := newTestCard(t, 100)
	for _, aids := range [][][]byte{{epurse.AIDCityCard}, {epurse.AIDTUnion}, {{0xA0, 0, 0, 0, 0x99}}} {
		fci, err := epurse.Select(c, aids...)
		if err != nil || fci.Info == nil || fci.Info.CardNumber != testNumber {
			t.Errorf("Select(%X) = %+v, %v", aids, fci, err)
		}
	}
}

func TestBlockedCard(t *testing.T) {
	f := newTestFile(t, 100)
	f.Blocked = true
	c := NewSimCard(f, "")
	fci, err := epurse.Select(c)
	if !errors.Is(err, apdu.ErrFileInvalidated) || fci.Info == nil || fci.Info.CardNumber != testNumber {
		t.Errorf("Select = %+v, %v; want the FCI and ErrFileInvalidated", fci, err)
	}
	if _, err := epurse.GetBalance(c, epurse.PurseEP); !errors.Is(err, apdu.ErrNotSupported) {
		t.Errorf("GET BALANCE: err = %v, want 6A81", err)
	}
	if _, err := epurse.ReadIssuerInfo(c); err != nil {
		t.Errorf("EF 0x15 stays readable: %v", err)
	}
}

func TestVerifyPIN(t *testing.T) {
	f := newTestFile(t, 100)
	f.EDNeedsPIN = true
	c := NewSimCard(f, "")
	selected(t, c)
	if _, err := epurse.GetBalance(c, epurse.PurseED); !errors.Is(err, apdu.ErrSecurityStatus) {
		t.Errorf("ED balance without PIN: err = %v, want ErrSecurityStatus", err)
	}
	if _, err := epurse.GetBalance(c, epurse.PurseEP); err != nil {
		t.Errorf("EP needs no PIN: %v", err)
	}
	for tries := 2; tries >= 1; tries-- {
		err := epurse.VerifyPIN(c, "654321")
		if sw, _ := apdu.SW(err); !errors.Is(err, apdu.ErrWrongPIN) || sw != 0x63C0|uint16(tries) {
			t.Errorf("wrong PIN: err = %v, want 63C%d", err, tries)
		}
	}
	if err := epurse.VerifyPIN(c, DefaultPIN); err != nil {
		t.Fatalf("right PIN: %v", err)
	}
	if c.File().PINTriesLeft != PINTries {
		t.Error("a right PIN did not reset the tries")
	}
	if _, err := epurse.GetBalance(c, epurse.PurseED); err != nil {
		t.Errorf("ED balance after PIN: %v", err)
	}
	for range 2 {
		epurse.VerifyPIN(c, "0000")
	}
	if err := epurse.VerifyPIN(c, "0000"); !errors.Is(err, apdu.ErrWrongPIN) {
		t.Errorf("third wrong PIN: err = %v, want 63C0", err)
	} else if sw, _ := apdu.SW(err); sw != 0x63C0 {
		t.Errorf("third wrong PIN: SW %04X, want 63C0", sw)
	}
	if err := epurse.VerifyPIN(c, DefaultPIN); !errors.Is(err, apdu.ErrAuthMethodBlocked) {
		t.Errorf("right PIN once blocked: err = %v", err)
	}
}

func TestProtocolErrors(t *testing.T) {
	c, _ := newTestCard(t, 100)
	for name, tc := range map[string]struct {
		cmd string
		sw  uint16
	}{
		"unknown INS":     {"00CA000000", 0x6D00},
		"unknown CLA":     {"A0A4000002 3F00", 0x6E00},
		"ISO INS in 80":   {"80A4000002 3F00", 0x6E00},
		"PBOC INS in 00":  {"005C000204", 0x6E00},
		"too short":       {"00A4", 0x6700},
		"Lc lies":         {"00A40400 09 A000", 0x6700},
		"select P1 08":    {"00A4080002 3F00", 0x6A86},
		"get response":    {"00C0000004", 0x6D00},
		"record 0":        {"00B200C417", 0x6A86},
		"read binary EF?": {"00B0000010", 0x6986},
	} {
		resp, err := c.Transmit(unhex(t, tc.cmd))
		if err != nil || len(resp) != 2 || uint16(resp[0])<<8|uint16(resp[1]) != tc.sw {
			t.Errorf("%s: %X, %v; want %04X", name, resp, err, tc.sw)
		}
	}
}

func TestWrongLe(t *testing.T) {
	c, _ := newTestCard(t, 100)
	keys := selected(t, c)
	for name, tc := range map[string]struct {
		cmd, want string
	}{
		"EF 0x15 Le too big":      {"00B0950020", "6C1E"},
		"EF 0x15 Le=00 reads all": {"00B0950000", ef15Of(t, c) + "9000"},
		"EF 0x15 partial read":    {"00B0950002", "0001 9000"},
		"EF 0x15 offset 28":       {"00B0951C00", "0000 9000"},
		"EF 0x15 offset 30":       {"00B0951E01", "6B00"},
		"record Le 16":            {"00B201C410", "6A83"}, // no record yet: not found first
		"balance Le 8":            {"805C000208", "6C04"},
	} {
		resp, err := c.Transmit(unhex(t, tc.cmd))
		if err != nil || !bytes.Equal(resp, unhex(t, tc.want)) {
			t.Errorf("%s: %X, %v; want %s", name, resp, err, tc.want)
		}
	}
	purchase(t, c, keys, epurse.PurseEP, 1, 1, when0)
	if resp, _ := c.Transmit(unhex(t, "00B201C410")); !bytes.Equal(resp, unhex(t, "6C17")) {
		t.Errorf("record with Le 16 = %X, want 6C17", resp)
	}
	// A wrong Le on CREDIT is answered before the INIT is spent, so the
	// apdu layer's retry with the right Le completes the load.
	li, _ := epurse.InitLoad(c, epurse.PurseEP, 1, 10, testTerm)
	mac2, _ := epurse.LoadMAC2(epurse.SessionKeyLoad(keys.DLK, li.Random, li.OnlineCounter), 10, epurse.TxEPLoad, testTerm, when0)
	d, tm, _ := epurse.EncodeDateTime(when0)
	data := append(append(d[:], tm[:]...), mac2[:]...)
	if tac, err := apdu.Transceive(c, apdu.Command{CLA: 0x80, INS: 0x52, Data: data, Ne: 8}); err != nil || len(tac) != 4 {
		t.Errorf("CREDIT with Le 08: %X, %v", tac, err)
	}
	if got := balance(t, c, epurse.PurseEP); got != 109 {
		t.Errorf("balance = %d, want 109", got)
	}
}

func ef15Of(t *testing.T, c *SimCard) string { return hexOf(c.File().Info.Bytes()) }

func TestATR(t *testing.T) {
	c, _ := newTestCard(t, 0)
	atr := c.ATR()
	if atr[0] != 0x3B || atr[1]&0xF0 != 0x80 || atr[2] != 0x80 || atr[3] != 0x01 {
		t.Fatalf("ATR %X is not 3B 8n 80 01 …", atr)
	}
	if n := int(atr[1] & 0x0F); len(atr) != 4+n+1 {
		t.Fatalf("ATR %X: T0 says %d historical bytes", atr, n)
	}
	var x byte
	for _, b := range atr[1:] {
		x ^= b
	}
	if x != 0 {
		t.Errorf("ATR %X: TCK wrong (XOR from T0 = %02X)", atr, x)
	}
}

func TestSaveFailureUndoes(t *testing.T) {
	f := newTestFile(t, 1000)
	c := NewSimCard(f, filepath.Join(t.TempDir(), "no-such-dir", "card.json"))
	keys := selected(t, c)
	li, _ := epurse.InitLoad(c, epurse.PurseEP, 1, 500, testTerm)
	mac2, _ := epurse.LoadMAC2(epurse.SessionKeyLoad(keys.DLK, li.Random, li.OnlineCounter), 500, epurse.TxEPLoad, testTerm, when0)
	if _, err := epurse.CreditLoad(c, when0, mac2); err == nil {
		t.Fatal("a credit that could not be saved succeeded")
	}
	if got := c.File(); got.EPBalance != 1000 || got.EPOnlineCounter != 0 || len(got.Log) != 0 || len(got.Proofs) != 0 {
		t.Errorf("state after a failed save: %v, counter %d, %d records", got, got.EPOnlineCounter, len(got.Log))
	}
}

func TestCardFileRoundTrip(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Windows guards files with ACLs, not mode bits: this asserts Unix modes (docs/windows.md)")
	}
	c, path := newTestCard(t, 5000)
	keys := selected(t, c)
	load(t, c, keys, epurse.PurseEP, 100, when0)
	purchase(t, c, keys, epurse.PurseEP, 30, 9, when0.Add(time.Minute))
	epurse.VerifyPIN(c, "999999")

	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("card file mode = %v, %v; want 0600", st.Mode().Perm(), err)
	}
	f, err := LoadCardFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if f.EPBalance != 5070 || f.EPOnlineCounter != 1 || f.EPOfflineCounter != 1 || len(f.Log) != 2 || len(f.Proofs) != 2 || f.PINTriesLeft != 2 {
		t.Errorf("loaded %+v", f)
	}
	if f.Keys != testMasters.Diversify(f.Info.AppSerial[:]) {
		t.Error("keys did not survive")
	}
	// A new card from the saved file behaves as the old one.
	c2 := NewSimCard(f, path)
	selected(t, c2)
	if got := balance(t, c2, epurse.PurseEP); got != 5070 {
		t.Errorf("balance = %d", got)
	}
	old, _ := epurse.ReadLog(c, LogSFI, 10)
	recs, _ := epurse.ReadLog(c2, LogSFI, 10)
	if len(recs) != 2 || recs[0] != old[0] || recs[1] != old[1] {
		t.Errorf("log after reload = %+v, want %+v", recs, old)
	}
	if _, _, err := epurse.GetTransactionProve(c2, epurse.TxEPLoad, 1); err != nil {
		t.Errorf("proof after reload: %v", err)
	}
	// No stray temporary files.
	ents, _ := os.ReadDir(filepath.Dir(path))
	if len(ents) != 1 {
		t.Errorf("directory holds %d entries, want only the card", len(ents))
	}
}

func TestLoadCardFileRejects(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"unknown field":   `{"info":{"card_number":"3101234567890001"},"keys":{"dlk":"0123456789ABCDEF0123456789ABCDEF"},"pin":"1234","colour":"red"}`,
		"no keys":         `{"info":{"card_number":"3101234567890001"},"pin":"1234"}`,
		"bad pin":         `{"info":{"card_number":"3101234567890001"},"keys":{"dlk":"0123456789ABCDEF0123456789ABCDEF"},"pin":"12"}`,
		"negative":        `{"info":{"card_number":"3101234567890001"},"keys":{"dlk":"0123456789ABCDEF0123456789ABCDEF"},"pin":"1234","ep_balance":-1}`,
		"number mismatch": `{"info":{"card_number":"3101234567890002","app_serial":"00003101234567890001"},"keys":{"dlk":"0123456789ABCDEF0123456789ABCDEF"},"pin":"1234"}`,
	} {
		path := filepath.Join(dir, "c.json")
		os.WriteFile(path, []byte(body), 0o600)
		if _, err := LoadCardFile(path); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	path := filepath.Join(dir, "ok.json")
	os.WriteFile(path, []byte(`{"info":{"card_number":"3101234567890001"},"keys":{"dlk":"0123456789ABCDEF0123456789ABCDEF"},"pin":"1234"}`), 0o600)
	f, err := LoadCardFile(path)
	if err != nil || f.KeyVersion != 1 || f.PINTriesLeft != PINTries {
		t.Errorf("minimal file: %+v, %v; want the defaults", f, err)
	}
}

func TestCardFileDoesNotPrintSecrets(t *testing.T) {
	f := newTestFile(t, 100)
	f.PIN = "987654"
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("card", "file", f)
	for _, s := range []string{f.String(), f.GoString(), logged.String()} {
		if bytes.Contains([]byte(s), []byte("987654")) {
			t.Errorf("PIN printed: %s", s)
		}
		if bytes.Contains([]byte(s), []byte(f.Info.CardNumber)) {
			t.Errorf("whole card number printed: %s", s)
		}
	}
}

func TestNewCardFile(t *testing.T) {
	f := newTestFile(t, 100)
	if f.Info.AppSerial != [10]byte{0, 0, 0x31, 0x01, 0x23, 0x45, 0x67, 0x89, 0x00, 0x01} || f.KeyVersion != 1 || f.AlgID != 0 {
		t.Errorf("NewCardFile = %+v", f)
	}
	if f.Holder == nil || f.Holder.Name != "张三" {
		t.Errorf("holder = %+v", f.Holder)
	}
	for name, err := range map[string]error{
		"7 digits": func() error {
			_, err := NewCardFile("3101234", "", 0, epurse.Date{}, epurse.Date{}, testMasters)
			return err
		}(),
		"17 digits": func() error {
			_, err := NewCardFile("31012345678900012", "", 0, epurse.Date{}, epurse.Date{}, testMasters)
			return err
		}(),
		"long name": func() error {
			_, err := NewCardFile(testNumber, "欧阳诸葛司马上官慕容张", 0, epurse.Date{}, epurse.Date{}, testMasters)
			return err
		}(),
		"balance": func() error {
			_, err := NewCardFile(testNumber, "", epurse.MaxAmount+1, epurse.Date{}, epurse.Date{}, testMasters)
			return err
		}(),
		"dates": func() error {
			_, err := NewCardFile(testNumber, "", 0, epurse.Date{Year: 2025, Month: 1, Day: 1}, epurse.Date{Year: 2024, Month: 1, Day: 1}, testMasters)
			return err
		}(),
		"no masters": func() error {
			_, err := NewCardFile(testNumber, "", 0, epurse.Date{}, epurse.Date{}, epurse.MasterKeys{})
			return err
		}(),
	} {
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	c, _ := newTestCard(t, 100)
	selected(t, c)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				if v, err := epurse.GetBalance(c, epurse.PurseEP); err != nil || v != 100 {
					t.Errorf("GetBalance = %d, %v", v, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}
