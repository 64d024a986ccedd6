package host

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/cardd/cardd/hostapi"
)

const testAlertSecret = "0123456789abcdef0123456789abcdef"

// receiver is a webhook receiver that fails its first failFirst
// deliveries with 503 and records every body it gets.
type receiver struct {
	srv       *httptest.Server
	mu        gosync.Mutex
	failFirst int
	calls     int
	bodies    [][]byte
	sigs      []string
}

func newReceiver(t *testing.T, failFirst int) *receiver {
	r := &receiver{failFirst: failFirst}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		r.calls++
		if r.calls <= r.failFirst {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		r.bodies = append(r.bodies, b)
		r.sigs = append(r.sigs, req.Header.Get(AlertSignatureHeader))
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) got() (int, [][]byte, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls, append([][]byte(nil), r.bodies...), append([]string(nil), r.sigs...)
}

// setAlerts configures the webhook to url with default threshold below.
func (e *env) setAlerts(url string, below int64) {
	e.t.Helper()
	if err := e.st.SetAlertConfig(context.Background(), AlertConfig{URL: url, Secret: testAlertSecret, BelowFen: below}, "operator test", time.Now()); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) alerts(state string) []Alert {
	e.t.Helper()
	list, err := e.st.Alerts(context.Background(), state)
	if err != nil {
		e.t.Fatal(err)
	}
	return list
}

// sender is an AlertSender on e's store with pauses short enough for a
// test.
func (e *env) sender(maxAttempts int) *AlertSender {
	return &AlertSender{Store: e.st, Timeout: 5 * time.Second, Backoff: time.Millisecond, MaxBackoff: 4 * time.Millisecond, MaxAttempts: maxAttempts}
}

// drain runs the sender's passes until nothing is due (backoffs elapse
// between passes), at most 50.
func drain(t *testing.T, a *AlertSender) {
	t.Helper()
	for range 50 {
		time.Sleep(10 * time.Millisecond)
		n, err := a.SendDue(context.Background(), time.Now)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
}

// TestBalanceAlertCrossing: a purchase from at or above the threshold to
// below it queues one alert; purchases that stay above or stay below queue
// none; the same rows uploaded again, and an unknown row that settles done
// later, queue nothing more than one alert per row.
func TestBalanceAlertCrossing(t *testing.T) { eachStore(t, testBalanceAlertCrossing) }

func testBalanceAlertCrossing(t *testing.T) {
	e := newEnv(t, Options{})
	rows := []hostapi.JournalRow{
		e.sale("1", 0, 1, 10000, 8000, 1), // 100.00 → 20.00: above 10.00
		e.sale("2", 1, 2, 2000, 1000, 2),  // 20.00 → 10.00: at it, not below
	}
	// No alert while none is configured (off by default).
	e.upload(rows...)
	if n := len(e.alerts("")); n != 0 {
		t.Fatalf("%d alerts with none configured", n)
	}
	e.setAlerts("http://127.0.0.1:1/hook", 1000)
	crossing := e.sale("3", 2, 3, 1000, 50, 3) // 10.00 → 9.50: crosses
	below := e.sale("4", 3, 4, 950, 100, 4)    // 9.50 → 8.50: stays below
	for range 2 {
		if up := e.upload(append(rows, crossing, below)...); len(up.Acked) != 4 {
			t.Fatalf("upload: %+v", up)
		}
	}
	list := e.alerts("")
	if len(list) != 1 || list[0].Row != crossing.ID || list[0].State != AlertQueued || list[0].Card == testNumber {
		t.Fatalf("alerts %+v; want one, queued, of row %s, card masked", list, crossing.ID)
	}
	var p AlertPayload
	if err := json.Unmarshal([]byte(list[0].Body), &p); err != nil {
		t.Fatal(err)
	}
	if p.ID != list[0].ID || p.BalanceFen != 950 || p.Balance != "9.50" || p.ThresholdFen != 1000 || p.AmountFen != 50 || p.Event != AlertEvent ||
		p.Card != "3101********3456" || strings.Contains(list[0].Body, testNumber) {
		t.Fatalf("payload %+v", p)
	}

	// An unknown row queues nothing; settled done it queues one, once.
	later := e.sale("5", 4, 5, 5000, 4500, 5) // a card's own threshold of 6.00 below
	if err := e.st.SetCardAlert(context.Background(), testNumber, 600, false, "operator test", time.Now()); err != nil {
		t.Fatal(err)
	}
	unknown := later
	unknown.State, unknown.TAC = rowUnknown, ""
	e.upload(unknown)
	if n := len(e.alerts("")); n != 1 {
		t.Fatalf("%d alerts after an unknown row; want 1", n)
	}
	e.upload(later)
	e.upload(later)
	if n := len(e.alerts("")); n != 2 {
		t.Fatalf("%d alerts after the row settled done; want 2", n)
	}
	// The card's alerts off: a crossing of the default queues nothing.
	if err := e.st.SetCardAlert(context.Background(), testNumber, 0, false, "operator test", time.Now()); err != nil {
		t.Fatal(err)
	}
	e.upload(e.sale("6", 5, 6, 1200, 500, 6))
	if n := len(e.alerts("")); n != 2 {
		t.Fatalf("%d alerts with the card's alerts off; want 2", n)
	}
	if err := e.st.SetCardAlert(context.Background(), "3101000000999999", 600, false, "operator test", time.Now()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown card: %v", err)
	}
}

// TestBalanceAlertDelivery: a receiver that fails twice gets the alert on
// the third attempt, signed so that VerifyAlert accepts it (and refuses it
// with another secret, a changed body or an old time); a receiver that
// always fails leaves the alert failed after MaxAttempts, listed with its
// error.
func TestBalanceAlertDelivery(t *testing.T) { eachStore(t, testBalanceAlertDelivery) }

func testBalanceAlertDelivery(t *testing.T) {
	e := newEnv(t, Options{})
	rcv := newReceiver(t, 2)
	e.setAlerts(rcv.srv.URL, 1000)
	e.upload(e.sale("1", 0, 1, 1500, 600, 1))
	a := e.sender(5)
	drain(t, a)
	calls, bodies, sigs := rcv.got()
	if calls != 3 || len(bodies) != 1 {
		t.Fatalf("%d calls, %d delivered; want 3 and 1", calls, len(bodies))
	}
	sent := e.alerts(AlertSent)
	if len(sent) != 1 || sent[0].Attempts != 3 || sent[0].Body != string(bodies[0]) {
		t.Fatalf("sent %+v", sent)
	}
	now := time.Now()
	if err := VerifyAlert([]byte(testAlertSecret), sigs[0], bodies[0], now, 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"another secret": VerifyAlert([]byte("another secret, long enough"), sigs[0], bodies[0], now, 5*time.Minute),
		"a changed body": VerifyAlert([]byte(testAlertSecret), sigs[0], append([]byte(" "), bodies[0]...), now, 5*time.Minute),
		"an old time":    VerifyAlert([]byte(testAlertSecret), sigs[0], bodies[0], now.Add(time.Hour), 5*time.Minute),
	} {
		if !errors.Is(err, ErrAlertSignature) {
			t.Errorf("%s: %v; want ErrAlertSignature", name, err)
		}
	}
	// Sent is sent: nothing more goes.
	drain(t, a)
	if calls, _, _ := rcv.got(); calls != 3 {
		t.Fatalf("%d calls after a sent alert's pass; want 3", calls)
	}

	down := newReceiver(t, 1000)
	e.setAlerts(down.srv.URL, 1000)
	e.upload(e.sale("2", 1, 2, 1000, 100, 2))
	drain(t, a)
	failed := e.alerts(AlertFailed)
	if calls, _, _ := down.got(); calls != 5 || len(failed) != 1 || failed[0].Attempts != 5 || !strings.Contains(failed[0].LastError, "503") {
		t.Fatalf("%d calls, failed %+v; want 5 and one failed after 5 attempts", calls, failed)
	}
	if q, f, err := e.st.AlertCounts(context.Background()); q != 0 || f != 1 || err != nil {
		t.Fatalf("counts %d queued %d failed %v", q, f, err)
	}
}

// TestBalanceAlertClaim: two senders on one store (two host instances)
// passing at once deliver each alert once.
func TestBalanceAlertClaim(t *testing.T) { eachStore(t, testBalanceAlertClaim) }

func testBalanceAlertClaim(t *testing.T) {
	e := newEnv(t, Options{})
	slow := &receiver{}
	slow.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		time.Sleep(50 * time.Millisecond) // both senders are in a pass together
		slow.mu.Lock()
		slow.calls++
		slow.bodies = append(slow.bodies, b)
		slow.mu.Unlock()
	}))
	defer slow.srv.Close()
	e.setAlerts(slow.srv.URL, 1000)
	e.upload(e.sale("1", 0, 1, 1500, 600, 1), e.sale("2", 1, 2, 5000, 4500, 2))
	other, err := Open(e.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	var wg gosync.WaitGroup
	for _, st := range []*Store{e.st, other} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := &AlertSender{Store: st, Timeout: 5 * time.Second}
			if _, err := a.SendDue(context.Background(), time.Now); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	calls, bodies, _ := slow.got()
	ids := map[string]bool{}
	for _, b := range bodies {
		var p AlertPayload
		json.Unmarshal(b, &p)
		ids[p.ID] = true
	}
	if calls != 2 || len(ids) != 2 || len(e.alerts(AlertSent)) != 2 {
		t.Fatalf("%d deliveries of %d alerts; want each of 2 once", calls, len(ids))
	}
}

