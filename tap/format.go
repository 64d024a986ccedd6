package tap

import (
	"fmt"

	"github.com/cardd/cardd/apdu/epurse"
	"github.com/cardd/cardd/money"
)

// SignedAmount is the record's amount as it changed the balance: loads
// positive, everything else negative. Only 01 and 02 add money to a PBOC
// purse; purchases, composite purchases and unloads take it, so an issuer's
// unknown type is taken for a debit rather than shown as money received.
func SignedAmount(l epurse.LogRecord) int64 {
	if l.Type == epurse.TxEDLoad || l.Type == epurse.TxEPLoad {
		return l.Amount
	}
	return -l.Amount
}

// FormatLogRecord renders one transaction as a single line for logs:
// "2026-11-20 12:01:02 EP purchase -12.50 at 001122334455 #12".
func FormatLogRecord(l epurse.LogRecord) string {
	return fmt.Sprintf("%s %s %s at %X #%d", l.Time.Format("2006-01-02 15:04:05"), l.Type, money.Format(SignedAmount(l)), l.TerminalID[:], l.Counter)
}
