package host

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Alarm is a ledger row of event alarm, with its acknowledgement if it has
// one: something a person must look at (a TAC that does not verify, a gap
// in a card's counters or a PSAM's serials, books that do not balance).
type Alarm struct {
	ID     int64  `json:"id"`
	Time   string `json:"time"` // RFC 3339
	Actor  string `json:"actor"`
	Card   string `json:"card,omitempty"` // "" for a PSAM's
	Detail string `json:"detail"`
	// Acked is set once an operator (or the reconciliation, for a gap
	// later filled) acknowledged it, with who, when and the note.
	Acked       bool   `json:"acked"`
	AckOperator string `json:"ack_operator,omitempty"`
	AckTime     string `json:"ack_time,omitempty"`
	AckNote     string `json:"ack_note,omitempty"`
}

// MaxAckNoteLen bounds an acknowledgement's note.
const MaxAckNoteLen = 1000

// ErrAcked is returned by AckAlarm for an alarm acknowledged already.
var ErrAcked = errors.New("alarm acknowledged already")

// Alarms lists the alarms, open ones first, each part oldest first; with
// all false only the open ones.
func (s *Store) Alarms(ctx context.Context, all bool) ([]Alarm, error) {
	withAcked := 0
	if all {
		withAcked = 1
	}
	rows, err := s.db.QueryContext(ctx, `SELECT l.id, l.time, l.actor, l.card, l.detail, coalesce(a.operator, ''), coalesce(a.time, ''), coalesce(a.note, '')
		FROM ledger l LEFT JOIN alarm_acks a ON a.alarm = l.id
		WHERE l.event = 'alarm' AND (? = 1 OR a.alarm IS NULL)
		ORDER BY CASE WHEN a.alarm IS NULL THEN 0 ELSE 1 END, l.id`, withAcked)
	return scanAll(rows, err, func(sc interface{ Scan(...any) error }) (Alarm, error) {
		var a Alarm
		err := sc.Scan(&a.ID, &a.Time, &a.Actor, &a.Card, &a.Detail, &a.AckOperator, &a.AckTime, &a.AckNote)
		a.Time, a.AckTime = rfc3339(a.Time), rfc3339(a.AckTime)
		a.Acked = a.AckOperator != ""
		return a, err
	})
}

// OpenAlarms counts the alarms nobody acknowledged.
func (s *Store) OpenAlarms(ctx context.Context) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM ledger l WHERE l.event = 'alarm'
		AND NOT EXISTS (SELECT 1 FROM alarm_acks a WHERE a.alarm = l.id)`).Scan(&n)
	return n, err
}

// AckAlarm acknowledges alarm id with the operator's note, in the ledger
// too. ErrNotFound for no such alarm, ErrAcked for one acknowledged
// already (the first note stands), an error for an empty note or
// operator.
func (s *Store) AckAlarm(ctx context.Context, id int64, operator, note string, now time.Time) error {
	note = strings.TrimSpace(note)
	switch {
	case strings.TrimSpace(operator) == "":
		return errors.New("the operator who acknowledges is named")
	case note == "":
		return errors.New("an acknowledgement says what was found (a note)")
	case len(note) > MaxAckNoteLen:
		return fmt.Errorf("note of %d bytes, at most %d", len(note), MaxAckNoteLen)
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		done, err := ackAlarm(tx, id, operator, note, now)
		if err != nil {
			return err
		}
		if !done {
			return fmt.Errorf("alarm %d: %w", id, ErrAcked)
		}
		return nil
	})
}

// ackAlarm records the acknowledgement of alarm id and its ledger entry,
// and says whether it did: false when it was acknowledged already.
func ackAlarm(tx *sql.Tx, id int64, operator, note string, now time.Time) (bool, error) {
	var number string
	err := tx.QueryRow(`SELECT card FROM ledger WHERE id = ? AND event = 'alarm'`, id).Scan(&number)
	if errors.Is(err, sql.ErrNoRows) {
		return false, fmt.Errorf("alarm %d: %w", id, ErrNotFound)
	} else if err != nil {
		return false, err
	}
	res, err := tx.Exec(`INSERT INTO alarm_acks (alarm, operator, note, time) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`,
		id, operator, note, dbTime(now))
	if err != nil {
		return false, err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return false, err
	}
	return true, addLedger(tx, ledgerEntry{Time: now, Actor: operator, Event: EventAlarmAck, Card: number,
		Detail: fmt.Sprintf("alarm %d acknowledged: %s", id, note)})
}
