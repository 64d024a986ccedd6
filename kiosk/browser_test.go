//go:build linux

package kiosk_test

// A unit-level browser test of the kiosk page: Chromium (headless, through
// chromedp) loads the page from kiosk.Handler, and a fake local API in this
// file plays the daemon's events. The real stack is tested elsewhere.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// browserToken has every character that needs escaping in an HTML attribute,
// so the test also shows the page reads back exactly what the daemon meant.
const browserToken = `t0k"en<&>'x`

// findChromium returns Chromium's path, or skips (fails under CI=true).
func findChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "no chromium, chromium-browser or google-chrome in PATH (Debian: apt-get install chromium)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// fakeAPI plays /v1/status, /v1/events and /v1/receipts.
type fakeAPI struct {
	mu       sync.Mutex
	status   map[string]any
	clients  map[chan []byte]struct{}
	nextID   int
	receipt  int           // the last receipt id given
	down     bool          // new event streams hang before their headers
	up       chan struct{} // closed when down ends
	receipts chan receiptCall
	kiosk    map[string]any // /v1/kiosk/config
}

type receiptCall struct {
	auth, ctype string
	body        map[string]any
}

func newFakeAPI() *fakeAPI {
	return &fakeAPI{
		status: map[string]any{
			"version": "test", "mode": "kiosk", "terminal_id": "000000000001", "pcscd": true,
			"readers": []any{map[string]any{"name": "Virtual PCD 00 00", "role": "card", "card_present": false}},
			"printer": map[string]any{"enabled": true, "ready": true, "answering": true, "problem": "", "receipts_waiting": 0},
			"host":    map[string]any{"configured": true, "queue_depth": 0},

			"armed_purchase_fen": 0,
		},
		clients:  map[chan []byte]struct{}{},
		receipts: make(chan receiptCall, 4),
		kiosk: map[string]any{"title": "", "merchant": "", "idle_seconds": 0, "language": "zh-CN", "invoice": true,
			"colors": map[string]any{"primary": "#0b4f8a", "background": "#eef2f6", "text": "#17202c"}},
	}
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/v1/status":
		f.mu.Lock()
		b, _ := json.Marshal(f.status)
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
	case "/v1/events":
		f.events(w, r)
	case "/v1/kiosk/config":
		f.mu.Lock()
		b, _ := json.Marshal(f.kiosk)
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
	case "/v1/invoices/cr-1", "/v1/invoices/cr-3":
		order := strings.TrimPrefix(r.URL.Path, "/v1/invoices/")
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"order": order, "amount_fen": 5000, "amount": "50.00",
			"url": "https://fp.example.cn/k?o=" + order + "&a=50.00", "qr": "data:image/svg+xml;base64," + base64.StdEncoding.EncodeToString([]byte(testSVG))})
	case "/v1/receipts":
		if r.Method != http.MethodPost {
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		var body map[string]any
		b, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(b, &body)
		f.receipts <- receiptCall{auth: r.Header.Get("Authorization"), ctype: r.Header.Get("Content-Type"), body: body}
		if r.Header.Get("Authorization") != "Bearer "+browserToken {
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"error":"wrong token"}`))
			return
		}
		// As the daemon does: the "queued" event goes out before the answer.
		f.mu.Lock()
		f.receipt = max(f.receipt+1, 7)
		rv := map[string]any{"id": f.receipt, "kind": body["kind"], "state": "queued"}
		f.mu.Unlock()
		f.send("receipt", map[string]any{"receipt": rv})
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		json.NewEncoder(w).Encode(rv)
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeAPI) events(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	up := f.up
	down := f.down
	f.mu.Unlock()
	if down {
		select {
		case <-up:
		case <-r.Context().Done():
			return
		}
	}
	ch := make(chan []byte, 64)
	f.mu.Lock()
	f.clients[ch] = struct{}{}
	hello, _ := json.Marshal(map[string]any{"id": 0, "type": "hello", "time": time.Now().UTC(), "status": f.status})
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.clients, ch)
		f.mu.Unlock()
	}()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, "retry: 200\n\nevent: hello\ndata: %s\n\n", hello)
	w.(http.Flusher).Flush()
	for {
		select {
		case <-r.Context().Done():
			return
		case msg, ok := <-ch:
			if !ok {
				return // dropped by the test
			}
			w.Write(msg)
			w.(http.Flusher).Flush()
		}
	}
}

// send publishes one event to every stream.
func (f *fakeAPI) send(typ string, fields map[string]any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextID++
	ev := map[string]any{"id": f.nextID, "type": typ, "time": time.Now().UTC()}
	for k, v := range fields {
		ev[k] = v
	}
	b, _ := json.Marshal(ev)
	msg := []byte(fmt.Sprintf("id: %d\nevent: %s\ndata: %s\n\n", f.nextID, typ, b))
	for ch := range f.clients {
		ch <- msg
	}
}

func (f *fakeAPI) streams() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.clients)
}

// cut ends every stream and holds new ones until resume.
func (f *fakeAPI) cut() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = true
	f.up = make(chan struct{})
	for ch := range f.clients {
		close(ch)
		delete(f.clients, ch)
	}
}

func (f *fakeAPI) resume() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = false
	close(f.up)
}

const reader = "Virtual PCD 00 00"

// testSVG stands for the daemon's QR code picture.
const testSVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 29 29"><rect width="29" height="29" fill="#fff"/><path fill="#000" d="M4 4h7v7h-7z"/></svg>`

func testCard(balance string, balanceFen int64, withLoad bool) map[string]any {
	txs := []any{
		map[string]any{"counter": 5, "time": "2026-11-22 10:15:53", "kind": "purchase", "amount_fen": -559, "amount": "-5.59", "terminal": "000000001001"},
		map[string]any{"counter": 4, "time": "2026-11-21 12:02:10", "kind": "purchase", "amount_fen": -1200, "amount": "-12.00", "terminal": "000000001001"},
		map[string]any{"counter": 3, "time": "2026-11-20 18:40:00", "kind": "composite_purchase", "amount_fen": -300, "amount": "-3.00", "terminal": "000000001002"},
		map[string]any{"counter": 2, "time": "2026-11-19 08:00:00", "kind": "load", "amount_fen": 10000, "amount": "100.00", "terminal": "000000000001"},
		map[string]any{"counter": 1, "time": "2026-11-18 11:30:00", "kind": "type_0x09", "amount_fen": -29, "amount": "-0.29", "terminal": "000000001003"},
	}
	if withLoad {
		txs = append([]any{map[string]any{"counter": 6, "time": "2026-11-23 12:00:01", "kind": "load", "amount_fen": 5000, "amount": "50.00", "terminal": "000000000001"}}, txs[:4]...)
	}
	return map[string]any{
		"number": "3101********3456", "holder": "张三", "valid_from": "2025-09-01", "valid_to": "2029-08-31",
		"purse": "EP", "balance_fen": balanceFen, "balance": balance, "transactions": txs,
	}
}

type page struct {
	t   *testing.T
	ctx context.Context
	dir string
}

func (p *page) do(steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, steps...); err != nil {
		p.t.Fatalf("browser: %v\n%s", err, p.dump())
	}
}

