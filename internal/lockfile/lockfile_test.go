package lockfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

func TestAcquire(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Windows guards files with ACLs, not mode bits: this asserts Unix modes (docs/windows.md)")
	}
	path := filepath.Join(t.TempDir(), "x.lock")
	if _, held, err := Holder(path); held || err != nil {
		t.Fatalf("no file: held %v, %v", held, err)
	}
	l, err := Acquire(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(os.Getpid()) {
		t.Fatalf("lock file holds %q, %v; want this pid", b, err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode())
	}
	// flock conflicts between open files, so a second open in this very
	// process stands for a second process.
	_, err = Acquire(path)
	var he *HeldError
	if !errors.As(err, &he) || he.PID != os.Getpid() || he.Path != path {
		t.Fatalf("second acquire: %v, want held by pid %d", err, os.Getpid())
	}
	if !strings.Contains(err.Error(), "pid "+strconv.Itoa(os.Getpid())) {
		t.Errorf("error %q does not name the pid", err)
	}
	if _, err := AcquireExisting(path); !errors.As(err, &he) {
		t.Fatalf("acquire existing while held: %v", err)
	}
	if pid, held, err := Holder(path); !held || pid != os.Getpid() || err != nil {
		t.Fatalf("holder: %d %v %v", pid, held, err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if _, held, err := Holder(path); held || err != nil {
		t.Fatalf("after release: held %v, %v", held, err)
	}
	l2, err := Acquire(path)
	if err != nil {
		t.Fatalf("acquire after release: %v", err)
	}
	l2.Release()
}

func TestAcquireExistingCreatesNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	if _, err := AcquireExisting(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v, want fs.ErrNotExist", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the lock file was created: %v", err)
	}
}

// A link planted where the lock goes is not followed: its target is left
// as it was.
func TestAcquireRefusesALink(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Windows has no O_NOFOLLOW; the lock files live in %ProgramData%\\cardd, which only administrators may write (docs/windows.md)")
	}
	dir := t.TempDir()
	target := filepath.Join(dir, "precious")
	if err := os.WriteFile(target, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "store.lock")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if l, err := Acquire(link); err == nil {
		l.Release()
		t.Fatal("a lock taken through a link")
	}
	if b, _ := os.ReadFile(target); string(b) != "keep me" {
		t.Fatalf("the link's target now holds %q", b)
	}
}
