//go:build linux

// Linux only: the real stack is pcscd with the vpcd readers and a printer
// on a pty (printer/sim), which Windows has not (docs/windows.md).

package doctor

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cardd/cardd/host"
	"github.com/cardd/cardd/printer/sim"
)

// The cardd binary, built once for the package's tests.
var (
	buildOnce sync.Once
	binDir    string
	binPath   string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// carddBinary builds cmd/cardd and checks it dispatches `doctor`.
func carddBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		if binDir, buildErr = os.MkdirTemp("", "cardd-doctor-bin-"); buildErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "cardd")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/cardd/cardd/cmd/cardd").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build cmd/cardd: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	out, _ := exec.Command(binPath, "doctor", "--help").CombinedOutput()
	if bytes.Contains(out, []byte(`unknown command "doctor"`)) {
		requireCI(t, "cmd/cardd does not dispatch doctor yet: add `case \"doctor\": err = cmdDoctor(ctx, rest, stdout, stderr)` to Main")
	}
	return binPath
}

// childEnv is the test's environment without CARDD_* and pcsc-lite's socket
// variable, plus extra.
func childEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "CARDD_") || strings.HasPrefix(kv, envPCSCSocket+"=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// doctorRun runs the binary and returns its exit code and output.
func doctorRun(t *testing.T, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(carddBinary(t), append([]string{"doctor"}, args...)...)
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("running cardd doctor: %v", err)
	}
	return code, out.String(), errb.String()
}

// tableRows parses the text table: check name to result.
func tableRows(t *testing.T, stdout string) map[string]Status {
	t.Helper()
	rows := map[string]Status{}
	for _, line := range strings.Split(stdout, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || line[0] == ' ' || f[0] == "CHECK" {
			continue
		}
		if s := Status(f[1]); s == Pass || s == Warn || s == Fail || s == Skip {
			rows[f[0]] = s
		}
	}
	return rows
}

// fullSetup is a terminal with everything configured and working: the vpcd
// card reader and PSAM slot of the machine's pcscd, the virtual printer on
// a pty, a journal, the reference host over loopback with this terminal's
// secret, and an API token. It returns the config file.
func fullSetup(t *testing.T) string {
	t.Helper()
	requirePCSCD(t)
	h := startHost(t, host.Options{})
	dir := t.TempDir()
	p := openSim(t, sim.Options{Link: filepath.Join(dir, "printer")})
	state := filepath.Join(dir, "state")
	store := filepath.Join(state, "cardd.db")
	newStore(t, store)
	writeFile(t, filepath.Join(dir, "host.secret"), h.secret+"\n", 0o600)
	writeFile(t, filepath.Join(dir, "api.token"), "tok-0123456789abcdef\n", 0o600)
	file := filepath.Join(dir, "cardd.yaml")
	writeFile(t, file, fmt.Sprintf(`
terminal:
  id: "000000000001"
reader:
  card_pattern: "^Virtual PCD 00 00$"
  sam_pattern: "^Virtual PCD 00 01$"
store:
  path: %q
host:
  url: %q
  secret_file: %q
api:
  token_file: %q
printer:
  enabled: true
  port: %q
  status_timeout: 300ms
`, store, h.srv.URL, filepath.Join(dir, "host.secret"), filepath.Join(dir, "api.token"), p.Link()), 0o600)
	return file
}

// TestBinaryAllPass: `cardd doctor` on a working terminal passes every
// check and exits 0, in text and in JSON.
func TestBinaryAllPass(t *testing.T) {
	file := fullSetup(t)
	var code int
	var stdout, stderr string
	for attempt := 0; attempt < 3; attempt++ { // pcscd may be restarting under another package's test
		code, stdout, stderr = doctorRun(t, childEnv(), "--config", file)
		if code == 0 || tableRows(t, stdout)[CheckPCSCD] != Fail {
			break
		}
		time.Sleep(2 * time.Second)
	}
	t.Logf("cardd doctor:\n%s%s", stdout, stderr)
	if code != 0 {
		t.Errorf("exit %d, want 0; stderr %q", code, stderr)
	}
	rows := tableRows(t, stdout)
	if len(rows) != 12 {
		t.Errorf("%d rows, want 12:\n%s", len(rows), stdout)
	}
	for check, s := range rows {
		if s != Pass {
			t.Errorf("%s: %s, want PASS", check, s)
		}
	}
	if !strings.Contains(stdout, file) || !strings.Contains(stdout, "12 checks: 12 passed") {
		t.Errorf("the table does not name the config file or sum up:\n%s", stdout)
	}

	code, stdout, _ = doctorRun(t, childEnv(), "--config", file, "--json")
	var rep Report
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("--json output is not a report: %v\n%s", err, stdout)
	}
	if code != 0 || !rep.OK || rep.ConfigFile != file || len(rep.Checks) != 12 || rep.Counts[Pass] != 12 {
		t.Errorf("--json: exit %d, report %+v", code, rep)
	}
}

