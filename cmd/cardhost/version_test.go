package main

import (
	"strings"
	"testing"

	"github.com/cardd/cardd/internal/buildinfo"
)

func TestVersion(t *testing.T) {
	out, _ := wantCode(t, 0, "version")
	if want := buildinfo.String() + "\n"; out != want || want == "\n" {
		t.Errorf("cardhost version printed %q, want %q", out, want)
	}
	wantCode(t, 2, "version", "extra")
	if code, _, stderr := cli(t); code != 2 || !strings.Contains(stderr, "  version ") {
		t.Errorf("usage (exit %d) does not list version:\n%s", code, stderr)
	}
}
