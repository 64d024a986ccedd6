package doctor

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cardd/cardd/config"
	"github.com/cardd/cardd/printer"
)

// Reader names pcscd gives the vpcd slots.
const (
	slot0 = "Virtual PCD 00 00"
	slot1 = "Virtual PCD 00 01"
)

// testConfig is a valid kiosk config with its store in a fresh temp dir
// (the directory not created yet) and the card reader the first vpcd slot.
func testConfig(t *testing.T) *config.Config {
	t.Helper()
	c := config.Default()
	c.Store.Path = filepath.Join(t.TempDir(), "state", "cardd.db")
	c.Reader.CardPattern = "^" + slot0 + "$"
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	return &c
}

// fakePCSC is a PC/SC context with fixed readers.
type fakePCSC struct {
	readers  []string
	err      error
	released bool
}

func (f *fakePCSC) ListReaders() ([]string, error) { return slices.Clone(f.readers), f.err }
func (f *fakePCSC) Release() error                 { f.released = true; return nil }

// dialer returns a DialPCSC that finds the given readers.
func dialer(readers ...string) func() (PCSC, error) {
	return func() (PCSC, error) { return &fakePCSC{readers: readers}, nil }
}

// fakePrinter is a printer line with a fixed state.
type fakePrinter struct {
	openErr  error
	stateErr error
	st       printer.Status
	opened   bool
	asked    bool
	closed   bool
}

func (p *fakePrinter) Write(_ context.Context, b []byte) error {
	if len(b) != 0 {
		panic("the doctor must not send anything to the printer")
	}
	p.opened = true
	return p.openErr
}

func (p *fakePrinter) State(context.Context) (printer.Status, error) {
	p.asked = true
	return p.st, p.stateErr
}

func (p *fakePrinter) Close() error { p.closed = true; return nil }

// find returns the result of the named check.
func find(t *testing.T, results []Result, check string) Result {
	t.Helper()
	for _, r := range results {
		if r.Check == check {
			return r
		}
	}
	t.Fatalf("no result for %s in %+v", check, results)
	return Result{}
}

// want checks a result's status and that its detail and fix hold the given
// substrings (fix substrings start with "fix:").
func want(t *testing.T, what string, r Result, status Status, subs ...string) {
	t.Helper()
	t.Logf("%s: %s %s | fix: %s", what, r.Status, r.Detail, r.Fix)
	if r.Status != status {
		t.Errorf("%s: %s (%s; fix %q), want %s", what, r.Status, r.Detail, r.Fix, status)
	}
	for _, s := range subs {
		if f, ok := strings.CutPrefix(s, "fix:"); ok {
			if !strings.Contains(r.Fix, f) {
				t.Errorf("%s: fix %q does not say %q", what, r.Fix, f)
			}
		} else if !strings.Contains(r.Detail, s) {
			t.Errorf("%s: detail %q does not say %q", what, r.Detail, s)
		}
	}
	if (r.Status == Fail) && r.Fix == "" {
		t.Errorf("%s: a failure without a fix (%s)", what, r.Detail)
	}
	if strings.ContainsAny(r.Detail+r.Fix, "\n\r") {
		t.Errorf("%s: detail or fix spans lines: %q / %q", what, r.Detail, r.Fix)
	}
}

// writeFile writes content at path with mode perm (exactly: umask aside).
func writeFile(t *testing.T, path, content string, perm os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil {
		t.Fatal(err)
	}
}
