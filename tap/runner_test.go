package tap

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/cardd/cardd/apdu"
	"github.com/cardd/cardd/apdu/epurse"
	epursesim "github.com/cardd/cardd/apdu/epurse/sim"
	"github.com/cardd/cardd/reader"
)

func TestResultOutcome(t *testing.T) {
	sw := func(s uint16) error { return fmt.Errorf("select AID A000000003869807: %w", &apdu.StatusError{SW: s}) }
	for _, tc := range []struct {
		name string
		err  error
		want Outcome
	}{
		{"no error", nil, OutcomeOK},
		{"card removed, wrapped", fmt.Errorf("get EP balance: %w", reader.ErrCardRemoved), OutcomeRemoved},
		{"card removed, reader.Error", fmt.Errorf("read record 1: %w", &reader.Error{Op: "transmit", Reader: "r", Kind: reader.ErrCardRemoved, Err: errors.New("removed")}), OutcomeRemoved},
		{"tap timeout", fmt.Errorf("read EF 0x16: %w", ErrTapTimeout), OutcomeTimeout},
		{"PSAM call abandoned at the deadline", fmt.Errorf("PSAM: %w", &reader.Error{Op: "transmit", Reader: "r", Err: context.DeadlineExceeded}), OutcomeTimeout},
		{"stopped mid-tap", &reader.Error{Op: "transmit", Reader: "r", Err: context.Canceled}, OutcomeStopped},
		{"reader busy", &reader.Error{Op: "connect", Reader: "r", Kind: reader.ErrReaderBusy, Err: errors.New("abandoned")}, OutcomeReaderBusy},
		{"6283 invalidated", sw(0x6283), OutcomeBlocked},
		{"9303 locked", sw(0x9303), OutcomeBlocked},
		{"6A81 blocked", sw(0x6A81), OutcomeBlocked},
		{"6A82 not found", sw(0x6A82), OutcomeNotEPurse},
		{"no pcscd", &reader.Error{Op: "connect", Kind: reader.ErrNoService, Err: errors.New("no service")}, OutcomeNoService},
		{"no pcscd, plain", reader.ErrNoService, OutcomeNoService},
		{"reader gone", fmt.Errorf("open: %w", reader.ErrReaderGone), OutcomeReaderGone},
		{"MAC2 refused by the PSAM, sale paid", fmt.Errorf("%w (journal row j): %v", ErrMAC2Refused, context.DeadlineExceeded), OutcomeMAC2Alarm},
		{"DEBIT unanswered, card gone", fmt.Errorf("%w (journal row j): %w", ErrSaleInDoubt, reader.ErrCardRemoved), OutcomeSaleInDoubt},
		{"DEBIT unanswered at the deadline", fmt.Errorf("%w (journal row j): %w", ErrSaleInDoubt, ErrTapTimeout), OutcomeSaleInDoubt},
		{"other status word", sw(0x6985), OutcomeCardFailure},
		{"status word without a name", sw(0x6F00), OutcomeCardFailure},
		{"malformed answer", fmt.Errorf("get EP balance: %w", apdu.ErrMalformed), OutcomeCardFailure},
		{"anything else", errors.New("boom"), OutcomeCardFailure},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := (Result{Err: tc.err}).Outcome(); got != tc.want {
				t.Errorf("Outcome of %v = %q, want %q", tc.err, got, tc.want)
			}
		})
	}
}

func TestSignedAmount(t *testing.T) {
	for _, tc := range []struct {
		typ  epurse.TxType
		want int64
	}{
		{epurse.TxEDLoad, 1250},
		{epurse.TxEPLoad, 1250},
		{epurse.TxEDPurchase, -1250},
		{epurse.TxEPPurchase, -1250},
		{epurse.TxComposite, -1250},
	} {
		if got := SignedAmount(epurse.LogRecord{Type: tc.typ, Amount: 1250}); got != tc.want {
			t.Errorf("SignedAmount(%v of 1250) = %d, want %d", tc.typ, got, tc.want)
		}
	}
}

