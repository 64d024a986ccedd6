package localapi

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cardd/cardd/apdu/epurse"
	"github.com/cardd/cardd/internal/cardtest"
	"github.com/cardd/cardd/offline"
	"github.com/cardd/cardd/reader"
	"github.com/cardd/cardd/tap"
)

const (
	token     = "s3cret-token"
	pageToken = "page-token"
)

func newServer(t *testing.T) (*Server, *httptest.Server, *offline.Store) {
	t.Helper()
	store, err := offline.Open(filepath.Join(t.TempDir(), "cardd.db"), "000000000001")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	var s *Server
	// After the HTTP server (a cleanup runs before those made earlier),
	// before the store, as the daemon does.
	t.Cleanup(func() { s.Close() })
	s = &Server{Token: token, PageToken: pageToken, Base: Status{Version: "test", Mode: "pos", TerminalID: "000000000001"}, Till: &tap.Till{MaxPurchase: 50000},
		Journal: store, Receipts: store, QueueDepth: store.QueueDepth, ReceiptsWaiting: store.ReceiptsWaiting,
		BalanceReceipt: func(cr *tap.CardRead) (offline.NewReceipt, error) {
			return offline.NewReceipt{Kind: "balance", Body: []byte(`{"card":"` + cr.Info.CardNumber + `","balance_fen":` + strconv.FormatInt(cr.Balance, 10) + `}`)}, nil
		}}
	srv := httptest.NewUnstartedServer(s)
	if s.AllowedHosts, err = AllowedHosts("127.0.0.1:0", srv.Listener.Addr(), nil); err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return s, srv, store
}

func call(t *testing.T, srv *httptest.Server, method, path, auth, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s %s: answer is not JSON: %q", method, path, b)
	}
	return resp.StatusCode, m
}

func sampleRead() *tap.CardRead {
	return &tap.CardRead{
		Info:    epurse.IssuerInfo{CardNumber: "3101000000123456", StartDate: epurse.Date{Year: 2025, Month: 9, Day: 1}, ExpiryDate: epurse.Date{Year: 2029, Month: 8, Day: 31}},
		Holder:  &epurse.Holder{Name: "张三"},
		Purse:   epurse.PurseEP,
		Balance: 13412,
		Log: []epurse.LogRecord{{Counter: 5, Amount: 559, Type: epurse.TxEPPurchase, Time: time.Date(2026, 11, 22, 10, 15, 53, 0, time.UTC)},
			{Counter: 1, Amount: 5000, Type: epurse.TxEPLoad, Time: time.Date(2026, 11, 19, 5, 24, 53, 0, time.UTC)}},
	}
}

// Calls that change something need the token; reads do not.
func TestAuth(t *testing.T) {
	_, srv, _ := newServer(t)
	for _, tc := range []struct {
		auth string
		want int
		in   string
	}{
		{"", http.StatusUnauthorized, "Authorization: Bearer"},
		{"Bearer wrong", http.StatusUnauthorized, "wrong token"},
		{"Basic " + token, http.StatusUnauthorized, "Authorization: Bearer"},
		{"Bearer " + token, http.StatusOK, ""},
	} {
		code, m := call(t, srv, "POST", "/v1/purchase/arm", tc.auth, `{"amount":"12.50"}`)
		if code != tc.want || (tc.in != "" && !strings.Contains(m["error"].(string), tc.in)) {
			t.Errorf("auth %q: %d %v, want %d with %q", tc.auth, code, m, tc.want, tc.in)
		}
	}
	if code, m := call(t, srv, "GET", "/v1/status", "", ""); code != http.StatusOK || m["armed_purchase_fen"].(float64) != 1250 {
		t.Errorf("status without a token: %d %v", code, m)
	}
}

