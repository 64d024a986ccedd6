package epurse

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// The spec's "Test vectors" section, every one of them.

func TestVectorLoadED(t *testing.T) {
	dlk := key16(t, "11223344556677888877665544332211")
	seslk := SessionKeyLoad(dlk, b4(t, "11223344"), 0x0000)
	if want := b8(t, "9B1D924E05595603"); seslk != want {
		t.Fatalf("SESLK = %X, want %X", seslk, want)
	}
	termID := b6(t, "001122334455")
	mac1, err := LoadMAC1(seslk, 0, 0x1000, TxEDLoad, termID)
	if err != nil || mac1 != b4(t, "2988AE5A") {
		t.Errorf("MAC1 = %X, %v; want 2988AE5A", mac1, err)
	}
	if got := MAC(seslk, unhex(t, "00000000 00001000 01 001122334455")); got != b4(t, "2988AE5A") {
		t.Errorf("raw MAC1 = %X, want 2988AE5A", got)
	}
	when := time.Date(2011, 12, 21, 21, 48, 22, 0, time.UTC)
	mac2, err := LoadMAC2(seslk, 0x1000, TxEDLoad, termID, when)
	if err != nil || mac2 != b4(t, "3A845BF0") {
		t.Errorf("MAC2 = %X, %v; want 3A845BF0", mac2, err)
	}
	if got := MAC(seslk, unhex(t, "00001000 01 001122334455 20111221 214822")); got != b4(t, "3A845BF0") {
		t.Errorf("raw MAC2 = %X, want 3A845BF0", got)
	}
}

func TestVectorLoadEP(t *testing.T) {
	dlk := key16(t, "3F013F013F013F013F013F013F013F01")
	seslk := SessionKeyLoad(dlk, b4(t, "F9CABA91"), 0x0000)
	if want := b8(t, "03015BEA347EA231"); seslk != want {
		t.Fatalf("SESLK = %X, want %X", seslk, want)
	}
	mac1, err := LoadMAC1(seslk, 0, 0x1234, TxEPLoad, b6(t, "000000000001"))
	if err != nil || mac1 != b4(t, "6C394D64") {
		t.Errorf("MAC1 = %X, %v; want 6C394D64", mac1, err)
	}
}

func TestVectorPurchase(t *testing.T) {
	dpk := key16(t, "11223344556677888877665544332211")
	// Session input 11223344 0000 0001: the serial's last two bytes are 0001;
	// its first two must not matter.
	for _, serial := range []uint32{0x00000001, 0xABCD0001} {
		sespk := SessionKeyPurchase(dpk, b4(t, "11223344"), 0x0000, serial)
		if want := b8(t, "003238ABC57659DD"); sespk != want {
			t.Fatalf("serial %08X: SESPK = %X, want %X", serial, sespk, want)
		}
	}
	sespk := b8(t, "003238ABC57659DD")
	when := time.Date(2012, 2, 29, 13, 51, 0, 0, time.UTC)
	mac1, err := PurchaseMAC1(sespk, 0x1000, TxEPPurchase, b6(t, "001122334455"), when)
	if err != nil || mac1 != b4(t, "F15CAB75") {
		t.Errorf("MAC1 = %X, %v; want F15CAB75", mac1, err)
	}
	mac2, err := PurchaseMAC2(sespk, 0x1000)
	if err != nil || mac2 != b4(t, "56988A13") {
		t.Errorf("MAC2 = %X, %v; want 56988A13", mac2, err)
	}
}

func TestMACPaddingAlwaysApplied(t *testing.T) {
	// 8 bytes of data take a second, whole 80 00…00 block: the MAC differs
	// from the CBC of the bare block, and equals the CBC of data ‖ 80 00…00
	// with the padding already in (which then gets yet another block).
	key := b8(t, "0123456789ABCDEF")
	data := unhex(t, "0001020304050607")
	if MAC(key, data) == MAC(key, append(bytes.Clone(data), 0x80)) {
		t.Error("MAC ignores the difference between data and data‖80")
	}
	// Padding depends on length only: different-length inputs that would
	// pad to the same bytes with method 1 must differ with method 2.
	if MAC(key, []byte{0x01}) == MAC(key, []byte{0x01, 0x00}) {
		t.Error("method 2 padding must tell 01 from 01 00")
	}
	if MAC(key, nil) == MAC(key, []byte{0x00}) {
		t.Error("method 2 padding must tell empty from 00")
	}
}

func TestTACKey(t *testing.T) {
	dtk := key16(t, "00112233445566778899AABBCCDDEEFF")
	if got, want := TACKey(dtk), b8(t, "8888888888888888"); got != want {
		t.Errorf("TACKey = %X, want %X", got, want)
	}
}

func TestTACs(t *testing.T) {
	dtk := key16(t, "11223344556677888877665544332211")
	tk := TACKey(dtk)
	when := time.Date(2011, 12, 21, 21, 48, 22, 0, time.UTC)
	termID := b6(t, "001122334455")
	tac, err := LoadTAC(dtk, 0x1000, 7, 0x1000, TxEPLoad, termID, when)
	want := MAC(tk, unhex(t, "00001000 0007 00001000 02 001122334455 20111221 214822"))
	if err != nil || tac != want {
		t.Errorf("LoadTAC = %X, %v; want %X", tac, err, want)
	}
	tac, err = PurchaseTAC(dtk, 0x1000, TxEPPurchase, termID, 0x01020304, when)
	want = MAC(tk, unhex(t, "00001000 06 001122334455 01020304 20111221 214822"))
	if err != nil || tac != want {
		t.Errorf("PurchaseTAC = %X, %v; want %X", tac, err, want)
	}
}

