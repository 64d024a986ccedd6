package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/cardd/cardd/apdu/psam"
	psamsim "github.com/cardd/cardd/apdu/psam/sim"
)

// TestPSAMNewProfiles: `cardsim psam new` writes a PSAM of each kind: its
// application at 8011, key index 3, two-level keys, the security code; bad
// values are usage errors naming the flag.
func TestPSAMNewProfiles(t *testing.T) {
	dir := t.TempDir()
	kf := filepath.Join(dir, "masters.json")
	mustRun(t, "keys", "new", "--out", kf)
	out := filepath.Join(dir, "psam.json")
	mustRun(t, "psam", "new", "--keys", kf, "--out", out, "--app", "8011", "--key-index", "3", "--diversification", "city", "--security-code")
	f, err := psamsim.LoadSAMFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if f.AppFileID != 0x8011 || f.KeyIndex != 3 || f.Diversification != psam.DiversifyCity || !f.SecurityCode {
		t.Fatalf("PSAM file %+v", *f)
	}
	for _, tc := range []struct{ flag, value string }{
		{"--app", "3F00"}, {"--app", "10"}, {"--key-index", "0"}, {"--key-index", "256"}, {"--diversification", "twice"},
	} {
		code, _, stderr := run(t, "psam", "new", "--keys", kf, "--out", filepath.Join(dir, "x.json"), tc.flag, tc.value)
		if code != 2 || !strings.Contains(stderr, tc.flag+" = ") {
			t.Errorf("%s %s: exit %d, stderr %q", tc.flag, tc.value, code, stderr)
		}
	}
}
