package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestCardReplaceCommand: 'card replace' refuses a card not reported lost
// and an anonymous one (exit 2, nothing recorded), replaces a named
// deny-listed card, shows it in both ledgers, refuses a second time, and
// 'deny remove' of the replaced card is refused with exit 2.
func TestCardReplaceCommand(t *testing.T) { eachStore(t, testCardReplaceCommand) }

func testCardReplaceCommand(t *testing.T) {
	dir, _, _ := setup(t)
	base := filepath.Dir(dir)
	for _, c := range []struct{ number, holder string }{{"3101000000654321", "张三"}, {"3101000000111111", ""}} {
		wantCode(t, 0, "card", "issue", "--dir", dir, "--number", c.number, "--holder", c.holder, "--balance", "20.00",
			"--start", "2026-09-01", "--expiry", "2030-08-31", "--out", filepath.Join(base, c.number+".json"))
	}
	replace := []string{"card", "replace", "--dir", dir, "--old", number, "--new", "3101000000654321", "--operator", "wang", "--settle", "2h"}
	_, errOut := wantCode(t, 2, replace...)
	if !strings.Contains(errOut, "not on the deny list") {
		t.Fatalf("replacing a card not reported lost: %s", errOut)
	}
	wantCode(t, 0, "deny", "add", "--dir", dir, "--card", "3101000000111111")
	if _, errOut := wantCode(t, 2, "card", "replace", "--dir", dir, "--old", "3101000000111111", "--new", "3101000000654321"); !strings.Contains(errOut, "anonymous card cannot be replaced") {
		t.Fatalf("replacing an anonymous card: %s", errOut)
	}
	wantCode(t, 2, "card", "replace", "--dir", dir, "--old", number, "--new", "3101000000654321", "--settle", "0s")
	wantCode(t, 0, "deny", "add", "--dir", dir, "--card", number)
	if out, _ := wantCode(t, 0, replace...); !strings.Contains(out, "balance known 100.00") {
		t.Fatalf("card replace printed %q", out)
	}
	wantCode(t, 2, replace...)
	if out, _ := wantCode(t, 0, "ledger", "--dir", dir, "--card", number); !strings.Contains(out, "REPLACED by card 3101000000654321") {
		t.Fatalf("ledger of the old card:\n%s", out)
	}
	if out, _ := wantCode(t, 0, "ledger", "--dir", dir, "--card", "3101000000654321"); !strings.Contains(out, "REPLACES lost card "+number) || !strings.Contains(out, "settling until") {
		t.Fatalf("ledger of the new card:\n%s", out)
	}
	if _, errOut := wantCode(t, 2, "deny", "remove", "--dir", dir, "--card", number); !strings.Contains(errOut, "stays on the deny list") {
		t.Fatalf("deny remove of a replaced card: %s", errOut)
	}
}
