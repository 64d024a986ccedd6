package printer

import (
	"strings"
	"time"

	"github.com/cardd/cardd/money"
)

// TxKind is what one transaction of a card's log did.
type TxKind int

// Transaction kinds, as the card's log types them. TxOther is any other
// type (a cash withdrawal, a type this terminal does not know).
const (
	TxOther     TxKind = iota
	TxLoad             // 充值: money loaded onto the card
	TxPurchase         // 消费: a purchase
	TxComposite        // 复合消费: a composite (capped) purchase
)

var txWords = map[TxKind]string{TxOther: "其他", TxLoad: "充值", TxPurchase: "消费", TxComposite: "复合消费"}

// String returns the kind as printed.
func (k TxKind) String() string {
	if w, ok := txWords[k]; ok {
		return w
	}
	return txWords[TxOther]
}

// StatementLine is one of the card's transactions on a balance slip.
type StatementLine struct {
	Time     time.Time // printed in its location, to the minute
	Kind     TxKind
	Amount   int64  // signed fen: a purchase is negative
	Terminal string // the terminal that wrote it, as the card keeps it (12 hex digits)
}

// statementTimeLayout is a transaction's time on the slip: to the minute,
// so that time, 复合消费, a terminal id and -1000.00 fit 48 columns.
const statementTimeLayout = "2006-01-02 15:04"

// LabelStatement heads a balance slip's transactions.
const LabelStatement = "最近交易"

// statement lays out the transactions, newest first as given, under a rule
// and LabelStatement: one line each, "time kind terminal amount" with the
// kinds and terminals in aligned columns and the amount at the right, when
// every transaction fits the width so (80 mm); else two lines each, the
// time and the amount, then the kind and the terminal, right-aligned
// (58 mm).
func statement(txs []StatementLine, cols int) []Line {
	if len(txs) == 0 {
		return nil
	}
	type row struct{ time, kind, term, amount string }
	rows := make([]row, len(txs))
	kindW, termW, amountW := 0, 0, 0
	for i, tx := range txs {
		r := row{tx.Time.Format(statementTimeLayout), tx.Kind.String(), clean(tx.Terminal), money.Format(tx.Amount)}
		if tx.Time.IsZero() {
			r.time = strings.Repeat("-", len(statementTimeLayout))
		}
		rows[i] = r
		kindW, termW, amountW = max(kindW, Width(r.kind)), max(termW, Width(r.term)), max(amountW, Width(r.amount))
	}
	timeW := len(statementTimeLayout)
	lines := []Line{{Text: strings.Repeat("-", cols)}, {Text: LabelStatement, Center: true}}
	if timeW+1+kindW+1+termW+1+amountW <= cols {
		for _, r := range rows {
			left := r.time + " " + pad(r.kind, kindW) + " " + r.term
			lines = append(lines, Line{Text: left + strings.Repeat(" ", cols-Width(left)-Width(r.amount)) + r.amount})
		}
		return lines
	}
	for _, r := range rows {
		for _, s := range labelValue(r.time, r.amount, cols) {
			lines = append(lines, Line{Text: s})
		}
		if r.term == "" {
			lines = append(lines, Line{Text: r.kind})
			continue
		}
		for _, s := range labelValue(r.kind, truncate(r.term, cols-Width(r.kind)-1), cols) {
			lines = append(lines, Line{Text: s})
		}
	}
	return lines
}

// pad fills s with spaces to w columns.
func pad(s string, w int) string { return s + strings.Repeat(" ", max(w-Width(s), 0)) }
