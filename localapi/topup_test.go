package localapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/reader"
	hostsync "github.com/cardd/cardd/sync"
	"github.com/cardd/cardd/tap"
)

// fakeTopupHost is the host's side of the top-up: orders by id, each
// question counted.
type fakeTopupHost struct {
	mu      sync.Mutex
	orders  map[string]hostapi.TopupOrder
	keys    map[string]string // idempotency key → order id
	calls   map[string]int    // "order", "query", "close"
	err     error             // every call fails with it when set
	payNext bool              // the next query finds the order paid
	balance int64             // the balance the last order request said the card holds
}

func newFakeTopupHost() *fakeTopupHost {
	return &fakeTopupHost{orders: map[string]hostapi.TopupOrder{}, keys: map[string]string{}, calls: map[string]int{}}
}

func (h *fakeTopupHost) count(what string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.calls[what]
}

func (h *fakeTopupHost) TopupOrder(_ context.Context, req hostapi.TopupOrderRequest) (hostapi.TopupOrder, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls["order"]++
	h.balance = req.BalanceFen
	if h.err != nil {
		return hostapi.TopupOrder{}, h.err
	}
	if id, ok := h.keys[req.Key]; ok {
		return h.orders[id], nil
	}
	id := fmt.Sprintf("T%04d", len(h.orders)+1)
	o := hostapi.TopupOrder{ID: id, Card: req.Card, AmountFen: req.AmountFen, QR: "http://host.example/pay/" + id,
		State: hostapi.TopupUnpaid, Expires: time.Now().Add(time.Hour).UTC().Format(time.RFC3339), Provider: "sim"}
	h.orders[id], h.keys[req.Key] = o, id
	return o, nil
}

func (h *fakeTopupHost) TopupQuery(_ context.Context, id string) (hostapi.TopupOrder, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls["query"]++
	if h.err != nil {
		return hostapi.TopupOrder{}, h.err
	}
	o, ok := h.orders[id]
	if !ok {
		return o, &hostsync.HostError{Status: 404, Code: hostapi.CodeNotFound}
	}
	if h.payNext && o.State == hostapi.TopupUnpaid {
		o.State, o.CreditID, o.QR = hostapi.TopupPaid, id, ""
		h.orders[id] = o
	}
	return o, nil
}

func (h *fakeTopupHost) TopupClose(_ context.Context, id string) (hostapi.TopupOrder, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls["close"]++
	if h.err != nil {
		return hostapi.TopupOrder{}, h.err
	}
	o, ok := h.orders[id]
	if !ok {
		return o, &hostsync.HostError{Status: 404, Code: hostapi.CodeNotFound}
	}
	if o.State == hostapi.TopupUnpaid {
		o.State, o.QR = hostapi.TopupClosed, ""
		h.orders[id] = o
	}
	return o, nil
}

// topupBench is a kiosk's API with the top-up on fakes: the host, the
// runner's LoadNow (which adds the credit to the card's balance) and the
// clock.
type topupBench struct {
	s     *Server
	srv   *httptest.Server
	host  *fakeTopupHost
	mu    sync.Mutex
	now   time.Time
	loads []string // card numbers LoadNow was asked for
	// loadErr, when set, is the LoadNow tap's error (the card left).
	loadErr error
}

const topupCard = "3101000000123456"

func newTopupBench(t *testing.T) *topupBench {
	t.Helper()
	s, srv, _ := newServer(t)
	s.Base.Mode = "kiosk"
	s.Till = nil
	b := &topupBench{s: s, srv: srv, host: newFakeTopupHost(), now: time.Date(2026, 12, 3, 19, 0, 0, 0, time.UTC)}
	s.Topup = &Topup{Host: b.host, Presets: []int64{2000, 5000, 10000, 20000}, MaxFen: 50000, BalanceCap: 50000,
		Wait: 3 * time.Minute, Poll: 2 * time.Second, Now: b.clock, LoadNow: b.loadNow}
	return b
}

func (b *topupBench) clock() time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.now
}

func (b *topupBench) advance(d time.Duration) {
	b.mu.Lock()
	b.now = b.now.Add(d)
	b.mu.Unlock()
}

