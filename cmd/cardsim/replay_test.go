package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The replay command refuses bad flags (exit 2) and a broken trace (exit 1,
// naming the file and the line) before it touches a vpcd slot.
func TestReplayErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.trace")
	if err := os.WriteFile(bad, []byte("# cardd trace 1\n# source: test\natr 3B00\n> 00A4040\n< 9000\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"missing --trace", []string{"--slot", "0"}, 2, "--trace"},
		{"slot 16", []string{"--trace", bad, "--slot", "16"}, 2, "--slot"},
		{"negative hold", []string{"--trace", bad, "--hold=-1s"}, 2, "--hold"},
		{"stray argument", []string{"--trace", bad, "now"}, 2, "now"},
		{"missing file", []string{"--trace", filepath.Join(dir, "nope.trace")}, 1, "nope.trace"},
		{"odd hex", []string{"--trace", bad}, 1, "bad.trace: trace line 4: odd number of hex digits"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := run(t, append([]string{"replay"}, tc.args...)...)
			if code != tc.code || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want exit %d naming %q", code, stderr, tc.code, tc.want)
			}
		})
	}
}
