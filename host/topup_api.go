package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/money"
	"github.com/cardd/cardd/redact"
)

// Defaults of TopupOptions.
const (
	DefaultTopupTimeout    = 5 * time.Minute  // an unpaid order is closed after this
	DefaultProviderTimeout = 10 * time.Second // the longest the host waits for the provider per call
)

// PathNotify is where payment providers send their notifications; anyone
// on the network can reach it, so only a notification whose signature the
// provider verifies is believed.
const PathNotify = "/pay/notify"

// maxNotifyBytes bounds a notification's body: the largest (WeChat Pay's,
// encrypted) is a few KiB.
const maxNotifyBytes = 64 << 10

// expireBatch bounds one run of CloseExpired: each order costs up to two
// provider calls, and the next run takes the rest.
const expireBatch = 50

// TopupOptions tune Topups.
type TopupOptions struct {
	// Timeout is how long an order stays unpaid before the host closes it;
	// 0 means DefaultTopupTimeout.
	Timeout time.Duration
	// ProviderTimeout bounds each call to the provider; 0 means
	// DefaultProviderTimeout.
	ProviderTimeout time.Duration
	// Now is the host's clock; nil means time.Now.
	Now func() time.Time
	// Logger gets every payment and every refused notification; nil discards.
	Logger *slog.Logger
}

// Topups sells kiosk top-ups through a payment provider: the three
// terminal endpoints (hostapi.PathTopup*, through Handler), the provider's
// notifications and pages (ServeHTTP, under /pay/), and the closing of
// orders left unpaid (CloseExpired). Every way the host learns an order is
// paid ends in Store.payTopup, which credits it once.
type Topups struct {
	store           *Store
	provider        PaymentProvider
	timeout         time.Duration
	providerTimeout time.Duration
	balanceCap      int64 // set by NewHandler: the handler's
	now             func() time.Time
	log             *slog.Logger
}

// NewTopups returns the top-up service of store through provider.
func NewTopups(store *Store, provider PaymentProvider, opt TopupOptions) *Topups {
	t := &Topups{store: store, provider: provider, timeout: opt.Timeout, providerTimeout: opt.ProviderTimeout,
		balanceCap: DefaultBalanceCap, now: opt.Now, log: opt.Logger}
	if t.timeout <= 0 {
		t.timeout = DefaultTopupTimeout
	}
	if t.providerTimeout <= 0 {
		t.providerTimeout = DefaultProviderTimeout
	}
	if t.now == nil {
		t.now = time.Now
	}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	return t
}

// addTopupRoutes registers the top-up endpoints of t, which takes the
// handler's balance cap; with t nil they answer 503: this host sells no
// top-ups.
func (h *Handler) addTopupRoutes(t *Topups) {
	if t == nil {
		off := func(context.Context, string, []byte, time.Time) (any, error) {
			return nil, refuse(http.StatusServiceUnavailable, hostapi.CodeTopupUnavailable, "this host has no payment provider (cardhost serve --topup-provider)")
		}
		h.routes[hostapi.PathTopupOrder], h.routes[hostapi.PathTopupQuery], h.routes[hostapi.PathTopupClose] = off, off, off
		return
	}
	t.balanceCap = h.rules.BalanceCap
	h.routes[hostapi.PathTopupOrder] = t.order
	h.routes[hostapi.PathTopupQuery] = t.query
	h.routes[hostapi.PathTopupClose] = t.closeReq
}

// call bounds a provider call by ProviderTimeout.
func (t *Topups) call(ctx context.Context, fn func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, t.providerTimeout)
	defer cancel()
	return fn(ctx)
}

// unavailable is the 503 of a provider that failed to answer; the detail
// goes to the log, not to the terminal.
func (t *Topups) unavailable(op, id string, err error) error {
	t.log.Warn("payment provider failed", "provider", t.provider.Name(), "op", op, "order", id, "err", err)
	return refuse(http.StatusServiceUnavailable, hostapi.CodeTopupUnavailable, "payment provider %s did not answer (%s %s); try again", t.provider.Name(), op, id)
}

// order answers hostapi.PathTopupOrder: the order is written first, then
// opened at the provider, so a retry with the same key after a lost answer
// or a failed provider reaches the same order (providers' CreateOrder is
// idempotent by the id).
func (t *Topups) order(ctx context.Context, term string, body []byte, now time.Time) (any, error) {
	var req hostapi.TopupOrderRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	if err := checkTopupRequest(req); err != nil {
		return nil, err
	}
	o, created, err := t.store.newTopup(ctx, term, t.provider.Name(), req, t.balanceCap, now.Add(t.timeout), now)
	if err != nil {
		return nil, err
	}
	if created {
		t.log.Info("top-up ordered", "terminal", term, "order", o.ID, "card", redact.CardNumber(o.Card), "amount", money.Format(o.AmountFen))
	}
	if o.State == hostapi.TopupClosed {
		return nil, conflict(hostapi.CodeTopupClosed, "key %q named order %s, closed unpaid: ask with a new key", req.Key, o.ID)
	}
	if o.State != hostapi.TopupUnpaid || o.QR != "" {
		return o.TopupOrder, nil
	}
	expires, _ := time.Parse(time.RFC3339, o.Expires)
	po := PayOrder{ID: o.ID, AmountFen: o.AmountFen, Expires: expires,
		Description: fmt.Sprintf("cardd top-up, card %s", redact.CardNumber(o.Card))}
	var qr string
	if err := t.call(ctx, func(ctx context.Context) (err error) { qr, err = t.provider.CreateOrder(ctx, po); return err }); err != nil {
		return nil, t.unavailable("create", o.ID, err)
	}
	if err := t.store.setTopupQR(ctx, o.ID, qr); err != nil {
		return nil, err
	}
	o.QR = qr
	return o.TopupOrder, nil
}

