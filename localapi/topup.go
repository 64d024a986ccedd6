package localapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/money"
	"github.com/cardd/cardd/reader"
	"github.com/cardd/cardd/redact"
	hostsync "github.com/cardd/cardd/sync"
	"github.com/cardd/cardd/tap"
)

// The kiosk top-up (issue 14): with a card on the reader the page asks for
// an amount (POST /v1/topup), the host makes a payment order and the page
// shows its QR code; the page asks how the order stands (GET
// /v1/topup/{id}) and the daemon asks the host, at most once per
// Topup.Poll whatever the page does; once the order is paid the daemon
// taps the card on the reader again (Topup.LoadNow: the one load path,
// write-ahead and recovery included) and publishes the outcome (a topup
// event). A card lifted before gets the money at its next tap anywhere,
// since the paid order is a credit at the host.

// TopupHost is what the kiosk top-up needs of the host; *sync.Client is
// one.
type TopupHost interface {
	TopupOrder(ctx context.Context, req hostapi.TopupOrderRequest) (hostapi.TopupOrder, error)
	TopupQuery(ctx context.Context, id string) (hostapi.TopupOrder, error)
	TopupClose(ctx context.Context, id string) (hostapi.TopupOrder, error)
}

// Topup is the kiosk top-up's part of the Server; nil there means off.
type Topup struct {
	Host TopupHost
	// LoadNow taps again the card numbered card on the reader
	// (tap.Runner.LoadNow).
	LoadNow func(ctx context.Context, reader, card string) (tap.Result, error)
	// Presets are the amount buttons, in fen; MaxFen the keypad's most.
	Presets []int64
	MaxFen  int64
	// BalanceCap is the most a card may hold (load.balance_cap): an amount
	// that would take the card on the reader over it is refused.
	BalanceCap int64
	// Wait is how long an order is waited for before it is closed.
	Wait time.Duration
	// Poll is the least time between two questions to the host about one
	// unpaid order.
	Poll time.Duration
	// HostTimeout bounds each host call; zero means 10 s.
	HostTimeout time.Duration
	// LoadTimeout bounds the wait for LoadNow (the tap going on, if any,
	// then this one); zero means 30 s.
	LoadTimeout time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (t *Topup) now() time.Time {
	if t.Now != nil {
		return t.Now()
	}
	return time.Now()
}

func bounded(ctx context.Context, d, def time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		d = def
	}
	return context.WithTimeout(ctx, d)
}

// Load states of a paid order (TopupView.Load).
const (
	LoadWriting  = "writing"   // the card on the reader is being loaded
	LoadWritten  = "written"   // the money is on the card
	LoadCardLeft = "card_left" // the card left first: its next tap, anywhere, loads it
	LoadWaits    = "waits"     // not written now (host away, refused): its next tap loads it
)

// TopupView is an order as the page sees it. The card is not named: the
// page knows which card is on the reader.
type TopupView struct {
	ID        string `json:"id"`
	AmountFen int64  `json:"amount_fen"`
	Amount    string `json:"amount"` // yuan, "100.00"
	// State is the host's: unpaid, paid or closed.
	State string `json:"state"`
	// QR is what the payment QR code holds and QRSVG the code drawn, while
	// unpaid.
	QR    string `json:"qr,omitempty"`
	QRSVG string `json:"qr_svg,omitempty"`
	// Expires is when the terminal stops waiting and closes the order,
	// SecondsLeft the same from now (the page's countdown, whatever its
	// clock says).
	Expires     string `json:"expires"`
	SecondsLeft int64  `json:"seconds_left"`
	// Load is what became of a paid order's money (Load* constants).
	Load string `json:"load,omitempty"`
	// BalanceFen and Balance are the card's balance once written.
	BalanceFen int64  `json:"balance_fen,omitempty"`
	Balance    string `json:"balance,omitempty"`
	// HostUnreachable says the last question to the host got no answer;
	// the state is the one known before.
	HostUnreachable bool `json:"host_unreachable,omitempty"`
	// Reason is, for support, why the money waits.
	Reason string `json:"reason,omitempty"`
}

