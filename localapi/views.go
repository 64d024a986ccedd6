package localapi

import (
	"fmt"
	"time"

	"github.com/cardd/cardd/apdu/epurse"
	"github.com/cardd/cardd/money"
	"github.com/cardd/cardd/redact"
	"github.com/cardd/cardd/tap"
)

// Event types of the /v1/events stream.
const (
	EventHello       = "hello"        // first on every stream: Status
	EventCardPresent = "card.present" // a card arrived: Reader
	EventCardBalance = "card.balance" // the balance is known, the read goes on: Reader, Card
	EventCardLeave   = "card.leave"   // the card may be removed, the tap goes on: Reader, Card, Tap (so far, not final)
	EventCardTap     = "card.tap"     // the tap ended: Reader, Card (when read), Tap
	EventCardRemoved = "card.removed" // the card left: Reader
	EventReader      = "reader"       // a reader came or went, or pcscd: Reader, Status
	EventPrinter     = "printer"      // the printer's state changed: Printer
	EventReceipt     = "receipt"      // a receipt asked through the API moved: Receipt
	EventSale        = "sale"         // a POS sale was armed (Sale) or disarmed (no Sale)
	EventTopup       = "topup"        // a kiosk top-up's order was paid, or its money written or not: Topup
	EventVoid        = "void"         // a POS sale was voided: Void
)

// Event is one message of the /v1/events stream; only the fields of its
// type are set.
type Event struct {
	ID      int64         `json:"id"`
	Type    string        `json:"type"`
	Time    time.Time     `json:"time"`
	Reader  string        `json:"reader,omitempty"`
	Card    *CardView     `json:"card,omitempty"`
	Tap     *TapView      `json:"tap,omitempty"`
	Printer *PrinterView  `json:"printer,omitempty"`
	Receipt *ReceiptView  `json:"receipt,omitempty"`
	Status  *Status       `json:"status,omitempty"`
	Sale    *tap.SaleView `json:"sale,omitempty"`
	Topup   *TopupView    `json:"topup,omitempty"`
	Void    *VoidOutcome  `json:"void,omitempty"`
}

// CardView is a card as the screen shows it. The number is masked: the
// API never hands out a whole card number.
type CardView struct {
	Number string `json:"number"` // masked, first 4 and last 4
	// Family is the card's profile (tunion, shenzhen, campus…); Issuer
	// and IssuerEN name it as the card does and in English.
	Family   string `json:"family"`
	Issuer   string `json:"issuer,omitempty"`
	IssuerEN string `json:"issuer_en,omitempty"`
	// SecondPurseFen is a T-Union card's second purse; BalanceFen is the
	// purse less it, what the card would spend.
	SecondPurseFen *int64   `json:"second_purse_fen,omitempty"`
	Holder         string   `json:"holder,omitempty"`
	ValidFrom      string   `json:"valid_from,omitempty"` // 2006-01-02
	ValidTo        string   `json:"valid_to,omitempty"`
	Purse          string   `json:"purse"`
	BalanceFen     int64    `json:"balance_fen"`
	Balance        string   `json:"balance"` // yuan, "184.12"
	Transactions   []TxView `json:"transactions"`
}

// TxView is one transaction of the card's log, newest first in CardView.
type TxView struct {
	Counter   uint16 `json:"counter"`
	Time      string `json:"time"` // 2006-01-02 15:04:05, the terminal's wall clock
	Kind      string `json:"kind"` // load, purchase, composite_purchase or type_0x..
	AmountFen int64  `json:"amount_fen"`
	Amount    string `json:"amount"` // signed yuan: "50.00", "-5.59"
	Terminal  string `json:"terminal"`
}

// TapView is how a tap ended.
type TapView struct {
	Outcome         string     `json:"outcome"` // tap.Outcome
	Error           string     `json:"error,omitempty"`
	BalanceAfterFen int64      `json:"balance_after_fen"`
	BalanceAfter    string     `json:"balance_after"`
	Loads           []LoadView `json:"loads"`
	HostOffline     bool       `json:"host_offline"`
	// Purchase is what a POS tap did with the armed sale.
	Purchase *PurchaseView `json:"purchase,omitempty"`
	// Door is a door tap's decision.
	Door        *DoorView `json:"door,omitempty"`
	ToBalanceMS float64   `json:"to_balance_ms"`
	ToDoneMS    float64   `json:"to_done_ms"`
}

