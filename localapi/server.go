// Package localapi is the daemon's HTTP API on the terminal itself, for the
// kiosk screen and the POS app: status, a server-sent-events stream of card
// and printer events, the local journal, receipts, and arming a purchase.
// docs/local-api.yaml describes it.
//
// Arming a sale makes the next cardholder pay, so the API trusts little: it
// answers only to its own Host names (no DNS rebinding), refuses changes
// from other web origins, takes two credentials (the POS app's for all, the
// kiosk page's for a balance receipt only), reads bodies strictly and
// bounded, and its http.Server ([NewHTTPServer]) bounds every wait.
// docs/local-api.md is the threat model.
package localapi

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cardd/cardd/internal/strictjson"
	"github.com/cardd/cardd/money"
	"github.com/cardd/cardd/offline"
	"github.com/cardd/cardd/reader"
	"github.com/cardd/cardd/redact"
	"github.com/cardd/cardd/tap"
)

// Journal is what the API reads of the journal; *offline.Store is it.
type Journal interface {
	List(ctx context.Context, beforeSeq int64, limit int) ([]offline.Row, error)
}

// Receipts is what the API needs of the print queue; *offline.Store is it.
type Receipts interface {
	QueueReceipt(ctx context.Context, r offline.NewReceipt) (int64, error)
	LastReceipt(ctx context.Context) (offline.Receipt, error)
	Reprint(ctx context.Context, id int64) (int64, error)
	GetReceipt(ctx context.Context, id int64) (offline.Receipt, error)
}

// Server is the local API. Set its fields, then serve it; the tap runner's
// and print worker's hooks (ReaderEvent, Balance, Tap, PrinterState) feed it.
type Server struct {
	// Token is the POS app's credential: "Authorization: Bearer <Token>"
	// may make every call that changes something. Empty, only PageToken's
	// call is possible.
	Token string
	// PageToken is the kiosk page's credential, given to whoever loads the
	// page: with it the only call that changes something is the page's
	// own, a balance receipt of the last tap, once per tap. It never arms
	// or cancels a sale.
	PageToken string
	// AllowedHosts are the Host header values answered ([AllowedHosts]
	// makes them); any other gets 421, whatever the path. Empty refuses
	// every request.
	AllowedHosts []string
	// Base is the status's fixed part: version, mode, terminal id.
	Base Status
	// Journal, when set, serves GET /v1/journal (nil: no store, 503).
	Journal Journal
	// Receipts, when set, takes receipt requests (nil: no printer, 503).
	Receipts Receipts
	// BalanceReceipt makes the receipt of a balance query for a read.
	BalanceReceipt func(cr *tap.CardRead) (offline.NewReceipt, error)
	// KickPrinter wakes the print worker after a receipt was queued.
	KickPrinter func()
	// QueueDepth, when set, gives the host queue depth for the status.
	QueueDepth func(ctx context.Context) (int, error)
	// ReceiptsWaiting, when set, gives the print queue depth.
	ReceiptsWaiting func(ctx context.Context) (int, error)
	// Kiosk, when set, is served at / (the kiosk page).
	Kiosk http.Handler
	// KioskConfig is served at GET /v1/kiosk/config for the page.
	KioskConfig KioskView
	// InvoiceLink, when set, is the invoicing page of a top-up order
	// (kiosk.invoice_url): GET /v1/invoices/{order} and the invoice slip
	// are offered for the top-ups this terminal wrote.
	InvoiceLink func(order string, amountFen int64) string
	// InvoiceReceipt makes the invoice slip of a top-up, link its page.
	InvoiceReceipt func(l LoadedHere, link string) (offline.NewReceipt, error)
	// Metrics, when set, is served at /metrics.
	Metrics http.Handler
	// Healthy, when set, decides /healthz; nil is healthy.
	Healthy func() error
	// Till, when set (POS mode), is where POST /v1/purchase/arm arms a
	// sale for the next tap; without it arming is refused with 409.
	Till *tap.Till
	// Shifts, when set (POS mode), keeps the cashier's shifts: /v1/shift
	// opens one and shows it, /v1/shift/close closes it with its summary
	// receipt; without it they are refused with 409.
	Shifts Shifts
	// Topup, when set (mode kiosk, kiosk.topup.enabled), takes top-ups
	// paid by phone for the card on the reader (topup.go).
	Topup *Topup
	// Voids, when set (mode pos), voids sales for POST /v1/purchase/void;
	// without it a void is refused with 409.
	Voids Voider
	// VoidTimeout, when above 0, bounds a void's handling (the host's
	// answer and the refund's tap), past the server's write timeout.
	VoidTimeout time.Duration

	Hub Hub

	mu       sync.Mutex
	readers  map[string]*ReaderView
	pcscd    bool
	printer  PrinterView
	lastRead *tap.CardRead
	// pagePrinted is the read whose balance receipt the page's credential
	// already asked for.
	pagePrinted *tap.CardRead
	// loaded are the last top-ups this terminal wrote, for invoices;
	// invoicesPrinted the orders whose slip the page's credential asked for.
	loaded          []LoadedHere
	invoicesPrinted map[string]bool

	muxOnce sync.Once
	mux     *http.ServeMux

	// life ends the watches of receipts being printed when the server is
	// closed; watches counts them so Close can wait for them.
	life    context.Context
	stop    context.CancelFunc
	closed  bool
	watches sync.WaitGroup

	// topups is the kiosk top-up's state (topup.go).
	topups topups
}

