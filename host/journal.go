package host

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode"

	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/money"
	"github.com/cardd/cardd/redact"
)

// maxJournalIDLen bounds a journal row id; the terminal's are its 12-digit
// id, a dash and a sequence number.
const maxJournalIDLen = 128

// maxJournalTextLen bounds a row's credit id and detail: the detail is a
// sentence for people (a door's reason, a card's status word), never a
// document.
const maxJournalTextLen = 4096

// MaxJournalAmountFen is the least upper bound of a journal row's amount and
// balance: 100000.00 yuan, a hundred times the default balance cap. The
// bound in force is the larger of it and the host's balance cap, so raising
// the cap never refuses a row it allowed; past it a row is a bug or a forgery,
// not a card operation.
const MaxJournalAmountFen = 10_000_000

// minJournalTime is the earliest time a journal row may carry: before it a
// terminal's clock was never set (the zero time, the Unix epoch).
var minJournalTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// Journal row kinds and states, as the terminal writes them (package
// offline). The host is sent a row once it left intent: only then does the
// terminal upload it.
const (
	rowRead     = "read"
	rowLoad     = "load"
	rowPurchase = "purchase"
	rowAccess   = "access"
	rowRecovery = "recovery"

	rowDone    = "done"
	rowFailed  = "failed"
	rowUnknown = "unknown"
)

// settled says whether a row's state is final.
func settled(state string) bool { return state == rowDone || state == rowFailed }

// rowChecker validates journal rows against the host's clock and amount cap.
type rowChecker struct {
	now       time.Time
	amountCap int64
	// keys verify the TACs of stored rows (reconciliation); nil checks
	// none.
	keys *Keys
}

// check returns why row r cannot be stored, or "" when it can: the reason
// of the first check that fails, in the order below.
func (c rowChecker) check(r hostapi.JournalRow) string {
	for _, check := range []func(hostapi.JournalRow) string{
		checkRowID,
		checkRowKindState,
		checkRowCard,
		checkRowPurse,
		c.checkRowAmounts,
		checkRowKindFields,
		checkRowTAC,
		checkRowPSAM,
		c.checkRowTime,
	} {
		if reason := check(r); reason != "" {
			return reason
		}
	}
	return ""
}

// checkRowID: an id is printable ASCII without spaces, at most
// maxJournalIDLen long.
func checkRowID(r hostapi.JournalRow) string {
	switch {
	case r.ID == "":
		return "empty id"
	case len(r.ID) > maxJournalIDLen:
		return fmt.Sprintf("id of %d characters, at most %d", len(r.ID), maxJournalIDLen)
	case strings.IndexFunc(r.ID, func(c rune) bool { return c > unicode.MaxASCII || unicode.IsControl(c) || c == ' ' }) >= 0:
		return fmt.Sprintf("id %q: printable ASCII without spaces only", r.ID)
	}
	return ""
}

// checkRowKindState: a kind the terminal writes, a state past intent.
func checkRowKindState(r hostapi.JournalRow) string {
	switch r.Kind {
	case rowRead, rowLoad, rowPurchase, rowAccess, rowRecovery:
	default:
		return fmt.Sprintf("kind %q: want read, load, purchase, access or recovery", r.Kind)
	}
	switch r.State {
	case rowDone, rowFailed, rowUnknown:
	default:
		return fmt.Sprintf("state %q: want done, failed or unknown (a row in intent stays at the terminal)", r.State)
	}
	return ""
}

// checkRowCard: a card number or UID, masked in the reason.
func checkRowCard(r hostapi.JournalRow) string {
	if err := hostapi.CheckCardID(r.Card); err != nil {
		return maskedCardError(err)
	}
	return ""
}

// movesMoney says whether a row of this kind moves money on the card.
func movesMoney(kind string) bool { return kind == rowLoad || kind == rowPurchase }

