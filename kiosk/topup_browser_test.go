//go:build linux

package kiosk_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/cardd/cardd/kiosk"
)

// fakeTopupAPI plays the top-up's routes of the local API beside fakeAPI's:
// the orders the page makes, and what the page sent.
type fakeTopupAPI struct {
	*fakeAPI
	mu      sync.Mutex
	order   map[string]any // the one order, as the daemon tells it
	made    []map[string]any
	cancels int
	// answer, when set, is POST /v1/topup's status and error instead.
	answer int
	reason string
}

// topupSVG is a QR-sized SVG for the payment screen.
const topupSVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 29 29"><rect width="29" height="29" fill="#fff"/><path d="M4 4h7v7h-7z"/></svg>`

func (f *fakeTopupAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.URL.Path, "/v1/topup") {
		f.fakeAPI.ServeHTTP(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if r.Header.Get("Authorization") != "Bearer "+browserToken {
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"error":"wrong token"}`)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	enc := json.NewEncoder(w)
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/v1/topup":
		enc.Encode(map[string]any{"presets": []int{2000, 5000, 10000, 20000}, "max_fen": 50000, "card": true})
	case r.Method == http.MethodPost && r.URL.Path == "/v1/topup":
		var body map[string]any
		b, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(b, &body)
		f.made = append(f.made, body)
		if f.answer != 0 {
			w.WriteHeader(f.answer)
			enc.Encode(map[string]any{"error": f.reason})
			return
		}
		fen := int64(body["amount_fen"].(float64))
		f.order = map[string]any{"id": "T0001", "amount_fen": fen, "amount": yuanOf(fen), "state": "unpaid",
			"qr": "http://host.example/pay/T0001", "qr_svg": topupSVG, "seconds_left": 180, "expires": time.Now().Add(3 * time.Minute).UTC().Format(time.RFC3339)}
		w.WriteHeader(http.StatusCreated)
		enc.Encode(f.order)
	case r.Method == http.MethodGet && r.URL.Path == "/v1/topup/T0001" && f.order != nil:
		enc.Encode(f.order)
	case r.Method == http.MethodPost && r.URL.Path == "/v1/topup/T0001/cancel" && f.order != nil:
		f.cancels++
		f.order["state"] = "closed"
		delete(f.order, "qr_svg")
		enc.Encode(f.order)
	default:
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"error":"no such order"}`)
	}
}

// yuanOf is fen as the daemon writes it.
func yuanOf(fen int64) string { return fmt.Sprintf("%d.%02d", fen/100, fen%100) }

// set changes the order as the daemon would, and tells the stream.
func (f *fakeTopupAPI) set(fields map[string]any) {
	f.mu.Lock()
	for k, v := range fields {
		f.order[k] = v
	}
	if f.order["state"] != "unpaid" {
		delete(f.order, "qr_svg")
		delete(f.order, "qr")
	}
	ev := map[string]any{}
	for k, v := range f.order {
		ev[k] = v
	}
	f.mu.Unlock()
	f.send("topup", map[string]any{"topup": ev})
}

// openPage serves the kiosk page with api as its local API and opens it
// in Chromium at 1024×768 with touch, for at most timeout; uncaught
// exceptions of the page's scripts fail the test. Screenshots go to
// $CARDD_ARTIFACTS, else a temporary directory.
func openPage(t *testing.T, api http.Handler, timeout time.Duration) (*page, *httptest.Server) {
	t.Helper()
	chromium := findChromium(t)
	dir := os.Getenv("CARDD_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/v1/", api)
	mux.Handle("/", kiosk.Handler(browserToken))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.NoSandbox, // CI runs as root
		chromedp.WindowSize(1024, 768),
		chromedp.Flag("lang", "zh-CN"),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	// Everything the test does must finish well within this.
	ctx, cancelTime := context.WithTimeout(ctx, timeout)

	exceptions := chromedp.Events(ctx, runtime.ExceptionThrown)
	var jsMu sync.Mutex
	var jsErrs []string
	go func() {
		for ev, err := range exceptions {
			if err != nil {
				return
			}
			jsMu.Lock()
			jsErrs = append(jsErrs, (&chromedp.ExceptionError{ExceptionDetails: ev.ExceptionDetails}).Error())
			jsMu.Unlock()
		}
	}()
	t.Cleanup(func() {
		jsMu.Lock()
		for _, e := range jsErrs {
			t.Errorf("page script: %s", e)
		}
		jsMu.Unlock()
		cancelTime()
		cancelCtx()
		cancelAlloc()
	})
	p := &page{t: t, ctx: ctx, dir: dir}
	p.do(
		chromedp.EmulateViewport(1024, 768, chromedp.EmulateTouch, chromedp.EmulateLandscape),
		chromedp.Navigate(srv.URL+"/"),
	)
	return p, srv
}