func TestFormatLogRecord(t *testing.T) {
	when := time.Date(2026, 11, 20, 12, 1, 2, 0, time.UTC)
	term := [6]byte{0x00, 0x11, 0x22, 0x33, 0x44, 0x55}
	for _, tc := range []struct {
		rec  epurse.LogRecord
		want string
	}{
		{epurse.LogRecord{Counter: 12, Amount: 1250, Type: epurse.TxEPPurchase, TerminalID: term, Time: when},
			"2026-11-20 12:01:02 EP purchase -12.50 at 001122334455 #12"},
		{epurse.LogRecord{Counter: 3, Amount: 5000, Type: epurse.TxEPLoad, TerminalID: term, Time: when},
			"2026-11-20 12:01:02 EP load 50.00 at 001122334455 #3"},
		{epurse.LogRecord{Counter: 0, Amount: 5, Type: epurse.TxEDPurchase, TerminalID: [6]byte{0xAB, 0xCD, 0xEF, 0, 0, 1}, Time: when},
			"2026-11-20 12:01:02 ED purchase -0.05 at ABCDEF000001 #0"},
	} {
		if got := FormatLogRecord(tc.rec); got != tc.want {
			t.Errorf("FormatLogRecord = %q, want %q", got, tc.want)
		}
	}
}

// captureLogger returns a Runner logging JSON into a buffer, without the
// time attribute (the line must not depend on the clock).
func captureRunner() (*Runner, *bytes.Buffer) {
	var buf bytes.Buffer
	h := slog.NewJSONHandler(&buf, &slog.HandlerOptions{
		Level: slog.LevelDebug,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	})
	return &Runner{Logger: slog.New(h)}, &buf
}

// oneLine parses the single JSON line in buf.
func oneLine(t *testing.T, buf *bytes.Buffer) (string, map[string]any) {
	t.Helper()
	line := buf.String()
	if strings.Count(line, "\n") != 1 || !strings.HasSuffix(line, "\n") {
		t.Fatalf("want exactly one log line, got %q", line)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		t.Fatalf("log line %q is not JSON: %v", line, err)
	}
	return line, m
}

// secrets are the strings that must never reach a log line about card f:
// the issuer master keys, the card's own diversified keys (hex, either case)
// and its PIN, and the full card number.
func secrets(f *epursesim.CardFile) []string {
	var s []string
	for _, k := range []epurse.Key16{
		testMasters.DLK, testMasters.DPK, testMasters.DTK,
		f.Keys.DLK, f.Keys.DPK, f.Keys.DTK,
	} {
		h := hex.EncodeToString(k[:])
		// Half a key is already too much; 8 bytes of hex are unique enough.
		s = append(s, h, strings.ToUpper(h), h[:16], strings.ToUpper(h[:16]), h[16:], strings.ToUpper(h[16:]))
	}
	return append(s, f.PIN, f.Info.CardNumber)
}