// Close stops what the server runs beyond its requests (the watches of
// receipts being printed) and waits for it to end. Call it once the
// http.Server serving it is shut down; a receipt asked for later is still
// queued, but not watched.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	if s.stop != nil {
		s.stop()
	}
	s.mu.Unlock()
	s.watches.Wait()
}

// ReaderEvent records a reader event and publishes it; fit for
// tap.Runner.OnEvent.
func (s *Server) ReaderEvent(ev reader.Event, role string) {
	s.topupCardMoved(ev)
	s.mu.Lock()
	if s.readers == nil {
		s.readers = map[string]*ReaderView{}
	}
	var typ string
	switch ev.Kind {
	case reader.ReaderAdded:
		s.readers[ev.Reader] = &ReaderView{Name: ev.Reader, Role: role}
		s.pcscd = true
		typ = EventReader
	case reader.ReaderRemoved:
		delete(s.readers, ev.Reader)
		typ = EventReader
	case reader.CardInserted:
		if r := s.readers[ev.Reader]; r != nil {
			r.CardPresent = true
		}
		typ = EventCardPresent
	case reader.CardRemoved:
		if r := s.readers[ev.Reader]; r != nil {
			r.CardPresent = false
		}
		typ = EventCardRemoved
	case reader.ServiceLost:
		s.pcscd = false
		typ = EventReader
	case reader.ServiceBack:
		s.pcscd = true
		typ = EventReader
	default:
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	e := Event{Type: typ, Reader: ev.Reader}
	if typ == EventReader {
		st := s.status(context.Background())
		e.Status = &st
	}
	if (typ == EventCardPresent || typ == EventCardRemoved) && role != "card" {
		return // the SAM slot is nobody's business on the screen
	}
	s.Hub.Publish(e)
}

// Balance publishes the balance known early; fit for tap.Runner.OnBalance.
func (s *Server) Balance(res tap.Result) {
	s.Hub.Publish(Event{Type: EventCardBalance, Reader: res.Reader, Card: cardView(res.Read)})
}

// Leave publishes that the card may be removed; fit for
// tap.Runner.OnLeave. Its Tap is the outcome so far, not the final one:
// what runs after the card (the PSAM's MAC2 check) may still change it (a
// sale ok here can end mac2_alarm in card.tap).
func (s *Server) Leave(res tap.Result) {
	card, tv := tapEvent(res)
	s.Hub.Publish(Event{Type: EventCardLeave, Reader: res.Reader, Card: card, Tap: tv})
}

// Tap records the tap and publishes it; fit for tap.Runner.OnTap.
func (s *Server) Tap(res tap.Result) {
	s.topupPresent(res)
	if res.Read != nil && res.Err == nil {
		// The balance receipt of this card must show what it holds now,
		// after any top-up of this tap.
		cr := *res.Read
		if res.Load != nil {
			cr.Balance = res.Load.Balance
		}
		s.mu.Lock()
		s.lastRead = &cr
		s.mu.Unlock()
		s.rememberLoads(res, &cr)
	}
	card, tv := tapEvent(res)
	s.Hub.Publish(Event{Type: EventCardTap, Reader: res.Reader, Card: card, Tap: tv})
}

// tapEvent is a tap's card and outcome for an event: the card as it is
// now, after any top-up of the tap, as the screen shows it.
func tapEvent(res tap.Result) (*CardView, *TapView) {
	card := cardView(res.Read)
	tv := tapView(res)
	if card != nil && res.Load != nil {
		card.BalanceFen, card.Balance = tv.BalanceAfterFen, tv.BalanceAfter
	}
	return card, tv
}

// PrinterState records the printer's state and publishes it.
func (s *Server) PrinterState(p PrinterView) {
	s.mu.Lock()
	s.printer = p
	s.mu.Unlock()
	s.Hub.Publish(Event{Type: EventPrinter, Printer: &p})
}

func (s *Server) status(ctx context.Context) Status {
	st := s.Base
	s.mu.Lock()
	st.PCSCD = s.pcscd
	st.Readers = []ReaderView{}
	for _, r := range s.readers {
		st.Readers = append(st.Readers, *r)
	}
	st.Printer = s.printer
	st.Printer.Enabled = s.Base.Printer.Enabled || s.printer.Enabled
	s.mu.Unlock()
	slices.SortFunc(st.Readers, func(a, b ReaderView) int { return strings.Compare(a.Name, b.Name) })
	if s.QueueDepth != nil {
		st.Host.Configured = true
		if n, err := s.QueueDepth(ctx); err == nil {
			st.Host.QueueDepth = n
		}
	}
	if s.ReceiptsWaiting != nil {
		if n, err := s.ReceiptsWaiting(ctx); err == nil {
			st.Printer.ReceiptsWaiting = n
		}
	}
	if s.Till != nil {
		if v, ok := s.Till.View(redact.CardNumber); ok {
			st.ArmedPurchaseFen, st.Sale = v.AmountFen, &v
		}
	}
	st.MealPeriod, st.OutsideMealPeriods = mealStatus(s.Till)
	st.Shift = s.shiftStatus(ctx)
	return st
}

// route is one endpoint of the API. The mux is built from [routes], and a
// test holds docs/local-api.yaml to the same table, so the two cannot drift.
type route struct {
	method, path string
	handler      func(s *Server) http.HandlerFunc
}

// routes are the API's endpoints. A path asked with a method it does not
// take gets 405 and Allow from the mux itself.
var routes = []route{
	{http.MethodGet, "/healthz", func(s *Server) http.HandlerFunc { return s.healthz }},
	{http.MethodGet, "/metrics", func(s *Server) http.HandlerFunc { return s.metrics }},
	{http.MethodGet, "/v1/status", func(s *Server) http.HandlerFunc { return s.getStatus }},
	{http.MethodGet, "/v1/events", func(s *Server) http.HandlerFunc { return s.events }},
	{http.MethodGet, "/v1/journal", func(s *Server) http.HandlerFunc { return s.journal }},
	{http.MethodGet, "/v1/kiosk/config", func(s *Server) http.HandlerFunc { return s.kioskConfig }},
	{http.MethodGet, "/v1/invoices/{order}", func(s *Server) http.HandlerFunc { return s.getInvoice }},
	{http.MethodPost, "/v1/receipts", func(s *Server) http.HandlerFunc { return s.authed(pageMay, s.postReceipt) }},
	{http.MethodPost, "/v1/purchase/arm", func(s *Server) http.HandlerFunc { return s.authed(posOnly, s.arm) }},
	{http.MethodDelete, "/v1/purchase/arm", func(s *Server) http.HandlerFunc { return s.authed(posOnly, s.disarm) }},
	{http.MethodPost, "/v1/purchase/void", func(s *Server) http.HandlerFunc { return s.authed(posOnly, s.void) }},
	{http.MethodGet, "/v1/shift", func(s *Server) http.HandlerFunc { return s.authed(posOnly, s.getShift) }},
	{http.MethodPost, "/v1/shift", func(s *Server) http.HandlerFunc { return s.authed(posOnly, s.openShift) }},
	{http.MethodPost, "/v1/shift/close", func(s *Server) http.HandlerFunc { return s.authed(posOnly, s.closeShift) }},
	{http.MethodGet, "/v1/topup", func(s *Server) http.HandlerFunc { return s.authed(pageMay, s.topupOptions) }},
	{http.MethodPost, "/v1/topup", func(s *Server) http.HandlerFunc { return s.authed(pageMay, s.postTopup) }},
	{http.MethodGet, "/v1/topup/{id}", func(s *Server) http.HandlerFunc { return s.authed(pageMay, s.getTopup) }},
	{http.MethodPost, "/v1/topup/{id}/cancel", func(s *Server) http.HandlerFunc { return s.authed(pageMay, s.cancelTopup) }},
}

// ServeHTTP routes the API, after the Host, origin and body checks: a
// refused Host or origin learns nothing, not even which methods a path takes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.guard(w, r) {
		return
	}
	s.muxOnce.Do(func() {
		s.mux = http.NewServeMux()
		for _, rt := range routes {
			s.mux.HandleFunc(rt.method+" "+rt.path, rt.handler(s))
		}
	})
	h, pattern := s.mux.Handler(r)
	if pattern != "" {
		s.mux.ServeHTTP(w, r) // the mux itself: it sets the path's {values}
		return
	}
	// No route takes this method on this path: the mux's own answer says
	// whether the path is served with other methods (405 and Allow), which
	// is kept, with the reason in JSON like every other error.
	probe := &headerOnly{header: http.Header{}}
	h.ServeHTTP(probe, r)
	path := r.URL.Path
	switch {
	case probe.code == http.StatusMethodNotAllowed:
		allow := probe.header.Get("Allow")
		w.Header().Set("Allow", allow)
		fail(w, http.StatusMethodNotAllowed, "%s is not allowed on %s; use %s", r.Method, path, allow)
	case strings.HasPrefix(path, "/v1/"):
		fail(w, http.StatusNotFound, "no such endpoint %s (see docs/local-api.yaml)", path)
	case s.Kiosk != nil:
		s.Kiosk.ServeHTTP(w, r)
	default:
		fail(w, http.StatusNotFound, "no such endpoint %s", path)
	}
}

