package host

import (
	"context"
	"fmt"
	"time"
)

// DailyTerminal is one terminal's day in the daily settlement: its done
// loads and purchases as its journal says, and what the host's books say
// of them.
type DailyTerminal struct {
	Terminal string `json:"terminal"`
	// Merchant is the merchant the terminal sells for ("" none); in
	// DailyReport.Merchants, the merchant summed (Terminal "MERCHANT").
	Merchant string `json:"merchant,omitempty"`
	Loads    int    `json:"loads"`
	LoadFen  int64  `json:"load_fen"` // the journal's done loads
	// LedgerLoadFen is what the ledger shows consumed for those loads
	// (its credits' consumed entries, by the same TAC): the host's books.
	LedgerLoadFen int64 `json:"ledger_load_fen"`
	Purchases     int   `json:"purchases"`
	PurchaseFen   int64 `json:"purchase_fen"`
	// VerifiedFen is the purchases whose TAC the card's key gives;
	// FailedTACFen those whose TAC it does not (each an alarm). The rest
	// had nothing to check (no TAC, no PSAM id, a card issued elsewhere,
	// an M1 wallet).
	VerifiedFen  int64 `json:"verified_fen"`
	FailedTACFen int64 `json:"failed_tac_fen"`
	// DiffFen is the day's difference: loads the books do not show, plus
	// purchases the cards' TACs do not prove. 0 when the day settles.
	DiffFen int64 `json:"diff_fen"`
}

// DailyReport is the settlement (对账) of one day.
type DailyReport struct {
	Date      string          `json:"date"` // YYYY-MM-DD, the terminals' own calendar day
	Terminals []DailyTerminal `json:"terminals"`
	// Merchants sums the terminals per merchant, those without one under
	// merchant ""; empty when no terminal has a merchant.
	Merchants []DailyTerminal `json:"merchants"`
	Total     DailyTerminal   `json:"total"` // Terminal "TOTAL"
}

// Daily settles a day: the done loads and purchases each terminal
// journaled that day (by the row's time as the terminal wrote it, its own
// local date), with the ledger's sums for the loads and the TAC checks of
// the purchases. It reads the day's rows only (journal_by_time).
func (s *Store) Daily(ctx context.Context, date string) (DailyReport, error) {
	day, err := time.Parse(time.DateOnly, date)
	if err != nil {
		return DailyReport{}, fmt.Errorf("date %q: want YYYY-MM-DD", date)
	}
	rep := DailyReport{Date: date, Terminals: []DailyTerminal{}, Total: DailyTerminal{Terminal: "TOTAL"}}
	from, to := day.Format(time.DateOnly), day.AddDate(0, 0, 1).Format(time.DateOnly)
	byTerm := map[string]*DailyTerminal{}
	get := func(t string) *DailyTerminal {
		if byTerm[t] == nil {
			byTerm[t] = &DailyTerminal{Terminal: t}
		}
		return byTerm[t]
	}
	rows, err := s.db.QueryContext(ctx, `SELECT terminal, kind, count(*), sum(amount_fen),
			sum(CASE WHEN tac_check = 'ok' THEN amount_fen ELSE 0 END), sum(CASE WHEN tac_check = 'bad' THEN amount_fen ELSE 0 END)
		FROM journal WHERE time >= ? AND time < ? AND state = 'done' AND kind IN ('load', 'purchase')
		GROUP BY terminal, kind`, from, to)
	if err != nil {
		return rep, err
	}
	defer rows.Close()
	for rows.Next() {
		var term, kind string
		var n int
		var sum, ok, bad int64
		if err := rows.Scan(&term, &kind, &n, &sum, &ok, &bad); err != nil {
			return rep, err
		}
		d := get(term)
		if kind == rowLoad {
			d.Loads, d.LoadFen = n, sum
		} else {
			d.Purchases, d.PurchaseFen, d.VerifiedFen, d.FailedTACFen = n, sum, ok, bad
		}
	}
	if err := rows.Err(); err != nil {
		return rep, err
	}
	// The ledger's consumed entry of each load's credit, by the load's TAC
	// (an M1 wallet's load has none): a credit consumed once counts once.
	ledger, err := s.db.QueryContext(ctx, `SELECT j.terminal, coalesce(sum(l.amount_fen), 0)
		FROM journal j JOIN ledger l ON l.card = j.card AND l.credit = j.credit_id AND l.event = 'consumed'
			AND (l.tac = j.tac OR (j.tac = '' AND l.tac IS NULL))
		WHERE j.time >= ? AND j.time < ? AND j.state = 'done' AND j.kind = 'load'
		GROUP BY j.terminal`, from, to)
	if err != nil {
		return rep, err
	}
	defer ledger.Close()
	for ledger.Next() {
		var term string
		var sum int64
		if err := ledger.Scan(&term, &sum); err != nil {
			return rep, err
		}
		get(term).LedgerLoadFen = sum
	}
	if err := ledger.Err(); err != nil {
		return rep, err
	}
	for _, term := range sortedKeys(byTerm) {
		d := byTerm[term]
		d.DiffFen = d.LoadFen - d.LedgerLoadFen + d.FailedTACFen
		rep.Terminals = append(rep.Terminals, *d)
		rep.Total.add(*d)
	}
	return rep, s.addMerchants(ctx, &rep)
}
