package host

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cardd/cardd/hostapi"
)

// fakeProvider is a PaymentProvider whose every method is a field, set by
// the test that needs it; the simulated provider answers the others.
type fakeProvider struct {
	*SimProvider
	CreateOrderFn func(ctx context.Context, o PayOrder) (string, error)
	QueryFn       func(ctx context.Context, id string) (Payment, error)
	CloseFn       func(ctx context.Context, id string) error
}

func (f *fakeProvider) CreateOrder(ctx context.Context, o PayOrder) (string, error) {
	if f.CreateOrderFn != nil {
		return f.CreateOrderFn(ctx, o)
	}
	return f.SimProvider.CreateOrder(ctx, o)
}

func (f *fakeProvider) Query(ctx context.Context, id string) (Payment, error) {
	if f.QueryFn != nil {
		return f.QueryFn(ctx, id)
	}
	return f.SimProvider.Query(ctx, id)
}

func (f *fakeProvider) Close(ctx context.Context, id string) error {
	if f.CloseFn != nil {
		return f.CloseFn(ctx, id)
	}
	return f.SimProvider.Close(ctx, id)
}

// topupEnv is env with top-ups sold through the simulated provider (behind
// a fakeProvider a test may steer), the host's /pay/ pages on the same
// server, and a clock the test moves.
type topupEnv struct {
	*env
	sim   *SimProvider
	fake  *fakeProvider
	tp    *Topups
	clock atomic.Int64 // offset from time.Now, ns
	logs  *bytes.Buffer
	mu    sync.Mutex
}

func newTopupEnv(t *testing.T) *topupEnv {
	t.Helper()
	e := &topupEnv{env: newEnv(t, Options{BalanceCap: 50000}), logs: new(bytes.Buffer)}
	e.srv.Close()
	mux := http.NewServeMux()
	e.srv = httptest.NewServer(mux)
	log := slog.New(slog.NewTextHandler(lockedWriter{&e.mu, e.logs}, nil))
	var err error
	if e.sim, err = NewSimProvider(e.st, []byte("0123456789abcdef0123456789abcdef"), e.srv.URL, log); err != nil {
		t.Fatal(err)
	}
	e.fake = &fakeProvider{SimProvider: e.sim}
	now := func() time.Time { return time.Now().Add(time.Duration(e.clock.Load())) }
	e.tp = NewTopups(e.st, e.fake, TopupOptions{Timeout: 5 * time.Minute, ProviderTimeout: 2 * time.Second, Now: now, Logger: log})
	mux.Handle("/pay/", e.tp)
	mux.Handle("/", NewHandler(e.st, e.keys, Options{BalanceCap: 50000, Now: now, Logger: log, Topups: e.tp}))
	return e
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

func (e *topupEnv) log() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.logs.String()
}

// order asks for an order of amount as the test terminal.
func (e *topupEnv) order(key string, amount int64) hostapi.TopupOrder {
	e.t.Helper()
	var o hostapi.TopupOrder
	e.mustCall(hostapi.PathTopupOrder, hostapi.TopupOrderRequest{Card: testNumber, AmountFen: amount, Key: key}, &o)
	return o
}

// query asks for an order's state as the test terminal, signed at the
// test's clock.
func (e *topupEnv) query(id string) hostapi.TopupOrder {
	e.t.Helper()
	at := time.Now().Add(time.Duration(e.clock.Load()))
	status, b := e.send(e.signed(hostapi.PathTopupQuery, hostapi.TopupQueryRequest{ID: id}, testTerm, e.secret, at))
	var o hostapi.TopupOrder
	if status != http.StatusOK || json.Unmarshal(b, &o) != nil {
		e.t.Fatalf("query %s: %d %s", id, status, b)
	}
	return o
}