// headerOnly keeps the status and header a handler writes and drops its
// body: how ServeHTTP reads the mux's answer to a request no route takes.
type headerOnly struct {
	header http.Header
	code   int
}

func (h *headerOnly) Header() http.Header         { return h.header }
func (h *headerOnly) Write(b []byte) (int, error) { return len(b), nil }
func (h *headerOnly) WriteHeader(code int)        { h.code = code }

func (s *Server) metrics(w http.ResponseWriter, r *http.Request) {
	if s.Metrics == nil {
		fail(w, http.StatusNotFound, "no such endpoint %s", r.URL.Path)
		return
	}
	s.Metrics.ServeHTTP(w, r)
}

// credential is who made a call that changes something.
type credential int

const (
	posCredential  credential = iota + 1 // the POS app's token: any call
	pageCredential                       // the kiosk page's: its own call only
)

// Whether a route takes the page's credential.
const (
	posOnly = false
	pageMay = true
)

// authed checks the bearer token of a call that changes something and
// hands the handler who made it.
func (s *Server) authed(page bool, h func(http.ResponseWriter, *http.Request, credential)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		var c credential
		switch {
		case !ok || got == "":
			w.Header().Set("WWW-Authenticate", `Bearer realm="cardd"`)
			fail(w, http.StatusUnauthorized, "this call changes something: send Authorization: Bearer <token> (the token is in api.token_file)")
			return
		case equal(got, s.Token):
			c = posCredential
		case equal(got, s.PageToken):
			c = pageCredential
		default:
			w.Header().Set("WWW-Authenticate", `Bearer realm="cardd", error="invalid_token"`)
			fail(w, http.StatusUnauthorized, "wrong token")
			return
		}
		if c == pageCredential && !page {
			fail(w, http.StatusForbidden, "the kiosk page's credential cannot %s %s: that needs the POS token (api.token_file)", r.Method, r.URL.Path)
			return
		}
		h(w, r, c)
	}
}

