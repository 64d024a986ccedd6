package localapi

import (
	"encoding/base64"
	"net/http"
	"strings"
	"time"
	"unicode"

	"github.com/cardd/cardd/money"
	"github.com/cardd/cardd/offline"
	"github.com/cardd/cardd/tap"
)

// KioskView is GET /v1/kiosk/config's answer: what the kiosk page shows
// besides the card. The page puts every string into text, never markup,
// and the colours were checked to be CSS hex colours at load.
type KioskView struct {
	Title       string      `json:"title"`
	Merchant    string      `json:"merchant"`
	Colors      KioskColors `json:"colors"`
	IdleSeconds int         `json:"idle_seconds"` // 0: never back to idle by itself
	Language    string      `json:"language"`     // zh-CN or en
	// Invoice says whether the page offers an invoice after a top-up
	// (kiosk.invoice_url is set).
	Invoice bool `json:"invoice"`
}

// KioskColors are the page's colours, #rgb or #rrggbb.
type KioskColors struct {
	Primary    string `json:"primary"`
	Background string `json:"background"`
	Text       string `json:"text"`
}

// InvoiceView is GET /v1/invoices/{order}'s answer.
type InvoiceView struct {
	Order     string `json:"order"`
	AmountFen int64  `json:"amount_fen"`
	Amount    string `json:"amount"`
	URL       string `json:"url"`
	// QR is the URL's QR code as an SVG image in a data: URL, for an
	// <img src>: drawn here so the page needs no script of its own for it.
	QR string `json:"qr"`
}

// LoadedHere is a top-up this terminal wrote onto a card: what an invoice
// may be asked for. Its order is the credit's id (a kiosk order's credit
// carries the order's id).
type LoadedHere struct {
	Order     string
	AmountFen int64
	Time      time.Time
	// Read is the card as read on the tap, for the slip's holder.
	Read *tap.CardRead
}

// maxLoadsKept bounds the top-ups remembered for invoices: a cardholder
// asks right after the tap, not days later.
const maxLoadsKept = 64

// rememberLoads records the top-ups applied on a tap, newest last.
func (s *Server) rememberLoads(res tap.Result, cr *tap.CardRead) {
	if res.Load == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range res.Load.Loads {
		if l.Applied && l.CreditID != "" {
			s.loaded = append(s.loaded, LoadedHere{Order: l.CreditID, AmountFen: l.AmountFen, Time: time.Now(), Read: cr})
		}
	}
	if n := len(s.loaded); n > maxLoadsKept {
		s.loaded = append(s.loaded[:0:0], s.loaded[n-maxLoadsKept:]...)
	}
}

// loadedHere is the top-up of order written at this terminal, newest, or
// false when none was (since the daemon started, among the last
// maxLoadsKept).
func (s *Server) loadedHere(order string) (LoadedHere, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.loaded) - 1; i >= 0; i-- {
		if s.loaded[i].Order == order {
			return s.loaded[i], true
		}
	}
	return LoadedHere{}, false
}

func (s *Server) kioskConfig(w http.ResponseWriter, r *http.Request) {
	v := s.KioskConfig
	v.Invoice = s.InvoiceLink != nil
	writeJSON(w, http.StatusOK, v)
}

// orderProblem says what is wrong with an order id sent to the API, ""
// when nothing is.
func orderProblem(order string) string {
	if order == "" || len(order) > 128 {
		return "an order id is 1 to 128 characters"
	}
	if strings.ContainsFunc(order, func(r rune) bool { return !unicode.IsPrint(r) || r == ' ' }) {
		return "an order id has no blanks or control characters"
	}
	return ""
}

// invoiceFor checks that an invoice can be made for order and returns the
// top-up, or answers the request with why not.
func (s *Server) invoiceFor(w http.ResponseWriter, order string) (LoadedHere, bool) {
	if s.InvoiceLink == nil {
		fail(w, http.StatusConflict, "no invoicing page configured (kiosk.invoice_url)")
		return LoadedHere{}, false
	}
	if p := orderProblem(order); p != "" {
		fail(w, http.StatusBadRequest, "order %q: %s", order, p)
		return LoadedHere{}, false
	}
	l, ok := s.loadedHere(order)
	if !ok {
		fail(w, http.StatusNotFound, "order %q was not loaded onto a card at this terminal: an invoice is offered only here, after its top-up", order)
		return LoadedHere{}, false
	}
	return l, true
}

func (s *Server) getInvoice(w http.ResponseWriter, r *http.Request) {
	l, ok := s.invoiceFor(w, r.PathValue("order"))
	if !ok {
		return
	}
	link := s.InvoiceLink(l.Order, l.AmountFen)
	svg, err := qrSVG(link)
	if err != nil {
		fail(w, http.StatusInternalServerError, "drawing the QR code: %v", err)
		return
	}
	writeJSON(w, http.StatusOK, InvoiceView{Order: l.Order, AmountFen: l.AmountFen, Amount: money.Format(l.AmountFen), URL: link,
		QR: "data:image/svg+xml;base64," + base64.StdEncoding.EncodeToString([]byte(svg))})
}

// invoiceReceipt makes the invoice slip of order, for POST /v1/receipts:
// with the page's credential once per top-up, like the balance slip once
// per tap.
func (s *Server) invoiceReceipt(w http.ResponseWriter, order string, c credential) (offline.NewReceipt, bool) {
	l, ok := s.invoiceFor(w, order)
	if !ok {
		return offline.NewReceipt{}, false
	}
	if s.InvoiceReceipt == nil {
		fail(w, http.StatusServiceUnavailable, "no printer configured (printer.enabled)")
		return offline.NewReceipt{}, false
	}
	if c == pageCredential {
		s.mu.Lock()
		done := s.invoicesPrinted[l.Order]
		if !done {
			if s.invoicesPrinted == nil {
				s.invoicesPrinted = map[string]bool{}
			}
			s.invoicesPrinted[l.Order] = true
		}
		s.mu.Unlock()
		if done {
			fail(w, http.StatusConflict, "the invoice slip of order %q was already asked for from the kiosk page", l.Order)
			return offline.NewReceipt{}, false
		}
	}
	nr, err := s.InvoiceReceipt(l, s.InvoiceLink(l.Order, l.AmountFen))
	if err != nil {
		s.forgetInvoice(l.Order, c)
		fail(w, http.StatusInternalServerError, "making the invoice slip: %v", err)
		return offline.NewReceipt{}, false
	}
	return nr, true
}

// forgetInvoice lets the page ask again for an invoice slip not queued.
func (s *Server) forgetInvoice(order string, c credential) {
	if c != pageCredential {
		return
	}
	s.mu.Lock()
	delete(s.invoicesPrinted, order)
	s.mu.Unlock()
}