// payPage posts the pay page behind qr with form values, as the phone's
// browser does, and returns the status and the page.
func (e *topupEnv) payPage(qr string, form url.Values) (int, string) {
	e.t.Helper()
	res, err := e.srv.Client().PostForm(qr, form)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// notify sends a notification signed by p to the host.
func (e *topupEnv) notify(p *SimProvider, pay Payment) (int, string) {
	e.t.Helper()
	r, err := p.SignNotification(context.Background(), e.srv.URL+PathNotify, pay)
	if err != nil {
		e.t.Fatal(err)
	}
	res, err := e.srv.Client().Do(r)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// pulledCredits lists the credit changes of the pull feed with id.
func (e *topupEnv) pulledCredits(id string) []hostapi.Credit {
	e.t.Helper()
	var p hostapi.PullResponse
	e.mustCall(hostapi.PathPull, hostapi.PullRequest{}, &p)
	var out []hostapi.Credit
	for _, c := range p.Credits {
		if c.ID == id {
			out = append(out, c)
		}
	}
	return out
}

// wantOneCredit wants order id paid and exactly one pending credit of
// amount for it, with the order's id and the kiosk note, once in the pull.
func (e *topupEnv) wantOneCredit(id string, amount int64) {
	e.t.Helper()
	if n := e.count("credits", "card = ?", testNumber); n != 1 {
		e.t.Fatalf("%d credits for the card, want 1", n)
	}
	if n := e.count("credits", "id = ? AND amount_fen = ? AND note = ? AND state = 'pending'", id, amount, TopupNote); n != 1 {
		e.t.Fatalf("no pending credit %s of %d noted %q", id, amount, TopupNote)
	}
	if n := e.count("ledger", "credit = ? AND event = 'added'", id); n != 1 {
		e.t.Fatalf("%d ledger rows adding credit %s, want 1", n, id)
	}
	if got := e.pulledCredits(id); len(got) != 1 || got[0].State != hostapi.CreditPending || got[0].AmountFen != amount {
		e.t.Fatalf("pull: %+v, want the credit once, pending", got)
	}
	o, err := e.st.Topup(context.Background(), id)
	if err != nil || o.State != hostapi.TopupPaid || o.CreditID != id || o.QR != "" {
		e.t.Fatalf("order %+v, %v: want paid with credit %s", o, err, id)
	}
}

// TestTopupOrderRequests: an order is made once per terminal and key, and
// a request the host cannot serve is refused with its reason, leaving no
// order behind.
func TestTopupOrderRequests(t *testing.T) { eachStore(t, testTopupOrderRequests) }

func testTopupOrderRequests(t *testing.T) {
	e := newTopupEnv(t)
	o := e.order("k1", 10000)
	if !strings.HasPrefix(o.ID, "tp-") || len(o.ID) != 35 || o.State != hostapi.TopupUnpaid || o.Provider != "sim" || o.AmountFen != 10000 || o.Card != testNumber {
		t.Fatalf("order %+v", o)
	}
	if !strings.HasPrefix(o.QR, e.srv.URL+"/pay/sim/"+o.ID+"?sig=") {
		t.Fatalf("QR %q, want the sim pay page", o.QR)
	}
	if exp, err := time.Parse(time.RFC3339, o.Expires); err != nil || time.Until(exp) < 4*time.Minute {
		t.Fatalf("expires %q, want about 5 minutes from now", o.Expires)
	}
	again := e.order("k1", 10000)
	if again != o {
		t.Fatalf("same key again: %+v, want %+v", again, o)
	}
	other := e.order("k2", 10000)
	if other.ID == o.ID {
		t.Fatal("another key made the same order")
	}

	refusals := []struct {
		name   string
		req    hostapi.TopupOrderRequest
		status int
		code   string
	}{
		{"key reused for another amount", hostapi.TopupOrderRequest{Card: testNumber, AmountFen: 500, Key: "k1"}, 400, hostapi.CodeBadRequest},
		{"unknown card", hostapi.TopupOrderRequest{Card: "3101000000999999", AmountFen: 500, Key: "k3"}, 404, hostapi.CodeNotFound},
		{"bad card", hostapi.TopupOrderRequest{Card: "12", AmountFen: 500, Key: "k3"}, 400, hostapi.CodeBadRequest},
		{"zero amount", hostapi.TopupOrderRequest{Card: testNumber, AmountFen: 0, Key: "k3"}, 400, hostapi.CodeBadRequest},
		{"negative amount", hostapi.TopupOrderRequest{Card: testNumber, AmountFen: -100, Key: "k3"}, 400, hostapi.CodeBadRequest},
		{"over the cap", hostapi.TopupOrderRequest{Card: testNumber, AmountFen: 50001, Key: "k3"}, 409, hostapi.CodeBalanceCap},
		{"over the cap with the balance", hostapi.TopupOrderRequest{Card: testNumber, AmountFen: 40001, BalanceFen: 10000, Key: "k3"}, 409, hostapi.CodeBalanceCap},
		{"negative balance", hostapi.TopupOrderRequest{Card: testNumber, AmountFen: 100, BalanceFen: -1, Key: "k3"}, 400, hostapi.CodeBadRequest},
		{"empty key", hostapi.TopupOrderRequest{Card: testNumber, AmountFen: 500, Key: ""}, 400, hostapi.CodeBadRequest},
		{"bad key", hostapi.TopupOrderRequest{Card: testNumber, AmountFen: 500, Key: "a b"}, 400, hostapi.CodeBadRequest},
		{"long key", hostapi.TopupOrderRequest{Card: testNumber, AmountFen: 500, Key: strings.Repeat("k", 65)}, 400, hostapi.CodeBadRequest},
	}
	for _, r := range refusals {
		t.Run(r.name, func(t *testing.T) {
			apiErr := e.wantRefusal(hostapi.PathTopupOrder, r.req, r.status, r.code)
			if apiErr.Reason == "" || strings.Contains(apiErr.Reason, testNumber) {
				t.Errorf("reason %q: want one, without the full card number", apiErr.Reason)
			}
		})
	}
	// The cap counts the card's balance and pending credits: 100.00 on the
	// card and 300.00 pending leave 100.00.
	e.addCredit(30000)
	e.wantRefusal(hostapi.PathTopupOrder, hostapi.TopupOrderRequest{Card: testNumber, AmountFen: 10001, BalanceFen: 10000, Key: "k4"}, 409, hostapi.CodeBalanceCap)
	e.mustCall(hostapi.PathTopupOrder, hostapi.TopupOrderRequest{Card: testNumber, AmountFen: 10000, BalanceFen: 10000, Key: "k5"}, nil)
	if _, err := e.st.Deny(context.Background(), testNumber, "lost", "operator test", time.Now()); err != nil {
		t.Fatal(err)
	}
	e.wantRefusal(hostapi.PathTopupOrder, hostapi.TopupOrderRequest{Card: testNumber, AmountFen: 100, Key: "k6"}, 409, hostapi.CodeCardDenied)
	if n := e.count("topup_orders", "TRUE"); n != 3 {
		t.Fatalf("%d orders, want the 3 accepted", n)
	}
}

// TestTopupOtherTerminal: only the terminal that made an order may query or
// close it; another is told there is no such order, and nothing changes.
func TestTopupOtherTerminal(t *testing.T) { eachStore(t, testTopupOtherTerminal) }

func testTopupOtherTerminal(t *testing.T) {
	e := newTopupEnv(t)
	o := e.order("k1", 10000)
	const term2 = "000000000002"
	secret2, _ := NewTerminalSecret()
	if err := e.st.AddTerminal(context.Background(), term2, secret2, time.Now()); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{hostapi.PathTopupQuery, hostapi.PathTopupClose} {
		status, b := e.send(e.signed(path, hostapi.TopupQueryRequest{ID: o.ID}, term2, secret2, time.Now()))
		if status != http.StatusNotFound || !strings.Contains(string(b), hostapi.CodeNotFound) {
			t.Fatalf("%s by another terminal: %d %s, want 404", path, status, b)
		}
	}
	e.wantRefusal(hostapi.PathTopupQuery, hostapi.TopupQueryRequest{ID: "tp-00000000000000000000000000000000"}, 404, hostapi.CodeNotFound)
	if got := e.query(o.ID); got.State != hostapi.TopupUnpaid {
		t.Fatalf("order %s after the other terminal's close, want unpaid", got.State)
	}
}

// TestTopupNotifiedTwice: the pay page pays and the notification comes
// twice; the card gets one credit, which the pull lists once and the
// terminal's query reports paid with the credit's id, the order's.
func TestTopupNotifiedTwice(t *testing.T) { eachStore(t, testTopupNotifiedTwice) }

func testTopupNotifiedTwice(t *testing.T) {
	e := newTopupEnv(t)
	o := e.order("k1", 10000)
	status, page := e.payPage(o.QR, url.Values{"twice": {"1"}})
	if status != http.StatusOK || !strings.Contains(page, "Paid") {
		t.Fatalf("pay page: %d %s", status, page)
	}
	e.wantOneCredit(o.ID, 10000)
	if got := e.query(o.ID); got.State != hostapi.TopupPaid || got.CreditID != o.ID || got.QR != "" {
		t.Fatalf("query: %+v", got)
	}
	// Paying again re-sends the notification: still one credit.
	e.payPage(o.QR, nil)
	e.wantOneCredit(o.ID, 10000)
	if !strings.Contains(e.log(), "via=notification") {
		t.Fatalf("log does not say the notification paid it:\n%s", e.log())
	}
}

// TestTopupQueryThenLateNotification: the notification is lost; the
// terminal's query finds the order paid at the provider and credits it;
// the notification arriving after that changes nothing.
func TestTopupQueryThenLateNotification(t *testing.T) {
	eachStore(t, testTopupQueryThenLateNotification)
}

func testTopupQueryThenLateNotification(t *testing.T) {
	e := newTopupEnv(t)
	o := e.order("k1", 10000)
	e.payPage(o.QR, url.Values{"notify": {"0"}})
	if n := e.count("credits", "TRUE"); n != 0 {
		t.Fatalf("%d credits before anyone told the host", n)
	}
	if got := e.query(o.ID); got.State != hostapi.TopupPaid || got.CreditID != o.ID {
		t.Fatalf("query: %+v, want paid", got)
	}
	e.wantOneCredit(o.ID, 10000)
	pay, _ := e.sim.Query(context.Background(), o.ID)
	if status, b := e.notify(e.sim, pay); status != http.StatusOK {
		t.Fatalf("late notification: %d %s", status, b)
	}
	e.wantOneCredit(o.ID, 10000)
}

// TestTopupWrongAmount: a notification, validly signed, for another amount
// than the order's is refused, logged, and never credited.
func TestTopupWrongAmount(t *testing.T) { eachStore(t, testTopupWrongAmount) }

func testTopupWrongAmount(t *testing.T) {
	e := newTopupEnv(t)
	o := e.order("k1", 10000)
	status, _ := e.notify(e.sim, Payment{OrderID: o.ID, State: hostapi.TopupPaid, AmountFen: 1, TxnID: "sim-x"})
	if status != http.StatusConflict {
		t.Fatalf("notification of 0.01 for a 100.00 order: %d, want 409", status)
	}
	if n := e.count("credits", "TRUE"); n != 0 || e.query(o.ID).State != hostapi.TopupUnpaid {
		t.Fatalf("%d credits after a wrong amount, order %s", n, e.query(o.ID).State)
	}
	if !strings.Contains(e.log(), "payment of another amount refused") {
		t.Fatalf("log:\n%s", e.log())
	}
	// A query answered with another amount is refused the same way.
	e.fake.QueryFn = func(ctx context.Context, id string) (Payment, error) {
		return Payment{OrderID: id, State: hostapi.TopupPaid, AmountFen: 20000, TxnID: "sim-y"}, nil
	}
	e.wantRefusal(hostapi.PathTopupQuery, hostapi.TopupQueryRequest{ID: o.ID}, 503, hostapi.CodeTopupUnavailable)
	if n := e.count("credits", "TRUE"); n != 0 {
		t.Fatalf("%d credits after a query of another amount", n)
	}
}

// TestTopupForgedNotification: anyone can reach the notify endpoint. A
// notification signed with another secret, unsigned, or with its body
// changed after signing is 401 and changes nothing; a genuine one replayed
// after it was taken credits nothing more; one for an order that does not
// exist is 404.
func TestTopupForgedNotification(t *testing.T) { eachStore(t, testTopupForgedNotification) }

func testTopupForgedNotification(t *testing.T) {
	e := newTopupEnv(t)
	o := e.order("k1", 10000)
	pay := Payment{OrderID: o.ID, State: hostapi.TopupPaid, AmountFen: 10000, TxnID: "sim-forged"}
	forger, _ := NewSimProvider(e.st, []byte("another secret of enough bytes!!"), e.srv.URL, nil)
	if status, _ := e.notify(forger, pay); status != http.StatusUnauthorized {
		t.Fatalf("forged notification: %d, want 401", status)
	}
	r, _ := e.sim.SignNotification(context.Background(), e.srv.URL+PathNotify, pay)
	r.Header.Del(HeaderSimSignature)
	if res, _ := e.srv.Client().Do(r); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unsigned notification: %d, want 401", res.StatusCode)
	}
	r, _ = e.sim.SignNotification(context.Background(), e.srv.URL+PathNotify, pay)
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(bytes.Replace(body, []byte("10000"), []byte("10001"), 1)))
	if res, _ := e.srv.Client().Do(r); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("changed notification: %d, want 401", res.StatusCode)
	}
	if n := e.count("credits", "TRUE"); n != 0 || e.query(o.ID).State != hostapi.TopupUnpaid {
		t.Fatalf("%d credits after forged notifications", n)
	}
	if status, _ := e.notify(e.sim, Payment{OrderID: "tp-00000000000000000000000000000000", State: hostapi.TopupPaid, AmountFen: 10000}); status != http.StatusNotFound {
		t.Fatalf("notification for no order: %d, want 404", status)
	}
	e.payPage(o.QR, nil)
	e.wantOneCredit(o.ID, 10000)
	paid, _ := e.sim.Query(context.Background(), o.ID)
	for range 3 {
		e.notify(e.sim, paid)
	}
	e.wantOneCredit(o.ID, 10000)
}