// own reads an order of terminal term; another terminal's is not found,
// as if it did not exist.
func (t *Topups) own(ctx context.Context, term, id string) (TopupInfo, error) {
	o, err := t.store.Topup(ctx, id)
	if errors.Is(err, ErrNotFound) || err == nil && o.Terminal != term {
		return o, notFound("no top-up order %q of terminal %s", id, term)
	}
	return o, err
}

// query answers hostapi.PathTopupQuery: an unpaid order is asked of the
// provider, and closed once its time is up.
func (t *Topups) query(ctx context.Context, term string, body []byte, now time.Time) (any, error) {
	var req hostapi.TopupQueryRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	o, err := t.own(ctx, term, req.ID)
	if err != nil {
		return nil, err
	}
	if o.State != hostapi.TopupUnpaid {
		return o.TopupOrder, nil
	}
	if exp, _ := time.Parse(time.RFC3339, o.Expires); !now.Before(exp) {
		o, err = t.Close(ctx, o.ID)
		return o.TopupOrder, err
	}
	o, err = t.refresh(ctx, o)
	return o.TopupOrder, err
}

// refresh asks the provider about an unpaid order and applies its answer.
func (t *Topups) refresh(ctx context.Context, o TopupInfo) (TopupInfo, error) {
	var p Payment
	err := t.call(ctx, func(ctx context.Context) (err error) { p, err = t.provider.Query(ctx, o.ID); return err })
	switch {
	case errors.Is(err, ErrUnknownOrder):
		return o, nil // never opened there: it cannot have been paid
	case err != nil:
		return o, t.unavailable("query", o.ID, err)
	}
	return t.apply(ctx, o, p, "query")
}

// apply takes the provider's answer about order o.
func (t *Topups) apply(ctx context.Context, o TopupInfo, p Payment, via string) (TopupInfo, error) {
	p.OrderID = o.ID
	switch p.State {
	case hostapi.TopupPaid:
		res, err := t.pay(ctx, p, via)
		if errors.As(err, new(*AmountMismatchError)) {
			return o, refuse(http.StatusServiceUnavailable, hostapi.CodeTopupUnavailable, "the payment provider reports another amount for order %s: not credited; see the host's log", o.ID)
		}
		return res.Order, err
	case hostapi.TopupClosed:
		return t.store.closeTopup(ctx, o.ID, t.now())
	}
	return o, nil
}

// pay credits a paid order once and logs what happened.
func (t *Topups) pay(ctx context.Context, p Payment, via string) (paidTopup, error) {
	res, err := t.store.payTopup(ctx, p, via, t.now())
	var bad *AmountMismatchError
	switch {
	case errors.As(err, &bad):
		t.log.Error("payment of another amount refused: not credited", "provider", t.provider.Name(), "via", via, "order", p.OrderID,
			"order_amount", money.Format(bad.OrderFen), "paid", money.Format(bad.PaidFen), "txn", p.TxnID)
	case err != nil:
		return res, err
	case res.OtherTxn != "":
		t.log.Error("order paid again under another transaction: not credited again; refund it", "provider", t.provider.Name(),
			"order", p.OrderID, "txn", res.Order.TxnID, "other_txn", res.OtherTxn)
	case res.Late:
		t.log.Warn("payment arrived after the order was closed: credited to the card", "provider", t.provider.Name(), "via", via,
			"order", p.OrderID, "card", redact.CardNumber(res.Order.Card), "amount", money.Format(res.Order.AmountFen), "txn", p.TxnID)
	case res.Credited:
		t.log.Info("top-up paid: credit added", "provider", t.provider.Name(), "via", via, "order", p.OrderID,
			"card", redact.CardNumber(res.Order.Card), "amount", money.Format(res.Order.AmountFen), "txn", p.TxnID)
	default:
		t.log.Info("top-up paid before: nothing more credited", "provider", t.provider.Name(), "via", via, "order", p.OrderID, "txn", p.TxnID)
	}
	return res, err
}

// closeReq answers hostapi.PathTopupClose.
func (t *Topups) closeReq(ctx context.Context, term string, body []byte, now time.Time) (any, error) {
	var req hostapi.TopupCloseRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	o, err := t.own(ctx, term, req.ID)
	if err != nil {
		return nil, err
	}
	o, err = t.Close(ctx, o.ID)
	return o.TopupOrder, err
}

