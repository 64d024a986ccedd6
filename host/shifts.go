package host

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cardd/cardd/hostapi"
)

// A terminal's closed shift (班结) arrives once it is closed (POST
// /v1/shift) and is stored once per terminal and shift id: the same copy
// again is acknowledged, another one refused 409 shift_differs (a closed
// shift never changes). The host does not take the totals on trust: each
// shift names the journal rows it counted, and Shifts checks the totals
// against those rows as the host holds them (ShiftCheck).

// maxShiftRows bounds the rows one shift names: a busy window sells a few
// thousand meals in a shift.
const maxShiftRows = 20000

// Shift check states.
const (
	// ShiftOK: every row the shift counted is at the host, a purchase
	// done, and they add up to the shift's count and sum.
	ShiftOK = "ok"
	// ShiftPending: some of its rows have not reached the host yet.
	ShiftPending = "pending"
	// ShiftMismatch: the rows the host holds do not add up to the
	// shift's totals, or one is not a purchase done: a person must look.
	ShiftMismatch = "mismatch"
)

// ShiftCheck is how a shift's totals compare with the journal rows the
// host holds.
type ShiftCheck struct {
	State string `json:"state"` // Shift* constant
	// Rows is how many rows the shift counted; Held how many of them the
	// host holds; Count and SumFen the purchases done among those.
	Rows   int   `json:"rows"`
	Held   int   `json:"held"`
	Count  int   `json:"count"`
	SumFen int64 `json:"sum_fen"`
}

// Shift is a terminal's closed shift as stored, with its check.
type Shift struct {
	Terminal string               `json:"terminal"`
	Received string               `json:"received"` // RFC 3339
	Summary  hostapi.ShiftRequest `json:"summary"`
	Check    ShiftCheck           `json:"check"`
}

// checkShift refuses a shift that does not hold together: its groups must
// add up to its count and sum, and its rows be the terminal's, one per
// sale counted.
func checkShift(term string, req hostapi.ShiftRequest) error {
	if req.Shift <= 0 {
		return badRequest("shift %d: want the terminal's shift id, above 0", req.Shift)
	}
	if err := hostapi.CheckCashier(req.Cashier); err != nil {
		return badRequest("%v: want 1 to 32 bytes of printable text without leading or trailing blanks", err)
	}
	opened, err1 := time.Parse(time.RFC3339Nano, req.Opened)
	closed, err2 := time.Parse(time.RFC3339Nano, req.Closed)
	if err1 != nil || err2 != nil || !closed.After(opened) {
		return badRequest("opened %q, closed %q: want RFC 3339 times, closed after opened", req.Opened, req.Closed)
	}
	for name, v := range map[string]int64{"count": int64(req.Count), "sum_fen": req.SumFen, "split_count": int64(req.SplitCount),
		"split_card_fen": req.SplitCardFen, "split_collect_fen": req.SplitCollectFen, "pin_count": int64(req.PINCount),
		"pin_fen": req.PINFen, "void_count": int64(req.VoidCount), "void_fen": req.VoidFen,
		"in_doubt_count": int64(req.InDoubtCount), "in_doubt_fen": req.InDoubtFen, "failed_count": int64(req.FailedCount)} {
		if v < 0 {
			return badRequest("%s %d: must not be negative", name, v)
		}
	}
	var n int
	var fen int64
	for _, g := range req.Groups {
		if g.Count <= 0 || g.SumFen < 0 {
			return badRequest("group %s/%s: count %d, sum %d fen", g.Period, g.Class, g.Count, g.SumFen)
		}
		n, fen = n+g.Count, fen+g.SumFen
	}
	if n != req.Count || fen != req.SumFen {
		return badRequest("groups add up to %d sales of %d fen, the shift says %d of %d", n, fen, req.Count, req.SumFen)
	}
	if len(req.Rows) != req.Count || len(req.Rows) > maxShiftRows {
		return badRequest("%d rows for %d sales (at most %d): want the id of each sale counted", len(req.Rows), req.Count, maxShiftRows)
	}
	seen := make(map[string]bool, len(req.Rows))
	for _, id := range req.Rows {
		if !strings.HasPrefix(id, term+"-") || seen[id] {
			return badRequest("row %q: want each of this terminal's journal row ids once", id)
		}
		seen[id] = true
	}
	return nil
}

func (h *Handler) shift(ctx context.Context, term string, body []byte, now time.Time) (any, error) {
	var req hostapi.ShiftRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	if err := checkShift(term, req); err != nil {
		return nil, err
	}
	stored, err := h.store.storeShift(ctx, term, req, now)
	if err != nil {
		return nil, err
	}
	if stored {
		h.log.Info("shift closed", "terminal", term, "shift", req.Shift, "cashier", req.Cashier, "count", req.Count, "sum_fen", req.SumFen,
			"in_doubt", req.InDoubtCount)
	}
	return hostapi.ShiftResponse{Shift: req.Shift}, nil
}

