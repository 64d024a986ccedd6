package host

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/money"
	"github.com/cardd/cardd/redact"
)

// Reconciliation (对账) runs as journal rows arrive, never as a scan of the
// journal. An upload verifies each newly done e-purse row's TAC in its own
// transaction (the row is the terminal's alone), and records the money rows
// in recon_moves (once per card, purse, kind and counter) and the
// purchases' PSAM serials in recon_serials. After it commits, each card and
// PSAM it touched is checked under that card's or PSAM's lock: the values
// not yet checked are taken in one by one against those that were, so
// terminals uploading one card at once cannot both miss a gap the other
// closes. A crash between the two leaves rows unchecked; the next upload
// of the same card or PSAM checks them.
//
// A gap (a counter or serial between two the host holds, which it does
// not) is one alarm; a row that fills the last missing value of a gap
// resolves its alarm with a note, since offline terminals upload late and
// in any order. A purse's books (the balance before its earliest move,
// plus loads, minus purchases) must equal the balance after its newest
// move; checked while the purse has no open gap (a missing row explains a
// difference, and has its alarm), one alarm while they differ, resolved
// when they agree again.

// TAC checks, in journal.tac_check.
const (
	tacOK   = "ok"   // the card's key gives it
	tacBad  = "bad"  // it does not: an alarm was raised
	tacNone = "none" // nothing to check it with: no TAC, no PSAM terminal id, a card not issued here, an M1 wallet
)

// reconActor names the host's reconciliation in the ledger.
const reconActor = "host reconciliation"

// EventAlarmAck is the ledger entry of an operator's (or the
// reconciliation's) acknowledgement of an alarm.
const EventAlarmAck = "alarm_ack"

// reconcileTimeout bounds the checks after an upload's commit; what they
// leave undone the next upload of the card or PSAM, or the sweep, does.
const reconcileTimeout = 30 * time.Second

// reconTouched is what an upload left for the checks after its commit.
type reconTouched struct {
	cards, psams map[string]bool
}

func newReconTouched() *reconTouched {
	return &reconTouched{cards: map[string]bool{}, psams: map[string]bool{}}
}

func epursePurse(p string) bool { return p == "EP" || p == "ED" }

// verifyRowTAC checks a done e-purse load's or purchase's TAC with the
// card's key (k nil: the host holds no keys, nothing is checked). A
// purchase's TAC covers the PSAM's terminal id and serial; a load's was
// verified at completion when an applied authorization holds it, else it
// must verify for one of the credit's authorizations at the row's counter.
// It returns the check and, for tacBad, why.
func verifyRowTAC(tx *sql.Tx, k *Keys, r hostapi.JournalRow) (check, reason string, err error) {
	if k == nil || r.State != rowDone || r.TAC == "" || !epursePurse(r.Purse) || !movesMoney(r.Kind) ||
		(r.Kind == rowPurchase && r.PSAMTerminal == "") {
		return tacNone, "", nil
	}
	c, err := card(tx, r.Card)
	if errors.Is(err, ErrNotFound) {
		return tacNone, "", nil
	} else if err != nil {
		return "", "", err
	}
	if c.Kind != CardEPurse {
		return tacNone, "", nil
	}
	if r.Kind == rowPurchase {
		reason, err := provedSale(k, c, r, r.PSAMTerminal)
		if err != nil || reason != "" {
			return tacBad, reason, err
		}
		return tacOK, "", nil
	}
	var n int
	if err := tx.QueryRow(`SELECT count(*) FROM authorizations WHERE card = ? AND purse = ? AND counter = ? AND state = 'applied' AND tac = ?`,
		r.Card, r.Purse, int64(r.Counter), r.TAC).Scan(&n); err != nil {
		return "", "", err
	}
	if n > 0 {
		return tacOK, "", nil // verified at completion
	}
	auths, err := queryAuths(tx, `card = ? AND purse = ? AND counter = ? AND credit = ?`, r.Card, r.Purse, int64(r.Counter), r.CreditID)
	if err != nil {
		return "", "", err
	}
	serial, err := c.serial()
	if err != nil {
		return "", "", err
	}
	tac, err := hex4("tac", r.TAC)
	if err != nil {
		return "", "", err
	}
	match, err := (&Rules{Keys: k}).matchTAC(serial, auths, tac)
	switch {
	case err != nil:
		return "", "", err
	case match != nil:
		return tacOK, "", nil
	}
	return tacBad, fmt.Sprintf("the load's TAC does not verify: TAC %s of load %s (credit %s, %s, %s online counter %d) is the card's for no authorization the host issued",
		r.TAC, r.ID, r.CreditID, money.Format(r.AmountFen), r.Purse, r.Counter), nil
}