// TestAlertConfigChecks: a bad URL, a short secret, a URL without a secret
// are refused naming the field, and change nothing.
func TestAlertConfigChecks(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	for _, c := range []AlertConfig{
		{URL: "ftp://example.com/x", Secret: testAlertSecret},
		{URL: "example.com/hook", Secret: testAlertSecret},
		{URL: "https://user:pw@example.com/hook", Secret: testAlertSecret},
		{URL: "https://example.com/hook", Secret: "short"},
		{URL: "https://example.com/hook"},
		{URL: "https://example.com/hook", Secret: testAlertSecret, CardNumber: "half"},
		{URL: "https://example.com/hook", Secret: testAlertSecret, BelowFen: -1},
	} {
		var ce *AlertConfigError
		if err := e.st.SetAlertConfig(ctx, c, "op", time.Now()); !errors.As(err, &ce) {
			t.Errorf("%+v: %v; want an AlertConfigError", c.Redacted(), err)
		}
	}
	if c, err := e.st.AlertConfig(ctx); err != nil || c.URL != "" || c.CardNumber != AlertNumberMasked {
		t.Fatalf("config after refusals: %+v %v", c.Redacted(), err)
	}
}

// TestAlertSenderStartStop: a started sender delivers what is queued on its
// own polls; Stop returns once it ended, and nothing is sent after it.
func TestAlertSenderStartStop(t *testing.T) {
	e := newEnv(t, Options{})
	rcv := newReceiver(t, 0)
	e.setAlerts(rcv.srv.URL, 1000)
	a := e.sender(3)
	a.Poll = 10 * time.Millisecond
	a.Start(context.Background())
	e.upload(e.sale("1", 0, 1, 1500, 600, 1))
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		// Delivered and recorded sent: the receiver's answer reaches the
		// store a moment after the body reaches the receiver, and a Stop
		// between the two leaves the alert queued to be sent again (at
		// least once), as a slow machine (arm64 under qemu) showed.
		if _, bodies, _ := rcv.got(); len(bodies) == 1 && len(e.alerts(AlertSent)) == 1 {
			break
		} else if time.Now().After(deadline) {
			a.Stop()
			t.Fatal("the started sender delivered nothing within 10 s")
		}
	}
	a.Stop()
	e.upload(e.sale("2", 1, 2, 5000, 4500, 2))
	time.Sleep(100 * time.Millisecond)
	if calls, _, _ := rcv.got(); calls != 1 || len(e.alerts(AlertQueued)) != 1 {
		t.Fatalf("%d calls after Stop, %d queued; want 1 and the second alert waiting", calls, len(e.alerts(AlertQueued)))
	}
}

