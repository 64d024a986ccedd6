package offline

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Receipt states. A receipt moves queued → sending → printed, or back from
// sending to queued when the printer was not ready; sending → unknown only
// when the process died while sending.
const (
	// ReceiptQueued: waiting for the printer.
	ReceiptQueued = "queued"
	// ReceiptSending: being written to the printer; marked before the first
	// byte goes out, so a restart knows it may be on paper.
	ReceiptSending = "sending"
	// ReceiptPrinted: written, and the printer reported ready afterwards.
	ReceiptPrinted = "printed"
	// ReceiptUnknown: the process ended while sending. It may be on paper,
	// so it is not sent again by itself (a receipt is never printed twice);
	// a person who did not get it asks for a reprint, which is marked as a
	// copy.
	ReceiptUnknown = "unknown"
)

// NewReceipt is a receipt to queue: what it is and its facts, encoded by the
// caller (the printer renders them at print time, for the printer
// configured then).
type NewReceipt struct {
	Kind string // what the receipt is, e.g. "topup", "purchase", "test"
	Body []byte // the facts, opaque here (JSON from the printer package)
}

func (r NewReceipt) check() error {
	if r.Kind == "" || len(r.Body) == 0 {
		return errors.New("a receipt needs a kind and a body")
	}
	return nil
}

// Receipt is a queued or printed receipt.
type Receipt struct {
	ID int64
	// JournalID is the journal row the receipt belongs to ("" for a test
	// page); Copy is true for a reprint of it.
	JournalID string
	Copy      bool
	Kind      string
	Body      []byte
	State     string // Receipt* constant
	Attempts  int    // times it was handed to the printer
	LastError string // why the last attempt did not print it
	Created   time.Time
	Updated   time.Time
}

func insertReceipt(ctx context.Context, tx *sql.Tx, journalSeq int64, copy bool, r NewReceipt, now int64) error {
	var seq any
	if journalSeq > 0 {
		seq = journalSeq
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO receipts (journal_seq, copy, kind, body, state, created, updated)
		VALUES (?, ?, ?, ?, 'queued', ?, ?)`, seq, copy, r.Kind, r.Body, now, now)
	if err != nil {
		return fmt.Errorf("queue receipt: %w", err)
	}
	return nil
}

// QueueReceipt queues a receipt that belongs to no journal row, such as a
// test page, and returns its id.
func (s *Store) QueueReceipt(ctx context.Context, r NewReceipt) (int64, error) {
	if err := r.check(); err != nil {
		return 0, fmt.Errorf("offline: queue receipt: %w", err)
	}
	var id int64
	err := s.write(ctx, "queue receipt", func(tx *sql.Tx) error {
		now := s.now().UnixNano()
		if err := insertReceipt(ctx, tx, 0, false, r, now); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `SELECT last_insert_rowid()`).Scan(&id)
	})
	return id, err
}

// Reprint queues a copy of receipt id (any state) and returns the copy's id.
// The copy is marked as one on paper by the printer.
func (s *Store) Reprint(ctx context.Context, id int64) (int64, error) {
	what := fmt.Sprintf("reprint receipt %d", id)
	var cid int64
	err := s.write(ctx, what, func(tx *sql.Tx) error {
		var seq sql.NullInt64
		var r NewReceipt
		err := tx.QueryRowContext(ctx, `SELECT journal_seq, kind, body FROM receipts WHERE id = ?`, id).Scan(&seq, &r.Kind, &r.Body)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if err := insertReceipt(ctx, tx, seq.Int64, true, r, s.now().UnixNano()); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `SELECT last_insert_rowid()`).Scan(&cid)
	})
	return cid, err
}

const receiptCols = `r.id, r.journal_seq, j.terminal, r.copy, r.kind, r.body, r.state, r.attempts, r.last_error, r.created, r.updated`

const receiptFrom = ` FROM receipts r LEFT JOIN journal j ON j.seq = r.journal_seq`

func scanReceipt(sc scanner) (Receipt, error) {
	var r Receipt
	var seq sql.NullInt64
	var term sql.NullString
	var created, updated int64
	if err := sc.Scan(&r.ID, &seq, &term, &r.Copy, &r.Kind, &r.Body, &r.State, &r.Attempts, &r.LastError, &created, &updated); err != nil {
		return Receipt{}, err
	}
	if seq.Valid && term.Valid {
		r.JournalID = rowID(term.String, seq.Int64)
	}
	r.Created, r.Updated = time.Unix(0, created), time.Unix(0, updated)
	return r, nil
}

// GetReceipt returns receipt id, or an error wrapping ErrNotFound.
func (s *Store) GetReceipt(ctx context.Context, id int64) (Receipt, error) {
	r, err := scanReceipt(s.db.QueryRowContext(ctx, `SELECT `+receiptCols+receiptFrom+` WHERE r.id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return Receipt{}, fmt.Errorf("offline: receipt %d: %w", id, err)
	}
	return r, nil
}

