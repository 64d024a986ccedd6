package psamsim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/cardd/cardd/apdu"
	"github.com/cardd/cardd/apdu/epurse"
	"github.com/cardd/cardd/internal/jsonfile/jsonfiletest"
)

// vectorInit is INIT SAM FOR PURCHASE with the spec's purchase test vector:
// random 11223344, offline counter 0000, amount 00001000, type 06, date
// 20120229, time 135100, key version 01, algId 00, then a card factor.
const (
	vectorData = "11223344 0000 00001000 06 20120229 135100 01 00 0102030405060708"
	vectorInit = "80 70 00 00 1C " + vectorData
)

// withVectorKey makes the PSAM use the spec's card DPK for every card, so
// the spec's vectors run through its APDUs: the spec gives a diversified
// key, and no master diversifies to it.
func withVectorKey(t *testing.T, s *SimPSAM) *[]byte {
	var factor []byte
	dpk := key16(t, "11223344556677888877665544332211")
	s.diversify = func(_ epurse.Key16, f []byte) epurse.Key16 {
		factor = bytes.Clone(f)
		return dpk
	}
	return &factor
}

func TestSpecPurchaseVectorThroughSAM(t *testing.T) {
	s := newMemSAM(t)
	factor := withVectorKey(t, s)
	steps := []struct {
		cmd, data string
		sw        uint16
	}{
		{"00 A4 00 0C 02 10 01", "", 0x9000},
		{vectorInit, "", 0x6108},
		// Serial 00000001 is the first this PSAM gives; its last 2 bytes
		// complete SESPK's input 1122334400000001.
		{"00 C0 00 00 08", "00000001 F15CAB75", 0x9000},
		{"80 72 00 00 04 56988A13", "", 0x9000},
	}
	for _, st := range steps {
		data, sw := raw(t, s, st.cmd)
		if sw != st.sw || !bytes.Equal(data, unhex(t, st.data)) {
			t.Fatalf("%s = % X %04X, want %s %04X", st.cmd, data, sw, st.data, st.sw)
		}
	}
	if want := unhex(t, "0102030405060708"); !bytes.Equal(*factor, want) {
		t.Errorf("diversified with factor % X, want % X", *factor, want)
	}
}

func TestSpecVectorMAC2WrongIsRefused(t *testing.T) {
	s := newMemSAM(t)
	withVectorKey(t, s)
	raw(t, s, "00 A4 00 00 02 10 01 00")
	raw(t, s, vectorInit)
	raw(t, s, "00 C0 00 00 08")
	if _, sw := raw(t, s, "80 72 00 00 04 56988A14"); sw != 0x9302 {
		t.Fatalf("wrong MAC2: %04X, want 9302", sw)
	}
	// The session is spent: the right MAC2 now comes too late.
	if _, sw := raw(t, s, "80 72 00 00 04 56988A13"); sw != 0x6985 {
		t.Fatalf("MAC2 after a refused one: %04X, want 6985", sw)
	}
}

func TestATR(t *testing.T) {
	atr := newMemSAM(t).ATR()
	if len(atr) < 2 || len(atr) > 33 || atr[0] != 0x3B {
		t.Fatalf("ATR % X", atr)
	}
	// T0: no interface bytes (so T=0), K historical bytes, no TCK.
	if atr[1]&0xF0 != 0 || int(atr[1]&0x0F) != len(atr)-2 {
		t.Fatalf("ATR % X: T0 %02X does not match %d historical bytes", atr, atr[1], len(atr)-2)
	}
}