// TestBalanceAlertFullNumber: with the card number set to full, the
// payload carries the whole number (for the operator's own service);
// 'alerts list' still masks it.
func TestBalanceAlertFullNumber(t *testing.T) {
	e := newEnv(t, Options{})
	if err := e.st.SetAlertConfig(context.Background(), AlertConfig{URL: "https://ops.example/hook", Secret: testAlertSecret, BelowFen: 1000,
		CardNumber: AlertNumberFull}, "operator test", time.Now()); err != nil {
		t.Fatal(err)
	}
	e.upload(e.sale("1", 0, 1, 1500, 600, 1))
	list := e.alerts("")
	var p AlertPayload
	if len(list) != 1 || json.Unmarshal([]byte(list[0].Body), &p) != nil || p.Card != testNumber || list[0].Card == testNumber {
		t.Fatalf("alerts %+v", list)
	}
}

// TestBalanceAlertForgedTAC: a purchase whose TAC the card's key does not
// give (a terminal's invention, alarmed by the reconciliation) tells the
// holder nothing: its balance is not the card's. The same crossing with the
// card's own TAC is one alert.
func TestBalanceAlertForgedTAC(t *testing.T) { eachStore(t, testBalanceAlertForgedTAC) }

func testBalanceAlertForgedTAC(t *testing.T) {
	e := newEnv(t, Options{})
	e.setAlerts("http://127.0.0.1:1/hook", 1000)
	forged := e.sale("1", 0, 1, 10000, 9950, 1) // 100.00 → 0.50
	forged.TAC = flip(forged.TAC)
	if up := e.upload(forged); len(up.Acked) != 1 {
		t.Fatalf("upload: %+v", up)
	}
	e.wantOpenAlarms("a forged TAC", "the sale's TAC does not verify")
	if list := e.alerts(""); len(list) != 0 {
		t.Fatalf("alerts %+v after a purchase with a forged TAC; want none", list)
	}
	real := e.sale("2", 1, 2, 10000, 9950, 2)
	e.upload(real)
	if list := e.alerts(""); len(list) != 1 || list[0].Row != real.ID {
		t.Fatalf("alerts %+v; want one, of row %s", list, real.ID)
	}
}

// TestBalanceAlertNotOnClosing: the closing debit of a card closed at a
// desk takes its whole balance, refunded, not spent: the holder who just
// closed the card is not told to top it up.
func TestBalanceAlertNotOnClosing(t *testing.T) { eachStore(t, testBalanceAlertNotOnClosing) }

func testBalanceAlertNotOnClosing(t *testing.T) {
	e := newEnv(t, Options{})
	e.setAlerts("http://127.0.0.1:1/hook", 1000)
	if _, err := e.st.CloseCard(t.Context(), testNumber, "operator alice", "graduated", time.Now()); err != nil {
		t.Fatal(err)
	}
	debit := e.sale("1", 0, 1, 10000, 10000, 1)
	debit.CreditID = hostapi.CloseID(testNumber)
	if up := e.upload(debit); len(up.Acked) != 1 {
		t.Fatalf("upload: %+v", up)
	}
	if list, err := e.st.Closes(t.Context(), CloseClosed); err != nil || len(list) != 1 {
		t.Fatalf("closed: %+v, %v", list, err)
	}
	if list := e.alerts(""); len(list) != 0 {
		t.Fatalf("alerts %+v after the closing debit; want none", list)
	}
}
