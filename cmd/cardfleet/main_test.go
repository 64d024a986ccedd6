package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestBadUsage: each bad flag is exit code 2 with a message naming the
// flag and its value, before anything is opened or registered.
func TestBadUsage(t *testing.T) {
	base := []string{"--dir", t.TempDir(), "--host", "http://127.0.0.1:1"}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--host", "http://127.0.0.1:1"}, "--dir is required"},
		{[]string{"--dir", "x"}, "--host is required"},
		{append(base, "--host", "ftp://x"), `--host = "ftp://x"`},
		{append(base, "--amount", "0"), `--amount = "0"`},
		{append(base, "--mix", "load=x"), `--mix = "load=x"`},
		{append(base, "--mix", "dance=1"), `"dance"`},
		{append(base, "--mix", "load=0"), "every weight is 0"},
		{append(base, "--pick", "best"), `--pick = "best"`},
		{append(base, "--terminals", "0"), "--terminals = 0"},
		{append(base, "--cards", "0"), "--cards = 0 with load=1"},
		{append(base, "--rate", "0"), "--rate = 0"},
		{append(base, "--duration", "0s"), "--duration = 0s"},
		{append(base, "--ca-file", "/nonexistent/ca.pem"), "--ca-file"},
		{append(base, "--backlog-batch", "0"), "--backlog-batch = 0"},
		{append(base, "extra"), `unexpected argument "extra"`},
	} {
		var out, errb bytes.Buffer
		if code := Main(c.args, &out, &errb); code != 2 || !strings.Contains(errb.String(), c.want) {
			t.Errorf("%q: exit %d, %q; want 2 and %q", c.args, code, errb.String(), c.want)
		}
	}
}

// TestNotAHostDir: a --dir that cardhost init did not make is refused
// with exit code 2, naming it.
func TestNotAHostDir(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	if code := Main([]string{"--dir", dir, "--host", "http://127.0.0.1:1"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "--dir = ") {
		t.Errorf("exit %d, %q; want 2 naming --dir", code, errb.String())
	}
}
