package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cardd/cardd/apdu/epurse"
	epursesim "github.com/cardd/cardd/apdu/epurse/sim"
	"github.com/cardd/cardd/host"
	"github.com/cardd/cardd/reader/vpcd"
)

// chromiumPath finds Debian's Chromium; without it the test fails under
// CI=true and skips elsewhere.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no chromium in PATH (scripts/setup installs it)")
	}
	t.Skip("no chromium in PATH")
	return ""
}

// TestKioskInBrowser: Debian's Chromium, headless at 1024×768, opens the
// kiosk page `cardd run` serves; a card with a pending 50.00 top-up is
// tapped through pcscd; the page shows the card, its 5 newest transactions
// and the new balance with the top-up; pressing print puts the balance
// receipt on the virtual printer. The page says the card may go (the
// daemon's card.leave) while it is still on the reader, offers 开票 for the
// top-up: its code on screen, and on a slip whose QR code the virtual
// printer reads back as kiosk.invoice_url for the credit's order, with a
// quiet zone of 4 modules; the daemon refuses an invoice for an order it
// did not load. English by the toggle; with the card gone, the idle time
// (kiosk.idle_seconds 5) brings the idle screen back in Chinese.
// Screenshots go to $CARDD_ARTIFACTS.
func TestKioskInBrowser(t *testing.T) {
	requirePCSC(t)
	chromium := chromiumPath(t)
	w := newHostWorld(t)
	env, p := w.kioskTerminal(t)

	const number = "3101000000920001"
	path := filepath.Join(t.TempDir(), "card.json")
	f, err := w.host.IssueCard(context.Background(), w.keys, host.IssueRequest{Number: number, Holder: "张三", BalanceFen: 10000,
		Start: epurse.Date{Year: 2025, Month: 9, Day: 1}, Expiry: epurse.Date{Year: 2029, Month: 8, Day: 31}}, path, "test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.keys.SeedHistory(epursesim.NewSimCard(f, path), [6]byte{0, 0, 0, 0, 0x10, 0x01}, 8, time.Now()); err != nil {
		t.Fatal(err)
	}
	if f, err = epursesim.LoadCardFile(path); err != nil {
		t.Fatal(err)
	}
	before := f.EPBalance
	order := w.credit(t, number, 5000)
	const invoiceURL = "https://fp.example.cn/k?o={order}&a={amount}"
	wantLink := "https://fp.example.cn/k?o=" + url.QueryEscape(order) + "&a=50.00"
	env = append(env, "CARDD_KIOSK_INVOICE_URL="+invoiceURL, "CARDD_KIOSK_IDLE_SECONDS=5")

	waitEmpty(t, 0)
	d := startDaemon(t, env...)
	addr := d.apiAddr(t)
	d.waitLine(t, "reader added", 10*time.Second, func(m map[string]any) bool { return m["reader"] == slot0Reader })

	b := openKiosk(t, chromium, addr, 90*time.Second)
	if got := b.text("body"); !strings.Contains(got, "请刷卡") {
		t.Errorf("idle page says %q, want 请刷卡", got)
	}
	b.screenshot("kiosk-stack-idle.png")

	in := insert(t, path, 0, vpcd.Options{Latency: 15 * time.Millisecond})
	b.until("the tap done", `document.body.dataset.tap==="done"`)
	want := fmt.Sprintf("%d.%02d", (before+5000)/100, (before+5000)%100)
	if got := b.text("#balance"); got != want {
		t.Errorf("#balance %q, want %q (%d fen + the 50.00 top-up)", got, want, before)
	}
	if got := b.text("#card-number"); got != "3101********0001" {
		t.Errorf("#card-number %q", got)
	}
	// The longest number a card has, 20 digits, fits masked at 1024×768:
	// no ellipsis takes its last 4 digits. The page shows what the API
	// sends, whatever its length (a T-Union card's 19 digits).
	if fits := b.eval(`(function () { var el = document.querySelector("#card-number"), was = el.textContent;
		el.textContent = "3104************0060"; var ok = el.scrollWidth <= el.clientWidth; el.textContent = was; return String(ok) })()`); fits != "true" {
		t.Errorf("a 20-digit masked number overflows #card-number")
	}
	if got := b.text("#holder"); got != "张三" {
		t.Errorf("#holder %q", got)
	}
	if n := b.eval(`String(document.querySelectorAll("#transactions li").length)`); n != "5" {
		t.Errorf("%s transactions shown, want 5", n)
	}
	if got := b.text("#topup"); !strings.Contains(got, "50.00") {
		t.Errorf("#topup %q, want the 50.00 top-up", got)
	}
	b.screenshot("kiosk-stack-card.png")

	// The top-up's own receipt prints first, by itself.
	wctx, cancelWait := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancelWait()
	if _, err := p.WaitReceipts(wctx, 1); err != nil {
		t.Fatalf("the top-up's receipt: %v", err)
	}
	printed := len(p.Receipts())
	b.do(chromedp.Tap("#print-button"))
	b.until("printed", `document.querySelector("#print-state").dataset.phase==="printed"`)
	got := p.Receipts()
	if len(got) != printed+1 || !strings.Contains(got[len(got)-1].Text(), "余额查询") || !strings.Contains(got[len(got)-1].Text(), want) {
		t.Errorf("after pressing print: %d receipts (had %d); last:\n%s", len(got), printed, got[len(got)-1].Render())
	}
	// The slip lists the card's newest transactions, the top-up just
	// loaded first (issue 14: a cardholder who disputes a charge).
	if slip := got[len(got)-1]; len(got) == printed+1 {
		i := slices.Index(slip.Lines, "最近交易")
		kinds := 0
		for _, l := range slip.Lines[i+1:] {
			for _, k := range []string{"充值", "消费", "复合消费", "其他"} {
				if strings.HasPrefix(l, k+" ") {
					kinds++
				}
			}
		}
		if i < 0 || kinds != 5 || !strings.HasPrefix(slip.Lines[i+2], "充值 ") || !strings.HasSuffix(slip.Lines[i+1], " 50.00") {
			t.Errorf("the balance slip's statement: heading at %d, %d transactions, want the 50.00 load first of 5:\n%s", i, kinds, slip.Text())
		}
	}
	b.screenshot("kiosk-stack-printed.png")

	// card.leave came before the tap's end; the card is still there.
	if got := b.text("#leave-note"); got != "可以移开卡片" {
		t.Errorf("#leave-note %q with the tap done and the card on the reader, want 可以移开卡片", got)
	}

	// The top-up's invoice: on screen, then on paper.
	b.do(chromedp.Tap("#invoice-button"))
	b.until("the invoice code", `(function(){var i=document.getElementById("invoice-qr");return document.body.dataset.invoice==="shown"&&i.complete&&i.naturalWidth>0})()`)
	if got := b.text("#invoice-order"); got != "订单号 "+order {
		t.Errorf("#invoice-order %q, want 订单号 %s", got, order)
	}
	if got := b.text("#invoice-amount"); got != "50.00 元" {
		t.Errorf("#invoice-amount %q, want 50.00 元", got)
	}
	b.screenshot("kiosk-stack-invoice.png")
	printed = len(p.Receipts())
	b.do(chromedp.Tap("#invoice-print"))
	b.until("the invoice printed", `document.querySelector("#invoice-state").dataset.phase==="printed"`)
	got = p.Receipts()
	if len(got) != printed+1 {
		t.Fatalf("after pressing the invoice's print: %d receipts, had %d", len(got), printed)
	}
	slip := got[len(got)-1]
	if txt := slip.Text(); !strings.Contains(txt, "扫码开票") || !strings.Contains(txt, order) || !strings.Contains(txt, "50.00") || !strings.Contains(txt, "张三") {
		t.Errorf("the invoice slip lacks its title, order, amount or holder:\n%s", slip.Render())
	}
	if len(slip.QRCodes) != 1 {
		t.Fatalf("the invoice slip has %d QR codes, want 1:\n%s", len(slip.QRCodes), slip.Render())
	}
	qr := slip.QRCodes[0]
	top, right, bottom, left := qr.QuietZone()
	if qr.Data != wantLink || min(top, right, bottom, left) < 4 {
		t.Errorf("the invoice slip's QR code %q, quiet zone %d %d %d %d modules; want %q with at least 4 on every side", qr.Data, top, right, bottom, left, wantLink)
	}
	// The page's code is the same link, and no other order gets one.
	if code, body := getJSON(t, "http://"+addr+"/v1/invoices/"+url.PathEscape(order)); code != 200 || body["url"] != wantLink {
		t.Errorf("GET /v1/invoices/%s: %d %v, want the link %q", order, code, body, wantLink)
	}
	if code, body := getJSON(t, "http://"+addr+"/v1/invoices/not-loaded-here"); code != 404 || !strings.Contains(fmt.Sprint(body["error"]), "not loaded onto a card at this terminal") {
		t.Errorf("GET /v1/invoices/not-loaded-here: %d %v, want 404 with the reason", code, body)
	}
	b.do(chromedp.Tap("#invoice-close"))

	// English, then the card leaves: the idle time brings the idle screen
	// back in the first language.
	b.do(chromedp.Tap("#lang-toggle"))
	b.until("English", `document.documentElement.lang==="en" && document.querySelector("#leave-note").innerText==="You may remove your card" && document.querySelector("#print-button").innerText==="Print receipt"`)
	b.screenshot("kiosk-stack-english.png")
	in.remove(t)
	b.until("the idle screen in Chinese", `document.body.dataset.state==="idle" && document.documentElement.lang==="zh-CN" && document.querySelector("#idle-primary").innerText==="请刷卡"`)

	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	if err := <-d.exit; err != nil {
		t.Fatalf("cardd exited with %v after SIGTERM", err)
	}
}