// storeShift stores a terminal's closed shift; stored is false when the
// host held it already, exactly so.
func (s *Store) storeShift(ctx context.Context, term string, req hostapi.ShiftRequest, now time.Time) (stored bool, err error) {
	body, err := json.Marshal(req)
	if err != nil {
		return false, err
	}
	err = s.inTerminalTx(ctx, term, func(tx *sql.Tx) error {
		stored = false
		var held string
		err := tx.QueryRowContext(ctx, `SELECT body FROM shifts WHERE terminal = ? AND shift = ?`, term, req.Shift).Scan(&held)
		switch {
		case err == nil && held == string(body):
			return nil
		case err == nil:
			return conflict(hostapi.CodeShiftDiffers, "shift %d of terminal %s is held with other totals; a closed shift never changes", req.Shift, term)
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO shifts (terminal, shift, cashier, opened, closed, count, sum_fen, body, received)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, term, req.Shift, req.Cashier, req.Opened, req.Closed, req.Count, req.SumFen,
			string(body), dbTime(now)); err != nil {
			return err
		}
		for _, id := range req.Rows {
			if _, err := tx.ExecContext(ctx, `INSERT INTO shift_rows (terminal, shift, row_id) VALUES (?, ?, ?)`, term, req.Shift, id); err != nil {
				return err
			}
		}
		stored = true
		return nil
	})
	return stored, err
}

// Shifts returns the closed shifts of terminal (every terminal's for ""),
// newest first, each checked against the journal rows the host holds now.
func (s *Store) Shifts(ctx context.Context, terminal string) ([]Shift, error) {
	q := `SELECT terminal, body, received FROM shifts`
	var args []any
	if terminal != "" {
		id, err := CanonicalTerminalID(terminal)
		if err != nil {
			return nil, err
		}
		q += ` WHERE terminal = ?`
		args = append(args, id)
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY closed DESC, terminal, shift DESC`, args...)
	if err != nil {
		return nil, err
	}
	var out []Shift
	for rows.Next() {
		var sh Shift
		var body string
		if err := rows.Scan(&sh.Terminal, &body, &sh.Received); err != nil {
			rows.Close()
			return nil, err
		}
		if err := json.Unmarshal([]byte(body), &sh.Summary); err != nil {
			rows.Close()
			return nil, fmt.Errorf("shift of terminal %s: %w", sh.Terminal, err)
		}
		sh.Received = rfc3339(sh.Received)
		out = append(out, sh)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range out {
		if out[i].Check, err = s.checkShiftRows(ctx, out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// checkShiftRows sums the journal rows the host holds of those sh counted.
// A row held unknown is one whose done copy has not arrived yet (the
// terminal counted it done): pending, like a row not held at all.
func (s *Store) checkShiftRows(ctx context.Context, sh Shift) (ShiftCheck, error) {
	c := ShiftCheck{Rows: len(sh.Summary.Rows)}
	var unknown int
	err := s.db.QueryRowContext(ctx, `SELECT count(j.id),
		coalesce(sum(CASE WHEN j.kind = 'purchase' AND j.state = 'done' THEN 1 ELSE 0 END), 0),
		coalesce(sum(CASE WHEN j.kind = 'purchase' AND j.state = 'done' THEN j.amount_fen ELSE 0 END), 0),
		coalesce(sum(CASE WHEN j.kind = 'purchase' AND j.state = 'unknown' THEN 1 ELSE 0 END), 0)
		FROM shift_rows r LEFT JOIN journal j ON j.terminal = r.terminal AND j.id = r.row_id
		WHERE r.terminal = ? AND r.shift = ?`, sh.Terminal, sh.Summary.Shift).Scan(&c.Held, &c.Count, &c.SumFen, &unknown)
	if err != nil {
		return c, fmt.Errorf("checking shift %d of terminal %s: %w", sh.Summary.Shift, sh.Terminal, err)
	}
	switch {
	case c.Held-c.Count-unknown > 0 || c.SumFen > sh.Summary.SumFen:
		// A row held that is not a sale (a failed one, another kind), or
		// more money than the shift says: no later upload can make these
		// add up.
		c.State = ShiftMismatch
	case c.Count < c.Rows:
		c.State = ShiftPending
	case c.SumFen == sh.Summary.SumFen && c.Count == sh.Summary.Count:
		c.State = ShiftOK
	default:
		c.State = ShiftMismatch
	}
	return c, nil
}