// TestBinaryPCSCDUnreachable: with pcsc-lite pointed at a socket nobody
// listens on, the doctor names pcscd's failure and its fix and exits 1;
// the machine's pcscd is left alone.
func TestBinaryPCSCDUnreachable(t *testing.T) {
	file := fullSetup(t)
	sock := filepath.Join(t.TempDir(), "no-pcscd.comm")
	code, stdout, stderr := doctorRun(t, childEnv(envPCSCSocket+"="+sock), "--config", file)
	t.Logf("cardd doctor:\n%s%s", stdout, stderr)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	rows := tableRows(t, stdout)
	if rows[CheckPCSCD] != Fail || rows[CheckCardReader] != Skip || rows[CheckSAMReader] != Skip {
		t.Errorf("pcscd %s, card-reader %s, sam-reader %s; want FAIL, SKIP, SKIP", rows[CheckPCSCD], rows[CheckCardReader], rows[CheckSAMReader])
	}
	for _, check := range []string{CheckConfig, CheckPrinter, CheckStore, CheckHost, CheckClock} {
		if rows[check] != Pass {
			t.Errorf("%s: %s, want PASS: only pcscd is down", check, rows[check])
		}
	}
	// The failure's line, then its fix beneath.
	lines := strings.Split(stdout, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, CheckPCSCD+" ") {
			if !strings.Contains(l, sock) || !strings.Contains(l, "not running") {
				t.Errorf("pcscd line does not name the socket and the cause: %q", l)
			}
			if i+1 >= len(lines) || !strings.Contains(lines[i+1], "fix: ") || !strings.Contains(lines[i+1], "systemctl start pcscd") ||
				!strings.Contains(lines[i+1], envPCSCSocket) {
				t.Errorf("no fix beneath the pcscd failure: %q", lines[i+1:])
			}
		}
	}
	if !strings.Contains(stderr, "1 check(s) failed: pcscd") {
		t.Errorf("stderr %q does not sum up the failure", stderr)
	}

	code, stdout, _ = doctorRun(t, childEnv(envPCSCSocket+"="+sock), "--config", file, "--json")
	var rep Report
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("--json: %v\n%s", err, stdout)
	}
	pc := rep.Checks[1]
	if code != 1 || rep.OK || pc.Check != CheckPCSCD || pc.Status != Fail || !strings.Contains(pc.Fix, "pcscd") {
		t.Errorf("--json: exit %d, ok %v, pcscd %+v", code, rep.OK, pc)
	}
}

// TestBinaryBadConfig: a configuration that does not load is exit 2, with
// the config row failed and the usual one line per key on stderr.
func TestBinaryBadConfig(t *testing.T) {
	file := filepath.Join(t.TempDir(), "bad.yaml")
	writeFile(t, file, "reader:\n  card_patern: PICC\n", 0o600)
	code, stdout, stderr := doctorRun(t, childEnv(), "--config", file)
	if code != 2 {
		t.Errorf("exit %d, want 2", code)
	}
	if rows := tableRows(t, stdout); len(rows) != 1 || rows[CheckConfig] != Fail {
		t.Errorf("rows %v, want the config row failed:\n%s", rows, stdout)
	}
	if !strings.Contains(stdout, "reader.card_patern") || !strings.Contains(stdout, "fix: correct the keys named in "+file) {
		t.Errorf("the config row does not name the key and the file:\n%s", stdout)
	}
	if !strings.HasPrefix(stderr, "cardd: config: reader.card_patern") {
		t.Errorf("stderr %q", stderr)
	}

	code, _, stderr = doctorRun(t, childEnv(), "--bogus")
	if code != 2 || !strings.Contains(stderr, "bogus") {
		t.Errorf("unknown flag: exit %d, stderr %q", code, stderr)
	}
}