func TestMACHelpersRejectBadInput(t *testing.T) {
	var k [8]byte
	var id [6]byte
	when := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	for name, err := range map[string]error{
		"negative amount": func() error { _, err := LoadMAC1(k, 0, -1, TxEPLoad, id); return err }(),
		"amount too big":  func() error { _, err := PurchaseMAC2(k, MaxAmount+1); return err }(),
		"balance too big": func() error { _, err := LoadMAC1(k, MaxAmount+1, 1, TxEPLoad, id); return err }(),
	} {
		if !errors.Is(err, ErrBadAmount) {
			t.Errorf("%s: err = %v, want ErrBadAmount", name, err)
		}
	}
	if _, err := LoadMAC2(k, 1, TxEPLoad, id, time.Time{}); !errors.Is(err, ErrBadArgument) {
		t.Errorf("zero time: err = %v, want ErrBadArgument", err)
	}
	if _, err := PurchaseMAC2(k, MaxAmount); err != nil {
		t.Errorf("MaxAmount: %v", err)
	}
	if _, err := PurchaseMAC1(k, 0, TxEPPurchase, id, when); err != nil {
		t.Errorf("zero amount: %v", err)
	}
}

func TestDiversifyKey(t *testing.T) {
	mk := key16(t, "0123456789ABCDEFFEDCBA9876543210")
	serial := unhex(t, "0000 3101234567890001")
	k := DiversifyKey(mk, serial)
	f := b8(t, "3101234567890001")
	notF := b8(t, "CEFEDCBA9876FFFE")
	l, r := encrypt3DES(mk, f), encrypt3DES(mk, notF)
	if !bytes.Equal(k[:8], l[:]) || !bytes.Equal(k[8:], r[:]) {
		t.Errorf("DiversifyKey = %X, want %X‖%X", k[:], l, r)
	}
	if DiversifyKey(mk, unhex(t, "FFFF 3101234567890001")) != k {
		t.Error("only the rightmost 8 bytes of the serial may count")
	}
	if DiversifyKey(mk, unhex(t, "0000 3101234567890002")) == k {
		t.Error("different cards got the same key")
	}
	m := MasterKeys{DLK: mk, DPK: key16(t, "11111111111111112222222222222222"), DTK: key16(t, "33333333333333334444444444444444")}
	ck := m.Diversify(serial)
	if ck.DLK != k || ck.DPK != DiversifyKey(m.DPK, serial) || ck.DTK != DiversifyKey(m.DTK, serial) {
		t.Error("MasterKeys.Diversify does not diversify each key")
	}
}

func TestKeyNeverPrints(t *testing.T) {
	k := key16(t, "0123456789ABCDEFFEDCBA9876543210")
	ck := CardKeys{DLK: k, DPK: k, DTK: k}
	for _, s := range []string{
		fmt.Sprint(k), fmt.Sprintf("%v %+v %#v %s %x %X %d %q", k, k, k, k, k, k, k, k),
		fmt.Sprintf("%v %+v %#v", ck, ck, ck), fmt.Sprintf("%v", MasterKeys{DLK: k}),
		fmt.Sprintf("%v", &ck),
	} {
		if strings.Contains(strings.ToUpper(s), "0123") || strings.Contains(s, "1 35 69") || strings.Contains(s, "[1 ") {
			t.Errorf("key leaked: %s", s)
		}
		if !strings.Contains(s, "[redacted]") {
			t.Errorf("no [redacted] in %q", s)
		}
	}
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	log.Info("keys", "key", k, "card", ck, "masters", MasterKeys{DLK: k})
	slog.New(slog.NewTextHandler(&buf, nil)).Info("keys", "key", k, "card", ck)
	if strings.Contains(strings.ToUpper(buf.String()), "0123456789") {
		t.Errorf("slog leaked a key: %s", buf.String())
	}
}

func TestKeyJSON(t *testing.T) {
	m := MasterKeys{
		DLK: key16(t, "0123456789ABCDEFFEDCBA9876543210"),
		DPK: key16(t, "11111111111111112222222222222222"),
		DTK: key16(t, "33333333333333334444444444444444"),
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"dlk":"0123456789ABCDEFFEDCBA9876543210","dpk":"11111111111111112222222222222222","dtk":"33333333333333334444444444444444"}`
	if string(b) != want {
		t.Errorf("JSON = %s, want %s", b, want)
	}
	var back MasterKeys
	if err := json.Unmarshal(b, &back); err != nil || back != m {
		t.Errorf("round trip = %v, %v", back == m, err)
	}
	if err := json.Unmarshal([]byte(`{"dlk":"0123456789abcdeffedcba9876543210"}`), &back); err != nil || back.DLK != m.DLK {
		t.Errorf("lower-case hex: %v", err)
	}
	for _, bad := range []string{`{"dlk":"0123"}`, `{"dlk":"0123456789ABCDEFFEDCBA987654321G"}`, `{"dlk":"0123456789ABCDEFFEDCBA98765432100"}`} {
		err := json.Unmarshal([]byte(bad), &back)
		if err == nil {
			t.Errorf("%s: no error", bad)
		} else if strings.Contains(err.Error(), "0123") {
			t.Errorf("%s: error quotes the key: %v", bad, err)
		}
	}
}
