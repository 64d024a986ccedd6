package localapi

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/cardd/cardd/config"
	"github.com/cardd/cardd/offline"
	"github.com/cardd/cardd/tap"
)

func TestKioskConfigRoute(t *testing.T) {
	s, srv, _ := newServer(t)
	s.KioskConfig = KioskView{Title: `<b>万达</b>`, Merchant: "万达广场", Colors: KioskColors{Primary: "#123", Background: "#fff", Text: "#000"},
		IdleSeconds: 60, Language: "en"}
	code, body := call(t, srv, "GET", "/v1/kiosk/config", "", "")
	if code != 200 || body["title"] != `<b>万达</b>` || body["language"] != "en" || body["idle_seconds"] != float64(60) || body["invoice"] != false {
		t.Errorf("GET /v1/kiosk/config: %d %v", code, body)
	}
	s.InvoiceLink = func(string, int64) string { return "" }
	if _, body = call(t, srv, "GET", "/v1/kiosk/config", "", ""); body["invoice"] != true {
		t.Errorf("with an invoice page: %v, want invoice true", body)
	}
}

// invoiceServer is a server whose terminal loaded order cr-1 (50.00) onto
// a card, with kiosk.invoice_url set and invoice slips made.
func invoiceServer(t *testing.T) (*Server, func(method, path, auth, body string) (int, map[string]any), *offline.Store) {
	s, srv, store := newServer(t)
	k := config.KioskConfig{InvoiceURL: "https://fp.example.cn/k?o={order}&a={amount}"}
	s.InvoiceLink = k.InvoiceLink
	s.InvoiceReceipt = func(l LoadedHere, link string) (offline.NewReceipt, error) {
		b, _ := json.Marshal(map[string]any{"order": l.Order, "amount_fen": l.AmountFen, "link": link})
		return offline.NewReceipt{Kind: "invoice", Body: b}, nil
	}
	s.Tap(tap.Result{Reader: "R0", Read: sampleRead(),
		Load: &tap.LoadReport{Balance: 18412, Loads: []tap.LoadResult{
			{CreditID: "cr-1", AmountFen: 5000, Applied: true, NewBalance: 18412},
			{CreditID: "cr-2", AmountFen: 700, Refused: "over the cap"},
		}}})
	return s, func(method, path, auth, body string) (int, map[string]any) {
		t.Helper()
		return call(t, srv, method, path, auth, body)
	}, store
}

// An invoice link only for a top-up this terminal wrote: another order, one
// refused on the tap, a bad id or no kiosk.invoice_url are 4xx with why.
func TestInvoiceRoute(t *testing.T) {
	s, do, _ := invoiceServer(t)
	code, body := do("GET", "/v1/invoices/cr-1", "", "")
	if code != 200 || body["order"] != "cr-1" || body["amount"] != "50.00" || body["url"] != "https://fp.example.cn/k?o=cr-1&a=50.00" {
		t.Fatalf("GET /v1/invoices/cr-1: %d %v", code, body)
	}
	qr, _ := body["qr"].(string)
	svg, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(qr, "data:image/svg+xml;base64,"))
	if !strings.HasPrefix(qr, "data:image/svg+xml;base64,") || err != nil || !strings.HasPrefix(string(svg), "<svg ") || !strings.Contains(string(svg), `<path fill="#000" d="M`) {
		t.Errorf("qr %.60q: want an SVG data URL (%v)", qr, err)
	}
	for _, tc := range []struct {
		path string
		code int
		in   string
	}{
		{"/v1/invoices/cr-9", 404, `order "cr-9" was not loaded onto a card at this terminal`},
		{"/v1/invoices/cr-2", 404, "was not loaded"},
		{"/v1/invoices/" + strings.Repeat("x", 129), 400, "1 to 128 characters"},
		{"/v1/invoices/a%20b", 400, "no blanks or control characters"},
		{"/v1/invoices/a%0Ab", 400, "no blanks or control characters"},
	} {
		if code, body := do("GET", tc.path, "", ""); code != tc.code || !strings.Contains(body["error"].(string), tc.in) {
			t.Errorf("GET %s: %d %v, want %d with %q", tc.path, code, body, tc.code, tc.in)
		}
	}
	s.InvoiceLink = nil
	if code, body := do("GET", "/v1/invoices/cr-1", "", ""); code != 409 || !strings.Contains(body["error"].(string), "kiosk.invoice_url") {
		t.Errorf("without kiosk.invoice_url: %d %v, want 409 naming the key", code, body)
	}
}

// The invoice slip: the page's credential gets it once per order, for a
// top-up written here only; the POS token may reprint it.
func TestInvoiceReceipt(t *testing.T) {
	_, do, store := invoiceServer(t)
	page, pos := "Bearer "+pageToken, "Bearer "+token
	for _, tc := range []struct {
		auth, body string
		code       int
		in         string
	}{
		{page, `{"kind":"invoice","order":"cr-9"}`, 404, "was not loaded onto a card at this terminal"},
		{page, `{"kind":"invoice"}`, 400, "order goes with kind invoice"},
		{page, `{"kind":"balance","order":"cr-1"}`, 400, "order goes with kind invoice"},
		{page, `{"kind":"invoice","order":"cr-1"}`, 202, ""},
		{page, `{"kind":"invoice","order":"cr-1"}`, 409, "already asked for from the kiosk page"},
		{pos, `{"kind":"invoice","order":"cr-1"}`, 202, ""},
	} {
		code, body := do("POST", "/v1/receipts", tc.auth, tc.body)
		if msg, _ := body["error"].(string); code != tc.code || !strings.Contains(msg, tc.in) {
			t.Errorf("POST %s: %d %v, want %d with %q", tc.body, code, body, tc.code, tc.in)
		}
	}
	r, err := store.LastReceipt(t.Context())
	if err != nil || r.Kind != "invoice" || !strings.Contains(string(r.Body), `"link":"https://fp.example.cn/k?o=cr-1\u0026a=50.00"`) {
		t.Errorf("last receipt %+v %s (%v), want the invoice slip of cr-1", r, r.Body, err)
	}
	if n, _ := store.ReceiptsWaiting(t.Context()); n != 2 {
		t.Errorf("%d receipts queued, want the 2 invoice slips asked for", n)
	}
}
