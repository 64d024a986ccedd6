package offline

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cardd/cardd/hostapi"
)

// A shift (班) is a cashier's turn at the terminal: opened with the
// cashier's id, closed with a summary (班结) totalled from the journal. At
// most one is open at a time; every purchase row written while one is open
// records it (SaleFacts.Shift), so the close sums the rows of its own shift
// and nothing else, whatever the clock says.

var (
	// ErrShiftOpen refuses opening a shift while one is open.
	ErrShiftOpen = errors.New("a shift is already open")
	// ErrNoShift refuses closing when no shift is open.
	ErrNoShift = errors.New("no shift is open")
)

// Shift is a cashier's shift.
type Shift struct {
	ID      int64
	Cashier string
	Opened  time.Time
	// Closed is the zero time while the shift is open.
	Closed time.Time
	// Summary is the close's totals (nil while open).
	Summary *ShiftSummary
	// Rows are, for a closed shift, the ids of the journal rows counted in
	// its summary's Count and SumFen.
	Rows []string
	// Uploaded is whether the host acknowledged the closed shift (or
	// refused it for good: Refused says why).
	Uploaded bool
	Refused  string
}

// ShiftGroup is the sales of one meal period and identity class: Period
// "" for sales outside every period (or a terminal without them), Class ""
// for a card of no class.
type ShiftGroup = hostapi.ShiftGroup

// ShiftSummary is a shift's close-out, totalled from the journal rows of
// the shift (hostapi.ShiftTotals). Sales are purchase rows done (the card
// paid); groups are ordered by period then class. The sales in doubt are
// the shift's rows whose outcome only the card can tell (unknown, or in
// flight at the close): said on the receipt rather than left out
// silently.
type ShiftSummary struct {
	Shift   int64     `json:"shift"`
	Cashier string    `json:"cashier"`
	Opened  time.Time `json:"opened"`
	Closed  time.Time `json:"closed"`
	hostapi.ShiftTotals
}

// VoidTotals gives the count and sum of the voids made in [from, to): the
// close-out's voids line. The voids live in their own table; nil counts
// none.
type VoidTotals func(ctx context.Context, from, to time.Time) (count int, sumFen int64, err error)

// CloseOptions says how CloseShift completes the summary and what it queues.
type CloseOptions struct {
	// Voids, when set, gives the shift's voids. It is called inside the
	// close, holding the store's one writer: it may read, never write.
	Voids VoidTotals
	// Receipt, when set, makes the summary's receipt, queued for printing
	// in the close's own transaction: a closed shift never lacks its
	// receipt, and a failed close queues none.
	Receipt func(ShiftSummary) (NewReceipt, error)
}

// CheckCashier refuses a cashier id that is empty, too long, or not
// printable text (hostapi.CheckCashier): it is printed on the receipt and
// sent to the host.
func CheckCashier(id string) error { return hostapi.CheckCashier(id) }

