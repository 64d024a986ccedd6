package host

import (
	"context"
	"database/sql"
	"time"
)

// Ledger events: what happened to a credit (or a card), in the order it did.
const (
	EventIssued     = "issued"     // the card was issued with an initial balance
	EventAdded      = "added"      // a credit was added by an operator or a payment
	EventAuthorized = "authorized" // MAC2 was issued for a credit at a counter
	EventVoided     = "voided"     // an authorization can no longer be applied
	EventConsumed   = "consumed"   // a verified TAC showed the credit on the card
	EventCancelled  = "cancelled"  // an operator cancelled a pending credit (detail: the reason)
	EventAwaiting   = "awaiting"   // the credit is above the approval threshold: it waits for a second operator
	EventApproved   = "approved"   // a second operator approved it: terminals may load it
	EventCorrected  = "corrected"  // part or all of a loaded credit was a mistake: owed back (amount negative; detail: the reason)
	EventDenied     = "denied"     // the card was put on the deny list
	EventUndenied   = "undenied"   // the card was lifted from the deny list
	EventClassSet   = "class"      // the card's identity class was set (detail) or cleared (detail "")
	EventAlarm      = "alarm"      // the card contradicts what the host believed: a person must look
)

// ledgerEntry is one row of the ledger; nil pointers are NULLs.
type ledgerEntry struct {
	Time      time.Time
	Actor     string
	Event     string
	Credit    string
	Card      string
	Counter   *uint16
	AmountFen *int64
	TAC       string
	Detail    string
}

// addLedger appends to the ledger, inside the caller's transaction, so the
// ledger says exactly what the state says.
func addLedger(tx *sql.Tx, e ledgerEntry) error {
	var credit, tac any
	if e.Credit != "" {
		credit = e.Credit
	}
	if e.TAC != "" {
		tac = e.TAC
	}
	var counter, amount any
	if e.Counter != nil {
		counter = int64(*e.Counter)
	}
	if e.AmountFen != nil {
		amount = *e.AmountFen
	}
	_, err := tx.Exec(`INSERT INTO ledger (time, actor, event, credit, card, counter, amount_fen, tac, detail)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, dbTime(e.Time), e.Actor, e.Event, credit, e.Card, counter, amount, tac, e.Detail)
	return err
}

// terminalActor names a terminal in the ledger.
func terminalActor(id string) string { return "terminal " + id }

// LedgerEvent is one ledger row as reports show it.
type LedgerEvent struct {
	Time      string  `json:"time"` // RFC 3339
	Actor     string  `json:"actor"`
	Event     string  `json:"event"`
	Counter   *uint16 `json:"counter,omitempty"`
	AmountFen *int64  `json:"amount_fen,omitempty"`
	TAC       string  `json:"tac,omitempty"`
	Detail    string  `json:"detail,omitempty"`
}

// CreditHistory is a credit and everything that happened to it.
type CreditHistory struct {
	CreditInfo
	Events []LedgerEvent `json:"events"`
}

// CardLedger is a card's whole money story at the host.
type CardLedger struct {
	Card       Card            `json:"card"`
	Denied     bool            `json:"denied"`
	DenyReason string          `json:"deny_reason,omitempty"`
	Events     []LedgerEvent   `json:"events"` // of the card itself: issued, denied, undenied
	Credits    []CreditHistory `json:"credits"`
	LoadedFen  int64           `json:"loaded_fen"`  // sum of consumed credits: what reached the card
	PendingFen int64           `json:"pending_fen"` // sum of pending credits terminals may load: what still waits
	Alarms     int             `json:"alarms"`      // alarm events nobody acknowledged: each needs a person
	// AwaitingFen is the sum of pending credits awaiting a second
	// operator's approval: no terminal may load them yet.
	AwaitingFen int64 `json:"awaiting_fen"`
	// CorrectedFen is the sum of corrections (negative, or 0): loaded
	// money recorded as a mistake, owed back by the holder. It is still
	// on the card; LoadedFen still counts it.
	CorrectedFen int64 `json:"corrected_fen"`
	// Replacement is the lost-card replacement the card is the old or
	// the new card of, nil for none.
	Replacement *Replacement `json:"replacement,omitempty"`
}

// Ledger returns the ledger of one card: its credits, oldest first, each
// with its fate, and the sums. ErrNotFound for a card not issued here.
func (s *Store) Ledger(ctx context.Context, number string) (CardLedger, error) {
	var l CardLedger
	c, err := card(s.db, number)
	if err != nil {
		return l, err
	}
	l.Card = c
	if l.Denied, l.DenyReason, err = denyState(s.db, number); err != nil {
		return l, err
	}
	credits, err := s.Credits(ctx, number)
	if err != nil {
		return l, err
	}
	index := map[string]int{}
	for i, cr := range credits {
		index[cr.ID] = i
		l.Credits = append(l.Credits, CreditHistory{CreditInfo: cr, Events: []LedgerEvent{}})
		switch cr.State {
		case "consumed":
			l.LoadedFen += cr.AmountFen
		case "pending":
			if cr.Approval == approvalAwaiting {
				l.AwaitingFen += cr.AmountFen
			} else {
				l.PendingFen += cr.AmountFen
			}
		}
	}
	rows, err := s.db.QueryContext(ctx, `SELECT time, actor, event, coalesce(credit, ''), counter, amount_fen, coalesce(tac, ''), detail
		FROM ledger WHERE card = ? ORDER BY id`, number)
	if err != nil {
		return l, err
	}
	defer rows.Close()
	l.Events = []LedgerEvent{}
	for rows.Next() {
		var e LedgerEvent
		var credit string
		var counter, amount sql.NullInt64
		if err := rows.Scan(&e.Time, &e.Actor, &e.Event, &credit, &counter, &amount, &e.TAC, &e.Detail); err != nil {
			return l, err
		}
		e.Time = rfc3339(e.Time)
		if counter.Valid {
			c := uint16(counter.Int64)
			e.Counter = &c
		}
		if amount.Valid {
			a := amount.Int64
			e.AmountFen = &a
		}
		if e.Event == EventCorrected && e.AmountFen != nil {
			l.CorrectedFen += *e.AmountFen
		}
		if i, ok := index[credit]; ok {
			l.Credits[i].Events = append(l.Credits[i].Events, e)
		} else {
			l.Events = append(l.Events, e)
		}
	}
	if err := rows.Err(); err != nil {
		return l, err
	}
	if r, found, err := replacementOf(s.db, number); err != nil {
		return l, err
	} else if found {
		l.Replacement = &r
	}
	// An acknowledged alarm (alarm_acks) had its person.
	err = s.db.QueryRowContext(ctx, `SELECT count(*) FROM ledger l WHERE l.card = ? AND l.event = 'alarm'
		AND NOT EXISTS (SELECT 1 FROM alarm_acks a WHERE a.alarm = l.id)`, number).Scan(&l.Alarms)
	return l, err
}