// Close closes an unpaid order: the provider closes it first, then the
// host asks for its state, since money may have arrived before the close:
// a paid order is credited, an unpaid one closed at the host. A provider
// that does not answer leaves the order unpaid (503): CloseExpired tries
// again. A paid or closed order is returned as it is.
func (t *Topups) Close(ctx context.Context, id string) (TopupInfo, error) {
	o, err := t.store.Topup(ctx, id)
	if err != nil || o.State != hostapi.TopupUnpaid {
		return o, err
	}
	closeErr := t.call(ctx, func(ctx context.Context) error { return t.provider.Close(ctx, id) })
	if errors.Is(closeErr, ErrUnknownOrder) {
		closeErr = nil
	}
	var p Payment
	err = t.call(ctx, func(ctx context.Context) (err error) { p, err = t.provider.Query(ctx, id); return err })
	switch {
	case errors.Is(err, ErrUnknownOrder):
		p = Payment{State: hostapi.TopupClosed}
	case err != nil:
		return o, t.unavailable("query", id, err)
	}
	if p.State == hostapi.TopupPaid {
		return t.apply(ctx, o, p, "query")
	}
	if closeErr != nil {
		return o, t.unavailable("close", id, closeErr)
	}
	o, err = t.store.closeTopup(ctx, id, t.now())
	if err == nil && o.State == hostapi.TopupClosed {
		t.log.Info("top-up closed unpaid", "order", id, "card", redact.CardNumber(o.Card))
	}
	return o, err
}

// CloseExpired closes the unpaid orders whose time is up, at most a batch
// of them per call; the next call takes the rest. It returns how many it
// closed or found paid; an order whose provider did not answer stays for
// the next call. Of several host processes on one PostgreSQL database,
// one at a time runs it (an advisory lock); the others return 0 at once.
func (t *Topups) CloseExpired(ctx context.Context) (int, error) {
	n := 0
	_, err := t.store.exclusive(ctx, "topup-expiry", func(ctx context.Context) error {
		var err error
		n, err = t.closeExpired(ctx)
		return err
	})
	return n, err
}

func (t *Topups) closeExpired(ctx context.Context) (int, error) {
	ids, err := t.store.expiredTopups(ctx, t.now(), expireBatch)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		if ctx.Err() != nil {
			return n, ctx.Err()
		}
		o, err := t.Close(ctx, id)
		if err != nil {
			if _, ok := errors.AsType[*Refusal](err); !ok {
				return n, err
			}
			continue // logged by unavailable
		}
		if o.State != hostapi.TopupUnpaid {
			n++
		}
	}
	return n, nil
}

// ServeHTTP serves what the outside world reaches under /pay/: the
// provider's notifications at PathNotify and, when the provider has pages
// (the simulated one's pay page), /pay/NAME/...
func (t *Topups) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == PathNotify {
		t.notify(w, r)
		return
	}
	if pages, ok := t.provider.(http.Handler); ok && strings.HasPrefix(r.URL.Path, "/pay/"+t.provider.Name()+"/") {
		pages.ServeHTTP(w, r)
		return
	}
	http.NotFound(w, r)
}

// notify takes a provider's notification. A bad signature is refused 401
// and changes nothing; a payment of another amount is refused 409 and
// never credited; a payment of an order already paid is answered 200 (the
// provider sends it again until it is) without a second credit.
func (t *Topups) notify(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		t.provider.AnswerNotification(w, http.StatusMethodNotAllowed, "POST only")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxNotifyBytes))
	if err != nil {
		t.provider.AnswerNotification(w, http.StatusRequestEntityTooLarge, "body too large or unreadable")
		return
	}
	p, err := t.provider.ParseNotification(r, body)
	if err != nil {
		status := http.StatusBadRequest
		if errors.Is(err, ErrBadSignature) {
			status = http.StatusUnauthorized
		}
		t.log.Warn("payment notification refused", "provider", t.provider.Name(), "remote", r.RemoteAddr, "status", status, "err", err)
		t.provider.AnswerNotification(w, status, err.Error())
		return
	}
	if p.State != hostapi.TopupPaid {
		t.provider.AnswerNotification(w, http.StatusOK, "")
		return
	}
	_, err = t.pay(r.Context(), p, "notification")
	switch {
	case err == nil:
		t.provider.AnswerNotification(w, http.StatusOK, "")
	case errors.Is(err, ErrNotFound):
		t.log.Warn("payment notification for an unknown order", "provider", t.provider.Name(), "order", p.OrderID, "remote", r.RemoteAddr)
		t.provider.AnswerNotification(w, http.StatusNotFound, "unknown order")
	case errors.As(err, new(*AmountMismatchError)):
		t.provider.AnswerNotification(w, http.StatusConflict, "amount differs from the order's")
	default:
		t.log.Error("payment notification failed", "provider", t.provider.Name(), "order", p.OrderID, "err", err)
		t.provider.AnswerNotification(w, http.StatusInternalServerError, "try again")
	}
}
