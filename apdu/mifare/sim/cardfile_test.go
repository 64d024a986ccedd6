package mifaresim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/cardd/cardd/apdu/mifare"
	"github.com/cardd/cardd/internal/jsonfile/jsonfiletest"
)

func TestNewCardFile(t *testing.T) {
	f, err := NewCardFile(testUID, testWallet(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	if want := block(t, "043A5C21 43 08 0400 434152444453494D"); f.Blocks[0] != want {
		t.Errorf("block 0 = %X, want %X", f.Blocks[0], want)
	}
	if f.Blocks[4] != mifare.EncodeValue(1000, 0) || f.Blocks[5] != mifare.EncodeValue(1000, 0) || f.Blocks[6] != [mifare.BlockSize]byte{} {
		t.Error("wallet blocks")
	}
	if f.Blocks[7] != block(t, "A0A1A2A3A4A5 08778F 69 B0B1B2B3B4B5") {
		t.Errorf("wallet trailer = %X", f.Blocks[7])
	}
	for s := range byte(mifare.NumSectors) {
		if s != 1 && f.Blocks[mifare.TrailerOf(s)] != block(t, "FFFFFFFFFFFF FF0780 69 FFFFFFFFFFFF") {
			t.Errorf("sector %d trailer is not transport", s)
		}
	}
	if err := f.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		w   mifare.Wallet
		bal int64
		err error
	}{
		"negative balance": {testWallet(), -1, mifare.ErrBadAmount},
		"huge balance":     {testWallet(), mifare.MaxBalance + 1, mifare.ErrBadAmount},
		"bad wallet":       {mifare.Wallet{Sector: 1, ValueBlock: 4, BackupBlock: 4}, 0, mifare.ErrBadArgument},
	} {
		if _, err := NewCardFile(testUID, c.w, c.bal); !errors.Is(err, c.err) {
			t.Errorf("%s: %v, want %v", name, err, c.err)
		}
	}
}

func TestCardFileSaveLoad(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Windows guards files with ACLs, not mode bits: this asserts Unix modes (docs/windows.md)")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "m1.json")
	f, _ := NewCardFile(testUID, testWallet(), 1000)
	if err := f.Save(path); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v; want 0600", st.Mode(), err)
	}
	back, err := LoadCardFile(path)
	if err != nil || *back != *f {
		t.Fatalf("LoadCardFile: %v", err)
	}
	raw, _ := os.ReadFile(path)
	if !strings.Contains(string(raw), `"uid": "043A5C21"`) || !strings.Contains(string(raw), `"E803000017FCFFFFE803000000FF00FF"`) {
		t.Errorf("file layout:\n%s", raw)
	}

	// A card saves every write, torn ones included, and nothing is left
	// behind but the file.
	card := NewSimCard(f, path)
	w := testWallet()
	if _, err := w.Decrement(card, 100, nil); err != nil {
		t.Fatal(err)
	}
	card.TearNextWriteAt(1, TearCorrupt)
	if _, err := w.Decrement(card, 100, nil); !errors.Is(err, mifare.ErrOutcomeUnknown) {
		t.Fatal(err)
	}
	saved, err := LoadCardFile(path)
	if err != nil || *saved != *card.File() {
		t.Fatalf("saved card differs from the card: %v", err)
	}
	again := NewSimCard(saved, path)
	if bal, rep, err := w.Read(again); err != nil || bal != 900 || rep != mifare.RepairMain {
		t.Fatalf("reloaded torn card: %d, %v, %v", bal, rep, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the card file", len(entries))
	}
}

func TestCardFileSaveFailureUndoesWrite(t *testing.T) {
	f, _ := NewCardFile(testUID, testWallet(), 1000)
	card := NewSimCard(f, filepath.Join(t.TempDir(), "no", "such", "dir", "m1.json"))
	_, err := testWallet().Decrement(card, 100, nil)
	if err == nil || !errors.Is(err, mifare.ErrOutcomeUnknown) {
		t.Fatalf("Decrement with an unsaveable card: %v", err)
	}
	consistent(t, card, 1000)
}

func TestLoadCardFileRefuses(t *testing.T) {
	f, _ := NewCardFile(testUID, testWallet(), 1000)
	good, _ := json.Marshal(f)
	var j map[string]any
	_ = json.Unmarshal(good, &j)
	sectors := j["sectors"].([]any)
	for name, mod := range map[string]func(m map[string]any){
		"unknown field":   func(m map[string]any) { m["balance"] = 5 },
		"15 sectors":      func(m map[string]any) { m["sectors"] = sectors[:15] },
		"17 sectors":      func(m map[string]any) { m["sectors"] = append(append([]any{}, sectors...), sectors[0]) },
		"3 blocks":        func(m map[string]any) { m["sectors"] = append([]any{sectors[0].([]any)[:3]}, sectors[1:]...) },
		"short uid":       func(m map[string]any) { m["uid"] = "043A5C" },
		"uid not block 0": func(m map[string]any) { m["uid"] = "01020304" },
		"bad hex block": func(m map[string]any) {
			s := append([]any{}, sectors...)
			s[1] = []any{"ZZ" + strings.Repeat("0", 30), "", "", ""}
			m["sectors"] = s
		},
	} {
		m := map[string]any{}
		for k, v := range j {
			m[k] = v
		}
		mod(m)
		b, _ := json.Marshal(m)
		path := filepath.Join(t.TempDir(), "m1.json")
		_ = os.WriteFile(path, b, 0o600)
		if _, err := LoadCardFile(path); err == nil {
			t.Errorf("%s: loaded", name)
		} else if strings.Contains(err.Error(), "A0A1A2") || strings.Contains(err.Error(), "B0B1B2") {
			t.Errorf("%s: error quotes a key: %v", name, err)
		}
	}
}

func TestCardFileNeverPrintsKeys(t *testing.T) {
	f, _ := NewCardFile(testUID, testWallet(), 1000)
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("card", "file", f)
	for _, s := range []string{fmt.Sprint(f), fmt.Sprintf("%v", f), fmt.Sprintf("%#v", f), f.String(), buf.String()} {
		if strings.Contains(strings.ToUpper(s), "A0A1A2") || strings.Contains(s, "160 161") {
			t.Errorf("key printed: %s", s)
		}
		if !strings.Contains(s, "043A5C21") {
			t.Errorf("card not named: %s", s)
		}
	}
}

// TestLoadCardFileStrict: a card file is read strictly, and a refusal names
// the file.
func TestLoadCardFileStrict(t *testing.T) {
	f, err := NewCardFile(testUID, testWallet(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	load := func(p string) error { _, err := LoadCardFile(p); return err }
	good := jsonfiletest.Good(t, f.Save, load)
	cases := append(jsonfiletest.Refusals(t, good, "uid"),
		jsonfiletest.Case{Name: "uid not block 0's", Body: jsonfiletest.Replace(t, good, `"uid": "043A5C21"`, `"uid": "043A5C22"`), Want: "block 0 must start with the uid"},
	)
	jsonfiletest.Check(t, load, 0o600, cases...)
}