// streamCredential says whether an event stream request shows the POS
// token or the page's credential, which entitles it to a reserved stream.
func (s *Server) streamCredential(r *http.Request) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		got = r.URL.Query().Get("credential")
	}
	return got != "" && (equal(got, s.Token) || equal(got, s.PageToken))
}

// equal compares a token sent with one held in constant time; an empty
// held token matches nothing.
func equal(got, want string) bool {
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// apiError is the body of every 4xx and 5xx answer.
type apiError struct {
	Error string `json:"error"`
}

func fail(w http.ResponseWriter, code int, format string, a ...any) {
	writeJSON(w, code, apiError{Error: fmt.Sprintf(format, a...)})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	// Answers quote what the client sent (a Host, a field name): never
	// let a browser take them for a page.
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// decode reads a small JSON body strictly (see [strictjson]): a misspelt,
// case-folded or repeated field is refused, not silently ignored or taken
// last, and a body over MaxBody is 413.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		fail(w, http.StatusUnsupportedMediaType, "Content-Type %q: send application/json", ct)
		return false
	}
	b, err := io.ReadAll(r.Body)
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		fail(w, http.StatusRequestEntityTooLarge, "body over %d bytes: the most is %d", tooBig.Limit, tooBig.Limit)
		return false
	case err != nil:
		fail(w, http.StatusBadRequest, "reading the body: %v", err)
		return false
	}
	if err := strictjson.Unmarshal(b, v); err != nil {
		if errors.Is(err, strictjson.ErrEmpty) {
			fail(w, http.StatusBadRequest, "empty body: send a JSON object")
		} else {
			fail(w, http.StatusBadRequest, "bad JSON: %v", err)
		}
		return false
	}
	return true
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	if s.Healthy != nil {
		if err := s.Healthy(); err != nil {
			fail(w, http.StatusServiceUnavailable, "unhealthy: %v", err)
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) getStatus(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.status(r.Context()))
}

