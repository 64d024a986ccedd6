package host

import (
	"context"
	"database/sql"
	"time"

	"github.com/cardd/cardd/hostapi"
)

// maxJournalIDLen bounds a journal row id; the terminal's are its 12-digit
// id, a dash and a sequence number.
const maxJournalIDLen = 128

// storeJournal stores a batch of journal rows of one terminal and returns
// the ids to acknowledge: every id stored now or already present, so a
// batch sent twice is stored once and acknowledged twice (money rule 5).
//
// A row the terminal changed after uploading it (a load journaled unknown,
// settled on a later tap) comes again with the same id; the host keeps the
// newest version, as the terminal's offline store expects, except that a
// settled state (done, failed) is never replaced by an unsettled one
// (intent, unknown): JournalRow carries no revision, and a late duplicate
// of an old upload must not undo a settlement. An identical row changes
// nothing.
//
// A malformed row refuses the whole batch, naming the row, before anything
// is stored.
func (s *Store) storeJournal(ctx context.Context, terminal string, rows []hostapi.JournalRow, now time.Time) ([]string, error) {
	for i, r := range rows {
		switch {
		case r.ID == "":
			return nil, badRequest("journal row %d of %d: empty id", i+1, len(rows))
		case len(r.ID) > maxJournalIDLen:
			return nil, badRequest("journal row %d of %d: id of %d characters, at most %d", i+1, len(rows), len(r.ID), maxJournalIDLen)
		}
	}
	acked := make([]string, 0, len(rows))
	seen := make(map[string]bool, len(rows))
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		stmt, err := tx.Prepare(`INSERT INTO journal (terminal, id, kind, state, card, purse, counter, balance_fen,
			amount_fen, credit_id, tac, detail, time, received, updated, term_serial) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (terminal, id) DO UPDATE SET kind = excluded.kind, state = excluded.state, card = excluded.card,
				purse = excluded.purse, counter = excluded.counter, balance_fen = excluded.balance_fen,
				amount_fen = excluded.amount_fen, credit_id = excluded.credit_id, tac = excluded.tac,
				detail = excluded.detail, time = excluded.time, updated = excluded.updated,
				term_serial = excluded.term_serial, versions = versions + 1
			WHERE (kind, state, card, purse, counter, balance_fen, amount_fen, credit_id, tac, detail, time, term_serial) IS NOT
				(excluded.kind, excluded.state, excluded.card, excluded.purse, excluded.counter, excluded.balance_fen,
				excluded.amount_fen, excluded.credit_id, excluded.tac, excluded.detail, excluded.time, excluded.term_serial)
			AND NOT (journal.state IN ('done', 'failed') AND excluded.state IN ('intent', 'unknown'))`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, r := range rows {
			if _, err := stmt.Exec(terminal, r.ID, r.Kind, r.State, r.Card, r.Purse, int64(r.Counter), r.BalanceFen,
				r.AmountFen, r.CreditID, r.TAC, r.Detail, r.Time, dbTime(now), dbTime(now), int64(r.TermSerial)); err != nil {
				return err
			}
			if !seen[r.ID] {
				seen[r.ID] = true
				acked = append(acked, r.ID)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return acked, nil
}

// JournalCount returns how many journal rows the host holds from a terminal
// ("" for all terminals).
func (s *Store) JournalCount(ctx context.Context, terminal string) (int, error) {
	var n int
	var err error
	if terminal == "" {
		err = s.db.QueryRowContext(ctx, `SELECT count(*) FROM journal`).Scan(&n)
	} else {
		err = s.db.QueryRowContext(ctx, `SELECT count(*) FROM journal WHERE terminal = ?`, terminal).Scan(&n)
	}
	return n, err
}
