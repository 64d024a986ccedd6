package offline

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/redact"
)

// Journal row kinds.
const (
	KindRead     = "read"     // a card was read (balance, logs)
	KindLoad     = "load"     // CREDIT FOR LOAD of a host credit
	KindPurchase = "purchase" // DEBIT FOR PURCHASE through the PSAM
	KindAccess   = "access"   // a door decision
	KindRecovery = "recovery" // an operator or the daemon settled something by hand
)

// Journal row states. A row moves intent → done | unknown | failed and
// unknown → done | failed; done and failed are final.
const (
	// StateIntent: written ahead; the command may or may not have reached
	// the card yet.
	StateIntent = "intent"
	// StateDone: the card answered success (with its TAC for money rows).
	StateDone = "done"
	// StateUnknown: the command was sent but the answer never came; only
	// the card can tell, on its next tap (money rule 3).
	StateUnknown = "unknown"
	// StateFailed: the card did not change, as the card itself showed.
	StateFailed = "failed"
)

// Row is one journal row: one card operation.
type Row struct {
	// ID is permanent and what the host sees: terminal id + "-" + Seq,
	// e.g. "000000000001-42". Set by Begin.
	ID string
	// Seq is the local sequence, increasing, never reused. Set by Begin.
	Seq   int64
	Kind  string // Kind* constant
	State string // State* constant
	Card  string // card number
	Purse string // "EP" or "ED", or "" when not a purse operation
	// Counter is the purse's counter the operation was made at: the online
	// counter for a load, the offline counter for a purchase.
	Counter uint16
	// BalanceFen is the balance before the operation; AmountFen what it
	// moves (never negative: Kind says the direction).
	BalanceFen, AmountFen int64
	CreditID              string // the host credit a load applies
	// TermSerial is the terminal transaction serial a purchase was made
	// with: the PSAM's, for an e-purse purchase (it is in the TAC).
	TermSerial uint32
	// PSAMTerminal is the terminal id of the PSAM an e-purse purchase was
	// made with (12 upper-case hex digits; its TAC covers it), which the
	// host needs to verify the TAC when the sale is voided; "" otherwise,
	// and for a sale journaled before it was kept.
	PSAMTerminal string
	TAC          string // the card's TAC, upper-case hex, once done
	MAC2         string // the host's MAC2 a load was sent with
	// Time is the card-side time "20060102150405" (hostapi.TimeLayout) sent
	// in the command, in the terminal's local time.
	Time   string
	Detail string // free text for people: why it failed, what settled it
	// Proof is the caller's record of a load's non-application (the fresh
	// INIT FOR LOAD answer, in whatever encoding package sync reads back),
	// set by FinishNotApplied. It is what a completion of a failed load
	// needs; this package stores it and does not interpret it.
	Proof            string
	Created, Updated time.Time
	// Acked is whether the host acknowledged this row in its current state.
	Acked bool
	// HostRefused is, when the host refused this row in its current state,
	// the host's code and reason; "" otherwise. Such a row is kept and not
	// sent again until it changes.
	HostRefused string
	// CompletionReported is whether POST /v1/load/complete succeeded for it.
	CompletionReported bool
	// Sale is what a purchase row records of its sale for the shift's
	// close-out (班结); Begin sets Sale.Shift to the shift open then.
	Sale SaleFacts
}

// SaleFacts is what a purchase row records of its sale beyond the card's
// operation, so a shift's close-out can total it from the journal alone.
type SaleFacts struct {
	Period string // the meal period (餐别) it was sold in; "" without one
	Class  string // the card's identity class (身份); "" for none
	// PINVerified is whether the cardholder's PIN took it over the daily
	// limit (a PIN override).
	PINVerified bool
	// CollectFen is, for a split sale, what is left to collect by other
	// means (the card's part is AmountFen).
	CollectFen int64
	// Shift is the cashier's shift open when the row was written (0: none).
	Shift int64
}

