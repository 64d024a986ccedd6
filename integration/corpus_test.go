package integration

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cardd/cardd/money"
)

// TestCorpusReadsThroughPCSCD plays every trace of real cards under
// testdata/cards (docs/cards.md) with `cardsim replay` in a vpcd slot and
// reads it with `cardd scan --json --full-number` through pcscd: the
// family, number, balance, second purse, validity and newest transactions
// equal the values its header gives, each taken from the trace's public
// source, never from cardd. A key the header leaves out is not asserted.
func TestCorpusReadsThroughPCSCD(t *testing.T) {
	requirePCSC(t)
	files, err := filepath.Glob(filepath.Join("testdata", "cards", "*.trace"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus traces: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".trace"), func(t *testing.T) {
			tr, _ := readTrace(t, file)
			abs, err := filepath.Abs(file)
			if err != nil {
				t.Fatal(err)
			}
			out, stderr, scanErr := whileTapped(t, []string{"scan", "--json", "--full-number"}, "replay", "--trace", abs)
			var got map[string]any
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("cardd scan: %v, output not JSON (%v)\n%s%s", scanErr, err, out, stderr)
			}
			_, wantBalance := tr.Get("expect.balance_fen")
			if wantBalance && scanErr != nil {
				t.Fatalf("cardd scan: %v\n%s%s", scanErr, out, stderr)
			}
			if !wantBalance {
				// The source published no balance: cardd names the card,
				// then says it could not read one.
				if scanErr == nil || got["error"] == nil {
					t.Errorf("a card with no recorded GET BALANCE read without error:\n%s", out)
				}
			}
			str := func(k string) string { return fmt.Sprint(got[k]) }
			check := func(key, gotV string) {
				if want, ok := tr.Get("expect." + key); ok && gotV != want {
					t.Errorf("%s: got %q, the source gives %q", key, gotV, want)
				}
			}
			check("family", str("family"))
			check("number", str("card"))
			check("printed_number", str("printed_number"))
			check("valid_from", str("valid_from"))
			check("valid_to", str("valid_to"))
			if wantBalance {
				check("balance_fen", strconv.FormatInt(int64(got["balance_fen"].(float64)), 10))
				if sp, ok := got["second_purse_fen"].(float64); ok {
					check("second_purse_fen", strconv.FormatInt(int64(sp), 10))
				} else if want, ok := tr.Get("expect.second_purse_fen"); ok {
					t.Errorf("second_purse_fen: none read, the source gives %s", want)
				}
			}
			txs, _ := got["transactions"].([]any)
			if want, ok := tr.Get("expect.tx_count"); ok && strconv.Itoa(len(txs)) != want {
				t.Errorf("%d transactions, the source gives %s", len(txs), want)
			}
			for i := 1; i <= 10; i++ {
				want, ok := tr.Get(fmt.Sprintf("expect.tx.%d", i))
				if !ok {
					continue
				}
				if i > len(txs) {
					t.Errorf("tx.%d: not read (%d transactions), the source gives %q", i, len(txs), want)
					continue
				}
				tx := txs[i-1].(map[string]any)
				gotTx := fmt.Sprintf("%s %d %s", tx["time"], int64(tx["amount_fen"].(float64)), tx["terminal"])
				if gotTx != want {
					t.Errorf("tx.%d: got %q, the source gives %q", i, gotTx, want)
				}
			}
			t.Logf("%s: %s %s, balance %s, %d transactions, notes %v", filepath.Base(file), got["family"], got["card"],
				money.Format(int64(got["balance_fen"].(float64))), len(txs), got["notes"])
		})
	}
}