func TestLogTapLine(t *testing.T) {
	when := time.Date(2026, 11, 20, 12, 1, 2, 0, time.UTC)
	card := newTestCard(t, "张三", 0, func(f *epursesim.CardFile) {
		f.Log = []epurse.LogRecord{
			{Counter: 12, Amount: 1250, Type: epurse.TxEPPurchase, TerminalID: [6]byte{0x00, 0x11, 0x22, 0x33, 0x44, 0x55}, Time: when},
			{Counter: 3, Amount: 5000, Type: epurse.TxEPLoad, TerminalID: [6]byte{0x00, 0x00, 0x00, 0x00, 0x10, 0x01}, Time: when.Add(-time.Hour)},
		}
	})
	f := card.File()
	if f.PIN != "123456" {
		t.Fatalf("card PIN %q, want the factory 123456 this test looks for", f.PIN)
	}
	read, err := ReadPurse(card, ReadOptions{History: true}, nil)
	if err != nil {
		t.Fatalf("ReadPurse: %v", err)
	}
	r, buf := captureRunner()
	r.logTap(Result{Reader: "ACS ACR122U 00 00", Read: read, ToBalance: 12 * time.Millisecond, ToDone: 40 * time.Millisecond})
	line, m := oneLine(t, buf)

	for key, want := range map[string]any{
		"level":         "INFO",
		"msg":           "tap",
		"reader":        "ACS ACR122U 00 00",
		"outcome":       "ok",
		"card":          "3101********3456",
		"holder":        "张三",
		"valid_from":    "2025-09-01",
		"valid_to":      "2029-08-31",
		"purse":         "EP",
		"balance":       "123.45",
		"apdus":         float64(6), // SELECT, GET BALANCE, EF 0x16, 2 records, 6A83
		"balance_apdus": float64(2),
		"balance_ms":    float64(12),
		"ms":            float64(40),
	} {
		if m[key] != want {
			t.Errorf("%s = %#v, want %#v", key, m[key], want)
		}
	}
	txs, _ := m["transactions"].([]any)
	wantTxs := []string{
		"2026-11-20 12:01:02 EP purchase -12.50 at 001122334455 #12",
		"2026-11-20 11:01:02 EP load 50.00 at 000000001001 #3",
	}
	if len(txs) != len(wantTxs) {
		t.Fatalf("transactions %v, want %q", m["transactions"], wantTxs)
	}
	for i := range txs {
		if txs[i] != wantTxs[i] {
			t.Errorf("transaction %d = %v, want %q", i, txs[i], wantTxs[i])
		}
	}
	for _, s := range secrets(f) {
		if strings.Contains(line, s) {
			t.Errorf("log line holds secret %q: %s", s, line)
		}
	}
	for _, key := range []string{"pin", "keys", "dlk", "dpk", "dtk", "app_serial"} {
		if strings.Contains(strings.ToLower(line), `"`+key+`"`) {
			t.Errorf("log line has a %q field: %s", key, line)
		}
	}
}

func TestLogTapLineOnError(t *testing.T) {
	card := newTestCard(t, "张三", 0, nil)
	f := card.File()
	for _, tc := range []struct {
		name    string
		err     error
		outcome string
	}{
		{"removed", fmt.Errorf("get EP balance: %w", &reader.Error{Op: "transmit", Reader: "r", Kind: reader.ErrCardRemoved, Err: errors.New("removed")}), string(OutcomeRemoved)},
		{"blocked", fmt.Errorf("select AID A000000003869807: %w", &apdu.StatusError{SW: 0x6283}), string(OutcomeBlocked)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, buf := captureRunner()
			r.logTap(Result{Reader: "r", Err: tc.err, ToDone: 7 * time.Millisecond})
			line, m := oneLine(t, buf)
			if m["level"] != "WARN" || m["outcome"] != tc.outcome || m["err"] != tc.err.Error() || m["ms"] != float64(7) {
				t.Errorf("line %s: want WARN, outcome %s, err %q, ms 7", line, tc.outcome, tc.err)
			}
			if _, ok := m["card"]; ok {
				t.Errorf("failed tap logs a card field: %s", line)
			}
			for _, s := range secrets(f) {
				if strings.Contains(line, s) {
					t.Errorf("log line holds secret %q: %s", s, line)
				}
			}
		})
	}
}

// TestLogTapLoadThenPay: a POS tap that loads and then pays logs each
// balance after once, under its own key: balance_after is what the card
// holds at the end.
func TestLogTapLoadThenPay(t *testing.T) {
	card := newTestCard(t, "张三", 0, nil)
	read, err := ReadPurse(card, ReadOptions{}, nil)
	if err != nil {
		t.Fatalf("ReadPurse: %v", err)
	}
	r, buf := captureRunner()
	r.logTap(Result{Reader: "r", Read: read, Load: &LoadReport{Balance: 4560}, Purchase: &PurchaseReport{Balance: 4060}})
	line, m := oneLine(t, buf)
	if n := strings.Count(line, `"balance_after":`); n != 1 {
		t.Fatalf("balance_after %d times in %s", n, line)
	}
	if m["balance_after"] != "40.60" || m["balance_after_load"] != "45.60" {
		t.Fatalf("balance_after %v, balance_after_load %v; want 40.60 and 45.60", m["balance_after"], m["balance_after_load"])
	}
}
