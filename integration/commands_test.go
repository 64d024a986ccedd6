package integration

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	epursesim "github.com/cardd/cardd/apdu/epurse/sim"
	"github.com/cardd/cardd/money"
)

// TestScanCommand runs the commands a newcomer runs: cardsim makes keys and a
// card and taps it; `cardd scan --json` prints what the card file holds.
func TestScanCommand(t *testing.T) {
	requirePCSC(t)
	cardsim, cardd := binary(t, "cardsim"), binary(t, "cardd")
	dir := t.TempDir()
	keys, card := filepath.Join(dir, "masters.json"), filepath.Join(dir, "card.json")
	for _, args := range [][]string{
		{"keys", "new", "--out", keys},
		{"card", "new", "--out", card, "--keys", keys, "--number", "3101000000246810", "--holder", "陈七",
			"--balance", "66.60", "--start", "2025-09-01", "--expiry", "2029-08-31", "--history", "7"},
	} {
		if out, err := exec.Command(cardsim, args...).CombinedOutput(); err != nil {
			t.Fatalf("cardsim %v: %v\n%s", args, err, out)
		}
	}
	f, err := epursesim.LoadCardFile(card)
	if err != nil {
		t.Fatal(err)
	}

	waitEmpty(t, 0)
	scan := exec.Command(cardd, "scan", "--json", "--wait", "20s", "--reader-card", "^Virtual PCD 00 00$")
	scan.Env = append(os.Environ(), "CARDD_CONFIG=")
	scan.Stderr = testWriter{t}
	outc := make(chan []byte, 1)
	errc := make(chan error, 1)
	go func() { b, err := scan.Output(); outc <- b; errc <- err }()
	time.Sleep(300 * time.Millisecond) // scan is waiting; now tap
	tapCmd := exec.Command(cardsim, "card", "--file", card, "--slot", "0", "--hold", "2s")
	if out, err := tapCmd.CombinedOutput(); err != nil {
		t.Fatalf("cardsim card: %v\n%s", err, out)
	}
	out := <-outc
	if err := <-errc; err != nil {
		t.Fatalf("cardd scan: %v\n%s", err, out)
	}
	var got struct {
		Card, Holder, ValidFrom, ValidTo, Purse, Balance string
		BalanceFen                                       int64 `json:"balance_fen"`
		Transactions                                     []struct {
			Time, Type, Amount string
			AmountFen          int64 `json:"amount_fen"`
			Counter            uint16
		}
		APDUs        int `json:"apdus"`
		BalanceAPDUs int `json:"balance_apdus"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("scan output is not JSON: %v\n%s", err, out)
	}
	if got.Card != "3101********6810" || got.Holder != "陈七" {
		t.Errorf("card %q holder %q", got.Card, got.Holder)
	}
	if got.BalanceFen != f.EPBalance || got.Balance != money.Format(f.EPBalance) {
		t.Errorf("balance %q (%d fen), card file %d", got.Balance, got.BalanceFen, f.EPBalance)
	}
	if len(got.Transactions) != 5 {
		t.Fatalf("%d transactions, want the 5 newest", len(got.Transactions))
	}
	for i, tx := range got.Transactions {
		want := f.Log[i]
		if tx.Counter != want.Counter || tx.Time != want.Time.Format("2006-01-02 15:04:05") {
			t.Errorf("transaction %d: %+v, card file %+v", i+1, tx, want)
		}
	}
	if got.BalanceAPDUs != 2 {
		t.Errorf("balance after %d APDUs, want 2", got.BalanceAPDUs)
	}
}