// HostRow converts r to the form it is uploaded in. The time is the
// card-side time when the row has one (it is what the card logged and the
// TAC covers), read in the terminal's local zone, else the row's creation
// time; both as RFC 3339.
func (r Row) HostRow() hostapi.JournalRow {
	t := r.Created
	if r.Time != "" {
		if ct, err := time.ParseInLocation(hostapi.TimeLayout, r.Time, time.Local); err == nil {
			t = ct
		}
	}
	return hostapi.JournalRow{
		ID: r.ID, Kind: r.Kind, State: r.State, Card: r.Card, Purse: r.Purse,
		Counter: r.Counter, BalanceFen: r.BalanceFen, AmountFen: r.AmountFen,
		CreditID: r.CreditID, TAC: r.TAC, TermSerial: r.TermSerial, PSAMTerminal: r.PSAMTerminal, Detail: r.Detail,
		Time: t.Format(time.RFC3339),
	}
}

const rowCols = `seq, terminal, kind, state, card, purse, counter, balance_fen, amount_fen,
	credit_id, tac, mac2, proof, time, detail, created, updated, rev, acked_rev, completion_reported, term_serial,
	refused_rev, host_refused, psam_terminal, period, class, pin_verified, collect_fen, shift`

type scanner interface{ Scan(dest ...any) error }

func scanRow(sc scanner) (Row, error) {
	var (
		r                Row
		term             string
		counter          int64
		created, updated int64
		rev, ackedRev    int64
		reported         int64
		serial           int64
		refusedRev       int64
		refused          string
		pin              int64
	)
	err := sc.Scan(&r.Seq, &term, &r.Kind, &r.State, &r.Card, &r.Purse, &counter, &r.BalanceFen, &r.AmountFen,
		&r.CreditID, &r.TAC, &r.MAC2, &r.Proof, &r.Time, &r.Detail, &created, &updated, &rev, &ackedRev, &reported, &serial,
		&refusedRev, &refused, &r.PSAMTerminal, &r.Sale.Period, &r.Sale.Class, &pin, &r.Sale.CollectFen, &r.Sale.Shift)
	if err != nil {
		return Row{}, err
	}
	r.ID = rowID(term, r.Seq)
	r.Counter = uint16(counter) // CHECK keeps it in 0..65535
	r.Created, r.Updated = time.Unix(0, created), time.Unix(0, updated)
	r.Acked = ackedRev >= rev
	r.CompletionReported = reported != 0
	r.TermSerial = uint32(serial) // CHECK keeps it in range
	r.Sale.PINVerified = pin != 0
	if refusedRev >= rev {
		r.HostRefused = refused
	}
	return r, nil
}

func queryRows(ctx context.Context, q querier, query string, args ...any) ([]Row, error) {
	return queryAll(ctx, q, scanRow, query, args...)
}

// querier is what a query runs on: the database or a transaction.
type querier interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
	QueryRowContext(context.Context, string, ...any) *sql.Row
}