// browser drives one Chromium tab.
type browser struct {
	t   *testing.T
	ctx context.Context
	dir string
}

func (b *browser) do(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, steps...); err != nil {
		b.t.Fatalf("browser: %v\n%s", err, b.text("body"))
	}
}

func (b *browser) eval(js string) string {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](js))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

func (b *browser) text(sel string) string {
	b.t.Helper()
	q, _ := json.Marshal(sel)
	return b.eval(fmt.Sprintf(`(function(){var e=document.querySelector(%s);return e?e.innerText.trim():""})()`, q))
}

// until waits up to 15 s for a JavaScript condition.
// openKiosk opens the kiosk page of the daemon whose API is at addr in
// headless chromium at 1024x768, touch, and waits for its idle screen,
// connected. The whole browser session ends after limit; screenshots go
// to $CARDD_ARTIFACTS (made if missing), else to a temporary directory.
func openKiosk(t *testing.T, chromium, addr string, limit time.Duration) *browser {
	t.Helper()
	artifacts := os.Getenv("CARDD_ARTIFACTS")
	if artifacts == "" {
		artifacts = t.TempDir()
	} else if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.WindowSize(1024, 768))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(cancelCtx)
	ctx, cancelTime := context.WithTimeout(ctx, limit)
	t.Cleanup(cancelTime)
	b := &browser{t: t, ctx: ctx, dir: artifacts}
	b.do(chromedp.EmulateViewport(1024, 768, chromedp.EmulateTouch, chromedp.EmulateLandscape),
		chromedp.Navigate("http://"+addr+"/"))
	b.until("the idle screen, connected", `document.body.dataset.state==="idle" && document.body.dataset.conn==="up"`)
	return b
}

func (b *browser) until(what, js string) {
	b.t.Helper()
	b.untilWithin(what, js, 15*time.Second)
}

// untilWithin is until for a wait the test itself sets longer (a timeout
// of the daemon's that it waits out).
func (b *browser) untilWithin(what, js string, limit time.Duration) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, limit)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](js, chromedp.WithPollingTimeout(limit))); err != nil {
		b.t.Fatalf("waiting for %s: %v\npage:\n%s", what, err, b.text("body"))
	}
}

func (b *browser) screenshot(name string) {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(b.dir, name), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot %s", filepath.Join(b.dir, name))
}

// getJSON GETs a local API URL and decodes its JSON answer.
func getJSON(t *testing.T, u string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	return resp.StatusCode, body
}