// checkRowPurse: a load or purchase names its purse, a door decision none.
func checkRowPurse(r hostapi.JournalRow) string {
	switch {
	case r.Purse != "" && r.Purse != "EP" && r.Purse != "ED" && r.Purse != hostapi.PurseM1:
		return fmt.Sprintf("purse %q: want EP, ED, %s or none", r.Purse, hostapi.PurseM1)
	case movesMoney(r.Kind) && r.Purse == "":
		return fmt.Sprintf("a %s row names its purse (EP, ED or %s)", r.Kind, hostapi.PurseM1)
	case r.Kind == rowAccess && r.Purse != "":
		return fmt.Sprintf("purse %q: a door decision names none", r.Purse)
	}
	return ""
}

// checkRowAmounts: the amount and the balance are within the cap.
func (c rowChecker) checkRowAmounts(r hostapi.JournalRow) string {
	if reason := c.checkAmount("amount_fen", r.AmountFen); reason != "" {
		return reason
	}
	return c.checkAmount("balance_fen", r.BalanceFen)
}

// checkRowKindFields: the fields only some kinds have (an amount, a credit,
// a terminal serial), and the bounded lengths of the credit and detail.
func checkRowKindFields(r hostapi.JournalRow) string {
	switch {
	case movesMoney(r.Kind) && r.AmountFen == 0:
		return fmt.Sprintf("amount_fen 0: a %s moves money", r.Kind)
	case (r.Kind == rowRead || r.Kind == rowAccess) && r.AmountFen != 0:
		return fmt.Sprintf("amount_fen %d: a %s row moves no money", r.AmountFen, r.Kind)
	case r.Kind == rowLoad && r.CreditID == "":
		return "a load row names the credit it applies"
	case r.Kind != rowLoad && r.CreditID != "" && !closeRef(r):
		return fmt.Sprintf("credit_id %q: only a load row applies a credit (or a purchase or read closes a card: %s and its number)", r.CreditID, hostapi.CloseIDPrefix)
	case len(r.CreditID) > maxJournalIDLen:
		return fmt.Sprintf("credit_id of %d characters, at most %d", len(r.CreditID), maxJournalIDLen)
	case len(r.Detail) > maxJournalTextLen:
		return fmt.Sprintf("detail of %d bytes, at most %d", len(r.Detail), maxJournalTextLen)
	case r.Kind != rowPurchase && r.TermSerial != 0:
		return fmt.Sprintf("term_serial %d: only a purchase has one", r.TermSerial)
	}
	return ""
}

// checkRowTime: an RFC 3339 time, and a plausible one except on a load or
// purchase, which is stored with an alarm instead (checkClock).
func (c rowChecker) checkRowTime(r hostapi.JournalRow) string {
	if _, err := time.Parse(time.RFC3339, r.Time); err != nil {
		return fmt.Sprintf("time %q: want RFC 3339, like 2026-12-03T09:30:00+08:00", r.Time)
	}
	if reason := c.checkClock(r); reason != "" && !movesMoney(r.Kind) {
		return reason
	}
	return ""
}

// checkClock says why row r's time cannot be right: before 2000, or too far
// ahead of the host's clock. A load or purchase is stored all the same, with
// an alarm (storeJournal): the card moved money whatever the terminal's
// clock said (a kiosk without a clock battery sells before NTP), and its TAC,
// computed over that time, could not be sent again with a corrected one.
func (c rowChecker) checkClock(r hostapi.JournalRow) string {
	t, err := time.Parse(time.RFC3339, r.Time)
	switch {
	case err != nil:
		return ""
	case t.Before(minJournalTime):
		return fmt.Sprintf("time %s is before %s: the terminal's clock was not set", r.Time, minJournalTime.Format(time.DateOnly))
	case t.After(c.now.Add(MaxTimeOffset)):
		return fmt.Sprintf("time %s is more than %v ahead of the host's clock (%s): check the terminal's clock",
			r.Time, MaxTimeOffset, c.now.UTC().Format(time.RFC3339))
	}
	return ""
}

func (c rowChecker) checkAmount(field string, v int64) string {
	if v < 0 || v > c.amountCap {
		return fmt.Sprintf("%s %d: want 0 to %d fen (%s)", field, v, c.amountCap, money.Format(c.amountCap))
	}
	return ""
}