func (b *topupBench) loadNow(_ context.Context, rd, card string) (tap.Result, error) {
	b.mu.Lock()
	b.loads = append(b.loads, card)
	err := b.loadErr
	b.mu.Unlock()
	res := tap.Result{Reader: rd, Read: sampleRead(), Err: err}
	if err == nil {
		res.Load = &tap.LoadReport{Balance: 13412 + 10000, Loads: []tap.LoadResult{{CreditID: "T0001", AmountFen: 10000, Applied: true, NewBalance: 23412}}}
	}
	return res, nil
}

// tap puts the sample card on reader "card" and reads it: the card the
// order is for.
func (b *topupBench) tap() {
	b.s.ReaderEvent(reader.Event{Kind: reader.CardInserted, Reader: "card"}, "card")
	b.s.Tap(tap.Result{Reader: "card", Read: sampleRead()})
}

// call sends a request with the page's credential (headers may replace
// it) and decodes the JSON answer.
func (b *topupBench) call(t *testing.T, method, path, body string, headers ...string) (int, map[string]any) {
	t.Helper()
	code, _, text := send(t, b.srv, method, path, body, append([]string{"Authorization", "Bearer " + pageToken}, headers...)...)
	var m map[string]any
	if err := json.Unmarshal([]byte(text), &m); err != nil {
		t.Fatalf("%s %s: answer is not JSON: %q", method, path, text)
	}
	return code, m
}

// TestTopupRefused: every request the top-up must not take is a 4xx with
// its reason, and the host never hears of it.
func TestTopupRefused(t *testing.T) {
	b := newTopupBench(t)
	noCard := func(t *testing.T) {
		code, m := b.call(t, "POST", "/v1/topup", `{"amount_fen":10000}`)
		if code != http.StatusConflict || !strings.Contains(m["error"].(string), "no card read on the reader") {
			t.Fatalf("no card: %d %v", code, m)
		}
	}
	t.Run("no card", noCard)
	b.tap()
	for _, tc := range []struct {
		name    string
		body    string
		headers []string
		want    int
		in      string
	}{
		{"no token", `{"amount_fen":10000}`, []string{"Authorization", ""}, 401, "Authorization: Bearer"},
		{"another origin", `{"amount_fen":10000}`, []string{"Origin", "http://evil.example"}, 403, "web origin"},
		{"another site", `{"amount_fen":10000}`, []string{"Sec-Fetch-Site", "cross-site"}, 403, "another site"},
		{"another Host", `{"amount_fen":10000}`, []string{"Host", "evil.example"}, 421, "not an address of this API"},
		{"zero", `{"amount_fen":0}`, nil, 400, "want fen above 0"},
		{"negative", `{"amount_fen":-100}`, nil, 400, "want fen above 0"},
		{"yuan with decimals", `{"amount_fen":100.5}`, nil, 400, "bad JSON"},
		{"yuan as text", `{"amount_fen":"100.00"}`, nil, 400, "bad JSON"},
		{"over the keypad's most", `{"amount_fen":50001}`, nil, 400, "the most this kiosk takes is 50000 (500.00"},
		{"over the card's cap", `{"amount_fen":40000}`, nil, 409, "may hold at most 500.00 (load.balance_cap): at most 365.88 more"},
		{"bad key", `{"amount_fen":10000,"key":"a b"}`, nil, 400, "key \"a b\""},
		{"unknown field", `{"amount_fen":10000,"card":"3101000000000000"}`, nil, 400, "card"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, m := b.call(t, "POST", "/v1/topup", tc.body, tc.headers...)
			msg, _ := m["error"].(string)
			if code != tc.want || !strings.Contains(msg, tc.in) {
				t.Fatalf("%d %q, want %d with %q", code, msg, tc.want, tc.in)
			}
		})
	}
	if n := b.host.count("order"); n != 0 {
		t.Fatalf("the host was asked for %d orders", n)
	}
	// The card lifted: no order for it any more.
	b.s.ReaderEvent(reader.Event{Kind: reader.CardRemoved, Reader: "card"}, "card")
	t.Run("card lifted", noCard)
	// A tap that failed (the card refused) leaves no card to top up.
	b.s.ReaderEvent(reader.Event{Kind: reader.CardInserted, Reader: "card"}, "card")
	b.s.Tap(tap.Result{Reader: "card", Read: sampleRead(), Err: tap.ErrCardDenied})
	t.Run("card refused", noCard)

	// Another mode, or the top-up off: 409 and why.
	b.tap()
	b.s.Base.Mode = "pos"
	if code, m := b.call(t, "POST", "/v1/topup", `{"amount_fen":10000}`); code != 409 || !strings.Contains(m["error"].(string), "mode pos") {
		t.Fatalf("mode pos: %d %v", code, m)
	}
	b.s.Base.Mode = "kiosk"
	topup := b.s.Topup
	b.s.Topup = nil
	if code, m := b.call(t, "POST", "/v1/topup", `{"amount_fen":10000}`); code != 409 || !strings.Contains(m["error"].(string), "kiosk.topup.enabled") {
		t.Fatalf("top-up off: %d %v", code, m)
	}
	b.s.Topup = topup
	if n := b.host.count("order"); n != 0 {
		t.Fatalf("the host was asked for %d orders", n)
	}
	// The host away: 503 with the reason.
	b.host.err = fmt.Errorf("%w: dial refused", hostsync.ErrUnreachable)
	if code, m := b.call(t, "POST", "/v1/topup", `{"amount_fen":10000}`); code != 503 || !strings.Contains(m["error"].(string), "cannot be reached") {
		t.Fatalf("host away: %d %v", code, m)
	}
	b.host.err = fmt.Errorf("%w: %w", hostsync.ErrTopupUnavailable, &hostsync.HostError{Status: 503, Code: hostapi.CodeTopupUnavailable})
	if code, m := b.call(t, "POST", "/v1/topup", `{"amount_fen":10000}`); code != 503 || !strings.Contains(m["error"].(string), "payment provider") {
		t.Fatalf("provider away: %d %v", code, m)
	}
}