// TestTopupPayPage: the pay page needs the link's signature (an order id
// alone, even a real one, opens nothing), shows the amount and the card
// masked, never the card's number.
func TestTopupPayPage(t *testing.T) { eachStore(t, testTopupPayPage) }

func testTopupPayPage(t *testing.T) {
	e := newTopupEnv(t)
	o := e.order("k1", 12345)
	res, err := e.srv.Client().Get(o.QR)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	page := string(b)
	if res.StatusCode != 200 || !strings.Contains(page, "123.45") || !strings.Contains(page, "3101********3456") || strings.Contains(page, testNumber) ||
		!strings.Contains(page, "付款") || !strings.Contains(page, "Pay") {
		t.Fatalf("pay page %d:\n%s", res.StatusCode, page)
	}
	u, _ := url.Parse(o.QR)
	for _, bad := range []string{e.srv.URL + u.Path, e.srv.URL + u.Path + "?sig=" + flip(u.Query().Get("sig")), e.srv.URL + "/pay/sim/tp-1?sig=" + u.Query().Get("sig")} {
		if status, _ := e.payPage(bad, nil); status != http.StatusNotFound {
			t.Fatalf("POST %s: %d, want 404", bad, status)
		}
	}
	if n := e.count("paysim_orders", "state = 'paid'"); n != 0 {
		t.Fatalf("a bad link paid %d orders", n)
	}
}

