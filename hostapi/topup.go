package hostapi

// A top-up paid at the kiosk (issue 14): the terminal asks the host for a
// payment order for the card on its reader; the host has its payment
// provider create it and returns what the QR code on the page holds; the
// cardholder pays with a phone; the provider tells the host (a signed
// notification) or answers the host's query; the host turns the paid order
// into one credit for the card, exactly once, and the terminal loads it
// like any other credit. The terminal never sees the provider.

// Endpoint paths of the kiosk top-up, signed by the terminal like the
// others.
const (
	PathTopupOrder = "/v1/topup/order" // create a payment order for a card
	PathTopupQuery = "/v1/topup/query" // an order's state; asks the provider when unpaid
	PathTopupClose = "/v1/topup/close" // close an unpaid order (the cardholder cancelled)
)

// TopupOrderRequest asks for a payment order of AmountFen for Card.
type TopupOrderRequest struct {
	Card      string `json:"card"` // a card id: see CheckCardID
	AmountFen int64  `json:"amount_fen"`
	// Key makes the request idempotent: the same terminal sending the same
	// key gets the same order back (a retried request after a lost answer
	// never makes two orders). Up to 64 characters of [A-Za-z0-9_-].
	Key string `json:"key"`
	// BalanceFen is the card's balance as the terminal read it, 0 when it
	// sends none. The host refuses 409 over_balance_cap an amount that,
	// with this balance and the card's pending credits, would take the card
	// over the balance cap: such money could not be loaded.
	BalanceFen int64 `json:"balance_fen,omitempty"`
}

// TopupOrder is a payment order as the host keeps it.
type TopupOrder struct {
	ID        string `json:"id"` // the host's order id, also in the invoice URL
	Card      string `json:"card"`
	AmountFen int64  `json:"amount_fen"`
	// QR is what the payment QR code holds (a URL the phone opens);
	// empty once the order is no longer unpaid.
	QR string `json:"qr,omitempty"`
	// State is one of the TopupUnpaid... constants.
	State string `json:"state"`
	// CreditID is the credit the paid order became (State TopupPaid).
	// The reference host gives the credit the order's own ID, so a
	// receipt or an invoice link naming one names both.
	CreditID string `json:"credit_id,omitempty"`
	// Expires is when an unpaid order is closed (RFC 3339).
	Expires string `json:"expires"`
	// Provider names the payment provider ("sim", "wechat", ...).
	Provider string `json:"provider"`
}

// TopupQueryRequest asks for the state of an order this terminal created.
type TopupQueryRequest struct {
	ID string `json:"id"`
}

// TopupCloseRequest closes an order this terminal created that is still
// unpaid. Closing a paid order changes nothing and returns it paid: the
// money is the card's.
type TopupCloseRequest struct {
	ID string `json:"id"`
}

// Order states. An order goes unpaid -> paid or unpaid -> closed, never
// back.
const (
	TopupUnpaid = "unpaid"
	TopupPaid   = "paid"
	TopupClosed = "closed"
)

// Error codes of the top-up endpoints.
const (
	// CodeTopupClosed (409): the order was closed before it was paid.
	CodeTopupClosed = "topup_closed"
	// CodeTopupUnavailable (503): the payment provider did not answer.
	CodeTopupUnavailable = "topup_unavailable"
)