// Bad requests get a 4xx with a reason and change nothing.
func TestBadRequests(t *testing.T) {
	_, srv, _ := newServer(t)
	auth := "Bearer " + token
	for _, tc := range []struct {
		method, path, body string
		want               int
		in                 string
	}{
		{"POST", "/v1/purchase/arm", `{"amount":`, 400, "bad JSON"},
		{"POST", "/v1/purchase/arm", `{"amount":"12.5.0"}`, 400, "amount"},
		{"POST", "/v1/purchase/arm", `{"amount":"-1"}`, 400, "above 0"},
		{"POST", "/v1/purchase/arm", `{"amonut":"1"}`, 400, "unknown field"},
		{"POST", "/v1/purchase/arm", `{"amount":"1"} {}`, 400, "data after"},
		{"POST", "/v1/purchase/arm", `{"Amount":"3.00"}`, 400, `field names are case-sensitive, did you mean "amount"`},
		{"POST", "/v1/purchase/arm", `{"amount":"1.00","amount":"499.00"}`, 400, `key "amount" given twice`},
		{"POST", "/v1/purchase/arm", strings.Repeat(" ", 10<<20), 413, "the most is 65536"},
		{"POST", "/v1/purchase/arm", `{"amount":"1.00","pin":"` + strings.Repeat("1", 10<<20) + `"}`, 413, "the most is 65536"},
		{"POST", "/v1/purchase/arm", ``, 400, "empty body"},
		{"POST", "/v1/purchase/arm", `{"amount":"500.01"}`, 400, "per-purchase maximum of 500.00"},
		{"POST", "/v1/purchase/arm", `{"amount":"5","pin":"12x4"}`, 400, "PIN is 4 to 12 digits"},
		{"POST", "/v1/receipts", `{"kind":"coffee"}`, 400, "want balance, reprint-last or invoice"},
		{"POST", "/v1/receipts", `{}`, 400, "kind is required"},
		{"POST", "/v1/receipts", `{"kind":"balance"}`, 409, "no card tapped yet"},
		{"POST", "/v1/receipts", `{"kind":"reprint-last"}`, 409, "no receipt to reprint"},
		{"GET", "/v1/nope", ``, 404, "no such endpoint /v1/nope"},
		{"GET", "/nope", ``, 404, "no such endpoint"},
		{"PUT", "/v1/status", ``, 405, "use GET"},
		{"GET", "/v1/receipts", ``, 405, "use POST"},
		{"GET", "/v1/journal?limit=0", ``, 400, "limit"},
		{"GET", "/v1/journal?before=x", ``, 400, "before"},
		{"GET", "/v1/journal?page=2", ``, 400, "unknown parameter"},
	} {
		code, m := call(t, srv, tc.method, tc.path, auth, tc.body)
		msg, _ := m["error"].(string)
		if code != tc.want || !strings.Contains(msg, tc.in) {
			t.Errorf("%s %s %s: %d %q, want %d with %q", tc.method, tc.path, tc.body, code, msg, tc.want, tc.in)
		}
	}
	if _, m := call(t, srv, "GET", "/v1/status", "", ""); m["armed_purchase_fen"].(float64) != 0 {
		t.Errorf("a bad request armed a purchase: %v", m)
	}
}

// sse reads a stream's events.
type sse struct {
	resp *http.Response
	sc   *bufio.Scanner
}

func openStream(t *testing.T, srv *httptest.Server) *sse {
	t.Helper()
	resp, err := http.Get(srv.URL + "/v1/events")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("Content-Type %q", ct)
	}
	return &sse{resp: resp, sc: bufio.NewScanner(resp.Body)}
}

func (s *sse) next(t *testing.T) Event {
	t.Helper()
	var e Event
	for s.sc.Scan() {
		line := s.sc.Text()
		if data, ok := strings.CutPrefix(line, "data: "); ok {
			if err := json.Unmarshal([]byte(data), &e); err != nil {
				t.Fatal(err)
			}
		}
		if line == "" && e.Type != "" {
			return e
		}
	}
	t.Fatalf("stream ended: %v", s.sc.Err())
	return e
}