// TestStatusWords runs one PSAM through commands that must be refused, each
// with the status word a real PSAM gives, and a few that must work.
func TestStatusWords(t *testing.T) {
	good := "80 70 00 00 1C " + vectorData
	steps := []struct {
		name, cmd string
		sw        uint16
	}{
		{"too short", "80 70 00", 0x6700},
		{"Lc disagrees", "00 A4 00 00 05 3F 00", 0x6700},
		{"unknown class", "84 A4 00 00 02 3F 00", 0x6E00},
		{"PBOC class on SELECT", "80 A4 00 00 02 3F 00", 0x6E00},
		{"ISO class on INIT SAM", "00 70 00 00 1C " + vectorData, 0x6E00},
		{"unknown INS", "00 12 00 00", 0x6D00},
		{"GET RESPONSE in the PBOC class", "80 C0 00 00 08", 0x6E00},
		{"DES INIT not implemented", "80 1A 24 01 08 0102030405060708", 0x6D00},
		{"MAC2 without MAC1", "80 72 00 00 04 01020304", 0x6985},
		{"GET RESPONSE with nothing announced", "00 C0 00 00 08", 0x6985},
		{"INIT SAM in the MF", good, 0x6985},
		{"read terminal id", "00 B0 96 00 06", 0x9000},
		{"read terminal id, Le too big", "00 B0 96 00 08", 0x6C06},
		{"read terminal id, offset 4", "00 B0 96 04 02", 0x9000},
		{"read past the end", "00 B0 96 06 01", 0x6B00},
		{"read without Le", "00 B0 96 00", 0x6700},
		{"read EF 15", "00 B0 95 00 0E", 0x6A82},
		{"read without SFI", "00 B0 00 00 06", 0x6986},
		{"read, P1 bits 6-7 set", "00 B0 F6 00 06", 0x6A86},
		{"select unknown file", "00 A4 00 00 02 DF 03", 0x6A82},
		{"select unknown AID", "00 A4 04 00 05 A000000001", 0x6A82},
		{"select P1 02", "00 A4 02 00 02 3F 00", 0x6A86},
		{"select P2 04", "00 A4 00 04 02 3F 00", 0x6A86},
		{"select, 3-byte file id", "00 A4 00 00 03 10 01 00", 0x6700},
		{"select application, no FCI", "00 A4 00 0C 02 10 01", 0x9000},
		{"select application by AID", "00 A4 04 0C 09 A00000000386980701", 0x9000},
		{"read terminal id from the application", "00 B0 96 00 06", 0x6A82},
		{"INIT SAM, P1 01", "80 70 01 00 1C " + vectorData, 0x6A86},
		{"INIT SAM, Lc 1B", "80 70 00 00 1B " + vectorData[:len(vectorData)-2], 0x6700},
		{"INIT SAM, two-level (Lc 24)", "80 70 00 00 24 " + vectorData + " 0000000000000001", 0x6700},
		{"INIT SAM, key version 02", "80 70 00 00 1C 11223344 0000 00001000 06 20120229 135100 02 00 0102030405060708", 0x9403},
		{"INIT SAM, algId 04", "80 70 00 00 1C 11223344 0000 00001000 06 20120229 135100 01 04 0102030405060708", 0x9403},
		{"INIT SAM, load type", "80 70 00 00 1C 11223344 0000 00001000 02 20120229 135100 01 00 0102030405060708", 0x6A80},
		{"INIT SAM, 30 February", "80 70 00 00 1C 11223344 0000 00001000 06 20120230 135100 01 00 0102030405060708", 0x6A80},
		{"INIT SAM, hour 24", "80 70 00 00 1C 11223344 0000 00001000 06 20120229 245100 01 00 0102030405060708", 0x6A80},
		{"INIT SAM, zero date", "80 70 00 00 1C 11223344 0000 00001000 06 00000000 000000 01 00 0102030405060708", 0x6A80},
		{"INIT SAM", good, 0x6108},
		{"GET RESPONSE, P1 01", "00 C0 01 00 08", 0x6A86},
		{"GET RESPONSE, Le too big", "00 C0 00 00 10", 0x6C08},
		{"GET RESPONSE", "00 C0 00 00 08", 0x9000},
		{"GET RESPONSE again", "00 C0 00 00 08", 0x6985},
		{"MAC2, 3 bytes", "80 72 00 00 03 010203", 0x6700},
		{"MAC2 after a malformed one", "80 72 00 00 04 01020304", 0x6985},
		{"INIT SAM", good, 0x6108},
		{"MAC2, P2 01", "80 72 00 01 04 01020304", 0x6A86},
		{"INIT SAM with Le (T=1 form)", good + " 08", 0x6108},
		{"MAC2 before GET RESPONSE", "80 72 00 00 04 01020304", 0x9302},
		{"GET RESPONSE after another command", "00 C0 00 00 08", 0x6985},
	}
	s := newMemSAM(t)
	for _, st := range steps {
		if _, sw := raw(t, s, st.cmd); sw != st.sw {
			t.Errorf("%s: %s = %04X, want %04X", st.name, st.cmd, sw, st.sw)
		}
	}
	if got := s.File().Serial; got != 3 {
		t.Errorf("serial after three INIT SAM = %d, want 3", got)
	}
}

