package scripts

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// debVersion runs deb_version (scripts/lib.sh) in the git repository dir.
func debVersion(t *testing.T, dir string, env ...string) string {
	t.Helper()
	lib, err := filepath.Abs("lib.sh")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", "-c", `set -euo pipefail; . "$1"; deb_version`, "bash", lib)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("deb_version: %v\n%s", err, out)
	}
	return strings.TrimSpace(string(out))
}

// git runs git in dir with a fixed identity and commit time.
func git(t *testing.T, dir, date string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com",
		"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com",
		"GIT_AUTHOR_DATE="+date, "GIT_COMMITTER_DATE="+date)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
}

// dpkgNewer reports whether dpkg sorts a after b.
func dpkgNewer(t *testing.T, a, b string) bool {
	t.Helper()
	if _, err := exec.LookPath("dpkg"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("dpkg: %v", err)
		}
		t.Skipf("dpkg not installed: %v", err)
	}
	return exec.Command("dpkg", "--compare-versions", a, "gt", b).Run() == nil
}

// TestDebVersionSortsByCommit: the package of a later commit must upgrade
// the earlier one's, before and after the first tag, and an uncommitted
// change or CARDD_VERSION must show in the version.
func TestDebVersionSortsByCommit(t *testing.T) {
	dir := t.TempDir()
	git(t, dir, "", "init", "-q")
	f := filepath.Join(dir, "f")
	commit := func(date, content string) {
		if err := os.WriteFile(f, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		git(t, dir, date, "add", "f")
		git(t, dir, date, "commit", "-q", "-m", content)
	}

	commit("2026-01-02T03:04:05Z", "one")
	first := debVersion(t, dir)
	if !regexp.MustCompile(`^0\.0\.0~git20260102030405\.[0-9a-f]{8}$`).MatchString(first) {
		t.Errorf("untagged version %q, want 0.0.0~git20260102030405.<hash>", first)
	}
	commit("2026-01-02T03:04:06Z", "two")
	second := debVersion(t, dir)
	if !dpkgNewer(t, second, first) {
		t.Errorf("dpkg does not sort %q after %q", second, first)
	}
	if err := os.WriteFile(f, []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	if v := debVersion(t, dir); v != second+".dirty" {
		t.Errorf("with a change: %q, want %q", v, second+".dirty")
	}
	git(t, dir, "", "checkout", "-q", "f")

	// A release candidate: "-rc1" would be a Debian revision to dpkg, and
	// 1.2.0-rc1 would sort above 1.2.0; 1.2.0~rc1 sorts below it.
	git(t, dir, "", "tag", "v1.2.0-rc1")
	rc := debVersion(t, dir)
	if rc != "1.2.0~rc1" || !dpkgNewer(t, rc, second) {
		t.Errorf("at tag v1.2.0-rc1: %q, want 1.2.0~rc1, sorting after %q", rc, second)
	}
	commit("2026-01-02T03:04:07Z", "rc fix")
	rcAfter := debVersion(t, dir)
	if !regexp.MustCompile(`^1\.2\.0~rc1\+1\.g[0-9a-f]+$`).MatchString(rcAfter) || !dpkgNewer(t, rcAfter, rc) {
		t.Errorf("a commit after v1.2.0-rc1: %q, want 1.2.0~rc1+1.g<hash>, sorting after %q", rcAfter, rc)
	}

	git(t, dir, "", "tag", "v1.2.0")
	tagged := debVersion(t, dir)
	if tagged != "1.2.0" || !dpkgNewer(t, tagged, second) || !dpkgNewer(t, tagged, rcAfter) {
		t.Errorf("at tag v1.2.0: %q, want 1.2.0, sorting after %q and %q", tagged, second, rcAfter)
	}
	commit("2026-01-03T00:00:00Z", "three")
	after := debVersion(t, dir)
	if !regexp.MustCompile(`^1\.2\.0\+1\.g[0-9a-f]+$`).MatchString(after) || !dpkgNewer(t, after, tagged) {
		t.Errorf("a commit after v1.2.0: %q, want 1.2.0+1.g<hash>, sorting after 1.2.0", after)
	}
	if v := debVersion(t, dir, "CARDD_VERSION=9.9.9"); v != "9.9.9" {
		t.Errorf("CARDD_VERSION=9.9.9: %q", v)
	}
}
