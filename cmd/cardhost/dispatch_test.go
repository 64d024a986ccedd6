package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestUsageListsEveryCommand: help prints a line for each command of the
// table, and each is reached by its name: a command added to the table is
// in the usage and dispatched without another edit.
func TestUsageListsEveryCommand(t *testing.T) {
	out, _ := wantCode(t, 0, "help")
	_, errOut := wantCode(t, 2) // no command: the usage on stderr
	if errOut != out {
		t.Errorf("usage without a command differs from help:\n%s\nwant\n%s", errOut, out)
	}
	for _, c := range commands {
		if !strings.Contains(out, "\n  "+c.name+" "+c.args+" ") || c.about == "" || !strings.Contains(out, c.about+"\n") {
			t.Errorf("help lacks the line of %q:\n%s", c.name, out)
		}
		flags, _ := wantCode(t, 0, append(strings.Fields(c.name), "--help")...)
		if !strings.Contains(flags, "cardhost "+c.name+":") || !strings.Contains(flags, "--dir") {
			t.Errorf("cardhost %s --help:\n%s", c.name, flags)
		}
	}
	if len(commands) < 15 {
		t.Errorf("%d commands in the table, want the 15 cardhost has", len(commands))
	}
}

// TestDispatchErrors: an unknown command and an unknown flag are usage
// errors (exit 2) that name what was wrong, for every command; bad flags are
// refused before --dir is opened, and nothing is written.
func TestDispatchErrors(t *testing.T) {
	for _, args := range [][]string{{"frobnicate"}, {"credit", "frobnicate"}, {"card"}} {
		out, errOut := wantCode(t, 2, args...)
		name := strings.Join(args, " ")
		if !strings.HasPrefix(errOut, "cardhost: unknown command "+`"`+name+`"`+"\nusage: cardhost <command>") || out != "" {
			t.Errorf("cardhost %s: stdout %q, stderr %q", name, out, errOut)
		}
	}
	missing := filepath.Join(t.TempDir(), "none")
	for _, c := range commands {
		args := append(strings.Fields(c.name), "--dir", missing, "--bad-flag")
		out, errOut := wantCode(t, 2, args...)
		if want := "cardhost " + c.name + ": unknown flag: --bad-flag\n"; errOut != want || out != "" {
			t.Errorf("cardhost %s: stdout %q, stderr %q; want stderr %q", strings.Join(args, " "), out, errOut, want)
		}
	}
	// A bad --card is named before the missing directory is opened.
	_, errOut := wantCode(t, 2, "credit", "add", "--dir", missing, "--card", "1234", "--amount", "1")
	if !strings.Contains(errOut, `--card = "1234"`) {
		t.Errorf("bad card and missing directory: %q, want the card named", errOut)
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("a refused command made %s: %v", missing, err)
	}
}