func TestGetResponseInParts(t *testing.T) {
	s := newMemSAM(t)
	raw(t, s, "00 A4 00 0C 02 10 01")
	if _, sw := raw(t, s, vectorInit); sw != 0x6108 {
		t.Fatalf("INIT SAM: %04X", sw)
	}
	a, sw := raw(t, s, "00 C0 00 00 05")
	if sw != 0x6103 || len(a) != 5 {
		t.Fatalf("first part: % X %04X, want 5 bytes 6103", a, sw)
	}
	b, sw := raw(t, s, "00 C0 00 00 03")
	if sw != 0x9000 || len(b) != 3 {
		t.Fatalf("second part: % X %04X, want 3 bytes 9000", b, sw)
	}
	if serial := append(a, b...)[:4]; !bytes.Equal(serial, []byte{0, 0, 0, 1}) {
		t.Fatalf("serial % X, want 00000001", serial)
	}
	// Le 00 takes whatever is announced, however long.
	raw(t, s, vectorInit)
	if all, sw := raw(t, s, "00 C0 00 00 00"); sw != 0x9000 || len(all) != 8 {
		t.Fatalf("Le 00: % X %04X", all, sw)
	}
}

func TestMAC1SessionEndsWithOtherCommands(t *testing.T) {
	for _, between := range []string{"00 A4 00 0C 02 10 01", "00 B0 96 00 06", "reset"} {
		s := newMemSAM(t)
		withVectorKey(t, s)
		raw(t, s, "00 A4 00 0C 02 10 01")
		raw(t, s, vectorInit)
		raw(t, s, "00 C0 00 00 08")
		if between == "reset" {
			s.Reset()
			raw(t, s, "00 A4 00 0C 02 10 01")
		} else {
			raw(t, s, between)
		}
		if _, sw := raw(t, s, "80 72 00 00 04 56988A13"); sw != 0x6985 {
			t.Errorf("MAC2 after %s: %04X, want 6985", between, sw)
		}
	}
}

func TestSerialAtMaximum(t *testing.T) {
	s := newMemSAM(t)
	s.f.Serial = math.MaxUint32 - 1
	raw(t, s, "00 A4 00 0C 02 10 01")
	if _, sw := raw(t, s, vectorInit); sw != 0x6108 {
		t.Fatalf("last serial: %04X", sw)
	}
	if _, sw := raw(t, s, vectorInit); sw != 0x9402 {
		t.Fatalf("after the last serial: %04X, want 9402", sw)
	}
	if got := s.File().Serial; got != math.MaxUint32 {
		t.Fatalf("serial %d", got)
	}
}

func TestSerialSavedBeforeAnswer(t *testing.T) {
	path := filepath.Join(t.TempDir(), "psam.json")
	f, err := NewSAMFile(testTerm, testMasters)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Save(path); err != nil {
		t.Fatal(err)
	}
	s, err := LoadSimPSAM(path)
	if err != nil {
		t.Fatal(err)
	}
	raw(t, s, "00 A4 00 0C 02 10 01")
	raw(t, s, vectorInit)
	// The answer is not even fetched: the serial is spent all the same.
	onDisk, err := LoadSAMFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if onDisk.Serial != 1 {
		t.Fatalf("serial on disk %d, want 1", onDisk.Serial)
	}
}

func TestSaveFailureUsesNoSerial(t *testing.T) {
	f, err := NewSAMFile(testTerm, testMasters)
	if err != nil {
		t.Fatal(err)
	}
	s := NewSimPSAM(f, filepath.Join(t.TempDir(), "gone", "psam.json"))
	raw(t, s, "00 A4 00 0C 02 10 01")
	if out, err := s.Transmit(unhex(t, vectorInit)); err == nil {
		t.Fatalf("INIT SAM with an unwritable file = % X, want an error", out)
	}
	if got := s.File().Serial; got != 0 {
		t.Fatalf("serial %d after a failed save, want 0", got)
	}
	if _, sw := raw(t, s, "80 72 00 00 04 01020304"); sw != 0x6985 {
		t.Fatalf("MAC2 after a failed INIT: %04X, want 6985", sw)
	}
}

func TestSAMFileRoundTripAndSecrecy(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Windows guards files with ACLs, not mode bits: this asserts Unix modes (docs/windows.md)")
	}
	f, err := NewSAMFile(testTerm, testMasters)
	if err != nil {
		t.Fatal(err)
	}
	f.Serial = 41
	f.AID = unhex(t, "A0000000038698070199")
	path := filepath.Join(t.TempDir(), "psam.json")
	if err := f.Save(path); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v; want 0600", st.Mode(), err)
	}
	g, err := LoadSAMFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if g.TerminalID != f.TerminalID || g.DPK != f.DPK || g.KeyVersion != 1 || g.Serial != 41 || !bytes.Equal(g.AID, f.AID) {
		t.Fatalf("round trip: %+v", g)
	}
	b, _ := os.ReadFile(path)
	for _, field := range []string{`"terminal_id": "001122334455"`, `"dpk": "3F01`, `"serial": 41`, `"key_version": 1`} {
		if !strings.Contains(string(b), field) {
			t.Errorf("file lacks %s:\n%s", field, b)
		}
	}
	dpkHex := fmt.Sprintf("%X", [16]byte(testMasters.DPK))
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("psam", "file", f)
	for _, shown := range []string{f.String(), fmt.Sprintf("%v %+v %#v", f, f, f), fmt.Sprintf("%+v", *f), logged.String()} {
		if strings.Contains(strings.ToUpper(shown), dpkHex) {
			t.Errorf("key printed: %s", shown)
		}
	}
}

