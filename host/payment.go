package host

import (
	"context"
	"errors"
	"net/http"
	"time"
)

// PaymentProvider is what the host needs of a payment service (WeChat Pay,
// Alipay, the simulated "sim") to sell kiosk top-ups. docs/payment.md says
// what an adapter must guarantee; in short: amounts are fen, every call is
// idempotent by the host's order id, and every call returns within its
// context (the host bounds each with TopupOptions.ProviderTimeout).
type PaymentProvider interface {
	// Name is the provider's short name ("sim", "wechat"): the order's
	// Provider and the path of its pages, /pay/NAME/.
	Name() string
	// CreateOrder opens a payment of o.AmountFen under the host's id o.ID
	// and returns what the payment QR code holds (a URL a phone opens).
	// Called again with the same id, it returns the same order's QR, never
	// a second order.
	CreateOrder(ctx context.Context, o PayOrder) (qr string, err error)
	// Query returns the provider's state of the order; ErrUnknownOrder
	// when the provider has no order of that id (CreateOrder never reached
	// it).
	Query(ctx context.Context, id string) (Payment, error)
	// Close makes the order impossible to pay. Closing an order closed
	// already is nil; the host queries after closing, so a provider that
	// refuses to close a paid order may return any error.
	Close(ctx context.Context, id string) error
	// ParseNotification verifies the provider's signed notification (the
	// request and its body, read by the host) and returns the payment it
	// reports. A signature that does not verify is an error wrapping
	// ErrBadSignature; nothing of such a request is believed.
	ParseNotification(r *http.Request, body []byte) (Payment, error)
	// AnswerNotification writes the answer the provider expects: status
	// 200 means taken (the provider stops sending it), any other status
	// means refused or failed, with reason for the provider's log.
	AnswerNotification(w http.ResponseWriter, status int, reason string)
}

// PayOrder is a payment order as a provider is asked to open it.
type PayOrder struct {
	ID        string // the host's order id: the provider's out_trade_no
	AmountFen int64
	// Description is what the payer's phone shows; it names the card
	// masked, never in full.
	Description string
	Expires     time.Time // the provider may close it itself after this
}

// Payment is a provider's word about an order.
type Payment struct {
	OrderID   string
	State     string // hostapi.TopupUnpaid, TopupPaid or TopupClosed
	AmountFen int64  // what was paid (State TopupPaid)
	TxnID     string // the provider's transaction id (State TopupPaid)
}

// Errors of payment providers.
var (
	// ErrUnknownOrder: the provider has no order of that id.
	ErrUnknownOrder = errors.New("the payment provider has no such order")
	// ErrBadSignature: a notification whose signature does not verify.
	ErrBadSignature = errors.New("notification signature does not verify")
)
