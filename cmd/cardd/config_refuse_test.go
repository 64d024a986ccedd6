package main

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// A door configuration that only `cardd run` used to refuse (package door
// checked it when the daemon started) is refused alike by cardd config,
// cardd doctor and cardd run: exit 2, one stderr line per bad key, each
// naming the key and the value.
func TestDoorConfigRefusedByEveryCommand(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("door mode is Linux-only and refused on Windows (docs/windows.md)")
	}
	t.Setenv("CARDD_CONFIG", "")
	dir := t.TempDir()
	file := filepath.Join(dir, "door.yaml")
	yaml := "mode: door\n" +
		"store:\n  path: " + filepath.Join(dir, "cardd.db") + "\n" +
		"door:\n  groups: []\n  relay:\n    port: /dev/ttyUSB9\n    open: ZZ\n    hold: 90s\n"
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		{`door.groups = ""`, "at least one group"},
		{`door.relay.open = "ZZ"`, "not hex bytes"},
		{`door.relay.hold = "1m30s"`, "must be from 100ms to 1m0s"},
	}
	for _, cmd := range []string{"config", "doctor", "run"} {
		code, stdout, stderr := run(t, cmd, "--config", file)
		if code != 2 {
			t.Errorf("cardd %s: exit %d, want 2 (stderr %q)", cmd, code, stderr)
		}
		lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
		if len(lines) != len(want) {
			t.Errorf("cardd %s: %d stderr lines, want %d: %q", cmd, len(lines), len(want), stderr)
			continue
		}
		for i, w := range want {
			for _, s := range w {
				if !strings.Contains(lines[i], s) {
					t.Errorf("cardd %s: line %d %q lacks %q", cmd, i+1, lines[i], s)
				}
			}
		}
		if cmd == "config" && stdout != "" {
			t.Errorf("cardd config printed a configuration it refuses:\n%s", stdout)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "cardd.db")); !os.IsNotExist(err) {
		t.Errorf("a refused configuration made the store (%v)", err)
	}
}

// cardd config takes a money key given as a YAML number with at most two
// decimals and refuses one with three, naming the key and the value as
// written.
func TestConfigMoneyAsNumber(t *testing.T) {
	t.Setenv("CARDD_CONFIG", "")
	dir := t.TempDir()
	for _, tc := range []struct {
		cap, want string
		code      int
	}{
		{"1000", `balance_cap: "1000"`, 0},
		{"1000.5", `balance_cap: "1000.5"`, 0},
		{"1000.123", `config: load.balance_cap = "1000.123": must be an amount in yuan`, 2},
	} {
		file := filepath.Join(dir, "money.yaml")
		if err := os.WriteFile(file, []byte("load:\n  balance_cap: "+tc.cap+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		code, stdout, stderr := run(t, "config", "--config", file)
		if code != tc.code || !strings.Contains(stdout+stderr, tc.want) {
			t.Errorf("balance_cap: %s: exit %d, want %d and %q in\n%s%s", tc.cap, code, tc.code, tc.want, stdout, stderr)
		}
		if tc.code != 0 && strings.Count(strings.TrimRight(stderr, "\n"), "\n") != 0 {
			t.Errorf("balance_cap: %s: more than one line: %q", tc.cap, stderr)
		}
	}
}