// TestTopupCloseUnpaid: the cardholder cancels; the order is closed at the
// provider and at the host, the pay page cannot pay it any more, and the
// card gets nothing. Closing again, or closing a paid order, changes nothing.
func TestTopupCloseUnpaid(t *testing.T) { eachStore(t, testTopupCloseUnpaid) }

func testTopupCloseUnpaid(t *testing.T) {
	e := newTopupEnv(t)
	o := e.order("k1", 10000)
	var closed hostapi.TopupOrder
	e.mustCall(hostapi.PathTopupClose, hostapi.TopupCloseRequest{ID: o.ID}, &closed)
	if closed.State != hostapi.TopupClosed || closed.QR != "" || closed.CreditID != "" {
		t.Fatalf("close: %+v", closed)
	}
	if status, page := e.payPage(o.QR, nil); status != 200 || !strings.Contains(page, "closed") {
		t.Fatalf("pay page after close: %d\n%s", status, page)
	}
	var cc hostapi.CardCreditsResponse
	e.mustCall(hostapi.PathCardCredits, hostapi.CardCreditsRequest{Card: testNumber}, &cc)
	if len(cc.Credits) != 0 || e.count("credits", "TRUE") != 0 {
		t.Fatalf("credits after a closed order: %+v", cc)
	}
	e.mustCall(hostapi.PathTopupClose, hostapi.TopupCloseRequest{ID: o.ID}, &closed)
	if closed.State != hostapi.TopupClosed {
		t.Fatalf("second close: %+v", closed)
	}
	// The closed order's key cannot make it payable again.
	e.wantRefusal(hostapi.PathTopupOrder, hostapi.TopupOrderRequest{Card: testNumber, AmountFen: 10000, Key: "k1"}, 409, hostapi.CodeTopupClosed)

	p := e.order("k2", 5000)
	e.payPage(p.QR, nil)
	e.mustCall(hostapi.PathTopupClose, hostapi.TopupCloseRequest{ID: p.ID}, &closed)
	if closed.State != hostapi.TopupPaid || closed.CreditID != p.ID {
		t.Fatalf("closing a paid order: %+v, want it paid", closed)
	}
	// Paid at the provider, the host not yet told: closing finds the money.
	q := e.order("k3", 700)
	e.payPage(q.QR, url.Values{"notify": {"0"}})
	e.mustCall(hostapi.PathTopupClose, hostapi.TopupCloseRequest{ID: q.ID}, &closed)
	if closed.State != hostapi.TopupPaid || closed.CreditID != q.ID || e.count("credits", "id = ?", q.ID) != 1 {
		t.Fatalf("closing an order paid unnotified: %+v, want it paid and credited", closed)
	}
}