func TestLoadSAMFileRefuses(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Windows guards files with ACLs, not mode bits: this asserts Unix modes (docs/windows.md)")
	}
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := `{"terminal_id":"001122334455","dpk":"3F013F013F013F013F013F013F013F01","serial":7}`
	if f, err := LoadSAMFile(write("ok.json", good, 0o600)); err != nil || f.KeyVersion != DefaultKeyVersion || f.Serial != 7 {
		t.Fatalf("good file: %+v, %v", f, err)
	}
	for name, c := range map[string]struct {
		content string
		mode    os.FileMode
		want    string
	}{
		"readable":   {good, 0o644, "chmod 600"},
		"unknown":    {`{"terminal_id":"001122334455","dpk":"3F013F013F013F013F013F013F013F01","dkp":"00"}`, 0o600, "unknown field"},
		"no key":     {`{"terminal_id":"001122334455","serial":7}`, 0o600, "dpk is missing"},
		"short id":   {`{"terminal_id":"0011","dpk":"3F013F013F013F013F013F013F013F01"}`, 0o600, "terminal_id"},
		"short aid":  {`{"terminal_id":"001122334455","dpk":"3F013F013F013F013F013F013F013F01","aid":"A000"}`, 0o600, "aid"},
		"bad key":    {`{"terminal_id":"001122334455","dpk":"3F01ZZ"}`, 0o600, "32 hex digits"},
		"not json":   {`dpk=3F01`, 0o600, "invalid character"},
		"big serial": {`{"terminal_id":"001122334455","dpk":"3F013F013F013F013F013F013F013F01","serial":4294967296}`, 0o600, "serial"},
	} {
		_, err := LoadSAMFile(write(name+".json", c.content, c.mode))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error saying %q", name, err, c.want)
		}
		if err != nil && strings.Contains(strings.ToUpper(err.Error()), "3F013F01") {
			t.Errorf("%s: error quotes the key: %v", name, err)
		}
	}
}

func TestNewSAMFileFromKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "masters.json")
	if err := epurse.WriteMasterKeyFile(path, testMasters); err != nil {
		t.Fatal(err)
	}
	f, err := NewSAMFileFromKeyFile(path, testTerm)
	if err != nil {
		t.Fatal(err)
	}
	if f.DPK != testMasters.DPK || f.TerminalID != testTerm || f.Serial != 0 {
		t.Fatalf("%+v", f)
	}
	if _, err := NewSAMFile(testTerm, epurse.MasterKeys{}); err == nil {
		t.Fatal("a PSAM without a key was made")
	}
}

func TestSAMFileJSONMarshalRoundTrip(t *testing.T) {
	f, err := NewSAMFile(testTerm, testMasters)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	var g SAMFile
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	if g.DPK != f.DPK || g.TerminalID != f.TerminalID || g.KeyVersion != f.KeyVersion || g.AID != nil {
		t.Fatalf("%s → %+v", b, g)
	}
}

// The PSAM is a vpcd card: ATR, Transmit, Reset.
var _ interface {
	ATR() []byte
	Transmit([]byte) ([]byte, error)
	Reset()
} = (*SimPSAM)(nil)

var _ apdu.Transmitter = (*SimPSAM)(nil)

// TestLoadSAMFileStrict: a PSAM file is read strictly, and a refusal names
// the file.
func TestLoadSAMFileStrict(t *testing.T) {
	f, err := NewSAMFile(testTerm, testMasters)
	if err != nil {
		t.Fatal(err)
	}
	load := func(p string) error { _, err := LoadSAMFile(p); return err }
	good := jsonfiletest.Good(t, f.Save, load)
	cases := append(jsonfiletest.Refusals(t, good, "terminal_id"),
		jsonfiletest.Case{Name: "dpk all zero", Body: jsonfiletest.Replace(t, good, `"dpk": "3F013F013F013F013F013F013F013F01"`, `"dpk": "00000000000000000000000000000000"`), Want: "dpk is missing or all zero"},
	)
	jsonfiletest.Check(t, load, 0o600, cases...)
}
