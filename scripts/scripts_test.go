// Package scripts tests the shell libraries of the scripts beside it.
package scripts

import (
	"os/exec"
	"strings"
	"testing"
)

// TestBenchGoesOnAfterAFailure: scripts/bench once ended at the first
// benchmark that failed (its output captured under set -e), and the figures
// of the ones after it never printed. A failure is now printed, the next
// benchmark still runs, and the run exits 1 naming the failures.
func TestBenchGoesOnAfterAFailure(t *testing.T) {
	cmd := exec.Command("bash", "-c", `set -euo pipefail
cd ..
. scripts/lib.sh
. scripts/benchlib.sh
bench BenchmarkFails ./scripts/testdata/bench 1x 2m
bench BenchmarkPasses ./scripts/testdata/bench 1x 2m
step upload false
bench_done
echo "not reached"`)
	out, err := cmd.CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 1 {
		t.Fatalf("exit: %v, want exit status 1\n%s", err, out)
	}
	for _, want := range []string{
		"this benchmark fails on purpose",
		"FAILED: BenchmarkFails",
		"BenchmarkPasses",
		"figures",
		"FAILED: upload (exit 1)",
		"failed: BenchmarkFails upload",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "not reached") {
		t.Errorf("bench_done did not exit:\n%s", out)
	}
}