// NextReceipt returns the oldest receipt waiting for the printer, or an
// error wrapping ErrNotFound when none waits. Receipts print in the order
// they were queued.
func (s *Store) NextReceipt(ctx context.Context) (Receipt, error) {
	r, err := scanReceipt(s.db.QueryRowContext(ctx, `SELECT `+receiptCols+receiptFrom+
		` WHERE r.state = 'queued' ORDER BY r.id LIMIT 1`))
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return Receipt{}, fmt.Errorf("offline: next receipt: %w", err)
	}
	return r, nil
}

// LastReceipt returns the newest receipt that is not a copy, whatever its
// state, or an error wrapping ErrNotFound: what "reprint the last receipt"
// means at a counter.
func (s *Store) LastReceipt(ctx context.Context) (Receipt, error) {
	r, err := scanReceipt(s.db.QueryRowContext(ctx, `SELECT `+receiptCols+receiptFrom+
		` WHERE r.copy = 0 ORDER BY r.id DESC LIMIT 1`))
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return Receipt{}, fmt.Errorf("offline: last receipt: %w", err)
	}
	return r, nil
}

// ReceiptsWaiting is the number of receipts queued for the printer.
func (s *Store) ReceiptsWaiting(ctx context.Context) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM receipts WHERE state = 'queued'`).Scan(&n); err != nil {
		return 0, fmt.Errorf("offline: receipts waiting: %w", err)
	}
	return n, nil
}

// moveReceipt changes receipt id from state from to state to, durably.
func (s *Store) moveReceipt(ctx context.Context, id int64, from, to, lastErr string, attempt bool) error {
	what := fmt.Sprintf("mark receipt %d %s", id, to)
	return s.write(ctx, what, func(tx *sql.Tx) error {
		var cur string
		err := tx.QueryRowContext(ctx, `SELECT state FROM receipts WHERE id = ?`, id).Scan(&cur)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if cur != from {
			return fmt.Errorf("%w: receipt is %s, not %s", ErrFinal, cur, from)
		}
		inc := 0
		if attempt {
			inc = 1
		}
		_, err = tx.ExecContext(ctx, `UPDATE receipts SET state = ?, last_error = ?, attempts = attempts + ?, updated = ? WHERE id = ?`,
			to, lastErr, inc, s.now().UnixNano(), id)
		return err
	})
}

// MarkSending records, before the first byte goes to the printer, that
// receipt id is being sent. Only a queued receipt can be sent.
func (s *Store) MarkSending(ctx context.Context, id int64) error {
	return s.moveReceipt(ctx, id, ReceiptQueued, ReceiptSending, "", true)
}

// MarkPrinted records that receipt id was written and the printer was ready
// afterwards. It outlives ctx's cancellation like Finish: the paper is out
// and forgetting that would print it again.
func (s *Store) MarkPrinted(ctx context.Context, id int64) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
	defer cancel()
	return s.moveReceipt(ctx, id, ReceiptSending, ReceiptPrinted, "", false)
}

// MarkNotPrinted puts receipt id back in the queue with the reason: the
// printer was not ready (paper out, cover open, offline) or the port failed,
// so it did not print it.
func (s *Store) MarkNotPrinted(ctx context.Context, id int64, reason string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
	defer cancel()
	return s.moveReceipt(ctx, id, ReceiptSending, ReceiptQueued, reason, false)
}

// RecoverSending settles the receipts a previous process left in sending:
// it died while writing them, so they may be on paper and are marked
// unknown rather than sent again. Call it once at start, before the print
// worker, from the daemon only. It returns how many it settled.
func (s *Store) RecoverSending(ctx context.Context) (int, error) {
	var n int64
	err := s.write(ctx, "recover receipts being sent", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE receipts SET state = 'unknown', updated = ?,
			last_error = 'the process ended while sending it: it may be on paper; reprint if not'
			WHERE state = 'sending'`, s.now().UnixNano())
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}

// PurgeReceipts deletes printed and unknown receipts created before
// olderThan, and returns how many; queued ones are kept whatever their age.
func (s *Store) PurgeReceipts(ctx context.Context, olderThan time.Time) (int, error) {
	var n int64
	err := s.write(ctx, "purge receipts", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM receipts WHERE created < ? AND state IN ('printed', 'unknown')`, olderThan.UnixNano())
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}