// LoadView is one pending top-up's fate on a tap.
type LoadView struct {
	CreditID  string `json:"credit_id"`
	AmountFen int64  `json:"amount_fen"`
	Amount    string `json:"amount"`
	Applied   bool   `json:"applied"`
	Refused   string `json:"refused,omitempty"`
	// Kind is "subsidy" for a subsidy (补助), "" for money paid; Purse
	// the purse it went onto ("EP" or "ED").
	Kind  string `json:"kind,omitempty"`
	Purse string `json:"purse,omitempty"`
	// Message is what the cardholder is told of a load that reached the
	// card: "补助 12.00 元已到账" or "充值 50.00 元已到账".
	Message string `json:"message,omitempty"`
}

// loadView is one load's fate as the API tells it.
func loadView(l tap.LoadResult) LoadView {
	v := LoadView{CreditID: l.CreditID, AmountFen: l.AmountFen, Amount: money.Format(l.AmountFen),
		Applied: l.Applied, Refused: l.Refused, Purse: l.Purse}
	word := "充值"
	if l.Subsidy {
		v.Kind, word = "subsidy", "补助"
	}
	if l.Applied {
		v.Message = word + " " + v.Amount + " 元已到账"
	}
	return v
}

// PurchaseView is a POS tap's purchase step.
type PurchaseView struct {
	SaleID string `json:"sale_id,omitempty"`
	// Period is the meal period of the tap ("" without periods).
	Period string `json:"period,omitempty"`
	// Class is the card's identity class: the host's card record's, else
	// its card type's (pos.classes); "" for none.
	Class string `json:"class,omitempty"`
	// AmountFen is what the sale costs the card: after its class's
	// discount, when Discount is set.
	AmountFen     int64  `json:"amount_fen"`
	Amount        string `json:"amount"`
	Paid          bool   `json:"paid"`
	JournalID     string `json:"journal_id,omitempty"`
	TermSerial    uint32 `json:"term_serial,omitempty"`
	SpentTodayFen int64  `json:"spent_today_fen"`
	PINVerified   bool   `json:"pin_verified"`
	// Discount is what the card's class took off the sale armed.
	Discount *DiscountView `json:"discount,omitempty"`
	// Split is, for a split sale, the card's part and the rest to collect.
	Split *SplitView `json:"split,omitempty"`
	// Recovered lists earlier unfinished purchases of this card the tap
	// settled from the card.
	Recovered []RecoveredView `json:"recovered"`
	// Close is set for a card the host asked to close: no sale was taken.
	Close *CloseView `json:"close,omitempty"`
}

// CloseView is, at a POS that closes cards, what a tap of a card the host
// asked to close (销户) did: the screen says the refund due.
type CloseView struct {
	// RefundDueFen is the balance the closing debit took, which the host
	// owes the holder back (0 for a card that held nothing).
	RefundDueFen int64  `json:"refund_due_fen"`
	RefundDue    string `json:"refund_due"`
	JournalID    string `json:"journal_id,omitempty"`
	// Closed is true when the card closed on this tap; false when it
	// closed before (the tap refused) or its closing debit is in doubt.
	Closed bool `json:"closed"`
}

// RecoveredView is an unfinished purchase settled on a later tap.
type RecoveredView struct {
	JournalID string `json:"journal_id"`
	AmountFen int64  `json:"amount_fen"`
	Applied   bool   `json:"applied"`
}

// DoorView is a door decision; the card is masked.
type DoorView struct {
	Reason string `json:"reason"` // door.Reason: allowed, deny_listed, unknown_card, …
	Text   string `json:"text"`
	Card   string `json:"card"`
	Group  string `json:"group,omitempty"`
	Opened bool   `json:"opened"`
}

// PrinterView is the printer's state.
type PrinterView struct {
	Enabled         bool   `json:"enabled"`
	Ready           bool   `json:"ready"`
	Answering       bool   `json:"answering"`
	Problem         string `json:"problem,omitempty"`
	ReceiptsWaiting int    `json:"receipts_waiting"`
}

// ReceiptView is a receipt asked through the API.
type ReceiptView struct {
	ID    int64  `json:"id"`
	Kind  string `json:"kind"`
	State string `json:"state"`
}

// ReaderView is one PC/SC reader.
type ReaderView struct {
	Name        string `json:"name"`
	Role        string `json:"role"`
	CardPresent bool   `json:"card_present"`
}

// HostView is the link to the central host.
type HostView struct {
	Configured bool `json:"configured"`
	QueueDepth int  `json:"queue_depth"` // journal rows not yet acknowledged
}