// TestTopupPaidAfterClose: the money arrives although the host closed the
// order (a provider that failed to close it): it becomes the card's credit
// once, the order says it came late, and the log warns.
func TestTopupPaidAfterClose(t *testing.T) { eachStore(t, testTopupPaidAfterClose) }

func testTopupPaidAfterClose(t *testing.T) {
	e := newTopupEnv(t)
	o := e.order("k1", 10000)
	e.fake.CloseFn = func(ctx context.Context, id string) error { return nil } // says closed, is not
	var closed hostapi.TopupOrder
	e.mustCall(hostapi.PathTopupClose, hostapi.TopupCloseRequest{ID: o.ID}, &closed)
	if closed.State != hostapi.TopupClosed {
		t.Fatalf("close: %+v", closed)
	}
	e.payPage(o.QR, url.Values{"twice": {"1"}})
	e.wantOneCredit(o.ID, 10000)
	info, _ := e.st.Topup(context.Background(), o.ID)
	if !info.Late || info.ClosedAt == "" {
		t.Fatalf("order %+v, want paid late", info)
	}
	if !strings.Contains(e.log(), "payment arrived after the order was closed") {
		t.Fatalf("log:\n%s", e.log())
	}
}

// TestTopupExpiry: an order left unpaid is closed by CloseExpired once its
// time is up, at the provider too (the pay page then cannot pay it); the
// terminal's query of an expired order closes it as well; one paid in time
// is left paid.
func TestTopupExpiry(t *testing.T) { eachStore(t, testTopupExpiry) }

