package main

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/cardd/cardd/internal/buildinfo"
)

func TestVersionPrintsOneLine(t *testing.T) {
	code, out, stderr := run(t, "version")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if want := buildinfo.String() + "\n"; out != want || want == "\n" {
		t.Errorf("cardd version printed %q, want %q", out, want)
	}
	if code, _, _ := run(t, "version", "extra"); code != 2 {
		t.Errorf("cardd version extra: exit %d, want 2", code)
	}
}

// The -X path docs/operations.md and the package doc give must name a variable the
// binary links: a wrong one is silently ignored by the linker.
func TestVersionSetAtBuildTime(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("it runs go build, and the Windows test binary runs under Wine without a Go toolchain")
	}
	if testing.Short() {
		t.Skip("builds cardd")
	}
	bin := filepath.Join(t.TempDir(), "cardd")
	const v = "v9.8.7-test"
	build := exec.Command("go", "build", "-o", bin,
		"-ldflags", "-X github.com/cardd/cardd/internal/buildinfo.Version="+v, "github.com/cardd/cardd/cmd/cardd")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out)); got != v {
		t.Errorf("cardd version = %q, want %q", got, v)
	}
	// Without -X, the binary says what the toolchain recorded in it: the
	// revision when the go command found the checkout (a git worktree or
	// GOFLAGS=-buildvcs=false hides it), else devel.
	build = exec.Command("go", "build", "-o", bin, "github.com/cardd/cardd/cmd/cardd")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	out, err = exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	meta, err := exec.Command("go", "version", "-m", bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	want := "devel"
	for _, l := range strings.Split(string(meta), "\n") {
		if f := strings.Fields(l); len(f) == 2 && f[0] == "build" && strings.HasPrefix(f[1], "vcs.revision=") {
			want = strings.TrimPrefix(f[1], "vcs.revision=")
		}
	}
	if got := strings.TrimSpace(string(out)); !strings.HasPrefix(got, want) {
		t.Errorf("cardd version without -X = %q, want %q (go version -m:\n%s)", got, want, meta)
	}
}