// OpenShift opens a shift for cashier; ErrShiftOpen when one is open.
func (s *Store) OpenShift(ctx context.Context, cashier string) (Shift, error) {
	if err := CheckCashier(cashier); err != nil {
		return Shift{}, fmt.Errorf("offline: open shift: %w", err)
	}
	// As stored: no monotonic reading, Unix nanoseconds.
	sh := Shift{Cashier: cashier, Opened: time.Unix(0, s.now().UnixNano())}
	err := s.write(ctx, "open shift", func(tx *sql.Tx) error {
		cur, ok, err := openShift(ctx, tx)
		if err != nil {
			return err
		}
		if ok {
			return fmt.Errorf("%w: shift %d of cashier %s since %s", ErrShiftOpen, cur.ID, cur.Cashier, cur.Opened.Format(time.RFC3339))
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO shifts (cashier, opened) VALUES (?, ?)`, cashier, sh.Opened.UnixNano())
		if err != nil {
			return err
		}
		sh.ID, err = res.LastInsertId()
		return err
	})
	if err != nil {
		return Shift{}, err
	}
	return sh, nil
}

// CurrentShift returns the open shift; ok is false when none is.
func (s *Store) CurrentShift(ctx context.Context) (sh Shift, ok bool, err error) {
	sh, ok, err = openShift(ctx, s.db)
	if err != nil {
		return Shift{}, false, fmt.Errorf("offline: current shift: %w", err)
	}
	return sh, ok, nil
}

const shiftCols = `id, cashier, opened, closed, summary, rows, uploaded, refused`

func scanShift(sc scanner) (Shift, error) {
	var (
		sh             Shift
		opened, closed int64
		summary        []byte
		rows           string
	)
	if err := sc.Scan(&sh.ID, &sh.Cashier, &opened, &closed, &summary, &rows, &sh.Uploaded, &sh.Refused); err != nil {
		return Shift{}, err
	}
	if err := json.Unmarshal([]byte(rows), &sh.Rows); err != nil {
		return Shift{}, fmt.Errorf("shift %d: rows: %w", sh.ID, err)
	}
	sh.Opened = time.Unix(0, opened)
	if closed > 0 {
		sh.Closed = time.Unix(0, closed)
	}
	if len(summary) > 0 {
		sh.Summary = new(ShiftSummary)
		if err := json.Unmarshal(summary, sh.Summary); err != nil {
			return Shift{}, fmt.Errorf("shift %d: summary: %w", sh.ID, err)
		}
	}
	return sh, nil
}

func openShift(ctx context.Context, q querier) (Shift, bool, error) {
	sh, err := scanShift(q.QueryRowContext(ctx, `SELECT `+shiftCols+` FROM shifts WHERE closed = 0`))
	if errors.Is(err, sql.ErrNoRows) {
		return Shift{}, false, nil
	}
	return sh, err == nil, err
}

// CloseShift closes the open shift (ErrNoShift when none is): in one
// transaction it totals the shift's purchase rows, records the shift
// closed with its summary (owed to the host from then on), and queues the
// summary's receipt. Rows of the shift still in doubt are counted as such,
// and keep their shift: settled later, they change the journal, not the
// closed shift's summary.
func (s *Store) CloseShift(ctx context.Context, opt CloseOptions) (ShiftSummary, error) {
	cur, ok, err := s.CurrentShift(ctx)
	if err != nil {
		return ShiftSummary{}, err
	}
	if !ok {
		return ShiftSummary{}, fmt.Errorf("offline: close shift: %w", ErrNoShift)
	}
	var sum ShiftSummary
	err = s.write(ctx, fmt.Sprintf("close shift %d", cur.ID), func(tx *sql.Tx) error {
		again, ok, err := openShift(ctx, tx)
		if err != nil {
			return err
		}
		if !ok || again.ID != cur.ID {
			return fmt.Errorf("%w: shift %d was closed meanwhile", ErrNoShift, cur.ID)
		}
		// The close time and the voids are taken holding the one writer:
		// a void (stamped and committed by a writer too) is then either
		// before the close and counted, or after it; none stamped within
		// the shift can commit after the voids were read.
		closed := time.Unix(0, s.now().UnixNano())
		if !closed.After(cur.Opened) {
			closed = cur.Opened.Add(time.Nanosecond) // closed = 0 means open
		}
		var voids struct {
			n   int
			fen int64
		}
		if opt.Voids != nil {
			// Through the voids' own code, on another connection: it sees
			// what the writers before this one committed.
			if voids.n, voids.fen, err = opt.Voids(ctx, cur.Opened, closed); err != nil {
				return fmt.Errorf("voids: %w", err)
			}
		}
		if sum, err = shiftTotals(ctx, tx, cur); err != nil {
			return err
		}
		sum.Closed = closed
		sum.VoidCount, sum.VoidFen = voids.n, voids.fen
		body, err := json.Marshal(sum)
		if err != nil {
			return err
		}
		ids, err := shiftRowIDs(ctx, tx, cur.ID)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE shifts SET closed = ?, count = ?, sum_fen = ?, summary = ?, rows = ? WHERE id = ?`,
			closed.UnixNano(), sum.Count, sum.SumFen, body, ids, cur.ID); err != nil {
			return err
		}
		if opt.Receipt == nil {
			return nil
		}
		r, err := opt.Receipt(sum)
		if err == nil {
			err = r.check()
		}
		if err != nil {
			return fmt.Errorf("summary receipt: %w", err)
		}
		return insertReceipt(ctx, tx, 0, false, r, closed.UnixNano())
	})
	if err != nil {
		return ShiftSummary{}, err
	}
	return sum, nil
}

// shiftTotals sums the purchase rows of shift sh.
func shiftTotals(ctx context.Context, q querier, sh Shift) (ShiftSummary, error) {
	sum := ShiftSummary{Shift: sh.ID, Cashier: sh.Cashier, Opened: sh.Opened, ShiftTotals: hostapi.ShiftTotals{Groups: []ShiftGroup{}}}
	rows, err := q.QueryContext(ctx, `SELECT period, class, count(*), coalesce(sum(amount_fen), 0) FROM journal
		WHERE kind = 'purchase' AND shift = ? AND shift > 0 AND state = 'done' GROUP BY period, class ORDER BY period, class`, sh.ID)
	if err != nil {
		return sum, err
	}
	defer rows.Close()
	for rows.Next() {
		var g ShiftGroup
		if err := rows.Scan(&g.Period, &g.Class, &g.Count, &g.SumFen); err != nil {
			return sum, err
		}
		sum.Groups = append(sum.Groups, g)
		sum.Count += g.Count
		sum.SumFen += g.SumFen
	}
	if err := rows.Err(); err != nil {
		return sum, err
	}
	err = q.QueryRowContext(ctx, `SELECT
		coalesce(sum(state = 'done' AND collect_fen > 0), 0),
		coalesce(sum(CASE WHEN state = 'done' AND collect_fen > 0 THEN amount_fen END), 0),
		coalesce(sum(CASE WHEN state = 'done' THEN collect_fen END), 0),
		coalesce(sum(state = 'done' AND pin_verified = 1), 0),
		coalesce(sum(CASE WHEN state = 'done' AND pin_verified = 1 THEN amount_fen END), 0),
		coalesce(sum(state IN ('intent', 'unknown')), 0),
		coalesce(sum(CASE WHEN state IN ('intent', 'unknown') THEN amount_fen END), 0),
		coalesce(sum(state = 'failed'), 0)
		FROM journal WHERE kind = 'purchase' AND shift = ? AND shift > 0`, sh.ID).Scan(
		&sum.SplitCount, &sum.SplitCardFen, &sum.SplitCollectFen, &sum.PINCount, &sum.PINFen,
		&sum.InDoubtCount, &sum.InDoubtFen, &sum.FailedCount)
	return sum, err
}

