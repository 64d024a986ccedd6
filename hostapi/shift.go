package hostapi

import (
	"errors"
	"fmt"
	"strings"
)

// PathShift takes a cashier's closed shift (班结) from a terminal.
const PathShift = "/v1/shift"

// CodeShiftDiffers (409): the host holds this terminal's shift id with
// other totals. A closed shift never changes, so the copy is not taken.
const CodeShiftDiffers = "shift_differs"

// ShiftGroup is the sales of one meal period and identity class in a
// shift.
type ShiftGroup struct {
	Period string `json:"period"`
	Class  string `json:"class"`
	Count  int    `json:"count"`
	SumFen int64  `json:"sum_fen"`
}

// ShiftTotals are a shift's sales as the terminal totalled them from its
// journal: those the cards paid (Count, SumFen; per meal period and class
// in Groups), split sales (the cards' part, in SumFen, and the rest
// collected by other means, not in it), PIN overrides, voids, and the
// sales in doubt and failed, which are not in SumFen.
type ShiftTotals struct {
	Count           int          `json:"count"`
	SumFen          int64        `json:"sum_fen"`
	Groups          []ShiftGroup `json:"groups"`
	SplitCount      int          `json:"split_count"`
	SplitCardFen    int64        `json:"split_card_fen"`
	SplitCollectFen int64        `json:"split_collect_fen"`
	PINCount        int          `json:"pin_count"`
	PINFen          int64        `json:"pin_fen"`
	VoidCount       int          `json:"void_count"`
	VoidFen         int64        `json:"void_fen"`
	InDoubtCount    int          `json:"in_doubt_count"`
	InDoubtFen      int64        `json:"in_doubt_fen"`
	FailedCount     int          `json:"failed_count"`
}

// ShiftRequest is a closed shift as the terminal totalled it from its
// journal. Shift is the terminal's own id for it: with the terminal id it
// names the shift, so the same shift sent twice is stored once. Rows are
// the ids of the journal rows counted in Count and SumFen (the sales the
// cards paid), so the host can check the totals against the rows it holds.
type ShiftRequest struct {
	Shift   int64  `json:"shift"`
	Cashier string `json:"cashier"`
	Opened  string `json:"opened"` // RFC 3339
	Closed  string `json:"closed"` // RFC 3339
	ShiftTotals
	Rows []string `json:"rows"`
}

// ShiftResponse acknowledges a shift: stored now, or held already exactly
// so.
type ShiftResponse struct {
	Shift int64 `json:"shift"`
}

// CheckCashier refuses a cashier id that is empty, too long, or not
// printable text: it is printed on the close-out slip and by the host's
// shift list, so the terminal and the host hold it to the same rule.
func CheckCashier(id string) error {
	switch {
	case strings.TrimSpace(id) == "":
		return errors.New("cashier id: empty")
	case len(id) > 32:
		return fmt.Errorf("cashier id %q: at most 32 bytes", id)
	case strings.TrimSpace(id) != id:
		return fmt.Errorf("cashier id %q: leading or trailing blanks", id)
	}
	for _, r := range id {
		if r < 0x20 || r == 0x7f || r == '\uFFFD' {
			return fmt.Errorf("cashier id %q: control or invalid characters", id)
		}
	}
	return nil
}
