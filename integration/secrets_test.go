package integration

import (
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cardd/cardd/apdu/epurse"
	epursesim "github.com/cardd/cardd/apdu/epurse/sim"
)

// assertNoKeys fails if any issuer master key, or any key diversified from
// them for the given cards, appears in the files (raw, or as hex in either
// case): the terminal holds no key of the issuer (DESIGN.md, money rule 6).
func assertNoKeys(t *testing.T, hostDir string, cardFiles []string, files ...string) {
	t.Helper()
	masters, err := epurse.ReadMasterKeyFile(filepath.Join(hostDir, "masters.json"))
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string][]byte{"master DLK": masters.DLK[:], "master DPK": masters.DPK[:], "master DTK": masters.DTK[:]}
	for _, cf := range cardFiles {
		f, err := epursesim.LoadCardFile(cf)
		if err != nil {
			t.Fatal(err)
		}
		keys["card DLK"], keys["card DPK"], keys["card DTK"] = f.Keys.DLK[:], f.Keys.DPK[:], f.Keys.DTK[:]
	}
	checked := 0
	for _, name := range files {
		b, err := os.ReadFile(name)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		checked++
		for what, k := range keys {
			for _, form := range [][]byte{k, []byte(hex.EncodeToString(k)), []byte(strings.ToUpper(hex.EncodeToString(k)))} {
				// Half a key is a key half known: look for each 8-byte half too.
				for _, part := range [][]byte{form, form[:len(form)/2], form[len(form)/2:]} {
					if bytes.Contains(b, part) {
						t.Errorf("%s holds the %s (or half of it)", name, what)
					}
				}
			}
		}
	}
	if checked == 0 {
		t.Fatalf("none of %q exists: nothing was checked", files)
	}
}