// topupOrder is an order this terminal made, as the server keeps it.
type topupOrder struct {
	order    hostapi.TopupOrder
	reader   string
	card     string
	created  time.Time
	deadline time.Time // created + Wait, or the host's expiry if sooner
	asked    time.Time // the host was last asked
	asking   bool      // a question to the host is under way
	svg      string
	load     string
	balance  int64
	reason   string
	offline  bool
}

// present is the card on a card reader whose tap read it, as the top-up
// needs it: it is the card an order is for.
type present struct {
	reader  string
	card    string
	balance int64 // after the tap's loads
}

// topups is the Server's top-up state.
type topups struct {
	mu     sync.Mutex
	card   *present
	orders map[string]*topupOrder
}

// maxOrders bounds the orders kept: a kiosk has one at a time; the oldest
// finished ones go first.
const maxOrders = 64

// TopupRequest is POST /v1/topup's body.
type TopupRequest struct {
	AmountFen int64 `json:"amount_fen"`
	// Key, when set, makes the request idempotent (a retry after a lost
	// answer gets the same order): up to 64 of [A-Za-z0-9_-].
	Key string `json:"key,omitempty"`
}

var keyPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// topupPresent notes what a tap means for the top-up: a card read whole is
// the one an order may be for; a failed tap is none. Called from Tap.
func (s *Server) topupPresent(res tap.Result) {
	s.topups.mu.Lock()
	defer s.topups.mu.Unlock()
	if res.Read == nil || res.Err != nil {
		s.topups.card = nil
		return
	}
	p := &present{reader: res.Reader, card: res.Read.Info.CardNumber, balance: res.Read.Balance}
	if res.Load != nil {
		p.balance = res.Load.Balance
	}
	s.topups.card = p
}

// topupCardMoved forgets the card read on a card reader where a card
// arrived (not read yet) or left. Called from ReaderEvent.
func (s *Server) topupCardMoved(ev reader.Event) {
	if ev.Kind != reader.CardInserted && ev.Kind != reader.CardRemoved && ev.Kind != reader.ReaderRemoved {
		return
	}
	s.topups.mu.Lock()
	if c := s.topups.card; c != nil && c.reader == ev.Reader {
		s.topups.card = nil
	}
	s.topups.mu.Unlock()
}

// presentCard is the card on the reader whose tap read it, or nil.
func (s *Server) presentCard() *present {
	s.topups.mu.Lock()
	defer s.topups.mu.Unlock()
	if s.topups.card == nil {
		return nil
	}
	c := *s.topups.card
	return &c
}

// topupOff answers 409 when the top-up is not offered here.
func (s *Server) topupOff(w http.ResponseWriter) bool {
	switch {
	case s.Base.Mode != "kiosk":
		fail(w, http.StatusConflict, "the top-up is the kiosk's; this terminal runs mode %s", s.Base.Mode)
	case s.Topup == nil:
		fail(w, http.StatusConflict, "the top-up at this kiosk is off (kiosk.topup.enabled)")
	default:
		return false
	}
	return true
}

