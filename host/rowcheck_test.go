package host

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cardd/cardd/hostapi"
)

// TestJournalRowChecksInOrder pins which reason a row with several bad
// fields is refused with: the first in the order rowChecker checks them.
// The row is broken in every field, then mended one field at a time, first
// to last, and uploaded each time.
func TestJournalRowChecksInOrder(t *testing.T) { eachStore(t, testJournalRowChecksInOrder) }

func testJournalRowChecksInOrder(t *testing.T) {
	e := newEnv(t, Options{})
	good := hostapi.JournalRow{ID: testTerm + "-1", Kind: "load", State: "done", Card: testNumber, Purse: "EP", Counter: 3,
		BalanceFen: 10000, AmountFen: 500, CreditID: "cr-1", TAC: "00FF00FF", Time: time.Now().Add(-time.Hour).Format(time.RFC3339)}
	longCredit := strings.Repeat("c", maxJournalIDLen+1)
	steps := []struct {
		break_ func(*hostapi.JournalRow)
		reason string
	}{
		{func(r *hostapi.JournalRow) { r.ID = "" }, "empty id"},
		{func(r *hostapi.JournalRow) { r.Kind = "refund" }, `kind "refund": want read, load, purchase, access or recovery`},
		{func(r *hostapi.JournalRow) { r.State = "intent" }, `state "intent": want done, failed or unknown (a row in intent stays at the terminal)`},
		{func(r *hostapi.JournalRow) { r.Card = "3101x00000123456" }, "card 3101********3456: "},
		{func(r *hostapi.JournalRow) { r.Purse = "XX" }, `purse "XX": want EP, ED, M1 or none`},
		{func(r *hostapi.JournalRow) { r.AmountFen = -1 }, "amount_fen -1: want 0 to 10000000 fen (100000.00)"},
		{func(r *hostapi.JournalRow) { r.BalanceFen = -1 }, "balance_fen -1: want 0 to 10000000 fen (100000.00)"},
		{func(r *hostapi.JournalRow) { r.CreditID = longCredit }, "credit_id of 129 characters, at most 128"},
		{func(r *hostapi.JournalRow) { r.Detail = strings.Repeat("x", maxJournalTextLen+1) }, "detail of 4097 bytes, at most 4096"},
		{func(r *hostapi.JournalRow) { r.TermSerial = 9 }, "term_serial 9: only a purchase has one"},
		{func(r *hostapi.JournalRow) { r.TAC = "00ff00ff" }, `tac "00ff00ff": want 4 bytes as 8 upper-case hex digits`},
		{func(r *hostapi.JournalRow) { r.Time = "yesterday" }, `time "yesterday": want RFC 3339, like 2026-12-03T09:30:00+08:00`},
	}
	row := good
	for _, s := range steps {
		s.break_(&row)
	}
	for i, s := range steps {
		resp := e.upload(row)
		if len(resp.Refused) != 1 || resp.Refused[0].Status != http.StatusBadRequest || resp.Refused[0].Code != hostapi.CodeBadRow ||
			!strings.HasPrefix(resp.Refused[0].Reason, s.reason) {
			t.Errorf("with fields %d.. broken: %+v, want 400 bad_row %q", i, resp, s.reason)
		}
		row = good
		for _, later := range steps[i+1:] {
			later.break_(&row)
		}
	}
	if resp := e.upload(row); len(resp.Acked) != 1 {
		t.Fatalf("the mended row: %+v", resp)
	}
}