// checkRowTACOnce verifies row r's TAC (verifyRowTAC), stores the check on
// the row and, when it fails, raises the row's alarm (once per terminal and
// row, journalAlarm).
func checkRowTACOnce(tx *sql.Tx, k *Keys, terminal string, r hostapi.JournalRow, now time.Time) (alarm string, err error) {
	check, reason, err := verifyRowTAC(tx, k, r)
	if err != nil {
		return "", err
	}
	if _, err := tx.Exec(`UPDATE journal SET tac_check = ? WHERE terminal = ? AND id = ?`, check, terminal, r.ID); err != nil {
		return "", err
	}
	if check != tacBad {
		return "", nil
	}
	alarmed, err := journalAlarm(tx, r, terminal, terminalActor(terminal), "uploaded with a TAC that does not verify", reason, now)
	if err != nil || !alarmed {
		return "", err
	}
	return reason, nil
}

// recordMove notes a stored row for the checks after the upload: an
// e-purse load or purchase as its card's move, a purchase's PSAM serial.
// An unknown row holds its counter (the host has the transaction, in
// doubt: no gap), and is booked once it settles done; one that settles
// failed gives the counter back (the card's next transaction takes it). A
// move or serial held already (the same debit sent by two terminals)
// stays as first recorded, but for a done row taking an unknown one's
// place.
func recordMove(tx *sql.Tx, terminal string, r hostapi.JournalRow, touched *reconTouched) error {
	if movesMoney(r.Kind) && epursePurse(r.Purse) {
		if err := recordCounter(tx, terminal, r); err != nil {
			return err
		}
		touched.cards[r.Card] = true
	}
	if r.Kind == rowPurchase && r.PSAMTerminal != "" && r.TermSerial != 0 {
		if _, err := tx.Exec(`INSERT INTO recon_serials (psam, serial, terminal, row_id) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			r.PSAMTerminal, int64(r.TermSerial), terminal, r.ID); err != nil {
			return err
		}
		touched.psams[r.PSAMTerminal] = true
	}
	return nil
}

// recordCounter is recordMove's part for the card's counter.
func recordCounter(tx *sql.Tx, terminal string, r hostapi.JournalRow) error {
	if r.State == rowFailed {
		_, err := tx.Exec(`DELETE FROM recon_moves WHERE card = ? AND purse = ? AND kind = ? AND counter = ? AND terminal = ? AND row_id = ? AND state = ?`,
			r.Card, r.Purse, r.Kind, int64(r.Counter), terminal, r.ID, rowUnknown)
		return err
	}
	t, err := time.Parse(time.RFC3339, r.Time)
	if err != nil {
		return fmt.Errorf("row %s: time %q: %w", r.ID, r.Time, err)
	}
	_, err = tx.Exec(`INSERT INTO recon_moves (card, purse, kind, counter, terminal, row_id, balance_fen, amount_fen, time, state)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (card, purse, kind, counter) DO UPDATE SET state = excluded.state, terminal = excluded.terminal,
			row_id = excluded.row_id, balance_fen = excluded.balance_fen, amount_fen = excluded.amount_fen, time = excluded.time
		WHERE recon_moves.state = 'unknown' AND excluded.state = 'done'`,
		r.Card, r.Purse, r.Kind, int64(r.Counter), terminal, r.ID, r.BalanceFen, r.AmountFen, t.UTC().Format(time.RFC3339), r.State)
	return err
}

// reconcile checks the cards and PSAMs an upload touched, each in its own
// transaction under its lock, and returns the alarms it raised.
func (s *Store) reconcile(ctx context.Context, touched *reconTouched, now time.Time) ([]string, error) {
	var all []string
	for _, number := range sortedKeys(touched.cards) {
		var alarms []string
		err := s.inCardTx(ctx, number, func(tx *sql.Tx) (err error) {
			if alarms, err = reconcileCard(tx, number, now); err != nil {
				return err
			}
			late, err := replacementLate(tx, number, now)
			alarms = append(alarms, late...)
			return err
		})
		if err != nil {
			return all, fmt.Errorf("reconciliation of card %s: %w", redact.CardNumber(number), err)
		}
		all = append(all, alarms...)
	}
	for _, psam := range sortedKeys(touched.psams) {
		var alarms []string
		err := s.runTx(ctx, "psam:"+psam, func(tx *sql.Tx) (err error) {
			alarms, err = reconcilePSAM(tx, psam, now)
			return err
		})
		if err != nil {
			return all, fmt.Errorf("reconciliation of PSAM %s: %w", psam, err)
		}
		all = append(all, alarms...)
	}
	return all, nil
}

// sortedKeys are m's keys in order, so that work on them goes in one
// order whatever the map's.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// move is one row of recon_moves.
type move struct {
	purse, kind, terminal, rowID, time, state string
	counter, balance, amount                  int64
	gapped, booked                            int64 // 0 or 1
}

// pendingMoves selects the moves the gap check or the books have not
// taken in (recon_moves_pending).
const pendingMoves = `(gapped = 0 OR (state = 'done' AND booked = 0))`

// reconcileCard takes a card's moves into its gap checks and, once done,
// its books, then checks the books of each purse they moved.
func reconcileCard(tx *sql.Tx, number string, now time.Time) ([]string, error) {
	rows, err := tx.Query(`SELECT purse, kind, counter, terminal, row_id, balance_fen, amount_fen, time, state, gapped, booked FROM recon_moves
		WHERE card = ? AND `+pendingMoves+` ORDER BY purse, kind, counter`, number)
	moves, err := scanAll(rows, err, func(sc interface{ Scan(...any) error }) (move, error) {
		var m move
		err := sc.Scan(&m.purse, &m.kind, &m.counter, &m.terminal, &m.rowID, &m.balance, &m.amount, &m.time, &m.state, &m.gapped, &m.booked)
		return m, err
	})
	if err != nil {
		return nil, err
	}
	var alarms []string
	purses := map[string]bool{}
	for _, m := range moves {
		if m.gapped == 0 {
			a, err := checkGap(tx, cardSequence(number, m.purse, m.kind), m.counter, m.terminal, m.rowID, now)
			if err != nil {
				return nil, err
			}
			alarms = append(alarms, a...)
		}
		booked := m.booked
		if m.state == rowDone && booked == 0 {
			if err := book(tx, number, m); err != nil {
				return nil, err
			}
			booked = 1
		}
		if _, err := tx.Exec(`UPDATE recon_moves SET gapped = 1, booked = ? WHERE card = ? AND purse = ? AND kind = ? AND counter = ?`,
			booked, number, m.purse, m.kind, m.counter); err != nil {
			return nil, err
		}
		purses[m.purse] = true
	}
	for _, p := range sortedKeys(purses) {
		a, err := checkBooks(tx, number, p, now)
		if err != nil {
			return nil, err
		}
		if a != "" {
			alarms = append(alarms, a)
		}
	}
	return alarms, nil
}

// reconcilePSAM takes a PSAM's unchecked serials into its gap check.
func reconcilePSAM(tx *sql.Tx, psam string, now time.Time) ([]string, error) {
	type serial struct {
		n               int64
		terminal, rowID string
	}
	rows, err := tx.Query(`SELECT serial, terminal, row_id FROM recon_serials WHERE psam = ? AND checked = 0 ORDER BY serial`, psam)
	serials, err := scanAll(rows, err, func(sc interface{ Scan(...any) error }) (serial, error) {
		var s serial
		return s, sc.Scan(&s.n, &s.terminal, &s.rowID)
	})
	if err != nil {
		return nil, err
	}
	q := psamSequence(psam)
	var alarms []string
	for _, s := range serials {
		a, err := checkGap(tx, q, s.n, s.terminal, s.rowID, now)
		if err != nil {
			return nil, err
		}
		alarms = append(alarms, a...)
		if _, err := tx.Exec(`UPDATE recon_serials SET checked = 1 WHERE psam = ? AND serial = ?`, psam, s.n); err != nil {
			return nil, err
		}
	}
	return alarms, nil
}

// sequence is a run of numbers without holes: a card purse's online
// (load) or offline (purchase) counter, a PSAM's terminal serial.
type sequence struct {
	name string // recon_gaps.seq
	card string // the ledger's card for its alarms; "" for a PSAM's
	what string // how an alarm names it
	from string // the checked values: a FROM and WHERE with ? for args
	col  string
	args []any
}

func cardSequence(number, purse, kind string) sequence {
	what := purse + " purchase (offline) counter"
	if kind == rowLoad {
		what = purse + " load (online) counter"
	}
	return sequence{name: "card " + number + " " + purse + " " + kind, card: number, what: what,
		from: `recon_moves WHERE card = ? AND purse = ? AND kind = ? AND gapped = 1`, col: "counter", args: []any{number, purse, kind}}
}

func psamSequence(psam string) sequence {
	return sequence{name: "psam " + psam, what: "PSAM " + psam + " terminal serial",
		from: `recon_serials WHERE psam = ? AND checked = 1`, col: "serial", args: []any{psam}}
}

// neighbour is the checked value nearest below (agg max, op <) or above
// (min, >) n.
func (q sequence) neighbour(tx *sql.Tx, agg, op string, n int64) (int64, bool, error) {
	var v sql.NullInt64
	err := tx.QueryRow(`SELECT `+agg+`(`+q.col+`) FROM `+q.from+` AND `+q.col+` `+op+` ?`, append(slices.Clone(q.args), n)...).Scan(&v)
	return v.Int64, v.Valid, err
}

// checkGap takes value n of sequence q in: it fills a gap (whose alarm is
// resolved once nothing in it is missing), or shows a new one below or
// above it (one alarm each).
func checkGap(tx *sql.Tx, q sequence, n int64, terminal, rowID string, now time.Time) ([]string, error) {
	var lo, hi, alarm int64
	err := tx.QueryRow(`SELECT lo, hi, alarm FROM recon_gaps WHERE seq = ? AND lo <= ? AND hi >= ? AND filled IS NULL`, q.name, n, n).Scan(&lo, &hi, &alarm)
	switch {
	case err == nil:
		var held int64
		if err := tx.QueryRow(`SELECT count(*) FROM `+q.from+` AND `+q.col+` BETWEEN ? AND ?`, append(slices.Clone(q.args), lo, hi)...).Scan(&held); err != nil {
			return nil, err
		}
		if held+1 < hi-lo+1 {
			return nil, nil // still missing some
		}
		if _, err := tx.Exec(`UPDATE recon_gaps SET filled = ? WHERE seq = ? AND lo = ?`, dbTime(now), q.name, lo); err != nil {
			return nil, err
		}
		note := fmt.Sprintf("resolved: the missing %s %s arrived, the last as row %s of terminal %s", q.what, span(lo, hi), rowID, terminal)
		return nil, resolveAlarm(tx, alarm, reconActor, note, now)
	case !errors.Is(err, sql.ErrNoRows):
		return nil, err
	}
	var alarms []string
	below, ok, err := q.neighbour(tx, "max", "<", n)
	if err != nil {
		return nil, err
	}
	if ok && below < n-1 {
		a, err := openGap(tx, q, below+1, n-1, fmt.Sprintf("between %d and %d (row %s of terminal %s)", below, n, rowID, terminal), now)
		if err != nil {
			return nil, err
		}
		alarms = append(alarms, a)
	}
	above, ok, err := q.neighbour(tx, "min", ">", n)
	if err != nil {
		return nil, err
	}
	if ok && above > n+1 {
		a, err := openGap(tx, q, n+1, above-1, fmt.Sprintf("between %d (row %s of terminal %s) and %d", n, rowID, terminal, above), now)
		if err != nil {
			return nil, err
		}
		alarms = append(alarms, a)
	}
	return alarms, nil
}

func span(lo, hi int64) string {
	if lo == hi {
		return fmt.Sprint(lo)
	}
	return fmt.Sprintf("%d to %d", lo, hi)
}

// openGap records a gap and raises its alarm.
func openGap(tx *sql.Tx, q sequence, lo, hi int64, where string, now time.Time) (string, error) {
	subject := q.what
	if q.card != "" {
		subject = "card " + redact.CardNumber(q.card) + " " + q.what
	}
	detail := fmt.Sprintf("%s %s never reached the host, %s: a transaction made and not uploaded (a terminal lost rows, or holds them still)", subject, span(lo, hi), where)
	id, err := insertAlarm(tx, q.card, detail, now)
	if err != nil {
		return "", err
	}
	_, err = tx.Exec(`INSERT INTO recon_gaps (seq, lo, hi, alarm) VALUES (?, ?, ?, ?)`, q.name, lo, hi, id)
	return detail, err
}

// insertAlarm adds an alarm of the reconciliation to the ledger and
// returns its id.
func insertAlarm(tx *sql.Tx, number, detail string, now time.Time) (int64, error) {
	var id int64
	err := tx.QueryRow(`INSERT INTO ledger (time, actor, event, card, detail) VALUES (?, ?, ?, ?, ?) RETURNING id`,
		dbTime(now), reconActor, EventAlarm, number, detail).Scan(&id)
	return id, err
}

// book takes a move into its purse's books: the opening balance is the
// balance before the earliest move, the last reported one the balance
// after the newest (by the row's time; a tie goes to the later arrival).
func book(tx *sql.Tx, number string, m move) error {
	net := m.amount
	if m.kind == rowPurchase {
		net = -net
	}
	_, err := tx.Exec(`INSERT INTO purse_books (card, purse, first_time, opening_fen, net_fen, last_time, last_after_fen)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (card, purse) DO UPDATE SET
			net_fen = purse_books.net_fen + excluded.net_fen,
			opening_fen = CASE WHEN excluded.first_time < purse_books.first_time THEN excluded.opening_fen ELSE purse_books.opening_fen END,
			first_time = CASE WHEN excluded.first_time < purse_books.first_time THEN excluded.first_time ELSE purse_books.first_time END,
			last_after_fen = CASE WHEN excluded.last_time >= purse_books.last_time THEN excluded.last_after_fen ELSE purse_books.last_after_fen END,
			last_time = CASE WHEN excluded.last_time >= purse_books.last_time THEN excluded.last_time ELSE purse_books.last_time END`,
		number, m.purse, m.time, m.balance, net, m.time, m.balance+net)
	return err
}

// checkBooks compares a purse's books with the balance the card last
// reported, unless a gap of the purse is open or a move of it is in doubt
// (either explains a difference): one alarm while they differ, resolved
// once they agree.
func checkBooks(tx *sql.Tx, number, purse string, now time.Time) (string, error) {
	var gaps, doubts int
	if err := tx.QueryRow(`SELECT count(*) FROM recon_gaps WHERE seq IN (?, ?) AND filled IS NULL`,
		cardSequence(number, purse, rowLoad).name, cardSequence(number, purse, rowPurchase).name).Scan(&gaps); err != nil || gaps > 0 {
		return "", err
	}
	if err := tx.QueryRow(`SELECT count(*) FROM recon_moves WHERE card = ? AND purse = ? AND state = ?`, number, purse, rowUnknown).Scan(&doubts); err != nil || doubts > 0 {
		return "", err
	}
	var opening, net, last int64
	var alarm sql.NullInt64
	if err := tx.QueryRow(`SELECT opening_fen, net_fen, last_after_fen, alarm FROM purse_books WHERE card = ? AND purse = ?`, number, purse).
		Scan(&opening, &net, &last, &alarm); err != nil {
		return "", err
	}
	books := opening + net
	switch {
	case last != books && !alarm.Valid:
		detail := fmt.Sprintf("card %s %s: the card last reported a balance of %s, the host's books say %s (opening %s, loads less purchases %s): %s unaccounted for",
			redact.CardNumber(number), purse, money.Format(last), money.Format(books), money.Format(opening), money.Format(net), money.Format(last-books))
		id, err := insertAlarm(tx, number, detail, now)
		if err != nil {
			return "", err
		}
		_, err = tx.Exec(`UPDATE purse_books SET alarm = ? WHERE card = ? AND purse = ?`, id, number, purse)
		return detail, err
	case last == books && alarm.Valid:
		if err := resolveAlarm(tx, alarm.Int64, reconActor, "resolved: the books agree with the card again, at "+money.Format(last), now); err != nil {
			return "", err
		}
		_, err := tx.Exec(`UPDATE purse_books SET alarm = NULL WHERE card = ? AND purse = ?`, number, purse)
		return "", err
	}
	return "", nil
}

// resolveAlarm acknowledges an alarm unless someone did already, with the
// acknowledgement in the ledger.
func resolveAlarm(tx *sql.Tx, id int64, operator, note string, now time.Time) error {
	_, err := ackAlarm(tx, id, operator, note, now)
	return err
}

// sweepBatch bounds the cards and the PSAMs one ReconcileSweep checks;
// the next run takes the rest.
const sweepBatch = 100

// ReconcileSweep checks the rows an upload stored but could not check
// after its commit (the host stopped, or the card's lock was busy): at
// most sweepBatch cards and PSAMs with unchecked rows. Of several host
// processes on one PostgreSQL database, one at a time runs it. It returns
// the alarms it raised.
func (s *Store) ReconcileSweep(ctx context.Context, now time.Time) ([]string, error) {
	var alarms []string
	_, err := s.exclusive(ctx, "reconcile", func(ctx context.Context) error {
		touched := newReconTouched()
		for _, q := range []struct {
			query string
			into  map[string]bool
		}{
			{`SELECT DISTINCT card FROM recon_moves WHERE ` + pendingMoves + ` LIMIT ?`, touched.cards},
			{`SELECT DISTINCT psam FROM recon_serials WHERE checked = 0 LIMIT ?`, touched.psams},
		} {
			rows, err := s.db.QueryContext(ctx, q.query, sweepBatch)
			keys, err := scanAll(rows, err, func(sc interface{ Scan(...any) error }) (string, error) {
				var k string
				return k, sc.Scan(&k)
			})
			if err != nil {
				return err
			}
			for _, k := range keys {
				q.into[k] = true
			}
		}
		var err error
		alarms, err = s.reconcile(ctx, touched, now)
		return err
	})
	return alarms, err
}