// A tap reaches a stream client as card.present, card.balance and card.tap,
// masked; a receipt asked for it is queued and announced.
func TestStreamAndReceipt(t *testing.T) {
	s, srv, store := newServer(t)
	st := openStream(t, srv)
	if e := st.next(t); e.Type != EventHello || e.Status == nil || e.Status.TerminalID != "000000000001" {
		t.Fatalf("first event %+v, want hello with the status", e)
	}
	s.ReaderEvent(reader.Event{Kind: reader.ReaderAdded, Reader: "R0"}, "card")
	s.ReaderEvent(reader.Event{Kind: reader.CardInserted, Reader: "R0"}, "card")
	cr := sampleRead()
	s.Balance(tap.Result{Reader: "R0", Read: cr})
	s.Tap(tap.Result{Reader: "R0", Read: cr, ToDone: 3 * time.Millisecond,
		Load: &tap.LoadReport{Balance: 18412, Loads: []tap.LoadResult{{CreditID: "cr-1", AmountFen: 5000, Applied: true, NewBalance: 18412}}}})
	want := []string{EventReader, EventCardPresent, EventCardBalance, EventCardTap}
	var tapEv Event
	for _, w := range want {
		e := st.next(t)
		if e.Type != w {
			t.Fatalf("event %q, want %q", e.Type, w)
		}
		tapEv = e
	}
	c := tapEv.Card
	if c == nil || c.Number != "3101********3456" || c.Holder != "张三" || c.Balance != "184.12" || c.ValidTo != "2029-08-31" ||
		len(c.Transactions) != 2 || c.Transactions[0].Amount != "-5.59" || c.Transactions[1].Kind != "load" {
		t.Errorf("card %+v", c)
	}
	if tv := tapEv.Tap; tv == nil || tv.Outcome != "ok" || len(tv.Loads) != 1 || tv.Loads[0].Amount != "50.00" || !tv.Loads[0].Applied {
		t.Errorf("tap %+v", tapEv.Tap)
	}

	code, m := call(t, srv, "POST", "/v1/receipts", "Bearer "+token, `{"kind":"balance"}`)
	if code != http.StatusAccepted || m["state"] != "queued" {
		t.Fatalf("balance receipt: %d %v", code, m)
	}
	if e := st.next(t); e.Type != EventReceipt || e.Receipt.State != "queued" {
		t.Errorf("event %+v, want the receipt queued", e)
	}
	r, err := store.NextReceipt(context.Background())
	if err != nil || r.Kind != "balance" || !strings.Contains(string(r.Body), "3101000000123456") || !strings.Contains(string(r.Body), "18412") {
		t.Errorf("queued receipt %+v, %v", r, err)
	}
	// Printed by the worker: the stream says so.
	if err := store.MarkSending(context.Background(), r.ID); err != nil {
		t.Fatal(err)
	}
	if err := store.MarkPrinted(context.Background(), r.ID); err != nil {
		t.Fatal(err)
	}
	if e := st.next(t); e.Type != EventReceipt || e.Receipt.State != "printed" {
		t.Errorf("event %+v, want the receipt printed", e)
	}
}