func testTopupExpiry(t *testing.T) {
	e := newTopupEnv(t)
	o := e.order("k1", 10000)
	paid := e.order("k2", 2000)
	e.payPage(paid.QR, nil)
	if n, err := e.tp.CloseExpired(context.Background()); n != 0 || err != nil {
		t.Fatalf("CloseExpired before the timeout: %d, %v", n, err)
	}
	e.clock.Store(int64(5*time.Minute + time.Second))
	if n, err := e.tp.CloseExpired(context.Background()); n != 1 || err != nil {
		t.Fatalf("CloseExpired: %d, %v, want 1", n, err)
	}
	if got := e.query(o.ID); got.State != hostapi.TopupClosed {
		t.Fatalf("order %s after its timeout, want closed", got.State)
	}
	if sim, _ := e.sim.Query(context.Background(), o.ID); sim.State != hostapi.TopupClosed {
		t.Fatalf("provider's order %s, want closed", sim.State)
	}
	e.payPage(o.QR, nil)
	if e.count("credits", "id = ?", o.ID) != 0 || e.query(paid.ID).State != hostapi.TopupPaid {
		t.Fatal("the expired order was credited, or the paid one changed")
	}
	e.clock.Store(0)
	q := e.order("k3", 300)
	e.clock.Store(int64(5*time.Minute + time.Second))
	if got := e.query(q.ID); got.State != hostapi.TopupClosed {
		t.Fatalf("query of an expired order: %s, want closed", got.State)
	}
}

