package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/cardd/cardd/offline"
)

// TestJournalPending counts the rows the host has not acknowledged: two
// written, one acked, one left; a missing store is 0 and is not created.
func TestJournalPending(t *testing.T) {
	t.Setenv("CARDD_CONFIG", "")
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "cardd.db")
	st, err := offline.Open(path, "000000000001")
	if err != nil {
		t.Fatal(err)
	}
	for _, card := range []string{"3101000000123456", "3101000000654321"} {
		if _, err := st.Begin(ctx, offline.Row{Kind: offline.KindRead, Card: card}); err != nil {
			t.Fatal(err)
		}
	}
	sent, err := st.Unacked(ctx, 1)
	if err != nil || len(sent) != 1 {
		t.Fatalf("Unacked = %v, %v", sent, err)
	}
	if err := st.Ack(ctx, []string{sent[0].ID}); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	code, out, stderr := run(t, "journal", "pending", "--store", path)
	if code != 0 || out != "1\n" {
		t.Errorf("journal pending = exit %d, %q (stderr %q), want 0, \"1\\n\"", code, out, stderr)
	}

	missing := filepath.Join(t.TempDir(), "none.db")
	code, out, stderr = run(t, "journal", "pending", "--store", missing)
	if code != 0 || out != "0\n" {
		t.Errorf("journal pending of a missing store = exit %d, %q (stderr %q), want 0, \"0\\n\"", code, out, stderr)
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("journal pending created %s: %v", missing, err)
	}

	for _, args := range [][]string{{"journal"}, {"journal", "list"}, {"journal", "pending", "extra"}} {
		if code, _, _ := run(t, args...); code != 2 {
			t.Errorf("cardd %v: exit %d, want 2", args, code)
		}
	}
}
