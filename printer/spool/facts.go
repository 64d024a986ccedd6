package spool

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/cardd/cardd/offline"
	"github.com/cardd/cardd/printer"
)

// Receipt kinds as the queue stores them.
const (
	KindBalance  = "balance"
	KindTopUp    = "topup"
	KindPurchase = "purchase"
	KindTest     = "test"
	KindInvoice  = "invoice"
	KindVoid     = "void"
	KindSubsidy  = "subsidy"
	KindShift    = "shift"
)

var kinds = map[string]printer.Kind{
	KindBalance:  printer.KindBalance,
	KindTopUp:    printer.KindTopUp,
	KindPurchase: printer.KindPurchase,
	KindTest:     printer.KindTest,
	KindInvoice:  printer.KindInvoice,
	KindVoid:     printer.KindVoid,
	KindSubsidy:  printer.KindSubsidy,
	KindShift:    printer.KindShift,
}

// Facts is what a queued receipt says about its operation: the body stored
// in the queue. What belongs to the terminal (merchant, footer, paper width,
// text mode) is not in it: it comes from the configuration when the receipt
// prints, so a reprint after a printer change fits the new printer.
type Facts struct {
	Kind       string    `json:"kind"` // Kind* constant
	Time       time.Time `json:"time"`
	TerminalID string    `json:"terminal_id,omitempty"`
	// Card is the full card number, as in the journal beside it; it is
	// masked when laid out, so it never reaches paper whole.
	Card string `json:"card,omitempty"`
	// Issuer names the card's family as the card does (交通联合, 深圳通).
	Issuer           string `json:"issuer,omitempty"`
	Holder           string `json:"holder,omitempty"`
	BalanceBeforeFen int64  `json:"balance_before_fen,omitempty"`
	AmountFen        int64  `json:"amount_fen,omitempty"`
	BalanceFen       int64  `json:"balance_fen,omitempty"`
	// SaleFen and CollectFen are, on the slip of a split sale's card part
	// (AmountFen), the whole sale and the rest to collect by other means;
	// both zero for any other slip.
	SaleFen    int64 `json:"sale_fen,omitempty"`
	CollectFen int64 `json:"collect_fen,omitempty"`
	// ListFen and DiscountPercent are, on the slip of a sale discounted
	// for the card's identity class, the price armed and the percent of
	// it the class pays; both zero for any other slip.
	ListFen         int64 `json:"list_fen,omitempty"`
	DiscountPercent int   `json:"discount_percent,omitempty"`
	// Reference is the transaction reference printed and encoded in the QR
	// code: the journal row id, which the host knows too.
	Reference string `json:"reference,omitempty"`
	// Link is an invoice slip's QR code: the invoicing page of the order
	// in Reference.
	Link string `json:"link,omitempty"`
	// Voided is a void slip's sale: the journal row id of the sale voided.
	Voided string `json:"voided,omitempty"`
	// Closing marks a purchase slip as a card's closing debit (销户):
	// AmountFen is the refund due.
	Closing bool `json:"closing,omitempty"`
	// Transactions is the card's newest transactions, newest first, for a
	// balance slip's statement: as many as the slip is to list
	// (receipt.statement_lines). Facts stored before the field existed
	// have none and print as they did.
	Transactions []StatementLine `json:"transactions,omitempty"`
	// Shift is a close-out slip's summary (KindShift only), as the close
	// totalled it from the journal.
	Shift *offline.ShiftSummary `json:"shift,omitempty"`
}

// Transaction kinds of a StatementLine, as the local API names them.
const (
	TxLoad      = "load"
	TxPurchase  = "purchase"
	TxComposite = "composite_purchase"
)

var txKinds = map[string]printer.TxKind{TxLoad: printer.TxLoad, TxPurchase: printer.TxPurchase, TxComposite: printer.TxComposite}

// StatementLine is one transaction of the card's log, as read from the card.
type StatementLine struct {
	// Time is when the terminal that wrote it says it was.
	Time time.Time `json:"time"`
	// Kind is TxLoad, TxPurchase, TxComposite, or another type (printed
	// as 其他).
	Kind string `json:"kind"`
	// AmountFen is signed: a purchase is negative.
	AmountFen int64 `json:"amount_fen"`
	// Terminal is the id of the terminal that wrote it, 12 hex digits.
	Terminal string `json:"terminal,omitempty"`
}

// NewReceipt encodes f for the queue.
func (f Facts) NewReceipt() (offline.NewReceipt, error) {
	if _, ok := kinds[f.Kind]; !ok {
		return offline.NewReceipt{}, fmt.Errorf("spool: receipt kind %q: want balance, topup, purchase, test, invoice, void, subsidy or shift", f.Kind)
	}
	if (f.Shift != nil) != (f.Kind == KindShift) {
		return offline.NewReceipt{}, fmt.Errorf("spool: a %s receipt: a shift summary goes on a shift slip, and a shift slip needs one", f.Kind)
	}
	if len(f.Transactions) > 0 && f.Kind != KindBalance {
		return offline.NewReceipt{}, fmt.Errorf("spool: a %s receipt with %d transactions: only a balance slip lists them", f.Kind, len(f.Transactions))
	}
	b, err := json.Marshal(f)
	if err != nil {
		return offline.NewReceipt{}, err
	}
	return offline.NewReceipt{Kind: f.Kind, Body: b}, nil
}

// Renderer turns queued receipts into bytes for the configured printer.
type Renderer struct {
	Options  printer.Options
	Merchant string
	Footer   []string
}

// CopyMark heads the footer of a reprint, so a copy is never taken for a
// second payment.
const CopyMark = "补打 REPRINT"

// Receipt returns the printer's receipt for q.
func (r Renderer) Receipt(q offline.Receipt) (printer.Receipt, error) {
	var f Facts
	if err := json.Unmarshal(q.Body, &f); err != nil {
		return printer.Receipt{}, fmt.Errorf("spool: receipt %d: body: %w", q.ID, err)
	}
	k, ok := kinds[f.Kind]
	if !ok {
		return printer.Receipt{}, fmt.Errorf("spool: receipt %d: kind %q", q.ID, f.Kind)
	}
	footer := r.Footer
	if q.Copy {
		footer = append([]string{CopyMark}, footer...)
	}
	var st []printer.StatementLine
	for _, tx := range f.Transactions {
		st = append(st, printer.StatementLine{Time: tx.Time, Kind: txKinds[tx.Kind], Amount: tx.AmountFen, Terminal: tx.Terminal})
	}
	return printer.Receipt{Kind: k, Merchant: r.Merchant, TerminalID: f.TerminalID, Time: f.Time,
		CardNumber: f.Card, Issuer: f.Issuer, Holder: f.Holder, BalanceBefore: f.BalanceBeforeFen, Amount: f.AmountFen,
		Balance: f.BalanceFen, Sale: f.SaleFen, Collect: f.CollectFen,
		List: f.ListFen, DiscountPercent: f.DiscountPercent, Reference: f.Reference, Link: f.Link, Voided: f.Voided, Closing: f.Closing, Statement: st,
		Summary: ShiftLines(f.Shift), Footer: footer}, nil
}

// Render returns the ESC/POS bytes of q; it fits Worker.Render.
func (r Renderer) Render(q offline.Receipt) ([]byte, error) {
	pr, err := r.Receipt(q)
	if err != nil {
		return nil, err
	}
	return printer.Encode(pr, r.Options)
}