// eval runs a JavaScript expression and returns its value as a string.
func (p *page) eval(js string) string {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](js))
	if err != nil {
		p.t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// text is the element's text, "" when it is missing or hidden.
func (p *page) text(sel string) string {
	p.t.Helper()
	q, _ := json.Marshal(sel)
	return p.eval(fmt.Sprintf(`(function(){var e=document.querySelector(%s);return e&&e.offsetParent!==null?e.innerText.trim():""})()`, q))
}

// waitFor polls a JavaScript condition until it holds.
func (p *page) waitFor(what, js string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](js, chromedp.WithPollingTimeout(5*time.Second))); err != nil {
		p.t.Fatalf("waiting for %s (%s): %v\n%s", what, js, err, p.dump())
	}
}

func (p *page) waitText(sel, want string) {
	p.t.Helper()
	q, _ := json.Marshal(sel)
	w, _ := json.Marshal(want)
	p.waitFor(fmt.Sprintf("%s to show %q", sel, want),
		fmt.Sprintf(`(function(){var e=document.querySelector(%s);return !!e&&e.offsetParent!==null&&e.innerText.indexOf(%s)>=0})()`, q, w))
}

func (p *page) waitState(state string) {
	p.t.Helper()
	p.waitFor("data-state="+state, fmt.Sprintf(`document.body.getAttribute("data-state")===%q`, state))
}