// keepAlive is how often an idle stream gets a comment line, so proxies and
// the browser keep it open and a dead client is noticed.
const keepAlive = 15 * time.Second

// maxStreams bounds the event streams open at once without a credential:
// a screen and a POS app need one each, and each stream holds a connection
// for ever.
const maxStreams = 64

// reservedStreams are kept for clients that show the POS token or the
// page's credential (Authorization: Bearer, or ?credential= since a
// browser's EventSource sends no header), so that anyone who can reach the
// port cannot take every stream from the kiosk screen and cardd pos.
const reservedStreams = 8

// writeWait bounds one write to a stream client.
const writeWait = 10 * time.Second

func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	reserved := s.streamCredential(r)
	limit := maxStreams
	if reserved {
		limit = reservedStreams
	}
	c, cancel, ok := s.Hub.subscribeWithin(reserved, limit)
	if !ok {
		fail(w, http.StatusServiceUnavailable, "%d event streams are open already", limit)
		return
	}
	defer cancel()
	rc := http.NewResponseController(w)
	// The server's write timeout is for plain calls; a stream lasts, so
	// each write gets its own deadline. A client gone is still noticed: by
	// the connection closing (the request's context) or a write not done
	// within writeWait. (net/http lifts the read deadline itself once the
	// request is read.)
	_ = rc.SetWriteDeadline(time.Now().Add(writeWait))
	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	st := s.status(r.Context())
	if err := writeEvent(w, Event{Type: EventHello, Time: time.Now().UTC(), Status: &st}); err != nil {
		return
	}
	if rc.Flush() != nil {
		return
	}
	tick := time.NewTicker(keepAlive)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-c.gone:
			return // too slow: dropped by the hub
		case e := <-c.ch:
			// A write to a client that stopped reading must not hold this
			// goroutine for ever either.
			_ = rc.SetWriteDeadline(time.Now().Add(writeWait))
			if writeEvent(w, e) != nil || rc.Flush() != nil {
				return
			}
		case <-tick.C:
			_ = rc.SetWriteDeadline(time.Now().Add(writeWait))
			if _, err := io.WriteString(w, ": keep-alive\n\n"); err != nil || rc.Flush() != nil {
				return
			}
		}
	}
}