// TestTopupProviderDown: a provider that does not answer holds no request
// past ProviderTimeout: create, query and close answer 503
// topup_unavailable and leave the order as it was; the same key, once the
// provider is back, gets the same order with its QR.
func TestTopupProviderDown(t *testing.T) { eachStore(t, testTopupProviderDown) }

func testTopupProviderDown(t *testing.T) {
	e := newTopupEnv(t)
	hang := func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
	e.fake.CreateOrderFn = func(ctx context.Context, o PayOrder) (string, error) { return "", hang(ctx) }
	e.fake.QueryFn = func(ctx context.Context, id string) (Payment, error) { return Payment{}, hang(ctx) }
	e.fake.CloseFn = func(ctx context.Context, id string) error { return hang(ctx) }
	req := hostapi.TopupOrderRequest{Card: testNumber, AmountFen: 100, Key: "k1"}
	start := time.Now()
	e.wantRefusal(hostapi.PathTopupOrder, req, 503, hostapi.CodeTopupUnavailable)
	if time.Since(start) > 2*time.Second+5*time.Second {
		t.Fatalf("create took %s with a provider timeout of 2s", time.Since(start))
	}
	var id string
	e.st.db.QueryRow(`SELECT id FROM topup_orders`).Scan(&id)
	e.wantRefusal(hostapi.PathTopupQuery, hostapi.TopupQueryRequest{ID: id}, 503, hostapi.CodeTopupUnavailable)
	e.wantRefusal(hostapi.PathTopupClose, hostapi.TopupCloseRequest{ID: id}, 503, hostapi.CodeTopupUnavailable)
	if o, _ := e.st.Topup(context.Background(), id); o.State != hostapi.TopupUnpaid {
		t.Fatalf("order %s after the provider failed, want unpaid", o.State)
	}
	e.fake.CreateOrderFn, e.fake.QueryFn, e.fake.CloseFn = nil, nil, nil
	o := e.order("k1", 100)
	if o.ID != id || o.QR == "" {
		t.Fatalf("retry: %+v, want order %s with its QR", o, id)
	}
	// A provider failing at once is 503 too.
	e.fake.QueryFn = func(ctx context.Context, id string) (Payment, error) { return Payment{}, errors.New("boom") }
	e.wantRefusal(hostapi.PathTopupQuery, hostapi.TopupQueryRequest{ID: id}, 503, hostapi.CodeTopupUnavailable)
}

// TestTopupConcurrent: notifications and queries of one paid order race
// from many goroutines; the card gets one credit.
func TestTopupConcurrent(t *testing.T) { eachStore(t, testTopupConcurrent) }

