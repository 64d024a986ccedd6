package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cardd/cardd/host"
)

func TestCardClassCommands(t *testing.T) { eachStore(t, testCardClassCommands) }

// testCardClassCommands: card class sets, repeats and clears a card's
// class; card issue --class gives one at issue; a bad name, a card never
// issued and --class with --clear are usage errors that change nothing.
func testCardClassCommands(t *testing.T) {
	dir, _, _ := setup(t)
	out, _ := wantCode(t, 0, "card", "class", "--dir", dir, "--card", number, "--class", "staff")
	if !strings.Contains(out, "class staff") {
		t.Fatalf("card class printed %q", out)
	}
	if out, _ = wantCode(t, 0, "card", "class", "--dir", dir, "--card", number, "--class", "staff"); !strings.Contains(out, "already") {
		t.Fatalf("the same class again printed %q", out)
	}
	wantCode(t, 2, "card", "class", "--dir", dir, "--card", number, "--class", "Staff")
	wantCode(t, 2, "card", "class", "--dir", dir, "--card", number, "--class", "staff", "--clear")
	wantCode(t, 2, "card", "class", "--dir", dir, "--card", number)
	wantCode(t, 2, "card", "class", "--dir", dir, "--card", "3101000000999999", "--class", "staff")
	wantCode(t, 2, "card", "issue", "--dir", dir, "--number", "3101000000654321", "--class", "a.b", "--out", filepath.Join(t.TempDir(), "c.json"))
	wantCode(t, 0, "card", "issue", "--dir", dir, "--number", "3101000000654339", "--class", "visitor", "--out", filepath.Join(t.TempDir(), "v.json"))

	st := testStore(t, dir)
	ctx := context.Background()
	for card, want := range map[string]string{number: "staff", "3101000000654339": "visitor"} {
		if c, err := st.Card(ctx, card); err != nil || c.Class != want {
			t.Fatalf("card %s: %+v, %v; want class %s", card, c, err, want)
		}
	}
	if _, err := st.Card(ctx, "3101000000654321"); err == nil {
		t.Fatal("a card issued with a bad class name")
	}
	st.Close()
	wantCode(t, 0, "card", "class", "--dir", dir, "--card", number, "--clear")
	st = testStore(t, dir)
	defer st.Close()
	if c, err := st.Card(ctx, number); err != nil || c.Class != "" {
		t.Fatalf("after --clear: %+v, %v", c, err)
	}
}

// testStore opens the store the commands of t use.
func testStore(t *testing.T, dir string) *host.Store {
	t.Helper()
	st, err := openStore(dir, os.Getenv(DBEnv))
	if err != nil {
		t.Fatal(err)
	}
	return st
}