// dump is the page's state, for failure messages.
func (p *page) dump() string {
	ctx, cancel := context.WithTimeout(p.ctx, 2*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(function(){var b=document.body;return "body "+JSON.stringify({state:b.dataset.state,tap:b.dataset.tap,conn:b.dataset.conn,lang:b.dataset.lang,card:b.dataset.card})+"\n"+b.innerText})()`))
	if err != nil {
		return "(page state unavailable: " + err.Error() + ")"
	}
	return "page now:\n" + s
}

func (p *page) screenshot(name string) {
	p.t.Helper()
	png, err := chromedp.Run(p.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		p.t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		p.t.Fatal(err)
	}
	p.t.Logf("screenshot %s", path)
}

// checkLayout fails when anything visible sticks out of the 1024×768 screen
// (the page must not need scrolling) or a button is smaller than 64 px.
func (p *page) checkLayout(where string) {
	p.t.Helper()
	got := p.eval(`(function(){
  var bad = [];
  if (innerWidth !== 1024 || innerHeight !== 768) bad.push("viewport " + innerWidth + "x" + innerHeight);
  var all = document.body.querySelectorAll("*");
  for (var i = 0; i < all.length; i++) {
    var e = all[i], r = e.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue;
    if (r.bottom > innerHeight + 0.5 || r.right > innerWidth + 0.5 || r.top < -0.5 || r.left < -0.5)
      bad.push(e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + " at " + Math.round(r.left) + "," + Math.round(r.top) + "-" + Math.round(r.right) + "," + Math.round(r.bottom));
    var cs = getComputedStyle(e);
    if (e.clientHeight > 0 && cs.overflowY === "hidden" && e.scrollHeight > e.clientHeight + 1)
      bad.push(e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + " clips its content (height " + e.scrollHeight + " > " + e.clientHeight + ")");
    if (e.clientWidth > 0 && cs.overflowX === "hidden" && e.scrollWidth > e.clientWidth + 1)
      bad.push(e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + " clips its content (width " + e.scrollWidth + " > " + e.clientWidth + ")");
  }
  var bs = document.querySelectorAll("button");
  for (var j = 0; j < bs.length; j++) {
    var b = bs[j].getBoundingClientRect();
    if (b.width > 0 && (b.width < 64 || b.height < 64)) bad.push("button #" + bs[j].id + " is " + Math.round(b.width) + "x" + Math.round(b.height));
  }
  return bad.join("\n");
})()`)
	if got != "" {
		p.t.Errorf("%s: layout does not fit 1024×768 touch screen:\n%s", where, got)
	}
}

func TestBrowserKiosk(t *testing.T) {
	api := newFakeAPI()
	p, srv := openPage(t, api, 60*time.Second)
	ctx := p.ctx

	// Idle, connected.
	p.waitState("idle")
	p.waitFor("the event stream", `document.body.getAttribute("data-conn")==="up"`)
	if n := api.streams(); n != 1 {
		t.Fatalf("%d event streams open, want 1", n)
	}
	if got := p.text("#idle-primary"); got != "请刷卡" {
		t.Errorf("idle primary %q, want 请刷卡", got)
	}
	if got := p.text("#idle-secondary"); got != "Tap your card" {
		t.Errorf("idle secondary %q, want Tap your card", got)
	}
	if got := p.eval(`document.querySelector('meta[name="cardd-token"]').content`); got != browserToken {
		t.Errorf("page reads token %q, want %q", got, browserToken)
	}
	p.checkLayout("idle")
	p.screenshot("kiosk-idle.png")

	// A card arrives; its balance comes early, then the tap ends with a
	// pending top-up applied.
	api.send("card.present", map[string]any{"reader": reader})
	p.waitState("reading")
	api.send("card.balance", map[string]any{"reader": reader, "card": map[string]any{
		"number": "3101********3456", "purse": "EP", "balance_fen": 13412, "balance": "134.12", "transactions": []any{}}})
	p.waitState("card")
	p.waitText("#balance", "134.12")
	if got := p.eval(`document.body.getAttribute("data-tap")`); got != "pending" {
		t.Errorf("data-tap %q while the tap goes on, want pending", got)
	}
	if got := p.text("#print-button"); got != "" {
		t.Errorf("print button %q shown before the tap ended", got)
	}
	if got := p.text("#leave-note"); got != "" {
		t.Errorf("#leave-note %q before card.leave", got)
	}
	// The money moved: the card may go while the tap finishes.
	api.send("card.leave", map[string]any{"reader": reader, "card": map[string]any{
		"number": "3101********3456", "purse": "EP", "balance_fen": 18412, "balance": "184.12", "transactions": []any{}},
		"tap": map[string]any{"outcome": "ok", "balance_after_fen": 18412, "balance_after": "184.12", "loads": []any{}}})
	p.waitText("#leave-note", "可以移开卡片")
	if got := p.eval(`document.body.getAttribute("data-tap")`); got != "pending" {
		t.Errorf("data-tap %q after card.leave, want pending: the tap goes on", got)
	}

	api.send("card.tap", map[string]any{"reader": reader, "card": testCard("134.12", 13412, true), "tap": map[string]any{
		"outcome": "ok", "balance_after_fen": 18412, "balance_after": "184.12", "host_offline": false,
		"loads":         []any{map[string]any{"credit_id": "cr-1", "amount_fen": 5000, "amount": "50.00", "applied": true}},
		"to_balance_ms": 1.2, "to_done_ms": 3.4}})
	p.waitFor("the tap to end", `document.body.getAttribute("data-tap")==="done"`)
	if got := p.text("#balance"); got != "184.12" {
		t.Errorf("#balance %q, want 184.12 (after the top-up)", got)
	}
	if got := p.text("#card-number"); got != "3101********3456" {
		t.Errorf("#card-number %q", got)
	}
	if got := p.text("#holder"); got != "张三" {
		t.Errorf("#holder %q", got)
	}
	if got := p.text("#validity"); got != "2025-09-01 至 2029-08-31" {
		t.Errorf("#validity %q", got)
	}
	if got := p.text("#topup"); got != "充值 50.00 元已到账" {
		t.Errorf("#topup %q, want 充值 50.00 元已到账", got)
	}
	if got := p.eval(`String(document.querySelectorAll("#transactions li").length)`); got != "5" {
		t.Errorf("%s transactions shown, want 5", got)
	}
	if got := p.text("#transactions li:first-child"); !strings.Contains(got, "充值") || !strings.Contains(got, "+50.00") || !strings.Contains(got, "2026-11-23 12:00:01") {
		t.Errorf("newest transaction %q, want the 50.00 load", got)
	}
	if got := p.text("#transactions li:nth-child(2)"); !strings.Contains(got, "消费") || !strings.Contains(got, "-5.59") {
		t.Errorf("second transaction %q, want the 5.59 purchase", got)
	}
	if got := p.text("#message"); got != "" {
		t.Errorf("#message %q on a clean tap, want none", got)
	}
	if got := p.text("#print-button"); got != "打印小票" {
		t.Errorf("#print-button %q, want 打印小票", got)
	}
	p.checkLayout("card")
	p.screenshot("kiosk-card.png")

	// Print: the page asks with the token, says printing, then printed.
	p.do(chromedp.Tap(chromedp.CSS("#print-button")))
	select {
	case c := <-api.receipts:
		if c.auth != "Bearer "+browserToken {
			t.Errorf("POST /v1/receipts Authorization %q, want %q", c.auth, "Bearer "+browserToken)
		}
		if c.body["kind"] != "balance" {
			t.Errorf("POST /v1/receipts body %v, want kind balance", c.body)
		}
		if !strings.HasPrefix(c.ctype, "application/json") {
			t.Errorf("POST /v1/receipts Content-Type %q", c.ctype)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("no POST /v1/receipts after pressing print\n%s", p.dump())
	}
	p.waitText("#print-state", "打印中")
	if got := p.eval(`String(document.getElementById("print-button").disabled)`); got != "true" {
		t.Errorf("print button enabled while printing")
	}
	api.send("receipt", map[string]any{"receipt": map[string]any{"id": 99, "kind": "balance", "state": "printed"}})
	api.send("receipt", map[string]any{"receipt": map[string]any{"id": 7, "kind": "balance", "state": "printed"}})
	p.waitText("#print-state", "已打印")
	p.waitFor("print state printed", `document.getElementById("print-state").getAttribute("data-phase")==="printed"`)
	if got := p.text("#leave-note"); got != "可以移开卡片" {
		t.Errorf("#leave-note %q with the card still on the reader after the tap, want 可以移开卡片", got)
	}

	// The top-up's invoice: its code, shown and printed.
	if got := p.text("#invoice-button"); got != "开票" {
		t.Fatalf("#invoice-button %q after a top-up, want 开票\n%s", got, p.dump())
	}
	p.do(chromedp.Tap(chromedp.CSS("#invoice-button")))
	p.waitFor("the invoice code", `(function(){var i=document.getElementById("invoice-qr");return i.offsetParent!==null&&i.complete&&i.naturalWidth>0&&i.getAttribute("src").indexOf("data:image/svg+xml;base64,")===0})()`)
	if got := p.text("#invoice-amount"); got != "50.00 元" {
		t.Errorf("#invoice-amount %q, want 50.00 元", got)
	}
	if got := p.text("#invoice-order"); got != "订单号 cr-1" {
		t.Errorf("#invoice-order %q, want 订单号 cr-1", got)
	}
	p.checkLayout("invoice")
	p.screenshot("kiosk-invoice.png")
	p.do(chromedp.Tap(chromedp.CSS("#invoice-print")))
	select {
	case c := <-api.receipts:
		if c.body["kind"] != "invoice" || c.body["order"] != "cr-1" || c.auth != "Bearer "+browserToken {
			t.Errorf("POST /v1/receipts %v (%s), want the invoice slip of cr-1 with the page's token", c.body, c.auth)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("no POST /v1/receipts after pressing the invoice's print\n%s", p.dump())
	}
	p.waitText("#invoice-state", "打印中")
	api.send("receipt", map[string]any{"receipt": map[string]any{"id": 8, "kind": "invoice", "state": "printed"}})
	p.waitText("#invoice-state", "已打印")
	if got := p.text("#invoice-next"); got != "" {
		t.Errorf("#invoice-next %q with one top-up", got)
	}
	p.do(chromedp.Tap(chromedp.CSS("#invoice-close")))
	p.waitFor("the invoice closed", `document.getElementById("invoice-view").hidden`)

	// Two top-ups on one tap: the last first, then the other.
	api.send("card.tap", map[string]any{"reader": reader, "card": testCard("134.12", 13412, true), "tap": map[string]any{
		"outcome": "ok", "balance_after_fen": 23412, "balance_after": "234.12", "loads": []any{
			map[string]any{"credit_id": "cr-1", "amount_fen": 5000, "amount": "50.00", "applied": true},
			map[string]any{"credit_id": "cr-2", "amount_fen": 700, "amount": "7.00", "applied": false, "refused": "over the cap"},
			map[string]any{"credit_id": "cr-3", "amount_fen": 5000, "amount": "50.00", "applied": true}}}})
	p.waitText("#balance", "234.12")
	p.do(chromedp.Tap(chromedp.CSS("#invoice-button")))
	p.waitText("#invoice-order", "订单号 cr-3")
	// Loaded: the print button appears then and moves the others, so a
	// tap aimed before it would land on whatever took their place.
	p.waitText("#invoice-amount", "50.00")
	p.checkLayout("invoice of two")
	p.do(chromedp.Tap(chromedp.CSS("#invoice-next")))
	p.waitText("#invoice-order", "订单号 cr-1")
	p.waitText("#invoice-amount", "50.00")
	p.do(chromedp.Tap(chromedp.CSS("#invoice-close")))
	p.waitFor("the invoice closed", `document.getElementById("invoice-view").hidden`)

	// The card leaves; a new tap replaces the screen at once and ends with
	// the card pulled away too early.
	api.send("card.removed", map[string]any{"reader": reader})
	api.send("card.present", map[string]any{"reader": reader})
	p.waitState("reading")
	api.send("card.balance", map[string]any{"reader": reader, "card": map[string]any{
		"number": "3101********9999", "purse": "EP", "balance_fen": 2000, "balance": "20.00", "transactions": []any{}}})
	api.send("card.removed", map[string]any{"reader": reader})
	api.send("card.tap", map[string]any{"reader": reader, "tap": map[string]any{
		"outcome": "card_removed_too_early", "error": "scard: card removed", "balance_after_fen": 0, "balance_after": "0.00", "loads": []any{}}})
	p.waitState("error")
	if got := p.text("#message"); got != "拿开太快，请重新刷卡" {
		t.Errorf("#message %q, want 拿开太快，请重新刷卡", got)
	}
	if got := p.text("#balance"); got != "20.00" {
		t.Errorf("#balance %q on the error screen, want the 20.00 read before the card left", got)
	}
	if got := p.text("#print-button"); got != "" {
		t.Errorf("print button %q shown after a failed tap", got)
	}
	p.checkLayout("error")
	p.screenshot("kiosk-error.png")

	// Other outcomes in words.
	for _, tc := range []struct{ outcome, want string }{
		{"card_denied", "此卡已冻结，请联系卡务中心"},
		{"card_expired", "卡已过期，请到卡务中心办理"},
		{"reader_gone", "读卡器已断开，请联系工作人员"},
		{"something_new", "操作未完成，请重新刷卡"},
	} {
		api.send("card.present", map[string]any{"reader": reader})
		api.send("card.tap", map[string]any{"reader": reader, "card": testCard("9.00", 900, false),
			"tap": map[string]any{"outcome": tc.outcome, "loads": []any{}}})
		p.waitText("#message", tc.want)
		p.waitState("error")
	}

	// English: the page and the other screens (the kiosk-lang event).
	p.eval(`window.langEvents=0;document.addEventListener("kiosk-lang",function(){window.langEvents++});""`)
	p.do(chromedp.Tap(chromedp.CSS("#lang-toggle")))
	p.waitText("#message", "Something went wrong. Please tap again")
	if got := p.eval(`String(document.querySelectorAll("button.pressed").length)`); got != "0" {
		t.Errorf("%s buttons still look pressed after the tap", got)
	}
	if got := p.text("#lang-toggle"); got != "中文" {
		t.Errorf("#lang-toggle %q in English, want 中文", got)
	}
	if got := p.eval(`document.documentElement.lang`); got != "en" {
		t.Errorf("html lang %q, want en", got)
	}
	if got := p.eval(`String(window.langEvents)`); got != "1" {
		t.Errorf("%s kiosk-lang events after switching to English, want 1", got)
	}
	api.send("card.present", map[string]any{"reader": reader})
	api.send("card.tap", map[string]any{"reader": reader, "tap": map[string]any{
		"outcome": "card_removed_too_early", "loads": []any{}}})
	p.waitText("#message", "Card removed too early. Please tap again")

	// A good tap with the host unreachable: the note says the top-up comes
	// next time. With no printer, no print button.
	api.send("printer", map[string]any{"printer": map[string]any{"enabled": false, "ready": false}})
	api.send("card.present", map[string]any{"reader": reader})
	api.send("card.tap", map[string]any{"reader": reader, "card": testCard("134.12", 13412, false), "tap": map[string]any{
		"outcome": "ok", "balance_after_fen": 13412, "balance_after": "134.12", "host_offline": true,
		"loads": []any{map[string]any{"credit_id": "cr-2", "amount_fen": 5000, "amount": "50.00", "applied": false,
			"refused": "host unreachable: the top-up applies on a later tap"}}}})
	p.waitFor("the tap to end", `document.body.getAttribute("data-state")==="card"&&document.body.getAttribute("data-tap")==="done"`)
	if got := p.text("#message"); got != "Network down: your top-up will reach the card next time you tap" {
		t.Errorf("#message %q with the host offline", got)
	}
	if got := p.text("#topup"); got != "" {
		t.Errorf("#topup %q with nothing applied", got)
	}
	if got := p.text("#print-button"); got != "" {
		t.Errorf("print button %q with the printer disabled", got)
	}
	if got := p.text("#transactions li:nth-child(5)"); !strings.Contains(got, "Other") {
		t.Errorf("fifth transaction %q, want an unknown kind as Other", got)
	}

	// The event stream drops: the badge shows until it is back.
	api.cut()
	p.waitText("#conn-badge", "Disconnected")
	api.resume()
	p.waitFor("the stream to come back", `document.body.getAttribute("data-conn")==="up"`)
	if got := p.text("#conn-badge"); got != "" {
		t.Errorf("badge %q after reconnecting", got)
	}

	// A reload starts in the configured language (kiosk.language): the
	// next cardholder is not left with the last one's choice.
	p.do(chromedp.Reload())
	p.waitState("idle")
	p.waitText("#idle-primary", "请刷卡")
	if got := p.text("#idle-secondary"); got != "Tap your card" {
		t.Errorf("idle secondary %q after reload, want Tap your card", got)
	}

	// A subsidy delivered: the page names it a subsidy, not a top-up.
	api.send("card.present", map[string]any{"reader": reader})
	api.send("card.tap", map[string]any{"reader": reader, "card": testCard("146.12", 14612, false), "tap": map[string]any{
		"outcome": "ok", "balance_after_fen": 14612, "balance_after": "146.12", "loads": []any{map[string]any{
			"credit_id": "cr-9", "amount_fen": 1200, "amount": "12.00", "applied": true, "kind": "subsidy", "purse": "EP", "message": "补助 12.00 元已到账"}}}})
	p.waitText("#topup", "补助 12.00 元已到账")
	api.send("card.removed", map[string]any{"reader": reader})

	// After the card leaves, the last tap stays for the linger time (20 s,
	// here 1 s through ?linger=1), then the screen is idle again; the card
	// on the reader keeps it.
	p.do(chromedp.Navigate(srv.URL + "/?linger=1"))
	p.waitFor("the event stream", `document.body.getAttribute("data-conn")==="up"&&document.body.getAttribute("data-state")==="idle"`)
	api.send("card.present", map[string]any{"reader": reader})
	api.send("card.tap", map[string]any{"reader": reader, "card": testCard("134.12", 13412, false), "tap": map[string]any{
		"outcome": "ok", "balance_after_fen": 13412, "balance_after": "134.12", "loads": []any{}}})
	p.waitState("card")
	p.do(chromedp.Sleep(1500 * time.Millisecond))
	if got := p.eval(`document.body.getAttribute("data-state")`); got != "card" {
		t.Errorf("state %q with the card still on the reader, want card", got)
	}
	api.send("card.removed", map[string]any{"reader": reader})
	p.waitState("idle")
	if got := p.text("#balance"); got != "" {
		t.Errorf("#balance %q visible on the idle screen", got)
	}

	// The reader goes away: the idle screen says so.
	st := map[string]any{"mode": "kiosk", "pcscd": true, "readers": nil,
		"printer": map[string]any{"enabled": true, "ready": true}}
	api.send("reader", map[string]any{"reader": reader, "tap": nil, "status": st})
	p.waitText("#reader-note", "读卡器未连接，请联系工作人员")

	mallPage(t, p, api, srv.URL)

	if err := ctx.Err(); errors.Is(err, context.DeadlineExceeded) {
		t.Fatal("browser test ran out of time")
	}
}

// mallPage: a mall's kiosk.* configuration (title, merchant, colours,
// English first, 1 s without a touch) changes the page, a title with markup
// shows as text, and the idle time brings the page back to the idle screen
// in English, but not while a card lies on the reader.
func mallPage(t *testing.T, p *page, api *fakeAPI, url string) {
	api.mu.Lock()
	api.kiosk = map[string]any{"title": "<b>万达</b>广场自助服务", "merchant": "万达广场 Wanda", "idle_seconds": 1, "language": "en", "invoice": false,
		"colors": map[string]any{"primary": "#a01020", "background": "#fff", "text": "#102030; color: red"}}
	api.mu.Unlock()
	p.do(chromedp.Navigate(url + "/"))
	p.waitFor("the mall's title", `document.getElementById("brand").textContent==="<b>万达</b>广场自助服务"`)
	if got := p.eval(`String(document.querySelectorAll("#brand *").length)`); got != "0" {
		t.Errorf("the title's markup made %s elements", got)
	}
	if got := p.text("#merchant"); got != "万达广场 Wanda" {
		t.Errorf("#merchant %q", got)
	}
	if got := p.eval(`getComputedStyle(document.querySelector("header")).backgroundColor+" "+getComputedStyle(document.body).backgroundColor+" "+getComputedStyle(document.body).color`); got != "rgb(160, 16, 32) rgb(255, 255, 255) rgb(23, 32, 44)" {
		t.Errorf("header, page and text colours %q; want the mall's, and the default text colour for a value that is not a hex colour", got)
	}
	p.waitText("#idle-primary", "Tap your card")
	p.checkLayout("mall idle")
	p.screenshot("kiosk-mall-idle.png")

	// Chinese by hand; a second without a touch brings English back.
	p.do(chromedp.Tap(chromedp.CSS("#lang-toggle")))
	p.waitText("#idle-primary", "请刷卡")
	p.waitText("#idle-primary", "Tap your card")

	// A card on the reader keeps its screen past the idle time; once it
	// left, the idle time (not the 20 s linger) ends it.
	api.send("card.present", map[string]any{"reader": reader})
	api.send("card.tap", map[string]any{"reader": reader, "card": testCard("134.12", 13412, false), "tap": map[string]any{
		"outcome": "ok", "balance_after_fen": 13412, "balance_after": "134.12", "loads": []any{}}})
	p.waitState("card")
	p.do(chromedp.Tap(chromedp.CSS("#lang-toggle")))
	p.waitText("#balance", "134.12")
	p.do(chromedp.Sleep(1500 * time.Millisecond))
	if got := p.eval(`document.body.getAttribute("data-state")+" "+document.documentElement.lang`); got != "card zh-CN" {
		t.Errorf("state and language %q with the card on the reader past the idle time, want card zh-CN", got)
	}
	api.send("card.removed", map[string]any{"reader": reader})
	p.waitState("idle")
	p.waitFor("English again", `document.documentElement.lang==="en"`)
}
