package tap

import (
	"fmt"

	"github.com/cardd/cardd/apdu/epurse"
	"github.com/cardd/cardd/money"
)

// PurseName is "EP" or "ED".
func PurseName(p epurse.Purse) string {
	if p == epurse.PurseED {
		return "ED"
	}
	return "EP"
}

// SignedAmount is the record's amount as it changed the balance: loads
// positive, purchases negative.
func SignedAmount(l epurse.LogRecord) int64 {
	switch l.Type {
	case epurse.TxEDPurchase, epurse.TxEPPurchase, epurse.TxComposite:
		return -l.Amount
	}
	return l.Amount
}

// FormatLogRecord renders one transaction as a single line for logs:
// "2026-11-20 12:01:02 EP purchase -12.50 at 001122334455 #12".
func FormatLogRecord(l epurse.LogRecord) string {
	return fmt.Sprintf("%s %s %s at %X #%d", l.Time.Format("2006-01-02 15:04:05"), l.Type, money.Format(SignedAmount(l)), l.TerminalID[:], l.Counter)
}