// queryAll runs query and scans every row it returns with scan.
func queryAll[T any](ctx context.Context, q querier, scan func(scanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func rowID(terminal string, seq int64) string {
	return terminal + "-" + strconv.FormatInt(seq, 10)
}

// parseID splits a row id into its terminal and sequence; ok is false for
// anything Begin could not have produced.
func parseID(id string) (terminal string, seq int64, ok bool) {
	terminal, num, found := strings.Cut(id, "-")
	if !found || len(terminal) != 12 || terminal != strings.ToUpper(terminal) {
		return "", 0, false
	}
	if _, err := normTerminal(terminal); err != nil {
		return "", 0, false
	}
	seq, err := strconv.ParseInt(num, 10, 64)
	if err != nil || seq <= 0 || strconv.FormatInt(seq, 10) != num {
		return "", 0, false
	}
	return terminal, seq, true
}

func validKind(k string) bool {
	switch k {
	case KindRead, KindLoad, KindPurchase, KindAccess, KindRecovery:
		return true
	}
	return false
}

func moneyKind(k string) bool { return k == KindLoad || k == KindPurchase }

func checkLimit(limit int) error {
	if limit <= 0 {
		return fmt.Errorf("limit %d: must be positive", limit)
	}
	return nil
}

// Begin inserts r and commits it durably before returning: for a load or a
// purchase this is the write-ahead row, and the command may be sent to the
// card only after Begin returned nil. It returns r with ID, Seq, State,
// Created and Updated set (any ID, Seq or times passed in are ignored).
//
// Load and purchase rows start in StateIntent (State "" means that too);
// other kinds may be recorded directly as done or failed (State "" means
// done), or as intent when they too change the card. A load needs a
// CreditID; loads and purchases need a positive amount. A TAC is only
// accepted on a row that does not start as intent, and Proof never: it
// comes with FinishNotApplied.
func (s *Store) Begin(ctx context.Context, r Row) (Row, error) {
	if err := s.checkNew(&r); err != nil {
		return Row{}, fmt.Errorf("offline: begin %s row for card %s: %w", r.Kind, redact.CardNumber(r.Card), err)
	}
	now := s.now()
	r.Created, r.Updated = now, now
	err := s.write(ctx, "begin "+r.Kind+" row for card "+redact.CardNumber(r.Card), func(tx *sql.Tx) error {
		// A purchase belongs to the shift open as it is written: in the
		// same transaction, so a close either counts it or comes after it.
		if r.Kind == KindPurchase {
			if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(id), 0) FROM shifts WHERE closed = 0`).Scan(&r.Sale.Shift); err != nil {
				return err
			}
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO journal (terminal, kind, state, card, purse, counter,
			balance_fen, amount_fen, credit_id, tac, mac2, time, detail, created, updated, term_serial, psam_terminal,
			period, class, pin_verified, collect_fen, shift)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			s.terminal, r.Kind, r.State, r.Card, r.Purse, int64(r.Counter), r.BalanceFen, r.AmountFen,
			r.CreditID, r.TAC, r.MAC2, r.Time, r.Detail, now.UnixNano(), now.UnixNano(), int64(r.TermSerial), r.PSAMTerminal,
			r.Sale.Period, r.Sale.Class, r.Sale.PINVerified, r.Sale.CollectFen, r.Sale.Shift)
		if err != nil {
			return err
		}
		r.Seq, err = res.LastInsertId()
		return err
	})
	if err != nil {
		return Row{}, err
	}
	r.ID = rowID(s.terminal, r.Seq)
	r.Acked, r.CompletionReported = false, false
	return r, nil
}

func (s *Store) checkNew(r *Row) error {
	if !validKind(r.Kind) {
		return fmt.Errorf("kind %q: want read, load, purchase, access or recovery", r.Kind)
	}
	var bad *hostapi.CardIDError
	if errors.As(hostapi.CheckCardID(r.Card), &bad) {
		// The host would refuse the row, so its money could never be
		// accounted for: refuse it before the card sees anything. Begin
		// names the card, masked.
		return errors.New(bad.Reason)
	}
	if r.State == "" {
		r.State = StateDone
		if moneyKind(r.Kind) {
			r.State = StateIntent
		}
	}
	switch {
	case moneyKind(r.Kind) && r.State != StateIntent:
		return fmt.Errorf("state %q: a %s row is written ahead, in state intent", r.State, r.Kind)
	case r.State != StateIntent && r.State != StateDone && r.State != StateFailed:
		return fmt.Errorf("state %q: a new row is intent, done or failed", r.State)
	}
	if r.AmountFen < 0 {
		return fmt.Errorf("amount %d fen: must not be negative (the kind gives the direction)", r.AmountFen)
	}
	if moneyKind(r.Kind) && r.AmountFen == 0 {
		return fmt.Errorf("amount 0 fen: a %s moves money", r.Kind)
	}
	if r.Kind == KindLoad && r.CreditID == "" {
		return errors.New("a load needs the credit id it applies")
	}
	if r.State == StateIntent && r.TAC != "" {
		return errors.New("a row written ahead has no TAC yet")
	}
	if r.Proof != "" {
		return errors.New("proof of non-application is recorded by FinishNotApplied, not Begin")
	}
	if t := r.PSAMTerminal; t != "" && (len(t) != 12 || strings.Trim(t, "0123456789ABCDEF") != "") {
		// The host would refuse the sale's void as malformed.
		return fmt.Errorf("psam terminal %q: want 6 bytes as 12 upper-case hex digits", t)
	}
	if r.Sale != (SaleFacts{}) && r.Kind != KindPurchase {
		return fmt.Errorf("sale facts (period %q, class %q) are for purchase rows, this is a %s row", r.Sale.Period, r.Sale.Class, r.Kind)
	}
	if r.Sale.CollectFen < 0 {
		return fmt.Errorf("split rest to collect %d fen: must not be negative", r.Sale.CollectFen)
	}
	if r.Time != "" {
		if _, err := time.Parse(hostapi.TimeLayout, r.Time); err != nil {
			return fmt.Errorf("card time %q: want %s", r.Time, hostapi.TimeLayout)
		}
	}
	return nil
}

// finishTimeout bounds Finish once it no longer listens to its caller's
// cancellation.
const finishTimeout = 15 * time.Second

// Finish records the card's answer to the command of row id: state is
// StateDone (with the card's TAC for e-purse money rows), StateUnknown (the
// answer never came) or StateFailed (the card showed it did not change).
// Allowed from intent or unknown; unknown → unknown just updates detail.
// detail "" keeps the row's detail.
//
// done and failed are final: changing such a row fails with ErrFinal, but
// repeating the same Finish (same state and TAC) is a no-op, so a caller
// that is unsure whether its Finish landed may simply call it again.
//
// Finish does not give up when ctx is cancelled (it still stops after
// finishTimeout): the card has already answered, and losing the answer
// would turn a known outcome into an unknown one that needs the card back.
// A changed row goes up to the host again, with the same id.
func (s *Store) Finish(ctx context.Context, id, state, tac, detail string) error {
	return s.finish(ctx, id, state, tac, "", detail, nil)
}

// FinishPrint is Finish that also queues receipt r for printing, in the same
// transaction, when the row becomes done: a receipt is never queued for an
// operation that did not happen, and never missing for one that did. Asking
// again after the row is done queues nothing more.
func (s *Store) FinishPrint(ctx context.Context, id, state, tac, detail string, r NewReceipt) error {
	if err := r.check(); err != nil {
		return fmt.Errorf("offline: finish row %s: %w", id, err)
	}
	return s.finish(ctx, id, state, tac, "", detail, &r)
}

// FinishNotApplied marks load row id failed with proof that the card did not
// apply it (a fresh INIT FOR LOAD answer at the authorized counter, encoded
// by the caller), which the host needs to release the credit (hostapi
// LoadCompleteRequest.NotApplied). The row is then owed as a completion.
// Repeating it with the same proof is a no-op; a row that failed without
// proof may have it attached later. Like Finish, it outlives ctx's
// cancellation.
func (s *Store) FinishNotApplied(ctx context.Context, id, proof, detail string) error {
	if proof == "" {
		return fmt.Errorf("offline: finish row %s as not applied: empty proof", id)
	}
	return s.finish(ctx, id, StateFailed, "", proof, detail, nil)
}

func (s *Store) finish(ctx context.Context, id, state, tac, proof, detail string, receipt *NewReceipt) error {
	what := fmt.Sprintf("finish row %s as %s", id, state)
	switch state {
	case StateDone, StateUnknown, StateFailed:
	default:
		return fmt.Errorf("offline: %s: a row is finished as done, unknown or failed", what)
	}
	term, seq, ok := parseID(id)
	if !ok {
		return fmt.Errorf("offline: %s: %w: not a journal row id", what, ErrNotFound)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
	defer cancel()
	return s.write(ctx, what, func(tx *sql.Tx) error {
		var kind, cur, curTAC, curProof, curDetail string
		err := tx.QueryRowContext(ctx, `SELECT kind, state, tac, proof, detail FROM journal WHERE seq = ? AND terminal = ?`,
			seq, term).Scan(&kind, &cur, &curTAC, &curProof, &curDetail)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if proof != "" && kind != KindLoad {
			return fmt.Errorf("proof of non-application is for load rows, this is a %s row", kind)
		}
		newDetail := curDetail
		if detail != "" {
			newDetail = detail
		}
		now := s.now().UnixNano()
		if cur == StateDone || cur == StateFailed {
			switch {
			case cur == state && tac == curTAC && (proof == "" || proof == curProof):
				return nil // the same answer again
			case cur == StateFailed && state == StateFailed && tac == curTAC && curProof == "" && proof != "":
				// Evidence arrives after the fact; the outcome is unchanged.
				_, err := tx.ExecContext(ctx, `UPDATE journal SET proof = ?, detail = ?, updated = ?,
					rev = rev + (detail <> ?) WHERE seq = ?`, proof, newDetail, now, newDetail, seq)
				return err
			}
			return fmt.Errorf("%w: it is %s (TAC %q), asked %s (TAC %q)", ErrFinal, cur, curTAC, state, tac)
		}
		if tac == "" {
			tac = curTAC
		}
		changed := state != cur || tac != curTAC || newDetail != curDetail
		bump := 0
		if changed {
			bump = 1
		}
		_, err = tx.ExecContext(ctx, `UPDATE journal SET state = ?, tac = ?, proof = ?, detail = ?, updated = ?,
			rev = rev + ? WHERE seq = ?`, state, tac, proof, newDetail, now, bump, seq)
		if err != nil || receipt == nil || state != StateDone {
			return err
		}
		return insertReceipt(ctx, tx, seq, false, *receipt, now)
	})
}

// RecoverInterrupted settles the rows a previous process left in intent: it
// died between the write-ahead and the card's answer, so nobody will finish
// them. Load and purchase rows become unknown (only the card can tell,
// money rule 3; Unresolved hands them to the next tap of that card), other
// kinds become failed. Call it once when the daemon starts, before its first
// tap, and only from the process that makes card operations: another
// process (an operator subcommand) would otherwise take the daemon's
// in-flight rows for dead ones. It returns how many rows it settled.
func (s *Store) RecoverInterrupted(ctx context.Context) (int, error) {
	const note = "interrupted: the process ended before the card's answer was recorded"
	var n int64
	err := s.write(ctx, "recover interrupted rows", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE journal SET
			state = CASE WHEN kind IN ('load', 'purchase') THEN 'unknown' ELSE 'failed' END,
			detail = CASE WHEN detail = '' THEN ? ELSE detail || '; ' || ? END,
			updated = ?, rev = rev + 1
			WHERE state = 'intent'`, note, note, s.now().UnixNano())
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}

// InDoubt returns the rows of kind, of every card, that are in intent or
// unknown, oldest first: after a restart, what only the cards can settle.
func (s *Store) InDoubt(ctx context.Context, kind string) ([]Row, error) {
	if !validKind(kind) {
		return nil, fmt.Errorf("offline: rows in doubt: kind %q", kind)
	}
	rows, err := queryRows(ctx, s.db, `SELECT `+rowCols+` FROM journal
		WHERE state IN ('intent', 'unknown') AND kind = ? ORDER BY seq`, kind)
	if err != nil {
		return nil, fmt.Errorf("offline: %s rows in doubt: %w", kind, err)
	}
	return rows, nil
}

// PurchasesOn returns card's purchase rows whose card-side time falls on day
// ("20060102"), failed ones excepted: what this terminal debited from the
// card that day, or may have (unknown counts, to stay on the safe side of a
// spending limit). Oldest first.
func (s *Store) PurchasesOn(ctx context.Context, card, day string) ([]Row, error) {
	if card == "" {
		return nil, errors.New("offline: purchases of a day: empty card number")
	}
	if _, err := time.Parse("20060102", day); err != nil {
		return nil, fmt.Errorf("offline: purchases of day %q: want YYYYMMDD", day)
	}
	rows, err := queryRows(ctx, s.db, `SELECT `+rowCols+` FROM journal
		WHERE kind = 'purchase' AND card = ? AND time >= ? AND time < ? AND state <> 'failed' ORDER BY seq`,
		card, day, day+"999999")
	if err != nil {
		return nil, fmt.Errorf("offline: purchases of card %s on %s: %w", redact.CardNumber(card), day, err)
	}
	return rows, nil
}

// Unresolved returns the load and purchase rows of card that are in intent
// or unknown, oldest first: the tap must settle them from the card (money
// rule 3) before it changes the card again. An unknown row marked reported
// (MarkCompletionReported: an M1 load the host has closed since, from
// another terminal's reading of the wallet or an operator's decision) is
// settled and not returned.
//
// The state IN term is the journal_open index's condition word for word:
// SQLite uses a partial index only when the query's terms imply its
// condition, and it does not see that an OR of the two states does.
func (s *Store) Unresolved(ctx context.Context, card string) ([]Row, error) {
	if card == "" {
		return nil, errors.New("offline: unresolved rows: empty card number")
	}
	rows, err := queryRows(ctx, s.db, `SELECT `+rowCols+` FROM journal
		WHERE card = ? AND state IN ('intent', 'unknown') AND kind IN ('load', 'purchase')
		AND (state = 'intent' OR completion_reported = 0) ORDER BY seq`, card)
	if err != nil {
		return nil, fmt.Errorf("offline: unresolved rows of card %s: %w", redact.CardNumber(card), err)
	}
	return rows, nil
}

// CompletionsOwedOf is CompletionsOwed for one card, all of them.
func (s *Store) CompletionsOwedOf(ctx context.Context, card string) ([]Row, error) {
	rows, err := queryRows(ctx, s.db, `SELECT `+rowCols+` FROM journal WHERE card = ? AND `+owedWhere+` ORDER BY seq`, card)
	if err != nil {
		return nil, fmt.Errorf("offline: completions owed for card %s: %w", redact.CardNumber(card), err)
	}
	return rows, nil
}

// SettledElsewhere marks unknown load row id settled by the host without
// this terminal (an M1 load the next terminal to read the wallet, or an
// operator, closed): Unresolved no longer returns it. Its state stays
// unknown: this terminal never learned the outcome.
func (s *Store) SettledElsewhere(ctx context.Context, id string) error {
	term, seq, ok := parseID(id)
	if !ok {
		return fmt.Errorf("offline: settle row %s elsewhere: %w: not a journal row id", id, ErrNotFound)
	}
	return s.write(ctx, "settle row "+id+" elsewhere", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE journal SET completion_reported = 1, updated = ?
			WHERE seq = ? AND terminal = ? AND kind = 'load' AND state = 'unknown'`, s.now().UnixNano(), seq, term)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return fmt.Errorf("%w: no unknown load row %s", ErrNotFound, id)
		}
		return nil
	})
}

// LoadsOfCredit returns this terminal's load rows of one credit, oldest
// first, whatever their state: whether this terminal ever wrote (or meant
// to write) that credit onto a card.
func (s *Store) LoadsOfCredit(ctx context.Context, credit string) ([]Row, error) {
	if credit == "" {
		return nil, errors.New("offline: loads of a credit: empty credit id")
	}
	rows, err := queryRows(ctx, s.db, `SELECT `+rowCols+` FROM journal WHERE kind = 'load' AND credit_id = ? ORDER BY seq`, credit)
	if err != nil {
		return nil, fmt.Errorf("offline: loads of credit %s: %w", credit, err)
	}
	return rows, nil
}

// Get returns the row with the given id, or an error wrapping ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (Row, error) {
	term, seq, ok := parseID(id)
	if !ok {
		return Row{}, fmt.Errorf("offline: get row %q: %w: not a journal row id", id, ErrNotFound)
	}
	r, err := scanRow(s.db.QueryRowContext(ctx, `SELECT `+rowCols+` FROM journal WHERE seq = ? AND terminal = ?`, seq, term))
	if errors.Is(err, sql.ErrNoRows) {
		return Row{}, fmt.Errorf("offline: get row %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Row{}, fmt.Errorf("offline: get row %s: %w", id, err)
	}
	return r, nil
}

// List returns up to limit rows, newest first, with Seq below beforeSeq
// (0: from the newest): pass the last Seq of a page to get the next.
func (s *Store) List(ctx context.Context, beforeSeq int64, limit int) ([]Row, error) {
	if err := checkLimit(limit); err != nil {
		return nil, fmt.Errorf("offline: list rows: %w", err)
	}
	if beforeSeq <= 0 {
		beforeSeq = 1<<63 - 1
	}
	rows, err := queryRows(ctx, s.db, `SELECT `+rowCols+` FROM journal WHERE seq < ? ORDER BY seq DESC LIMIT ?`, beforeSeq, limit)
	if err != nil {
		return nil, fmt.Errorf("offline: list rows: %w", err)
	}
	return rows, nil
}

// outboxWhere selects the rows owed to the host. Intent rows are not
// uploaded: they are in flight for the few milliseconds between the
// write-ahead and the card's answer, so uploading one would only race its
// Finish; one whose process died becomes unknown by RecoverInterrupted and
// goes up then. Unknown rows do go up at once, since an operation in doubt
// is exactly what the host's operators must see even if the card never
// comes back; when it is settled the row goes up again with the same id and
// its final state (the host stores the newest state of an id).
//
// A row the host refused in its current version (RefusedByHost) is not
// owed either: the same copy would be refused again. It goes up again once
// it changes.
const outboxWhere = `state <> 'intent' AND acked_rev < rev AND refused_rev < rev`

// Unacked returns up to limit rows owed to the host, oldest first: every row
// not in intent whose current state the host has not acknowledged. It
// records which version of each row it handed out, so that an Ack for that
// upload does not cover a change made meanwhile (a row finished while its
// unknown version was on the wire stays owed). One uploader at a time: two
// overlapping uploads could each ack the other's version.
func (s *Store) Unacked(ctx context.Context, limit int) ([]Row, error) {
	if err := checkLimit(limit); err != nil {
		return nil, fmt.Errorf("offline: unacked rows: %w", err)
	}
	var out []Row
	err := s.write(ctx, "unacked rows", func(tx *sql.Tx) error {
		var err error
		out, err = queryRows(ctx, tx, `SELECT `+rowCols+` FROM journal WHERE `+outboxWhere+` ORDER BY seq LIMIT ?`, limit)
		if err != nil || len(out) == 0 {
			return err
		}
		// Within this immediate transaction the same rows match again.
		_, err = tx.ExecContext(ctx, `UPDATE journal SET sent_rev = rev WHERE sent_rev <> rev AND seq IN
			(SELECT seq FROM journal WHERE `+outboxWhere+` ORDER BY seq LIMIT ?)`, limit)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Ack records that the host stored the rows with these ids, in the version
// Unacked last handed out. It is idempotent; ids it does not know, and rows
// never handed out by Unacked, are ignored (the host cannot have those).
func (s *Store) Ack(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	return s.write(ctx, fmt.Sprintf("ack %d rows", len(ids)), func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, `UPDATE journal SET acked_rev = sent_rev
			WHERE seq = ? AND terminal = ? AND sent_rev > acked_rev`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, id := range ids {
			term, seq, ok := parseID(id)
			if !ok {
				continue
			}
			if _, err := stmt.ExecContext(ctx, seq, term); err != nil {
				return fmt.Errorf("row %s: %w", id, err)
			}
		}
		return nil
	})
}

// HostRefusal is the host's answer for one row it would not take.
type HostRefusal struct {
	ID     string
	Reason string // the host's code and reason, for the operator
}

// RefusedByHost records that the host refused these rows in the version
// Unacked last handed out: they are kept, with the reason (Row.HostRefused),
// and not owed any more unless they change again. It returns the ones it
// newly marked, so the caller logs each refusal once; ids it does not know,
// rows never handed out, and versions already acked are ignored.
func (s *Store) RefusedByHost(ctx context.Context, refusals []HostRefusal) ([]HostRefusal, error) {
	var marked []HostRefusal
	if len(refusals) == 0 {
		return nil, nil
	}
	err := s.write(ctx, fmt.Sprintf("mark %d rows refused by the host", len(refusals)), func(tx *sql.Tx) error {
		marked = marked[:0]
		stmt, err := tx.PrepareContext(ctx, `UPDATE journal SET refused_rev = sent_rev, host_refused = ?
			WHERE seq = ? AND terminal = ? AND sent_rev > acked_rev AND sent_rev > refused_rev`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, rf := range refusals {
			term, seq, ok := parseID(rf.ID)
			if !ok {
				continue
			}
			res, err := stmt.ExecContext(ctx, rf.Reason, seq, term)
			if err != nil {
				return fmt.Errorf("row %s: %w", rf.ID, err)
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n > 0 {
				marked = append(marked, rf)
			}
		}
		return nil
	})
	return marked, err
}

// HostRefusedRows returns up to limit rows, oldest first, that the host
// refused in their current version: for the operator, who must look at
// each (the terminal's record and the host's disagree, or the row is
// malformed).
func (s *Store) HostRefusedRows(ctx context.Context, limit int) ([]Row, error) {
	if err := checkLimit(limit); err != nil {
		return nil, fmt.Errorf("offline: rows refused by the host: %w", err)
	}
	rows, err := queryRows(ctx, s.db, `SELECT `+rowCols+` FROM journal WHERE refused_rev > 0 AND refused_rev >= rev ORDER BY seq LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("offline: rows refused by the host: %w", err)
	}
	return rows, nil
}

// owedWhere selects load rows whose completion the host is owed: done with
// the card's TAC (an M1 wallet's load has none: done is enough), or failed
// with proof of non-application. A load that failed without proof owes
// nothing: the host re-authorizes its credit only when a later MAC1 shows
// the counter did not move (money rule 4).
const owedWhere = `kind = 'load' AND completion_reported = 0 AND credit_id <> ''
	AND ((state = 'done' AND (tac <> '' OR purse = 'M1')) OR (state = 'failed' AND proof <> ''))`

// Purge deletes the rows created before olderThan that the host has
// acknowledged in a final state and that owe no load completion; it never
// deletes a row that is unacked, in intent or unknown, or owed. It returns
// how many it deleted. The retention (180 days by default) is the caller's.
func (s *Store) Purge(ctx context.Context, olderThan time.Time) (int, error) {
	var n int64
	err := s.write(ctx, "purge rows", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM journal WHERE created < ? AND acked_rev >= rev
			AND state IN ('done', 'failed') AND NOT (`+owedWhere+`)`, olderThan.UnixNano())
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}

// QueueDepth is the number of rows owed to the host (what Unacked would
// return without a limit), for the heartbeat and the operator.
func (s *Store) QueueDepth(ctx context.Context) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM journal WHERE `+outboxWhere).Scan(&n); err != nil {
		return 0, fmt.Errorf("offline: queue depth: %w", err)
	}
	return n, nil
}

// CompletionsOwed returns up to limit load rows, oldest first, whose
// completion (POST /v1/load/complete) the host has not had yet: done with a
// TAC, or failed with proof. They survive restarts until
// MarkCompletionReported.
func (s *Store) CompletionsOwed(ctx context.Context, limit int) ([]Row, error) {
	if err := checkLimit(limit); err != nil {
		return nil, fmt.Errorf("offline: completions owed: %w", err)
	}
	rows, err := queryRows(ctx, s.db, `SELECT `+rowCols+` FROM journal WHERE `+owedWhere+` ORDER BY seq LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("offline: completions owed: %w", err)
	}
	return rows, nil
}

// MarkCompletionReported records that the host accepted the completion of
// load row id. Marking it again is a no-op; marking a row that owes no
// completion is an error (ErrNotFound when it does not exist).
func (s *Store) MarkCompletionReported(ctx context.Context, id string) error {
	what := "mark completion of row " + id + " reported"
	term, seq, ok := parseID(id)
	if !ok {
		return fmt.Errorf("offline: %s: %w: not a journal row id", what, ErrNotFound)
	}
	return s.write(ctx, what, func(tx *sql.Tx) error {
		var owed, reported bool
		err := tx.QueryRowContext(ctx, `SELECT `+owedWhere+`, completion_reported FROM journal WHERE seq = ? AND terminal = ?`,
			seq, term).Scan(&owed, &reported)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if reported {
			return nil
		}
		if !owed {
			return errors.New("it owes no completion (not a load done with a TAC or failed with proof)")
		}
		_, err = tx.ExecContext(ctx, `UPDATE journal SET completion_reported = 1, updated = ? WHERE seq = ?`, s.now().UnixNano(), seq)
		return err
	})
}
