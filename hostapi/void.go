package hostapi

// PathVoid takes a terminal's void (冲正) of one of its sales: the host
// makes the sale's refund credit, once.
const PathVoid = "/v1/void"

// VoidRequest is a terminal's void of one of its own sales. ID is the
// terminal's permanent id of the void: the same ID again is a retry and
// answers the same credit. Sale is the sale's journal row as the terminal
// uploads it (JournalRow): the host stores it as an upload would, if it
// does not hold it yet, and refunds against the row it holds, so a void
// that overtakes its sale's upload still ends right.
//
// The host refunds only a sale it can prove happened: an e-purse (EP or
// ED) purchase whose TAC it recomputes with the card's key from the held
// row (amount, purse, TermSerial, Time as the terminal's wall clock) and
// PSAMTerminal. A sale without that proof (an M1 wallet's, one with no TAC,
// one journaled before the terminal kept its PSAM's id) or whose TAC does
// not verify is refused CodeNotVoidable, and the latter is an alarm in the
// card's ledger.
type VoidRequest struct {
	ID   string     `json:"id"`
	Sale JournalRow `json:"sale"`
	// PSAMTerminal is the terminal id of the PSAM the sale was made with
	// (6 bytes, 12 hex digits; not the cardd terminal id), which its TAC
	// covers. "" for a sale journaled without it.
	PSAMTerminal string `json:"psam_terminal,omitempty"`
	// AmountFen is the refund: above 0 and at most the sale's amount.
	AmountFen int64 `json:"amount_fen"`
	// Time is when the cashier voided, RFC 3339.
	Time string `json:"time"`
}

// VoidResponse is the refund: a pending credit for the sale's card, which
// any terminal loads at the card's next tap (and the pull lists).
type VoidResponse struct {
	Credit Credit `json:"credit"`
}

// Void refusal codes (409): the void will never be taken as sent.
const (
	// CodeSaleVoided: the sale has a refund already, from another void.
	CodeSaleVoided = "sale_voided"
	// CodeNotVoidable: the row held is not a done purchase, the amount is
	// above the sale's, the void's id names another sale, or the sale has
	// no proof the host can verify (its TAC does not verify, it has none,
	// or the void carries no PSAMTerminal).
	CodeNotVoidable = "not_voidable"
)