func writeEvent(w io.Writer, e Event) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if e.ID > 0 {
		_, err = fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", e.ID, e.Type, b)
	} else {
		_, err = fmt.Fprintf(w, "event: %s\ndata: %s\n\n", e.Type, b)
	}
	return err
}

// JournalRow is a journal row as the API shows it: the card masked.
type JournalRow struct {
	ID       string `json:"id"`
	Seq      int64  `json:"seq"`
	Kind     string `json:"kind"`
	State    string `json:"state"`
	Card     string `json:"card"`
	Purse    string `json:"purse,omitempty"`
	Counter  uint16 `json:"counter"`
	Balance  string `json:"balance"`
	Amount   string `json:"amount"`
	CreditID string `json:"credit_id,omitempty"`
	TAC      string `json:"tac,omitempty"`
	// TermSerial is a purchase's terminal transaction serial (the PSAM's).
	TermSerial uint32 `json:"term_serial,omitempty"`
	Time       string `json:"time,omitempty"`
	Detail     string `json:"detail,omitempty"`
	Unacked    bool   `json:"unacked"`
	// HostRefused is the host's code and reason when it refused the row as
	// it stands: kept here, not sent again unless it changes; a person must
	// look at it.
	HostRefused string `json:"host_refused,omitempty"`
	CreatedAt   string `json:"created_at"`
	// Period, Class, PINVerified, CollectFen and Shift are what a purchase
	// row records of its sale for the shift's close-out (offline.SaleFacts);
	// absent when empty.
	Period      string `json:"period,omitempty"`
	Class       string `json:"class,omitempty"`
	PINVerified bool   `json:"pin_verified,omitempty"`
	CollectFen  int64  `json:"collect_fen,omitempty"`
	Shift       int64  `json:"shift,omitempty"`
}

// JournalPage is GET /v1/journal's answer; Next is the before= of the next
// (older) page, 0 at the end.
type JournalPage struct {
	Rows []JournalRow `json:"rows"`
	Next int64        `json:"next"`
}

func (s *Server) journal(w http.ResponseWriter, r *http.Request) {
	if s.Journal == nil {
		fail(w, http.StatusServiceUnavailable, "no journal: set host.url or printer.enabled so cardd keeps one")
		return
	}
	q := r.URL.Query()
	for k := range q {
		if k != "before" && k != "limit" {
			fail(w, http.StatusBadRequest, "unknown parameter %q (before, limit)", k)
			return
		}
	}
	limit, before := 50, int64(0)
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			fail(w, http.StatusBadRequest, "limit=%q: want 1..500", v)
			return
		}
		limit = n
	}
	if v := q.Get("before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			fail(w, http.StatusBadRequest, "before=%q: want a positive row sequence (the next of the previous page)", v)
			return
		}
		before = n
	}
	rows, err := s.Journal.List(r.Context(), before, limit)
	if err != nil {
		fail(w, http.StatusInternalServerError, "reading the journal: %v", err)
		return
	}
	page := JournalPage{Rows: []JournalRow{}}
	for _, row := range rows {
		page.Rows = append(page.Rows, JournalRow{ID: row.ID, Seq: row.Seq, Kind: row.Kind, State: row.State,
			Card: redact.CardNumber(row.Card), Purse: row.Purse, Counter: row.Counter, Balance: money.Format(row.BalanceFen),
			Amount: money.Format(row.AmountFen), CreditID: row.CreditID, TAC: row.TAC, TermSerial: row.TermSerial, Time: row.Time, Detail: row.Detail,
			Unacked: !row.Acked, HostRefused: row.HostRefused, CreatedAt: row.Created.UTC().Format(time.RFC3339),
			Period: row.Sale.Period, Class: row.Sale.Class, PINVerified: row.Sale.PINVerified, CollectFen: row.Sale.CollectFen, Shift: row.Sale.Shift})
	}
	if len(rows) == limit {
		page.Next = rows[len(rows)-1].Seq
	}
	writeJSON(w, http.StatusOK, page)
}

