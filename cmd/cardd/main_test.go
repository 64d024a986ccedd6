package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/cardd/cardd/offline"
)

func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errw bytes.Buffer
	code = Main(args, &out, &errw)
	return code, out.String(), errw.String()
}

// Bad configuration: exit code 2 and one line naming the key and the value.
func TestBadConfigExits2WithOneLine(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("it asserts Linux error texts (no such file or directory, is a directory); Windows words them otherwise")
	}
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("reader:\n  card_patern: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want []string // substrings of the one line
	}{
		{"unknown mode", map[string]string{"CARDD_MODE": "atm"}, nil, []string{"mode", `"atm"`}},
		{"mode flag", nil, []string{"--mode", "atm"}, []string{"mode", `"atm"`}},
		{"terminal id too short", nil, []string{"--terminal-id", "12345"}, []string{"terminal.id", `"12345"`}},
		{"terminal id not hex", map[string]string{"CARDD_TERMINAL_ID": "zz0000000001"}, nil, []string{"terminal.id", `"zz0000000001"`}},
		{"missing file", nil, []string{"--config", filepath.Join(dir, "nope.yaml")}, []string{"nope.yaml"}},
		{"directory as file", nil, []string{"--config", dir}, []string{dir}},
		{"unknown key", nil, []string{"--config", bad}, []string{"reader.card_patern"}},
		{"bad regexp", nil, []string{"--reader-card", "["}, []string{"reader.card_pattern", `"["`}},
		{"unknown parity", map[string]string{"CARDD_PRINTER_PARITY": "odds"}, nil, []string{"printer.parity", `"odds"`}},
		{"baud 0", map[string]string{"CARDD_PRINTER_BAUD": "0"}, nil, []string{"printer.baud", `"0"`}},
		{"unknown text mode", map[string]string{"CARDD_PRINTER_TEXT": "big5"}, nil, []string{"printer.text", `"big5"`}},
		{"printer without port", map[string]string{"CARDD_PRINTER_ENABLED": "true"}, nil, []string{"printer.port", "required"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("CARDD_CONFIG", "")
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			for _, cmd := range []string{"run", "scan", "config"} {
				code, _, stderr := run(t, append([]string{cmd}, tc.args...)...)
				if code != 2 {
					t.Errorf("cardd %s: exit %d, want 2 (stderr %q)", cmd, code, stderr)
				}
				lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
				if len(lines) != 1 {
					t.Errorf("cardd %s: %d lines on stderr, want 1: %q", cmd, len(lines), stderr)
				}
				for _, w := range tc.want {
					if !strings.Contains(stderr, w) {
						t.Errorf("cardd %s: stderr %q does not name %s", cmd, stderr, w)
					}
				}
			}
		})
	}
}

func TestUsageErrors(t *testing.T) {
	t.Setenv("CARDD_CONFIG", "")
	for _, args := range [][]string{{}, {"frobnicate"}, {"scan", "--no-such-flag"}, {"scan", "extra"}, {"scan", "--wait", "-1s"}} {
		if code, _, stderr := run(t, args...); code != 2 {
			t.Errorf("cardd %q: exit %d, want 2 (%s)", args, code, stderr)
		}
	}
	if code, _, _ := run(t, "--help"); code != 0 {
		t.Errorf("cardd --help: exit %d, want 0", code)
	}
}

func TestConfigPrintsEffective(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("door mode is Linux-only and refused on Windows (docs/windows.md)")
	}
	t.Setenv("CARDD_CONFIG", "")
	t.Setenv("CARDD_TERMINAL_ID", "0011223344AA")
	t.Setenv("CARDD_DOOR_RELAY_PORT", "/dev/ttyUSB0")
	code, out, stderr := run(t, "config", "--mode", "door")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, w := range []string{`mode: "door"`, `"0011223344AA"`, "card_pattern"} {
		if !strings.Contains(out, w) {
			t.Errorf("effective config lacks %q:\n%s", w, out)
		}
	}
}

// A daemon on a store another daemon holds exits 2 at once, naming the
// store and the holder's pid, and writes nothing beside the store: with a
// journal, and without one (it still guards the .api file).
func TestRunOnAHeldStoreExits2(t *testing.T) {
	t.Setenv("CARDD_CONFIG", "")
	store := filepath.Join(t.TempDir(), "cardd.db")
	t.Setenv("CARDD_STORE_PATH", store)
	l, err := offline.Lock(store)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	// A token file that is not there stops a daemon that got past the
	// lock, rather than letting it run.
	t.Setenv("CARDD_API_TOKEN_FILE", filepath.Join(t.TempDir(), "no-token"))
	for _, env := range []map[string]string{
		{"CARDD_HOST_URL": "http://127.0.0.1:1", "CARDD_HOST_SECRET_FILE": filepath.Join(t.TempDir(), "secret")},
		{"CARDD_HOST_URL": ""},
	} {
		for k, v := range env {
			t.Setenv(k, v)
		}
		code, _, stderr := run(t, "run")
		want := fmt.Sprintf("store %s is in use by cardd pid %d", store, os.Getpid())
		if code != 2 || !strings.Contains(stderr, want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", env, code, stderr, want)
		}
		for _, f := range []string{store, store + ".api"} {
			if _, err := os.Stat(f); !os.IsNotExist(err) {
				t.Errorf("%v: %s was made (%v)", env, f, err)
			}
		}
	}
}