func (s *Server) postTopup(w http.ResponseWriter, r *http.Request, _ credential) {
	if s.topupOff(w) {
		return
	}
	var req TopupRequest
	if !decode(w, r, &req) {
		return
	}
	t := s.Topup
	switch {
	case req.AmountFen <= 0:
		fail(w, http.StatusBadRequest, "amount_fen %d: want fen above 0, like 10000 for 100.00", req.AmountFen)
		return
	case req.AmountFen > t.MaxFen:
		fail(w, http.StatusBadRequest, "amount_fen %d: the most this kiosk takes is %d (%s, kiosk.topup.max_fen)", req.AmountFen, t.MaxFen, money.Format(t.MaxFen))
		return
	case req.Key != "" && !keyPattern.MatchString(req.Key):
		fail(w, http.StatusBadRequest, "key %q: want 1 to 64 of A-Z a-z 0-9 _ -", req.Key)
		return
	}
	card := s.presentCard()
	if card == nil {
		fail(w, http.StatusConflict, "no card read on the reader: tap the card and leave it there")
		return
	}
	if room := t.BalanceCap - card.balance; req.AmountFen > room {
		fail(w, http.StatusConflict, "the card holds %s and may hold at most %s (load.balance_cap): at most %s more",
			money.Format(card.balance), money.Format(t.BalanceCap), money.Format(max(room, 0)))
		return
	}
	key := req.Key
	if key == "" {
		var b [16]byte
		_, _ = rand.Read(b[:]) // never fails on Linux (crypto/rand doc)
		key = hex.EncodeToString(b[:])
	}
	ctx, cancel := bounded(r.Context(), t.HostTimeout, hostsync.TopupTimeout)
	// The balance as read lets the host count the card's other pending
	// credits against its cap too.
	o, err := t.Host.TopupOrder(ctx, hostapi.TopupOrderRequest{Card: card.card, AmountFen: req.AmountFen, Key: key, BalanceFen: card.balance})
	cancel()
	if err != nil {
		failHost(w, "making the payment order", err)
		return
	}
	if o.ID == "" || o.Card != card.card || o.AmountFen != req.AmountFen || o.State != hostapi.TopupUnpaid || o.QR == "" {
		fail(w, http.StatusBadGateway, "the host's order does not fit the request: id %q, card %s, %d fen, state %q, QR %t",
			o.ID, redact.CardNumber(o.Card), o.AmountFen, o.State, o.QR != "")
		return
	}
	svg, err := qrSVG(o.QR)
	if err != nil {
		fail(w, http.StatusBadGateway, "%v", err)
		return
	}
	now := t.now()
	to := &topupOrder{order: o, reader: card.reader, card: card.card, created: now, deadline: now.Add(t.Wait), asked: now, svg: svg}
	if exp, err := time.Parse(time.RFC3339, o.Expires); err == nil && exp.Before(to.deadline) {
		to.deadline = exp
	}
	s.keepOrder(to)
	writeJSON(w, http.StatusCreated, s.topupView(to))
}

// keepOrder adds o to the orders, dropping the oldest finished ones past
// maxOrders.
func (s *Server) keepOrder(o *topupOrder) {
	s.topups.mu.Lock()
	defer s.topups.mu.Unlock()
	if s.topups.orders == nil {
		s.topups.orders = map[string]*topupOrder{}
	}
	s.topups.orders[o.order.ID] = o
	for len(s.topups.orders) > maxOrders {
		var oldest *topupOrder
		for _, x := range s.topups.orders {
			if x.order.State != hostapi.TopupUnpaid && x.load != LoadWriting && (oldest == nil || x.created.Before(oldest.created)) {
				oldest = x
			}
		}
		if oldest == nil {
			return
		}
		delete(s.topups.orders, oldest.order.ID)
	}
}

// failHost answers a host call's error: 503 when the host or its payment
// provider did not answer, 409 for a refused card, 502 otherwise.
func failHost(w http.ResponseWriter, what string, err error) {
	switch {
	case errors.Is(err, hostsync.ErrUnreachable), errors.Is(err, context.DeadlineExceeded):
		fail(w, http.StatusServiceUnavailable, "%s: the host cannot be reached: %v", what, err)
	case errors.Is(err, hostsync.ErrTopupUnavailable):
		fail(w, http.StatusServiceUnavailable, "%s: the payment provider is not answering: %v", what, err)
	case errors.Is(err, hostsync.ErrTopupCardDenied):
		fail(w, http.StatusConflict, "%s: the card is on the deny list", what)
	case errors.Is(err, hostsync.ErrTopupBalanceCap):
		fail(w, http.StatusConflict, "%s: the card would hold more than its cap: %v", what, err)
	default:
		fail(w, http.StatusBadGateway, "%s: %v", what, err)
	}
}