// A client that stops reading never slows Publish: it is cut off once its
// buffer is full, and the others go on.
func TestStalledClientDropped(t *testing.T) {
	s, srv, _ := newServer(t)
	// A raw connection that sends the request and never reads.
	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /v1/events HTTP/1.1\r\nHost: "+srv.Listener.Addr().String()+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	good := openStream(t, srv)
	good.next(t) // hello
	deadline := time.Now().Add(5 * time.Second)
	for s.Hub.Clients() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("stalled client never subscribed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Big events fill the stalled client's socket buffers, then its queue.
	cr := sampleRead()
	cr.Holder.Name = strings.Repeat("张", 5000)
	start := time.Now()
	n := 0
	for s.Hub.Dropped() == 0 && time.Since(start) < 10*time.Second {
		s.Balance(tap.Result{Reader: "R0", Read: cr})
		n++
		good.next(t) // the good client keeps up
	}
	if s.Hub.Dropped() != 1 {
		t.Fatalf("stalled client not dropped after %d events", n)
	}
	t.Logf("stalled client dropped after %d events of %d bytes", n, len(cr.Holder.Name))
	s.Tap(tap.Result{Reader: "R0", Read: cr})
	if e := good.next(t); e.Type != EventCardTap {
		t.Errorf("good client got %q after the drop, want card.tap", e.Type)
	}
}

func TestJournalPaging(t *testing.T) {
	_, srv, store := newServer(t)
	for i := range 7 {
		if _, err := store.Begin(context.Background(), offline.Row{Kind: offline.KindRead, State: offline.StateDone,
			Card: "3101000000123456", Purse: "EP", BalanceFen: int64(100 * i)}); err != nil {
			t.Fatal(err)
		}
	}
	var seen []float64
	path := "/v1/journal?limit=3"
	for range 5 {
		code, m := call(t, srv, "GET", path, "", "")
		if code != 200 {
			t.Fatalf("%s: %d %v", path, code, m)
		}
		for _, r := range m["rows"].([]any) {
			row := r.(map[string]any)
			if row["card"] != "3101********3456" {
				t.Errorf("row card %v, want masked", row["card"])
			}
			seen = append(seen, row["seq"].(float64))
		}
		next := m["next"].(float64)
		if next == 0 {
			break
		}
		path = "/v1/journal?limit=3&before=" + strconv.FormatInt(int64(next), 10)
	}
	if len(seen) != 7 || seen[0] != 7 || seen[6] != 1 {
		t.Errorf("pages gave seqs %v, want 7..1 each once", seen)
	}
}

func TestHealthz(t *testing.T) {
	s, srv, _ := newServer(t)
	if code, _ := call(t, srv, "GET", "/healthz", "", ""); code != 200 {
		t.Errorf("healthz %d", code)
	}
	s.Healthy = func() error { return io.ErrUnexpectedEOF }
	if code, m := call(t, srv, "GET", "/healthz", "", ""); code != 503 || !strings.Contains(m["error"].(string), "unhealthy") {
		t.Errorf("unhealthy: %d %v", code, m)
	}
}

// TestJournalShowsHostRefusal: a row the host refused shows the host's
// reason, for the operator; the others carry no such field.
func TestJournalShowsHostRefusal(t *testing.T) {
	_, srv, store := newServer(t)
	ctx := context.Background()
	for range 2 {
		if _, err := store.Begin(ctx, offline.Row{Kind: offline.KindRead, State: offline.StateDone, Card: "3101000000123456", Purse: "EP"}); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := store.Unacked(ctx, 10)
	if err != nil || len(rows) != 2 {
		t.Fatalf("unacked %d (%v)", len(rows), err)
	}
	if _, err := store.RefusedByHost(ctx, []offline.HostRefusal{{ID: rows[0].ID, Reason: "bad_row: time"}}); err != nil {
		t.Fatal(err)
	}
	code, m := call(t, srv, "GET", "/v1/journal", "", "")
	if code != 200 {
		t.Fatalf("%d %v", code, m)
	}
	got := m["rows"].([]any)
	if newest, oldest := got[0].(map[string]any), got[1].(map[string]any); oldest["host_refused"] != "bad_row: time" || newest["host_refused"] != nil {
		t.Errorf("rows %v, want the first one refused by the host", got)
	}
}

// TestNineteenDigitCard: a T-Union card's 19-digit number reaches the
// screen and the journal page masked to its first 4 and last 4 digits,
// with all its length in between, and its balance receipt with the whole
// number (the receipt masks it as it prints).
func TestNineteenDigitCard(t *testing.T) {
	s, srv, store := newServer(t)
	const masked = "3104***********0006"
	st := openStream(t, srv)
	st.next(t) // hello
	cr := sampleRead()
	cr.Info.CardNumber = cardtest.TUnion
	s.Balance(tap.Result{Reader: "R0", Read: cr})
	s.Tap(tap.Result{Reader: "R0", Read: cr})
	for _, want := range []string{EventCardBalance, EventCardTap} {
		e := st.next(t)
		if e.Type != want || e.Card == nil || e.Card.Number != masked {
			t.Fatalf("event %q card %+v, want %s with number %s", e.Type, e.Card, want, masked)
		}
	}
	if _, err := store.Begin(context.Background(), offline.Row{Kind: offline.KindRead, State: offline.StateDone,
		Card: cardtest.TUnion, Purse: "EP", BalanceFen: 13412}); err != nil {
		t.Fatal(err)
	}
	code, m := call(t, srv, "GET", "/v1/journal", "", "")
	if rows, _ := m["rows"].([]any); code != 200 || len(rows) != 1 || rows[0].(map[string]any)["card"] != masked {
		t.Fatalf("journal: %d %v, want one row of card %s", code, m, masked)
	}
	if code, m := call(t, srv, "POST", "/v1/receipts", "Bearer "+token, `{"kind":"balance"}`); code != http.StatusAccepted {
		t.Fatalf("balance receipt: %d %v", code, m)
	}
	if r, err := store.NextReceipt(context.Background()); err != nil || !strings.Contains(string(r.Body), `"card":"`+cardtest.TUnion+`"`) {
		t.Errorf("queued receipt %+v, %v", r, err)
	}
}

// TestNoCardNumberTaken: no call takes a card number (the card on the
// reader is the only one a call acts on), so one slipped into a request,
// of any length, is refused 400 with the reason, not ignored.
func TestNoCardNumberTaken(t *testing.T) {
	_, srv, _ := newServer(t)
	for _, n := range []string{cardtest.TUnion, "3104990", "310499060000000000061"} {
		code, m := call(t, srv, "POST", "/v1/purchase/arm", "Bearer "+token, `{"amount":"1.00","card":"`+n+`"}`)
		if msg, _ := m["error"].(string); code != http.StatusBadRequest || !strings.Contains(msg, `"card"`) {
			t.Errorf("arm with a card %s: %d %v, want 400 naming the field", n, code, m)
		}
		code, m = call(t, srv, "GET", "/v1/journal?card="+n, "", "")
		if msg, _ := m["error"].(string); code != http.StatusBadRequest || !strings.Contains(msg, `unknown parameter "card"`) {
			t.Errorf("journal of card %s: %d %v, want 400 naming the parameter", n, code, m)
		}
	}
}