// TestBrowserTopup drives the top-up's screens in Chromium at 1024×768: the
// button with a card read, the keypad (yuan text to fen as text), the
// payment screen, the written result with the new balance; then cancel,
// the card lifted, and the host away, each in plain words, in both
// languages.
func TestBrowserTopup(t *testing.T) {
	api := &fakeTopupAPI{fakeAPI: newFakeAPI()}
	p, _ := openPage(t, api, 90*time.Second)
	p.waitFor("the event stream", `document.body.getAttribute("data-conn")==="up"`)
	if got := p.text("#topup-button"); got != "" {
		t.Fatalf("top-up button %q with no card", got)
	}
	tapCard := func(balance string, fen int64) {
		api.send("card.present", map[string]any{"reader": reader})
		api.send("card.balance", map[string]any{"reader": reader, "card": testCard(balance, fen, false)})
		api.send("card.tap", map[string]any{"reader": reader, "card": testCard(balance, fen, false), "tap": map[string]any{
			"outcome": "ok", "balance_after_fen": fen, "balance_after": balance, "loads": []any{}}})
		p.waitText("#topup-button", "充值")
	}
	tapCard("134.12", 13412)
	p.screenshot("kiosk-topup-button.png")

	// The amount screen: presets and a keypad.
	p.do(chromedp.Tap(chromedp.CSS("#topup-button")))
	p.waitFor("the amount screen", `document.getElementById("topup-overlay").dataset.screen==="amount"`)
	if got := p.eval(`Array.prototype.map.call(document.querySelectorAll(".topup-preset"),function(b){return b.textContent}).join(" ")`); got != "20.00 50.00 100.00 200.00" {
		t.Errorf("presets %q", got)
	}
	// 1 0 0 . 5 6 7: the third decimal is not taken; then ⌫ twice and 0 0.
	for _, k := range []string{"1", "0", "0", ".", "5", "6", "7", "back", "back", "0", "0"} {
		p.do(chromedp.Tap(chromedp.CSS(`#topup-keypad button[data-key="` + k + `"]`)))
	}
	p.waitText("#topup-entry", "100.00 ")
	p.waitText("#topup-confirm", "100.00")
	p.checkLayout("amount")
	p.screenshot("kiosk-topup-amount.png")
	// Over the most (1000000 yuan): the confirm button is off and says why.
	press := func(keys ...string) {
		t.Helper()
		for _, k := range keys {
			p.do(chromedp.Tap(chromedp.CSS(`#topup-keypad button[data-key="` + k + `"]`)))
		}
	}
	press("back", "back", "back", "0", "0", "0", "0", "0")
	p.waitText("#topup-entry", "1000000 ")
	p.waitText(".topup-note", "超过可充值上限 500.00 元")
	if got := p.eval(`String(document.getElementById("topup-confirm").disabled)`); got != "true" {
		t.Errorf("confirm enabled over the most")
	}
	// Back to 100 and confirm.
	press("back", "back", "back", "back")
	p.waitText("#topup-entry", "100 ")
	p.do(chromedp.Tap(chromedp.CSS("#topup-confirm")))

	// The payment screen.
	p.waitFor("the QR code", `!!document.getElementById("topup-qr")`)
	api.mu.Lock()
	made := api.made
	api.mu.Unlock()
	if len(made) != 1 || made[0]["amount_fen"] != float64(10000) || made[0]["key"] == "" {
		t.Fatalf("POST /v1/topup bodies %v, want one of amount_fen 10000 with a key", made)
	}
	p.waitText("#topup-amount", "充值金额 100.00 元")
	p.waitText("#topup-countdown", "剩余 2:")
	p.checkLayout("payment")
	p.screenshot("kiosk-topup-qr.png")
	// English, on the page's switch.
	p.eval(`(function(){document.documentElement.lang="en";document.dispatchEvent(new Event("kiosk-lang"));return ""})()`)
	p.waitText("#topup-amount", "Top-up 100.00 CNY")
	p.waitText("#topup-cancel", "Cancel payment")
	p.screenshot("kiosk-topup-qr-en.png")
	p.eval(`(function(){document.documentElement.lang="zh-CN";document.dispatchEvent(new Event("kiosk-lang"));return ""})()`)

	// Paid; written onto the card on the reader.
	api.set(map[string]any{"state": "paid", "load": "writing"})
	p.waitText("#topup-overlay h1", "正在写入")
	api.set(map[string]any{"load": "written", "balance_fen": 23412, "balance": "234.12"})
	p.waitFor("the result", `(document.getElementById("topup-result")||{}).dataset&&document.getElementById("topup-result").dataset.result==="written"`)
	p.waitText("#topup-balance", "当前余额 234.12 元")
	p.checkLayout("written")
	p.screenshot("kiosk-topup-written.png")
	p.do(chromedp.Tap(chromedp.CSS("#topup-done")))
	p.waitFor("the overlay closed", `document.getElementById("topup-overlay").hidden`)

	// Cancelled: closed, nothing charged.
	open := func(fen string) {
		t.Helper()
		p.do(chromedp.Tap(chromedp.CSS("#topup-button")))
		p.waitFor("the amount screen", `document.getElementById("topup-overlay").dataset.screen==="amount"`)
		p.do(chromedp.Tap(chromedp.CSS(`.topup-preset[data-fen="` + fen + `"]`)))
	}
	api.mu.Lock()
	api.order = nil
	api.mu.Unlock()
	open("5000")
	p.waitFor("the QR code", `!!document.getElementById("topup-qr")`)
	p.do(chromedp.Tap(chromedp.CSS("#topup-cancel")))
	p.waitText("#topup-result", "未扣款")
	if api.cancels != 1 {
		t.Errorf("%d cancels, want 1", api.cancels)
	}
	p.screenshot("kiosk-topup-closed.png")
	p.do(chromedp.Tap(chromedp.CSS("#topup-done")))

	// Paid after the card was lifted: the money waits for the next tap.
	api.mu.Lock()
	api.order = nil
	api.mu.Unlock()
	open("2000")
	p.waitFor("the QR code", `!!document.getElementById("topup-qr")`)
	api.send("card.removed", map[string]any{"reader": reader})
	p.waitText(".topup-warn", "下次在任一终端刷卡时写入")
	api.set(map[string]any{"state": "paid", "load": "card_left"})
	p.waitText("#topup-result", "20.00 元将在您下次刷卡时写入卡内")
	p.checkLayout("card left")
	p.screenshot("kiosk-topup-card-left.png")
	p.do(chromedp.Tap(chromedp.CSS("#topup-done")))

	// The host away: nothing charged, said so.
	tapCard("134.12", 13412)
	api.mu.Lock()
	api.order, api.answer, api.reason = nil, 503, "making the payment order: the host cannot be reached"
	api.mu.Unlock()
	open("2000")
	p.waitText("#topup-result", "网络不通，未扣款")
	p.screenshot("kiosk-topup-unreachable.png")
}