// shiftRowIDs are the ids of the rows shiftTotals counts in Count and
// SumFen, as a JSON list.
func shiftRowIDs(ctx context.Context, q querier, shift int64) (string, error) {
	rows, err := q.QueryContext(ctx, `SELECT terminal, seq FROM journal
		WHERE kind = 'purchase' AND shift = ? AND shift > 0 AND state = 'done' ORDER BY seq`, shift)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	ids := []string{}
	for rows.Next() {
		var term string
		var seq int64
		if err := rows.Scan(&term, &seq); err != nil {
			return "", err
		}
		ids = append(ids, rowID(term, seq))
	}
	if err := rows.Err(); err != nil {
		return "", err
	}
	b, err := json.Marshal(ids)
	return string(b), err
}

// ShiftTotals is the summary shift id would close with now, voids left
// out: what the shift's journal rows add up to. It reads, in one
// transaction, and changes nothing.
func (s *Store) ShiftTotals(ctx context.Context, id int64) (ShiftSummary, error) {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return ShiftSummary{}, fmt.Errorf("offline: totals of shift %d: %w", id, err)
	}
	defer tx.Rollback()
	sh, err := scanShift(tx.QueryRowContext(ctx, `SELECT `+shiftCols+` FROM shifts WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return ShiftSummary{}, fmt.Errorf("offline: totals of shift %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return ShiftSummary{}, fmt.Errorf("offline: totals of shift %d: %w", id, err)
	}
	sum, err := shiftTotals(ctx, tx, sh)
	if err != nil {
		return ShiftSummary{}, fmt.Errorf("offline: totals of shift %d: %w", id, err)
	}
	sum.Closed = sh.Closed
	return sum, nil
}

// Shifts returns up to limit shifts, newest first.
func (s *Store) Shifts(ctx context.Context, limit int) ([]Shift, error) {
	if err := checkLimit(limit); err != nil {
		return nil, fmt.Errorf("offline: shifts: %w", err)
	}
	return s.queryShifts(ctx, `SELECT `+shiftCols+` FROM shifts ORDER BY id DESC LIMIT ?`, limit)
}

// UnsentShifts returns up to limit closed shifts the host has not
// acknowledged, oldest first: the shift outbox.
func (s *Store) UnsentShifts(ctx context.Context, limit int) ([]Shift, error) {
	if err := checkLimit(limit); err != nil {
		return nil, fmt.Errorf("offline: unsent shifts: %w", err)
	}
	return s.queryShifts(ctx, `SELECT `+shiftCols+` FROM shifts WHERE closed > 0 AND uploaded = 0 ORDER BY id LIMIT ?`, limit)
}

func (s *Store) queryShifts(ctx context.Context, query string, args ...any) ([]Shift, error) {
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("offline: shifts: %w", err)
	}
	defer rows.Close()
	var out []Shift
	for rows.Next() {
		sh, err := scanShift(rows)
		if err != nil {
			return nil, fmt.Errorf("offline: shifts: %w", err)
		}
		out = append(out, sh)
	}
	return out, rows.Err()
}

// ShiftUploaded records that the host stored closed shift id. Repeating it
// is a no-op.
func (s *Store) ShiftUploaded(ctx context.Context, id int64) error {
	return s.shiftSent(ctx, id, "")
}

// ShiftRefused records that the host refused closed shift id for good
// (its answer would not change): it is kept, with the reason, and not sent
// again.
func (s *Store) ShiftRefused(ctx context.Context, id int64, reason string) error {
	if reason == "" {
		reason = "refused"
	}
	return s.shiftSent(ctx, id, reason)
}

func (s *Store) shiftSent(ctx context.Context, id int64, refused string) error {
	return s.write(ctx, fmt.Sprintf("mark shift %d sent", id), func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE shifts SET uploaded = 1, refused = ? WHERE id = ? AND closed > 0`, refused, id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return fmt.Errorf("%w: no closed shift %d", ErrNotFound, id)
		}
		return nil
	})
}
