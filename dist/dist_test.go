// Package dist_test checks the files cardd ships for systemd: the unit keeps
// its sandbox.
package dist_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// unitEntries reads a unit file into its [Service] (etc.) assignments, in
// order, keyed "Section.Key"; a key given twice keeps both values.
func unitEntries(t *testing.T, path string) map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	entries := map[string][]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = strings.Trim(line, "[]")
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: %q is neither a section nor key=value", path, n, line)
			}
			key := section + "." + strings.TrimSpace(k)
			entries[key] = append(entries[key], strings.TrimSpace(v))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return entries
}

// TestUnitSandbox pins the hardening issue 12 asked for: serial ports allowed
// by device group under a closed device policy, the clock, /proc, IPC and
// system calls restricted.
func TestUnitSandbox(t *testing.T) {
	e := unitEntries(t, "cardd.service")
	want := map[string][]string{
		"Service.DevicePolicy":     {"closed"},
		"Service.DeviceAllow":      {"char-ttyUSB rw", "char-ttyACM rw", "char-ttyS rw"},
		"Service.ProtectClock":     {"yes"},
		"Service.SystemCallFilter": {"@system-service", "~@privileged @resources"},
		"Service.ProtectProc":      {"invisible"},
		"Service.ProcSubset":       {"pid"},
		"Service.RemoveIPC":        {"yes"},
		"Service.NoNewPrivileges":  {"yes"},
		"Service.ProtectSystem":    {"strict"},
		"Service.User":             {"cardd"},
	}
	for key, values := range want {
		if !slices.Equal(e[key], values) {
			t.Errorf("%s = %q, want %q", key, e[key], values)
		}
	}
	// char-ttyUSB and char-ttyACM resolve only if their drivers are loaded
	// when the unit starts; the unit must load them first.
	for _, key := range []string{"Unit.Wants", "Unit.After"} {
		all := strings.Join(e[key], " ")
		for _, m := range []string{"modprobe@usbserial.service", "modprobe@cdc_acm.service"} {
			if !slices.Contains(strings.Fields(all), m) {
				t.Errorf("%s lacks %s", key, m)
			}
		}
	}
}

// TestSystemdAcceptsTheFiles runs systemd's own parser where it is
// installed: systemd-analyze verify on the unit (its ExecStart pointed at a
// binary that exists here).
func TestSystemdAcceptsTheFiles(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed")
	}
	unit, err := os.ReadFile("cardd.service")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	copyPath := filepath.Join(dir, "cardd.service")
	if err := os.WriteFile(copyPath, []byte(strings.ReplaceAll(string(unit), "/usr/local/bin/cardd", "/bin/true")), 0o644); err != nil {
		t.Fatal(err)
	}
	// verify exits 0 with a warning for an unknown key, so any output fails.
	out, err := exec.Command(analyze, "verify", copyPath).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}

}