// order is this terminal's order named by the request's {id}, or nil after
// a 404.
func (s *Server) order(w http.ResponseWriter, r *http.Request) *topupOrder {
	id := r.PathValue("id")
	s.topups.mu.Lock()
	o := s.topups.orders[id]
	s.topups.mu.Unlock()
	if o == nil {
		fail(w, http.StatusNotFound, "no top-up order %q made by this kiosk", id)
	}
	return o
}

func (s *Server) getTopup(w http.ResponseWriter, r *http.Request, _ credential) {
	if s.topupOff(w) {
		return
	}
	o := s.order(w, r)
	if o == nil {
		return
	}
	s.refresh(r.Context(), o)
	writeJSON(w, http.StatusOK, s.topupView(o))
}

// refresh brings an unpaid order up to date: closed at the host once its
// wait is over, else asked about at most once per Poll. A paid order's
// money is then written (startLoad).
func (s *Server) refresh(ctx context.Context, o *topupOrder) {
	t := s.Topup
	now := t.now()
	s.topups.mu.Lock()
	due := o.order.State == hostapi.TopupUnpaid && !o.asking && (now.Sub(o.asked) >= t.Poll || !now.Before(o.deadline))
	if due {
		o.asking = true
	}
	s.topups.mu.Unlock()
	if !due {
		return
	}
	ask := t.Host.TopupQuery
	if !now.Before(o.deadline) {
		ask = t.Host.TopupClose
	}
	hctx, cancel := bounded(ctx, t.HostTimeout, hostsync.TopupTimeout)
	got, err := ask(hctx, o.order.ID)
	cancel()
	s.settle(o, got, err)
}

// settle records the host's answer about o (got, or err) and starts the
// load of an order found paid.
func (s *Server) settle(o *topupOrder, got hostapi.TopupOrder, err error) {
	s.topups.mu.Lock()
	o.asking = false
	o.asked = s.Topup.now()
	o.offline = errors.Is(err, hostsync.ErrUnreachable) || errors.Is(err, context.DeadlineExceeded)
	switch {
	case errors.Is(err, hostsync.ErrTopupClosed):
		o.order.State = hostapi.TopupClosed
	case err == nil && got.ID == o.order.ID && got.State != hostapi.TopupUnpaid:
		o.order.State, o.order.CreditID = got.State, got.CreditID
	}
	load := o.order.State == hostapi.TopupPaid && o.load == ""
	if load {
		o.load = LoadWriting
	}
	s.topups.mu.Unlock()
	if load {
		s.startLoad(o)
	}
}

