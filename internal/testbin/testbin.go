// Package testbin builds the project's commands for tests that run them as
// processes, once per test binary, into a temporary directory.
package testbin

import (
	"os"
	"os/exec"
	"path/filepath"
	gosync "sync"
	"testing"
)

var (
	mu  gosync.Mutex
	dir string
)

// Build compiles github.com/cardd/cardd/cmd/name, the first time a test of
// this process asks for it, and returns the binary's path. A build that
// fails fails the test with the compiler's output.
func Build(t testing.TB, name string) string {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if dir == "" {
		d, err := os.MkdirTemp("", "cardd-test-bin-")
		if err != nil {
			t.Fatal(err)
		}
		dir = d
	}
	out := filepath.Join(dir, name)
	if _, err := os.Stat(out); err == nil {
		return out
	}
	cmd := exec.Command("go", "build", "-o", out, "github.com/cardd/cardd/cmd/"+name)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", name, err, b)
	}
	return out
}

// Cleanup removes the binaries; a TestMain calls it after m.Run.
func Cleanup() {
	mu.Lock()
	defer mu.Unlock()
	if dir != "" {
		os.RemoveAll(dir)
		dir = ""
	}
}