// Status is the terminal at a glance: GET /v1/status.
type Status struct {
	Version          string       `json:"version"`
	Mode             string       `json:"mode"`
	TerminalID       string       `json:"terminal_id"`
	PCSCD            bool         `json:"pcscd"` // connected to pcscd
	Readers          []ReaderView `json:"readers"`
	Printer          PrinterView  `json:"printer"`
	Host             HostView     `json:"host"`
	ArmedPurchaseFen int64        `json:"armed_purchase_fen"`
	// Sale is the sale armed at a POS (nil when none).
	Sale *tap.SaleView `json:"sale,omitempty"`
	// MealPeriod is the POS's meal period now; OutsideMealPeriods is true
	// when it has periods and now is in none (no sales). Neither is set
	// without periods.
	MealPeriod         *MealPeriodView `json:"meal_period,omitempty"`
	OutsideMealPeriods bool            `json:"outside_meal_periods,omitempty"`
	// Shift is the cashier's open shift at a POS (nil when none is open:
	// sales are then in no shift).
	Shift *ShiftView `json:"shift,omitempty"`
}

func txKind(t epurse.TxType) string {
	switch t {
	case epurse.TxEDLoad, epurse.TxEPLoad:
		return "load"
	case epurse.TxEDPurchase, epurse.TxEPPurchase:
		return "purchase"
	case epurse.TxComposite:
		return "composite_purchase"
	}
	return fmt.Sprintf("type_%#02x", byte(t))
}

// cardView is the screen's view of a read: masked, amounts in both forms.
func cardView(cr *tap.CardRead) *CardView {
	if cr == nil {
		return nil
	}
	v := &CardView{Number: redact.CardNumber(cr.Info.CardNumber), Purse: cr.Purse.String(),
		BalanceFen: cr.Balance, Balance: money.Format(cr.Balance), Transactions: []TxView{},
		SecondPurseFen: cr.SecondPurse}
	if p := cr.Profile; p != nil {
		v.Family, v.Issuer, v.IssuerEN = p.Name, p.Title, p.TitleEN
	}
	if !cr.Info.StartDate.IsZero() {
		v.ValidFrom = cr.Info.StartDate.String()
	}
	if !cr.Info.ExpiryDate.IsZero() {
		v.ValidTo = cr.Info.ExpiryDate.String()
	}
	if cr.Holder != nil {
		v.Holder = cr.Holder.Name
	}
	for _, l := range cr.Log {
		amt := tap.SignedAmount(l)
		v.Transactions = append(v.Transactions, TxView{Counter: l.Counter, Time: l.Time.Format("2006-01-02 15:04:05"),
			Kind: txKind(l.Type), AmountFen: amt, Amount: money.Format(amt), Terminal: fmt.Sprintf("%X", l.TerminalID[:])})
	}
	return v
}

// tapView is how the tap ended.
func tapView(res tap.Result) *TapView {
	v := &TapView{Outcome: string(res.Outcome()), Loads: []LoadView{},
		ToBalanceMS: float64(res.ToBalance.Microseconds()) / 1000, ToDoneMS: float64(res.ToDone.Microseconds()) / 1000}
	if res.Err != nil {
		v.Error = res.Err.Error()
	}
	if res.Read != nil {
		v.BalanceAfterFen = res.Read.Balance
	}
	if res.Load != nil {
		v.HostOffline = res.Load.HostOffline
		v.BalanceAfterFen = res.Load.Balance // starts at the read's balance
		for _, l := range res.Load.Loads {
			v.Loads = append(v.Loads, loadView(l))
		}
	}
	if p := res.Purchase; p != nil {
		v.BalanceAfterFen = p.Balance
		pv := &PurchaseView{SaleID: p.Sale.ID, Period: p.Period, Class: p.Class, AmountFen: p.Sale.AmountFen, Amount: money.Format(p.Sale.AmountFen), Paid: p.Paid,
			JournalID: p.JournalID, TermSerial: p.TermSerial, SpentTodayFen: p.SpentToday, PINVerified: p.PINVerified,
			Split: splitView(p.Split), Discount: discountView(p.Discount), Recovered: []RecoveredView{}}
		for _, r := range p.Recovered {
			pv.Recovered = append(pv.Recovered, RecoveredView{JournalID: r.JournalID, AmountFen: r.AmountFen, Applied: r.Applied})
		}
		if c := p.Close; c != nil {
			pv.Close = &CloseView{RefundDueFen: c.RefundFen, RefundDue: money.Format(c.RefundFen), JournalID: c.JournalID, Closed: c.Closed}
		}
		v.Purchase = pv
	}
	if d := res.Door; d != nil && d.Decision.Reason != "" {
		v.Door = &DoorView{Reason: string(d.Decision.Reason), Text: d.Decision.Text, Card: redact.CardNumber(d.Decision.Card),
			Group: d.Decision.Group, Opened: d.Opened}
	}
	v.BalanceAfter = money.Format(v.BalanceAfterFen)
	return v
}