func (s *Server) cancelTopup(w http.ResponseWriter, r *http.Request, _ credential) {
	if s.topupOff(w) {
		return
	}
	o := s.order(w, r)
	if o == nil {
		return
	}
	s.topups.mu.Lock()
	state := o.order.State
	s.topups.mu.Unlock()
	if state == hostapi.TopupUnpaid {
		ctx, cancel := bounded(r.Context(), s.Topup.HostTimeout, hostsync.TopupTimeout)
		got, err := s.Topup.Host.TopupClose(ctx, o.order.ID)
		cancel()
		s.settle(o, got, err)
		if err != nil && !errors.Is(err, hostsync.ErrTopupClosed) {
			failHost(w, "closing the order", err)
			return
		}
	}
	v := s.topupView(o)
	if v.State == hostapi.TopupPaid {
		fail(w, http.StatusConflict, "order %s is paid: the money is the card's and is not taken back here", o.order.ID)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// startLoad writes a paid order's money onto the card, if it is still on
// the reader, in the background, and publishes the outcome.
func (s *Server) startLoad(o *topupOrder) {
	s.Hub.Publish(Event{Type: EventTopup, Topup: ptr(s.topupView(o))})
	ctx, ok := s.watchContext()
	if !ok {
		s.topupLoaded(o, LoadWaits, 0, "the daemon is stopping")
		return
	}
	go func() {
		defer s.watches.Done()
		s.load(ctx, o)
	}()
}

// load is startLoad's work.
func (s *Server) load(ctx context.Context, o *topupOrder) {
	if c := s.presentCard(); c == nil || c.reader != o.reader || c.card != o.card {
		s.topupLoaded(o, LoadCardLeft, 0, "the card left the reader before the order was paid")
		return
	}
	ctx, cancel := bounded(ctx, s.Topup.LoadTimeout, 30*time.Second)
	defer cancel()
	res, err := s.Topup.LoadNow(ctx, o.reader, o.card)
	credit := o.order.CreditID
	if credit == "" {
		credit = o.order.ID
	}
	state, reason := loadOutcome(res, err, credit)
	var balance int64
	if state == LoadWritten {
		balance = res.Load.Balance
	}
	s.topupLoaded(o, state, balance, reason)
}

// loadOutcome is what a LoadNow tap (res, or err) did with credit.
func loadOutcome(res tap.Result, err error, credit string) (state, reason string) {
	if err != nil {
		return LoadWaits, err.Error()
	}
	if l := res.Load; l != nil {
		if i := slices.IndexFunc(l.Loads, func(x tap.LoadResult) bool { return x.CreditID == credit }); i >= 0 {
			if l.Loads[i].Applied {
				return LoadWritten, ""
			}
			if res.Err == nil {
				return LoadWaits, l.Loads[i].Refused
			}
		}
		if slices.ContainsFunc(l.Recovered, func(x tap.Recovery) bool { return x.CreditID == credit && x.Applied }) {
			return LoadWritten, ""
		}
	}
	switch {
	case errors.Is(res.Err, tap.ErrNoCard), errors.Is(res.Err, tap.ErrOtherCard), errors.Is(res.Err, reader.ErrCardRemoved):
		return LoadCardLeft, res.Err.Error()
	case res.Err != nil:
		return LoadWaits, res.Err.Error()
	case res.Load != nil && res.Load.HostOffline:
		return LoadWaits, "the host could not be reached during the load"
	}
	return LoadWaits, "the host did not list the order's credit for the card"
}

// topupLoaded records the end of o's load and publishes it.
func (s *Server) topupLoaded(o *topupOrder, state string, balance int64, reason string) {
	s.topups.mu.Lock()
	o.load, o.balance, o.reason = state, balance, reason
	s.topups.mu.Unlock()
	s.Hub.Publish(Event{Type: EventTopup, Topup: ptr(s.topupView(o))})
}

// topupView is o as the page sees it.
func (s *Server) topupView(o *topupOrder) TopupView {
	s.topups.mu.Lock()
	defer s.topups.mu.Unlock()
	v := TopupView{ID: o.order.ID, AmountFen: o.order.AmountFen, Amount: money.Format(o.order.AmountFen), State: o.order.State,
		Expires: o.deadline.UTC().Format(time.RFC3339), Load: o.load, HostUnreachable: o.offline, Reason: o.reason}
	if o.order.State == hostapi.TopupUnpaid {
		v.QR, v.QRSVG = o.order.QR, o.svg
		v.SecondsLeft = max(int64(o.deadline.Sub(s.Topup.now()).Seconds()), 0)
	}
	if o.load == LoadWritten {
		v.BalanceFen, v.Balance = o.balance, money.Format(o.balance)
	}
	return v
}

// TopupOptions is GET /v1/topup's answer: what the page offers for the
// card on the reader.
type TopupOptions struct {
	Presets []int64 `json:"presets"`
	// MaxFen is the most the card on the reader may take now: the keypad's
	// most, lowered to the card's room under its cap; 0 with no card.
	MaxFen int64 `json:"max_fen"`
	// Card says a card read whole is on the reader.
	Card bool `json:"card"`
}

func (s *Server) topupOptions(w http.ResponseWriter, r *http.Request, _ credential) {
	if s.topupOff(w) {
		return
	}
	t := s.Topup
	v := TopupOptions{Presets: slices.Clone(t.Presets)}
	if v.Presets == nil {
		v.Presets = []int64{}
	}
	if c := s.presentCard(); c != nil {
		v.Card, v.MaxFen = true, max(min(t.MaxFen, t.BalanceCap-c.balance), 0)
	}
	writeJSON(w, http.StatusOK, v)
}

func ptr[T any](v T) *T { return &v }