// ReceiptRequest is POST /v1/receipts's body.
type ReceiptRequest struct {
	// Kind is "balance" (a receipt of the last card tapped),
	// "reprint-last" (the last receipt again, marked as a copy) or
	// "invoice" (the invoice slip of Order, a top-up written here).
	Kind string `json:"kind"`
	// Order is the top-up order of an invoice slip.
	Order string `json:"order,omitempty"`
}

func (s *Server) postReceipt(w http.ResponseWriter, r *http.Request, c credential) {
	var req ReceiptRequest
	if !decode(w, r, &req) {
		return
	}
	if c == pageCredential && req.Kind != "balance" && req.Kind != "invoice" {
		fail(w, http.StatusForbidden, "the kiosk page's credential asks for balance and invoice slips only; %q needs the POS token (api.token_file)", req.Kind)
		return
	}
	if (req.Order != "") != (req.Kind == "invoice") {
		fail(w, http.StatusBadRequest, "order goes with kind invoice, and only with it")
		return
	}
	if s.Receipts == nil {
		fail(w, http.StatusServiceUnavailable, "no printer configured (printer.enabled)")
		return
	}
	var id int64
	var err error
	switch req.Kind {
	case "balance":
		cr, msg := s.claimRead(c)
		if cr == nil {
			fail(w, http.StatusConflict, "%s", msg)
			return
		}
		var nr offline.NewReceipt
		if nr, err = s.BalanceReceipt(cr); err == nil {
			id, err = s.Receipts.QueueReceipt(r.Context(), nr)
		}
		if err != nil && c == pageCredential {
			s.mu.Lock()
			if s.pagePrinted == cr {
				s.pagePrinted = nil // not queued: the page may ask again for this tap
			}
			s.mu.Unlock()
		}
	case "invoice":
		nr, ok := s.invoiceReceipt(w, req.Order, c)
		if !ok {
			return
		}
		if id, err = s.Receipts.QueueReceipt(r.Context(), nr); err != nil {
			s.forgetInvoice(req.Order, c)
		}
	case "reprint-last":
		var last offline.Receipt
		last, err = s.Receipts.LastReceipt(r.Context())
		if errors.Is(err, offline.ErrNotFound) {
			fail(w, http.StatusConflict, "no receipt to reprint")
			return
		}
		if err == nil {
			id, err = s.Receipts.Reprint(r.Context(), last.ID)
		}
	case "":
		fail(w, http.StatusBadRequest, "kind is required: balance, reprint-last or invoice")
		return
	default:
		fail(w, http.StatusBadRequest, "kind %q: want balance, reprint-last or invoice", req.Kind)
		return
	}
	if err != nil {
		fail(w, http.StatusInternalServerError, "queueing the receipt: %v", err)
		return
	}
	if s.KickPrinter != nil {
		s.KickPrinter()
	}
	rv := ReceiptView{ID: id, Kind: req.Kind, State: offline.ReceiptQueued}
	s.Hub.Publish(Event{Type: EventReceipt, Receipt: &rv})
	if ctx, ok := s.watchContext(); ok {
		go s.watchReceipt(ctx, id, req.Kind)
	}
	writeJSON(w, http.StatusAccepted, rv)
}