// checkRowTAC: a TAC is the card's 4-byte proof of an e-purse load or
// purchase that happened, so it is 8 upper-case hex digits, on a done row of
// those only. A done e-purse load always has it (the terminal reads it from
// the card before it calls the load done); a done purchase may lack it (the
// card moved on before GET TRANSACTION PROVE could fetch it).
func checkRowTAC(r hostapi.JournalRow) string {
	epurse := r.Purse == "EP" || r.Purse == "ED"
	if r.TAC == "" {
		if r.Kind == rowLoad && epurse && r.State == rowDone {
			return "a done e-purse load carries the card's TAC"
		}
		return ""
	}
	if len(r.TAC) != 8 || strings.Trim(r.TAC, "0123456789ABCDEF") != "" {
		return fmt.Sprintf("tac %q: want 4 bytes as 8 upper-case hex digits", r.TAC)
	}
	if !(r.Kind == rowLoad || r.Kind == rowPurchase) || !epurse || r.State != rowDone {
		return fmt.Sprintf("tac %s: only a done e-purse load or purchase has one (this is a %s %s row, purse %q)", r.TAC, r.State, r.Kind, r.Purse)
	}
	return ""
}

// checkRowPSAM: a PSAM terminal id is 12 upper-case hex digits, on an
// e-purse purchase only (the PSAM computed its MAC1 and verifies its TAC).
func checkRowPSAM(r hostapi.JournalRow) string {
	t := r.PSAMTerminal
	switch {
	case t == "":
	case len(t) != 12 || strings.Trim(t, "0123456789ABCDEF") != "":
		return fmt.Sprintf("psam_terminal %q: want the PSAM's 6-byte terminal id as 12 upper-case hex digits", t)
	case r.Kind != rowPurchase || !epursePurse(r.Purse):
		return fmt.Sprintf("psam_terminal %s: only an e-purse purchase is made with a PSAM (this is a %s row, purse %q)", t, r.Kind, r.Purse)
	}
	return ""
}

// sameRecord compares the fields a settled row is held to: everything but
// the detail, which is a note for people the terminal may reword. Times are
// compared as instants: a terminal whose time zone changed between two
// uploads writes the same time another way.
func sameRecord(a, b hostapi.JournalRow) bool {
	a.Detail, b.Detail = "", ""
	ta, errA := time.Parse(time.RFC3339, a.Time)
	tb, errB := time.Parse(time.RFC3339, b.Time)
	if errA == nil && errB == nil && ta.Equal(tb) {
		a.Time, b.Time = "", ""
	}
	return a == b
}

// earlierVersion says whether r is settled row old as it was before it
// settled: unknown, without a TAC, the same otherwise. It arrives late when
// two uploads of the terminal cross.
func earlierVersion(old, r hostapi.JournalRow) bool {
	old.State, old.TAC = rowUnknown, ""
	return r.State == rowUnknown && sameRecord(old, r)
}

// rowDiff names the first fields where b differs from a, for a refusal.
func rowDiff(a, b hostapi.JournalRow) string {
	var d []string
	add := func(field string, x, y any) {
		if x != y {
			d = append(d, fmt.Sprintf("%s %v → %v", field, x, y))
		}
	}
	add("kind", a.Kind, b.Kind)
	add("state", a.State, b.State)
	add("card", redact.CardNumber(a.Card), redact.CardNumber(b.Card))
	add("purse", a.Purse, b.Purse)
	add("counter", a.Counter, b.Counter)
	add("balance_fen", a.BalanceFen, b.BalanceFen)
	add("amount_fen", a.AmountFen, b.AmountFen)
	add("credit_id", a.CreditID, b.CreditID)
	add("tac", a.TAC, b.TAC)
	add("term_serial", a.TermSerial, b.TermSerial)
	add("psam_terminal", a.PSAMTerminal, b.PSAMTerminal)
	add("time", a.Time, b.Time)
	return strings.Join(d, ", ")
}