func testTopupConcurrent(t *testing.T) {
	e := newTopupEnv(t)
	o := e.order("k1", 10000)
	e.payPage(o.QR, url.Values{"notify": {"0"}})
	paid, _ := e.sim.Query(context.Background(), o.ID)
	var wg sync.WaitGroup
	statuses := make(chan int, 16)
	for i := range 16 {
		wg.Go(func() {
			if i%2 == 0 {
				status, _ := e.notify(e.sim, paid)
				statuses <- status
				return
			}
			status, _ := e.call(hostapi.PathTopupQuery, hostapi.TopupQueryRequest{ID: o.ID}, nil)
			statuses <- status
		})
	}
	wg.Wait()
	close(statuses)
	for s := range statuses {
		if s != http.StatusOK {
			t.Errorf("a racing request answered %d", s)
		}
	}
	e.wantOneCredit(o.ID, 10000)
}

// TestTopupCreditLoads: the paid order's credit is an ordinary credit: a
// terminal authorizes and completes it at the next tap and the card holds
// the money.
func TestTopupCreditLoads(t *testing.T) { eachStore(t, testTopupCreditLoads) }

func testTopupCreditLoads(t *testing.T) {
	e := newTopupEnv(t)
	o := e.order("k1", 10000)
	e.payPage(o.QR, nil)
	li, resp := e.authorize(o.ID, 10000)
	tac := e.credit(resp)
	var done hostapi.LoadCompleteResponse
	e.mustCall(hostapi.PathLoadComplete, tacRequest(o.ID, li.OnlineCounter, tac), &done)
	if done.State != hostapi.CreditConsumed || e.balance() != 20000 {
		t.Fatalf("complete %q, balance %d; want consumed, 200.00", done.State, e.balance())
	}
	if got := e.query(o.ID); got.State != hostapi.TopupPaid || got.CreditID != o.ID {
		t.Fatalf("query after the load: %+v", got)
	}
}

// TestTopupWithoutProvider: a host with no payment provider answers the
// top-up endpoints 503 with the reason.
func TestTopupWithoutProvider(t *testing.T) { eachStore(t, testTopupWithoutProvider) }

func testTopupWithoutProvider(t *testing.T) {
	e := newEnv(t, Options{})
	apiErr := e.wantRefusal(hostapi.PathTopupOrder, hostapi.TopupOrderRequest{Card: testNumber, AmountFen: 100, Key: "k"}, 503, hostapi.CodeTopupUnavailable)
	if !strings.Contains(apiErr.Reason, "no payment provider") {
		t.Fatalf("reason %q", apiErr.Reason)
	}
}

// TestTopupDelayedNotification: the pay page's delay holds the
// notification back; the order is credited when it comes, once, and posting
// the page again while one waits schedules no other.
func TestTopupDelayedNotification(t *testing.T) { eachStore(t, testTopupDelayedNotification) }

func testTopupDelayedNotification(t *testing.T) {
	e := newTopupEnv(t)
	o := e.order("k1", 10000)
	before := time.Now()
	if _, page := e.payPage(o.QR, url.Values{"delay": {"2s"}}); !strings.Contains(page, "follows in 2s") {
		t.Fatalf("pay page:\n%s", page)
	}
	if _, page := e.payPage(o.QR, url.Values{"delay": {"2s"}, "twice": {"1"}}); !strings.Contains(page, "waiting to be sent already") {
		t.Fatalf("pay page posted again:\n%s", page)
	}
	deadline := time.Now().Add(2*time.Second + 10*time.Second)
	for e.count("credits", "TRUE") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the delayed notification did not credit the order within 10 s of its delay")
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.wantOneCredit(o.ID, 10000)
	info, _ := e.st.Topup(context.Background(), o.ID)
	if paidAt, err := time.Parse(time.RFC3339, info.PaidAt); err != nil || paidAt.Before(before.Truncate(time.Second).Add(2*time.Second)) {
		t.Fatalf("paid at %s, want 2 s or more after the page was posted at %s", info.PaidAt, before.Format(time.RFC3339Nano))
	}
	if status, page := e.payPage(o.QR, url.Values{"delay": {"1h"}}); status != http.StatusBadRequest || !strings.Contains(page, `delay = "1h"`) {
		t.Fatalf("a delay over the limit: %d\n%s", status, page)
	}
}
