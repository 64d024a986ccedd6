package offline

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/cardd/cardd/redact"
)

func (s *Store) setClose(ctx context.Context, tx execer, c CloseChange) error {
	if c.Card == "" || c.ID == "" {
		return fmt.Errorf("close change with an empty card number or id (card %s)", redact.CardNumber(c.Card))
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO card_closes (card, close_id, updated) VALUES (?, ?, ?)
		ON CONFLICT (card) DO UPDATE SET close_id = excluded.close_id, updated = excluded.updated`, c.Card, c.ID, s.now().UnixNano())
	if err != nil {
		return fmt.Errorf("close of card %s: %w", redact.CardNumber(c.Card), err)
	}
	return nil
}

// CloseOf is the id of the close the host asked for card, "" when none
// (or this terminal has not pulled it yet).
func (s *Store) CloseOf(ctx context.Context, card string) (string, error) {
	var id string
	err := s.db.QueryRowContext(ctx, `SELECT close_id FROM card_closes WHERE card = ?`, card).Scan(&id)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "", nil
	case err != nil:
		return "", fmt.Errorf("offline: close of card %s: %w", redact.CardNumber(card), err)
	}
	return id, nil
}

// ClosingRow is this terminal's journal row that closes a card under
// close id: its closing debit or, for a card that held nothing, its
// closing read (only a load's credit_id is a credit), not failed; found is
// false when there is none yet. Its index (journal_closing) holds those
// rows alone.
func (s *Store) ClosingRow(ctx context.Context, id string) (row Row, found bool, err error) {
	row, err = scanRow(s.db.QueryRowContext(ctx, `SELECT `+rowCols+` FROM journal
		WHERE credit_id = ? AND kind <> 'load' AND credit_id <> '' AND state <> 'failed' ORDER BY seq DESC LIMIT 1`, id))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return Row{}, false, nil
	case err != nil:
		return Row{}, false, fmt.Errorf("offline: closing row of %s: %w", id, err)
	}
	return row, true, nil
}
