// Package dist_test checks the files cardd ships for systemd: the unit keeps
// its sandbox, and the sysusers.d entry makes the user the unit runs as.
package dist_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
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

// sysusersLine is one sysusers.d(5) line: type, name, id, GECOS, home.
type sysusersLine struct {
	typ, name, id, gecos, home string
}

// parseSysusers reads a sysusers.d file; fields are space-separated and a
// double-quoted field may hold spaces (the GECOS).
func parseSysusers(t *testing.T, path string) []sysusersLine {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var lines []sysusersLine
	for n, raw := range strings.Split(string(b), "\n") {
		line := strings.TrimSpace(raw)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		var fields []string
		for rest := line; rest != ""; rest = strings.TrimLeft(rest, " \t") {
			if rest[0] == '"' {
				end := strings.IndexByte(rest[1:], '"')
				if end < 0 {
					t.Fatalf("%s:%d: unterminated quote", path, n+1)
				}
				fields = append(fields, rest[1:end+1])
				rest = rest[end+2:]
				continue
			}
			f, r, _ := strings.Cut(rest, " ")
			fields = append(fields, f)
			rest = r
		}
		if len(fields) < 3 || len(fields) > 6 {
			t.Fatalf("%s:%d: %d fields, want 3 to 6: %q", path, n+1, len(fields), line)
		}
		if !strings.Contains("ugmr", fields[0]) || len(fields[0]) != 1 {
			t.Fatalf("%s:%d: unknown type %q", path, n+1, fields[0])
		}
		fields = append(fields, "", "")
		lines = append(lines, sysusersLine{fields[0], fields[1], fields[2], fields[3], fields[4]})
	}
	return lines
}

// TestSysusersMakesTheUnitsUser checks the sysusers.d entry creates the
// unit's User= with the unit's state directory as home and puts it in every
// group of SupplementaryGroups=.
func TestSysusersMakesTheUnitsUser(t *testing.T) {
	unit := unitEntries(t, "cardd.service")
	lines := parseSysusers(t, filepath.Join("sysusers.d", "cardd.conf"))
	user := unit["Service.User"][0]
	home := "/var/lib/" + unit["Service.StateDirectory"][0]
	var made bool
	groups := map[string]bool{}
	for _, l := range lines {
		switch {
		case l.typ == "u" && l.name == user:
			made = true
			if l.home != home {
				t.Errorf("user %s has home %q, want the unit's state directory %q", user, l.home, home)
			}
		case l.typ == "m" && l.name == user:
			groups[l.id] = true
		}
	}
	if !made {
		t.Fatalf("no u line makes %s, the unit's User=", user)
	}
	for _, g := range strings.Fields(strings.Join(unit["Service.SupplementaryGroups"], " ")) {
		if !groups[g] {
			t.Errorf("no \"m %s %s\" line for the unit's SupplementaryGroups=%s", user, g, g)
		}
	}
}

// systemdTool finds one of systemd's commands (scripts/setup installs them);
// without it the test fails under CI=true and skips elsewhere.
func systemdTool(t *testing.T, name string) string {
	t.Helper()
	if runtime.GOOS == "windows" {
		// The units are a Linux package's; the Windows build's tests (under
		// Wine in CI) have no systemd to ask.
		t.Skipf("%s: systemd's units are checked on Linux", name)
	}
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s: %v (scripts/setup installs the systemd package)", name, err)
		}
		t.Skipf("%s not installed: %v", name, err)
	}
	return path
}

// TestSystemdAcceptsTheFiles runs systemd's own parsers: systemd-analyze
// verify on the unit (its ExecStart pointed at a binary that exists here)
// and systemd-sysusers on a scratch root. Neither needs systemd running.
func TestSystemdAcceptsTheFiles(t *testing.T) {
	analyze := systemdTool(t, "systemd-analyze")
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

	sysusers := systemdTool(t, "systemd-sysusers")
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc", "sysusers.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	conf, err := os.ReadFile(filepath.Join("sysusers.d", "cardd.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc", "sysusers.d", "cardd.conf"), conf, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(sysusers, "--root="+root).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-sysusers: %v\n%s", err, out)
	}
	passwd, err := os.ReadFile(filepath.Join(root, "etc", "passwd"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(passwd), "cardd:x:") || !strings.Contains(string(passwd), ":/var/lib/cardd:") {
		t.Errorf("systemd-sysusers made no cardd user with home /var/lib/cardd:\n%s", passwd)
	}
	group, err := os.ReadFile(filepath.Join(root, "etc", "group"))
	if err != nil {
		t.Fatal(err)
	}
	var member bool
	for _, l := range strings.Split(string(group), "\n") {
		f := strings.Split(l, ":")
		if len(f) == 4 && f[0] == "dialout" {
			member = slices.Contains(strings.Split(f[3], ","), "cardd")
		}
	}
	if !member {
		t.Errorf("systemd-sysusers did not put cardd in dialout:\n%s", group)
	}
}
