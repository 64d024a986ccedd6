package host

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// maxMerchantLen bounds a merchant's name: a shop's name, not a sentence.
const maxMerchantLen = 64

// CheckMerchant refuses a merchant name the report could not print on one
// line: longer than maxMerchantLen characters, not UTF-8, control
// characters, or space at either end. "" is none.
func CheckMerchant(name string) error {
	switch {
	case !utf8.ValidString(name) || strings.IndexFunc(name, unicode.IsControl) >= 0:
		return fmt.Errorf("merchant %q: want UTF-8 text without control characters", name)
	case utf8.RuneCountInString(name) > maxMerchantLen:
		return fmt.Errorf("merchant of %d characters: at most %d", utf8.RuneCountInString(name), maxMerchantLen)
	case strings.TrimSpace(name) != name:
		return fmt.Errorf("merchant %q: no space at either end", name)
	}
	return nil
}

// SetTerminalMerchant names the merchant terminal sells for ("" for none).
// The daily report groups its terminals by the merchant each has when it
// runs: a terminal moved to another merchant takes its past days with it.
// An unknown terminal is ErrNotFound.
func (s *Store) SetTerminalMerchant(ctx context.Context, terminal, merchant string, now time.Time) error {
	id, err := CanonicalTerminalID(terminal)
	if err != nil {
		return err
	}
	if err := CheckMerchant(merchant); err != nil {
		return err
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.Exec(`UPDATE terminals SET merchant = ? WHERE id = ?`, merchant, id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return fmt.Errorf("terminal %s: %w", id, ErrNotFound)
		}
		return nil
	})
}

// terminalMerchants maps every terminal with a merchant to it.
func terminalMerchants(ctx context.Context, db *sql.DB) (map[string]string, error) {
	rows, err := db.QueryContext(ctx, `SELECT id, merchant FROM terminals WHERE merchant <> ''`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	m := map[string]string{}
	for rows.Next() {
		var id, merchant string
		if err := rows.Scan(&id, &merchant); err != nil {
			return nil, err
		}
		m[id] = merchant
	}
	return m, rows.Err()
}

// addMerchants names each terminal's merchant in rep and, when any has
// one, sums the terminals per merchant (those without one under "").
func (s *Store) addMerchants(ctx context.Context, rep *DailyReport) error {
	merchants, err := terminalMerchants(ctx, s.db)
	if err != nil {
		return err
	}
	by := map[string]*DailyTerminal{}
	for i := range rep.Terminals {
		d := &rep.Terminals[i]
		d.Merchant = merchants[d.Terminal]
		m := by[d.Merchant]
		if m == nil {
			m = &DailyTerminal{Terminal: "MERCHANT", Merchant: d.Merchant}
			by[d.Merchant] = m
		}
		m.add(*d)
	}
	rep.Merchants = []DailyTerminal{}
	if len(by) == 1 && by[""] != nil {
		return nil // no merchants: the terminals are the report
	}
	for _, name := range sortedKeys(by) {
		rep.Merchants = append(rep.Merchants, *by[name])
	}
	return nil
}

// add sums d into t.
func (t *DailyTerminal) add(d DailyTerminal) {
	t.Loads += d.Loads
	t.LoadFen += d.LoadFen
	t.LedgerLoadFen += d.LedgerLoadFen
	t.Purchases += d.Purchases
	t.PurchaseFen += d.PurchaseFen
	t.VerifiedFen += d.VerifiedFen
	t.FailedTACFen += d.FailedTACFen
	t.DiffFen += d.DiffFen
}