// claimRead is the last card read, for its balance receipt, or nil and
// why not. The page's credential gets each read once: a script holding it
// cannot empty the paper roll, and two presses at once print one receipt.
func (s *Server) claimRead(c credential) (*tap.CardRead, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cr := s.lastRead
	switch {
	case cr == nil:
		return nil, "no card tapped yet"
	case c != pageCredential:
		return cr, ""
	case s.pagePrinted == cr:
		return nil, "this tap's receipt was already asked for from the kiosk page: tap the card again"
	}
	s.pagePrinted = cr
	return cr, ""
}

// watchFor is how long a receipt asked through the API is watched for
// being printed.
const watchFor = 2 * time.Minute

// watchContext is the context of a new watch of a receipt, counted in
// s.watches, or false once the server is closed.
func (s *Server) watchContext() (context.Context, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, false
	}
	if s.life == nil {
		s.life, s.stop = context.WithCancel(context.Background())
	}
	s.watches.Add(1)
	return s.life, true
}

// watchReceipt publishes when a receipt asked through the API is printed,
// for the screen's "printed"; it gives up after watchFor, or when ctx ends
// (the server closed).
func (s *Server) watchReceipt(ctx context.Context, id int64, kind string) {
	defer s.watches.Done()
	ctx, cancel := context.WithTimeout(ctx, watchFor)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		rc, err := s.Receipts.GetReceipt(ctx, id)
		if err != nil {
			return
		}
		if rc.State == offline.ReceiptPrinted || rc.State == offline.ReceiptUnknown {
			s.Hub.Publish(Event{Type: EventReceipt, Receipt: &ReceiptView{ID: id, Kind: kind, State: rc.State}})
			return
		}
	}
}

// ArmRequest is POST /v1/purchase/arm's body.
type ArmRequest struct {
	// Amount is in yuan, "12.50": the purchase the next tap pays.
	Amount string `json:"amount"`
	// PIN is the cardholder's PIN, 4 to 12 digits, when the POS app has
	// asked for it: a purchase over the card's daily limit needs it. It is
	// sent to the card (VERIFY) and never logged or shown.
	PIN string `json:"pin,omitempty"`
	// Split lets the card pay part of the sale when it holds less (组合支付):
	// the tap debits what it holds, at most Cap (yuan) when set, and the
	// outcome gives the rest to collect (PurchaseView.Split).
	Split bool   `json:"split,omitempty"`
	Cap   string `json:"cap,omitempty"`
}

func (s *Server) arm(w http.ResponseWriter, r *http.Request, _ credential) {
	var req ArmRequest
	if !decode(w, r, &req) {
		return
	}
	fen, err := money.Parse(req.Amount)
	if err != nil || fen <= 0 {
		fail(w, http.StatusBadRequest, "amount %q: want yuan above 0 with at most two decimals, like \"12.50\"", req.Amount)
		return
	}
	if s.Till == nil {
		fail(w, http.StatusConflict, "purchases need mode pos; this terminal runs mode %s", s.Base.Mode)
		return
	}
	sale, err := armTill(s.Till, fen, req)
	switch {
	case errors.Is(err, tap.ErrSaleInDoubt), errors.Is(err, tap.ErrSaleInTap), errors.Is(err, tap.ErrOutsidePeriods), errors.Is(err, tap.ErrNoShift):
		fail(w, http.StatusConflict, "%v", err)
		return
	case err != nil:
		fail(w, http.StatusBadRequest, "%v", err)
		return
	}
	v, _ := s.Till.View(redact.CardNumber)
	s.Hub.Publish(Event{Type: EventSale, Sale: &v})
	writeJSON(w, http.StatusOK, map[string]any{"armed_purchase_fen": sale.AmountFen, "armed_purchase": money.Format(sale.AmountFen), "sale": v})
}

func (s *Server) disarm(w http.ResponseWriter, r *http.Request, _ credential) {
	if s.Till == nil {
		fail(w, http.StatusConflict, "purchases need mode pos; this terminal runs mode %s", s.Base.Mode)
		return
	}
	if err := s.Till.Disarm(); err != nil {
		fail(w, http.StatusConflict, "%v", err)
		return
	}
	s.Hub.Publish(Event{Type: EventSale})
	writeJSON(w, http.StatusOK, map[string]any{"armed_purchase_fen": 0})
}
