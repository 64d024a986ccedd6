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

// beijingCard keeps EF 4 in the MF, as the Beijing cards NFCard reads do,
// and answers GET BALANCE only in the application.
type beijingCard struct{ inADF bool }

func (c *beijingCard) Transmit(cmd []byte) ([]byte, error) {
	sw := func(s uint16, data ...byte) ([]byte, error) { return append(data, byte(s>>8), byte(s)), nil }
	switch {
	case len(cmd) >= 7 && cmd[1] == 0xA4 && cmd[2] == 0x00 && cmd[5] == 0x10 && cmd[6] == 0x01:
		c.inADF = true
		return sw(0x9000)
	case len(cmd) >= 7 && cmd[1] == 0xA4 && cmd[2] == 0x00 && cmd[5] == 0x3F && cmd[6] == 0x00:
		c.inADF = false
		return sw(0x9000)
	case cmd[1] == 0xA4:
		return sw(0x6A82)
	case cmd[1] == 0xB0 && cmd[2] == 0x84 && !c.inADF:
		ef4 := make([]byte, 32)
		copy(ef4, []byte{0x10, 0x00, 0x75, 0x11, 0x32, 0x00, 0x98, 0x83})
		copy(ef4[24:], []byte{0x20, 0x15, 0x01, 0x01, 0x20, 0x35, 0x12, 0x31})
		return sw(0x9000, ef4...)
	case cmd[1] == 0x5C && c.inADF:
		return sw(0x9000, 0x00, 0x00, 0x0B, 0x7C)
	case cmd[1] == 0x5C:
		return sw(0x6985)
	case cmd[1] == 0xB2:
		return sw(0x6A83)
	}
	return sw(0x6A82)
}

// A Beijing card's EF 4 is read in the MF when the application lacks it,
// and the application is selected again before GET BALANCE.
func TestReadPurseBeijingFilesInMF(t *testing.T) {
	r, err := ReadPurse(&beijingCard{}, ReadOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Profile.Name != "beijing" || r.Info.CardNumber != "1000751132009883" || r.Balance != 2940 ||
		r.Info.StartDate.String() != "2015-01-01" || r.Info.ExpiryDate.String() != "2035-12-31" {
		t.Errorf("read %s %q balance %d valid %s..%s, notes %q", r.Profile.Name, r.Info.CardNumber, r.Balance,
			r.Info.StartDate, r.Info.ExpiryDate, r.Notes)
	}
	if err := r.Transactable(); err != nil {
		t.Errorf("Transactable() = %v", err)
	}
}
