//go:build !windows

package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestServiceRefusedOffWindows: cardd service points Linux users at
// systemd instead of failing obscurely.
func TestServiceRefusedOffWindows(t *testing.T) {
	var out, errb bytes.Buffer
	if code := Main([]string{"service", "install"}, &out, &errb); code != 2 {
		t.Fatalf("exit %d, want 2; stderr %q", code, errb.String())
	}
	if !strings.Contains(errb.String(), "dist/cardd.service") {
		t.Fatalf("stderr %q does not name the systemd unit", errb.String())
	}
}