// JournalResult is what storeJournal made of a batch: the response and the
// alarms it recorded, for the caller's log.
type JournalResult struct {
	hostapi.JournalResponse
	Alarms []string
	// ReconErr is why the reconciliation after the batch's commit failed
	// (the rows are stored and acked all the same; the next upload of the
	// same card or PSAM checks them).
	ReconErr error
}

// storeJournal stores a batch of journal rows of one terminal and answers
// each row (money rule 5: a batch sent twice is stored once and acked
// twice). Each row is checked on its own (rowChecker); a bad row is refused
// with its reason and the rest of the batch is stored all the same. Two
// copies of one id in a batch are both refused: the terminal sends each row
// once, so one of them is not the terminal's, and the host cannot tell which.
//
// A stored row settles as the terminal learns its outcome: a row stored
// unknown may come again done, failed or still unknown, with the same
// record otherwise (kind, card, purse, counter, balance, amount, credit,
// serial, time never change). A done or failed row is final: the same copy
// again is acked and changes nothing (a detail reworded replaces the stored
// one), a different one is refused 409 row_settled with what differs, and
// an alarm goes to the card's ledger (once per row) since the terminal's
// record of money contradicts what it said before; except for the row's
// own unknown version arriving late, which is refused without an alarm.
func (s *Store) storeJournal(ctx context.Context, terminal string, rows []hostapi.JournalRow, check rowChecker) (JournalResult, error) {
	res := JournalResult{JournalResponse: hostapi.JournalResponse{Acked: []string{}, Refused: []hostapi.JournalRefusal{}}}
	count := make(map[string]int, len(rows))
	for _, r := range rows {
		count[r.ID]++
	}
	refuse := func(i int, status int, code, reason string) {
		res.Refused = append(res.Refused, hostapi.JournalRefusal{Index: i, ID: rows[i].ID, Status: status, Code: code, Reason: reason})
	}
	now := check.now
	actor := terminalActor(terminal)
	var touched *reconTouched
	err := s.inTerminalTx(ctx, terminal, func(tx *sql.Tx) error {
		res.Acked, res.Refused, res.Alarms = res.Acked[:0], res.Refused[:0], nil // a retry starts over
		touched = newReconTouched()
		// A batch is hundreds of rows: each takes a look-up and an insert.
		get, err := tx.Prepare(storedRowQuery)
		if err != nil {
			return err
		}
		defer get.Close()
		insert, err := tx.Prepare(`INSERT INTO journal (terminal, id, kind, state, card, purse, counter, balance_fen,
			amount_fen, credit_id, tac, detail, time, received, updated, term_serial, psam_terminal) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer insert.Close()
		for i, r := range rows {
			if reason := check.check(r); reason != "" {
				refuse(i, http.StatusBadRequest, hostapi.CodeBadRow, reason)
				continue
			}
			if n := count[r.ID]; n > 1 {
				refuse(i, http.StatusBadRequest, hostapi.CodeBadRow, fmt.Sprintf("id %s is in the batch %d times: a terminal sends each row once; none of them is stored", r.ID, n))
				continue
			}
			old, found, err := storedRow(get, terminal, r.ID)
			if err != nil {
				return err
			}
			held := old
			old, r, fill := withPSAM(old, r, found)
			switch {
			case !found:
				_, err = insert.Exec(terminal, r.ID, r.Kind, r.State, r.Card, r.Purse, int64(r.Counter), r.BalanceFen,
					r.AmountFen, r.CreditID, r.TAC, r.Detail, r.Time, dbTime(now), dbTime(now), int64(r.TermSerial), r.PSAMTerminal)
			case old == r:
				// The same copy again: a retried upload.
			case sameRecord(old, r) && old.Detail != r.Detail && strings.HasPrefix(old.Detail, hostapi.AlarmPrefix) && settled(old.State):
				// A reworded detail must not wipe the terminal's alarm.
				refuse(i, http.StatusConflict, hostapi.CodeRowSettled, fmt.Sprintf("row %s is stored %s with the terminal's alarm in its detail, which is final", r.ID, old.State))
				continue
			case sameRecord(old, r):
				_, err = tx.Exec(`UPDATE journal SET detail = ?, updated = ?, versions = versions + 1 WHERE terminal = ? AND id = ?`,
					r.Detail, dbTime(now), terminal, r.ID)
			case settled(old.State):
				reason := fmt.Sprintf("row %s is stored %s and final; this copy differs (%s): the host keeps the stored one", r.ID, old.State, rowDiff(held, r))
				refuse(i, http.StatusConflict, hostapi.CodeRowSettled, reason)
				if earlierVersion(old, r) {
					continue // old news, not a contradiction
				}
				if alarmed, err := journalAlarm(tx, old, terminal, actor, "re-uploaded changed", reason, now); err != nil {
					return err
				} else if alarmed {
					res.Alarms = append(res.Alarms, reason)
				}
				continue
			default:
				// Unknown, now settled or still unknown: only the outcome
				// may change.
				settling := old
				settling.State, settling.TAC, settling.Detail = r.State, r.TAC, r.Detail
				if !sameRecord(settling, r) {
					refuse(i, http.StatusConflict, hostapi.CodeRowSettled, fmt.Sprintf("row %s is stored unknown; a later copy may change its state and TAC only, this one changes %s", r.ID, rowDiff(old, r)))
					continue
				}
				_, err = tx.Exec(`UPDATE journal SET state = ?, tac = ?, detail = ?, updated = ?, versions = versions + 1 WHERE terminal = ? AND id = ?`,
					r.State, r.TAC, r.Detail, dbTime(now), terminal, r.ID)
			}
			if err != nil {
				return err
			}
			if err := s.rowStored(tx, check, terminal, r, held, found, fill, touched, &res); err != nil {
				return err
			}
			res.Acked = append(res.Acked, r.ID)
		}
		return nil
	})
	if err != nil {
		return JournalResult{}, err
	}
	// The rows are committed: their checks run to the end even when the
	// terminal hangs up now (its stop, a timeout), within their own bound.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), reconcileTimeout)
	defer cancel()
	alarms, err := s.reconcile(rctx, touched, now)
	res.Alarms = append(res.Alarms, alarms...)
	res.ReconErr = err
	return res, nil
}

// rowStored does, in the row's own transaction, what a row just stored or
// settled sets off: its reconciliation, a balance alert, a card's close,
// its alarms. held is the row as stored before (zero when !found); fill
// says the copy only added its PSAM terminal id.
func (s *Store) rowStored(tx *sql.Tx, check rowChecker, terminal string, r, held hostapi.JournalRow, found, fill bool, touched *reconTouched, res *JournalResult) error {
	now := check.now
	if !found || held.State != r.State || fill {
		if err := s.reconcileRow(tx, check.keys, terminal, r, touched, fill, res, now); err != nil {
			return err
		}
		// In the row's own transaction: an alert is never lost, and a
		// replay (the same state again) never gets here.
		if err := queueBalanceAlert(tx, terminal, r, held.State, now); err != nil {
			return err
		}
	}
	if !found || held.State != r.State {
		// Once per row: when it arrives, or settles.
		if err := closeFromRow(tx, terminal, r, now); err != nil {
			return err
		}
	}
	return storedRowAlarms(tx, check, terminal, r, found, res)
}

// withPSAM reads the optional PSAM terminal id (hostapi.JournalRow) of
// copy r of stored row old: a copy without it is the stored one, and the
// first copy with it adds it to a row stored without (fill), so both are
// compared as holding it.
func withPSAM(old, r hostapi.JournalRow, found bool) (hostapi.JournalRow, hostapi.JournalRow, bool) {
	if !found {
		return old, r, false
	}
	if r.PSAMTerminal == "" {
		r.PSAMTerminal = old.PSAMTerminal
	}
	fill := old.PSAMTerminal == "" && r.PSAMTerminal != ""
	if fill {
		old.PSAMTerminal = r.PSAMTerminal
	}
	return old, r, fill
}

// storedRowAlarms raises the alarms of a row just stored: a money row's
// implausible time, the terminal's own alarm.
func storedRowAlarms(tx *sql.Tx, check rowChecker, terminal string, r hostapi.JournalRow, found bool, res *JournalResult) error {
	actor := terminalActor(terminal)
	var alarms [][2]string // what, reason
	if reason := check.checkClock(r); reason != "" && !found {
		// A money row is kept whatever its time (checkClock).
		alarms = append(alarms, [2]string{"stored with a wrong time", reason})
	}
	if strings.HasPrefix(r.Detail, hostapi.AlarmPrefix) {
		// The terminal's own alarm (rule: a card that did not prove
		// itself is a person's question, not a log line).
		alarms = append(alarms, [2]string{"reported by the terminal", r.Detail})
	}
	for _, a := range alarms {
		alarmed, err := journalAlarm(tx, r, terminal, actor, a[0], a[1], check.now)
		if err != nil {
			return err
		}
		if alarmed {
			res.Alarms = append(res.Alarms, a[1])
		}
	}
	return nil
}

// reconcileRow is the part of the reconciliation an upload does for a row
// new or changed: the PSAM terminal id it adds, its TAC's check, its move.
func (s *Store) reconcileRow(tx *sql.Tx, keys *Keys, terminal string, r hostapi.JournalRow, touched *reconTouched, fill bool, res *JournalResult, now time.Time) error {
	if fill {
		if _, err := tx.Exec(`UPDATE journal SET psam_terminal = ? WHERE terminal = ? AND id = ?`, r.PSAMTerminal, terminal, r.ID); err != nil {
			return err
		}
	}
	alarm, err := checkRowTACOnce(tx, keys, terminal, r, now)
	if err != nil {
		return err
	}
	if alarm != "" {
		res.Alarms = append(res.Alarms, alarm)
	}
	return recordMove(tx, terminal, r, touched)
}

const storedRowQuery = `SELECT kind, state, card, purse, counter, balance_fen, amount_fen, credit_id, tac, detail, time, term_serial, psam_terminal
	FROM journal WHERE terminal = ? AND id = ?`

// storedRow reads a stored journal row back in its upload form, with get
// prepared from storedRowQuery.
func storedRow(get *sql.Stmt, terminal, id string) (hostapi.JournalRow, bool, error) {
	r := hostapi.JournalRow{ID: id}
	var counter, serial int64
	err := get.QueryRow(terminal, id).Scan(&r.Kind, &r.State, &r.Card, &r.Purse, &counter,
		&r.BalanceFen, &r.AmountFen, &r.CreditID, &r.TAC, &r.Detail, &r.Time, &serial, &r.PSAMTerminal)
	if errors.Is(err, sql.ErrNoRows) {
		return r, false, nil
	}
	r.Counter, r.TermSerial = uint16(counter), uint32(serial)
	return r, err == nil, err
}

// journalAlarm records in the card's ledger an alarm about a journal row
// (a settled row sent changed, or the terminal's own alarm), once per
// terminal and row, so a terminal (or a forger) that keeps sending it does
// not flood the ledger. It says whether it recorded.
func journalAlarm(tx *sql.Tx, old hostapi.JournalRow, terminal, actor, what, reason string, now time.Time) (bool, error) {
	tag := fmt.Sprintf("journal row %s of terminal %s %s", old.ID, terminal, what)
	var n int
	if err := tx.QueryRow(`SELECT count(*) FROM ledger WHERE card = ? AND event = ? AND detail LIKE ? ESCAPE '\'`,
		old.Card, EventAlarm, likePrefix(tag)+"%").Scan(&n); err != nil || n > 0 {
		return false, err
	}
	return true, addLedger(tx, ledgerEntry{Time: now, Actor: actor, Event: EventAlarm, Card: old.Card,
		Detail: tag + ": " + reason})
}

// likePrefix escapes s for a LIKE pattern with ESCAPE '\'.
func likePrefix(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
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