// TestTopupOptions: the page learns the buttons and the most the card on
// the reader may take.
func TestTopupOptions(t *testing.T) {
	b := newTopupBench(t)
	if code, m := b.call(t, "GET", "/v1/topup", ""); code != 200 || m["card"] != false || m["max_fen"].(float64) != 0 {
		t.Fatalf("no card: %d %v", code, m)
	}
	b.tap()
	code, m := b.call(t, "GET", "/v1/topup", "")
	if code != 200 || m["card"] != true || m["max_fen"].(float64) != 36588 || len(m["presets"].([]any)) != 4 {
		t.Fatalf("card: %d %v", code, m)
	}
	b.s.Topup.BalanceCap = 20000 // the card holds 134.12: 65.88 more
	if _, m = b.call(t, "GET", "/v1/topup", ""); m["max_fen"].(float64) != 6588 {
		t.Fatalf("max under the cap: %v", m)
	}
}

// waitLoad waits for the order's load to end, as the page does.
func (b *topupBench) waitLoad(t *testing.T, id string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		code, m := b.call(t, "GET", "/v1/topup/"+id, "")
		if code != 200 {
			t.Fatalf("GET: %d %v", code, m)
		}
		if l, _ := m["load"].(string); l != "" && l != LoadWriting {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("the load did not end: %v", m)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestTopupPaidAndWritten: an order is made for the card on the reader
// with a QR code; the host is asked at most once per Poll however often
// the page asks; once paid, the card on the reader is loaded (LoadNow) and
// the new balance published.
func TestTopupPaidAndWritten(t *testing.T) {
	b := newTopupBench(t)
	b.tap()
	c, cancel, _ := b.s.Hub.subscribeWithin(false, -1)
	defer cancel()
	code, m := b.call(t, "POST", "/v1/topup", `{"amount_fen":10000,"key":"press-1"}`)
	if code != http.StatusCreated || m["state"] != "unpaid" || m["amount"] != "100.00" || m["seconds_left"].(float64) != 180 ||
		!strings.HasPrefix(m["qr_svg"].(string), "<svg") || m["qr"] != "http://host.example/pay/T0001" {
		t.Fatalf("POST: %d %v", code, m)
	}
	id := m["id"].(string)
	if b.host.balance != 13412 {
		t.Errorf("the order request said the card holds %d fen, want 13412 as read", b.host.balance)
	}
	// The same press again (its answer lost) is the same order.
	if _, again := b.call(t, "POST", "/v1/topup", `{"amount_fen":10000,"key":"press-1"}`); again["id"] != id {
		t.Fatalf("the same key made order %v, want %s", again["id"], id)
	}
	// The page asks every 100 ms: the host hears of it once per Poll.
	for range 10 {
		if code, m = b.call(t, "GET", "/v1/topup/"+id, ""); code != 200 || m["state"] != "unpaid" {
			t.Fatalf("GET: %d %v", code, m)
		}
		b.advance(100 * time.Millisecond)
	}
	if n := b.host.count("query"); n != 0 {
		t.Fatalf("the host was asked %d times within Poll of the order", n)
	}
	b.advance(time.Second)
	b.call(t, "GET", "/v1/topup/"+id, "")
	b.call(t, "GET", "/v1/topup/"+id, "")
	if n := b.host.count("query"); n != 1 {
		t.Fatalf("the host was asked %d times after Poll, want 1", n)
	}
	b.host.payNext = true
	b.advance(2 * time.Second)
	m = b.waitLoad(t, id)
	if m["state"] != "paid" || m["load"] != LoadWritten || m["balance"] != "234.12" || m["qr_svg"] != nil {
		t.Fatalf("after paying: %v", m)
	}
	if len(b.loads) != 1 || b.loads[0] != topupCard {
		t.Fatalf("LoadNow asked for %v, want the card once", b.loads)
	}
	// More questions change nothing: loaded once.
	b.advance(time.Minute)
	b.call(t, "GET", "/v1/topup/"+id, "")
	if len(b.loads) != 1 {
		t.Fatalf("LoadNow asked %d times", len(b.loads))
	}
	// The stream told of it: paid (writing), then written.
	var states []string
	for len(states) < 2 {
		select {
		case e := <-c.ch:
			if e.Type == EventTopup {
				states = append(states, e.Topup.Load)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("topup events: %v", states)
		}
	}
	if states[0] != LoadWriting || states[1] != LoadWritten {
		t.Fatalf("topup events %v", states)
	}
	// A paid order is not cancelled.
	if code, m = b.call(t, "POST", "/v1/topup/"+id+"/cancel", ""); code != 409 || !strings.Contains(m["error"].(string), "is paid") {
		t.Fatalf("cancel a paid order: %d %v", code, m)
	}
}

// TestTopupCardLifted: the card lifted before the payment is not tapped
// again; the page is told the money waits for its next tap.
func TestTopupCardLifted(t *testing.T) {
	b := newTopupBench(t)
	b.tap()
	_, m := b.call(t, "POST", "/v1/topup", `{"amount_fen":10000}`)
	id := m["id"].(string)
	b.s.ReaderEvent(reader.Event{Kind: reader.CardRemoved, Reader: "card"}, "card")
	b.host.payNext = true
	b.advance(3 * time.Second)
	m = b.waitLoad(t, id)
	if m["state"] != "paid" || m["load"] != LoadCardLeft {
		t.Fatalf("after paying: %v", m)
	}
	if len(b.loads) != 0 {
		t.Fatalf("LoadNow asked for %v with no card", b.loads)
	}

	// Lifted during the load: the tap says so, and so does the page.
	b.tap()
	_, m = b.call(t, "POST", "/v1/topup", `{"amount_fen":5000}`)
	id = m["id"].(string)
	b.loadErr = fmt.Errorf("reading: %w", reader.ErrCardRemoved)
	b.advance(3 * time.Second)
	if m = b.waitLoad(t, id); m["load"] != LoadCardLeft {
		t.Fatalf("card lifted in the load: %v", m)
	}
}

// TestTopupCancelAndTimeout: the page's cancel closes the order at the
// host; an order not paid within Wait is closed at the host when next
// asked about; another terminal's order is not found.
func TestTopupCancelAndTimeout(t *testing.T) {
	b := newTopupBench(t)
	b.tap()
	_, m := b.call(t, "POST", "/v1/topup", `{"amount_fen":2000}`)
	id := m["id"].(string)
	code, m := b.call(t, "POST", "/v1/topup/"+id+"/cancel", "")
	if code != 200 || m["state"] != "closed" || m["qr"] != nil || b.host.count("close") != 1 {
		t.Fatalf("cancel: %d %v, %d closes", code, m, b.host.count("close"))
	}
	// Again: still closed, the host not asked again.
	if code, m = b.call(t, "POST", "/v1/topup/"+id+"/cancel", ""); code != 200 || m["state"] != "closed" || b.host.count("close") != 1 {
		t.Fatalf("cancel again: %d %v", code, m)
	}
	if code, m = b.call(t, "POST", "/v1/topup/T9999/cancel", ""); code != 404 {
		t.Fatalf("cancel of an order not ours: %d %v", code, m)
	}
	if code, m = b.call(t, "GET", "/v1/topup/T9999", ""); code != 404 {
		t.Fatalf("GET of an order not ours: %d %v", code, m)
	}

	_, m = b.call(t, "POST", "/v1/topup", `{"amount_fen":2000}`)
	id = m["id"].(string)
	b.advance(3*time.Minute + time.Second)
	if code, m = b.call(t, "GET", "/v1/topup/"+id, ""); code != 200 || m["state"] != "closed" || m["seconds_left"].(float64) != 0 || b.host.count("close") != 2 {
		t.Fatalf("after the wait: %d %v, %d closes", code, m, b.host.count("close"))
	}
	if len(b.loads) != 0 {
		t.Fatal("a closed order was loaded")
	}

	// The host away while cancelling: 503; the order stays as known.
	_, m = b.call(t, "POST", "/v1/topup", `{"amount_fen":2000}`)
	id = m["id"].(string)
	b.host.err = fmt.Errorf("%w: timeout", hostsync.ErrUnreachable)
	if code, m = b.call(t, "POST", "/v1/topup/"+id+"/cancel", ""); code != 503 {
		t.Fatalf("cancel with the host away: %d %v", code, m)
	}
	b.advance(3 * time.Second)
	if code, m = b.call(t, "GET", "/v1/topup/"+id, ""); code != 200 || m["state"] != "unpaid" || m["host_unreachable"] != true {
		t.Fatalf("GET with the host away: %d %v", code, m)
	}
	if !errors.Is(b.host.err, hostsync.ErrUnreachable) {
		t.Fatal("unreachable")
	}
}

// TestLoadOutcome: what a LoadNow tap says of the order's credit.
func TestLoadOutcome(t *testing.T) {
	applied := &tap.LoadReport{Balance: 500, Loads: []tap.LoadResult{{CreditID: "T1", Applied: true}}}
	refused := &tap.LoadReport{Loads: []tap.LoadResult{{CreditID: "T1", Refused: "over the balance cap"}}}
	for _, tc := range []struct {
		name string
		res  tap.Result
		err  error
		want string
	}{
		{"applied", tap.Result{Load: applied}, nil, LoadWritten},
		{"applied, the card left after", tap.Result{Load: applied, Err: reader.ErrCardRemoved}, nil, LoadWritten},
		{"recovered", tap.Result{Load: &tap.LoadReport{Recovered: []tap.Recovery{{CreditID: "T1", Applied: true}}}}, nil, LoadWritten},
		{"refused", tap.Result{Load: refused}, nil, LoadWaits},
		{"no card", tap.Result{Err: tap.ErrNoCard}, nil, LoadCardLeft},
		{"other card", tap.Result{Err: tap.ErrOtherCard}, nil, LoadCardLeft},
		{"removed", tap.Result{Load: &tap.LoadReport{}, Err: reader.ErrCardRemoved}, nil, LoadCardLeft},
		{"host offline", tap.Result{Load: &tap.LoadReport{HostOffline: true}}, nil, LoadWaits},
		{"not listed", tap.Result{Load: &tap.LoadReport{}}, nil, LoadWaits},
		{"the loop busy", tap.Result{}, context.DeadlineExceeded, LoadWaits},
	} {
		if got, _ := loadOutcome(tc.res, tc.err, "T1"); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}
