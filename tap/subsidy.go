package tap

import (
	"fmt"
	"strings"
	"time"

	"github.com/cardd/cardd/apdu/epurse"
	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/offline"
)

// A subsidy (补助) is a credit the host bound to one purse and a pick-up
// window (hostapi.Credit). The tap loads it onto that purse, which may be
// another than the one it read (an ED subsidy on a terminal that reads the
// EP): INITIALIZE FOR LOAD names the purse, and the write-ahead row, the
// host's MAC2 and the recovery from the card's counter all go by that
// purse, as for any load.

// subsidyWaits says why credit c is not loaded now by the terminal's
// clock: a subsidy before its window or from its expiry on. "" when it may
// be loaded (the host checks again by its own clock).
func subsidyWaits(c hostapi.Credit, now time.Time) string {
	if c.Kind != hostapi.CreditSubsidy {
		return ""
	}
	if t, err := time.Parse(time.RFC3339, c.NotBefore); err == nil && now.Before(t) {
		return fmt.Sprintf("subsidy %s can be picked up from %s", c.Subsidy, t.Local().Format("2006-01-02 15:04"))
	}
	if t, err := time.Parse(time.RFC3339, c.Expires); err == nil && !now.Before(t) {
		return fmt.Sprintf("subsidy %s expired at %s", c.Subsidy, t.Local().Format("2006-01-02 15:04"))
	}
	return ""
}

// loadPurse is the purse credit c is loaded onto: a subsidy's own, else
// read, the purse the tap read.
func loadPurse(c hostapi.Credit, read epurse.Purse) (epurse.Purse, error) {
	switch c.Purse {
	case "":
		return read, nil
	case "EP":
		return epurse.PurseEP, nil
	case "ED":
		return epurse.PurseED, nil
	}
	return read, fmt.Errorf("credit %s names purse %q: want EP or ED", c.ID, c.Purse)
}

// rowPurse is the purse a load row was made on; read for a row that
// names none.
func rowPurse(row offline.Row, read epurse.Purse) epurse.Purse {
	switch row.Purse {
	case "EP":
		return epurse.PurseEP
	case "ED":
		return epurse.PurseED
	}
	return read
}

// subsidyHead starts the note a subsidy's load row carries in its detail,
// so that its receipt and the host's journal name it.
const subsidyHead = "subsidy="

// SubsidyOf reads the batch a load row's detail names; ok is false for a
// row of a credit that is no subsidy.
func SubsidyOf(row offline.Row) (batch string, ok bool) {
	i := strings.Index(row.Detail, subsidyHead)
	if row.Kind != offline.KindLoad || i < 0 {
		return "", false
	}
	batch, _, _ = strings.Cut(row.Detail[i+len(subsidyHead):], ";")
	return batch, batch != ""
}

// subsidyNote is the detail a load row of credit c starts with.
func subsidyNote(c hostapi.Credit) string {
	if c.Kind != hostapi.CreditSubsidy || c.Subsidy == "" {
		return ""
	}
	return subsidyHead + c.Subsidy
}

// withSubsidy keeps a subsidy row's note in a detail that replaces the
// row's, after it.
func withSubsidy(row offline.Row, detail string) string {
	b, ok := SubsidyOf(row)
	if !ok || detail == "" || strings.Contains(detail, subsidyHead) {
		return detail
	}
	return detail + "; " + subsidyHead + b
}
