package tap

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/cardd/cardd/apdu/trace"
)

// The corpus of real cards (integration/testdata/cards) read in process,
// trace replayed as a card: a fast check of the profiles beside the
// integration test through pcscd. Number, family and balance as the
// source gives them.
func TestReadPurseCorpus(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "integration", "testdata", "cards", "*.trace"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			f, err := os.Open(file)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			tr, err := trace.Parse(f)
			if err != nil {
				t.Fatal(err)
			}
			r, err := ReadPurse(trace.NewCard(tr), ReadOptions{}, nil)
			wantBalance, hasBalance := tr.Get("expect.balance_fen")
			if !hasBalance {
				if err == nil {
					t.Fatal("read a balance the source does not have")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if want, ok := tr.Get("expect.number"); ok && r.Info.CardNumber != want {
				t.Errorf("number %q, want %q", r.Info.CardNumber, want)
			}
			if want, ok := tr.Get("expect.family"); ok && r.Profile.Name != want {
				t.Errorf("family %q, want %q", r.Profile.Name, want)
			}
			if got := strconv.FormatInt(r.Balance, 10); got != wantBalance {
				t.Errorf("balance %s, want %s", got, wantBalance)
			}
		})
	}
}
