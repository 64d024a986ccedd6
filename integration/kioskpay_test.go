package integration

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cardd/cardd/host"
	"github.com/chromedp/chromedp"

	epursesim "github.com/cardd/cardd/apdu/epurse/sim"
	"github.com/cardd/cardd/reader/vpcd"
)

// TestKioskTopupInBrowser: Chromium at 1024×768 on the kiosk page of
// `cardd run`, whose host is `cardhost serve` with the simulated payment
// provider. A card lies on the reader through pcscd; 充值, 100.00 picked;
// the payment screen shows the order's QR code; the phone (this test)
// opens the code's link and pays; the page then says the money is on the
// card with its new balance, and the card's own file holds it, loaded
// once, though the provider's notification comes twice and late (the
// host learns of the payment from its query first). An order the
// cardholder cancels is closed at the host and its link pays nothing. An
// order paid after the card was lifted: the page says the money comes at
// the card's next tap, and that tap, at another terminal, writes it, once.
// An order left unpaid is closed when the payment screen's wait is over,
// and its link then pays nothing. Screenshots go to $CARDD_ARTIFACTS.
func TestKioskTopupInBrowser(t *testing.T) {
	requirePCSC(t)
	chromium := chromiumPath(t)
	w := newHostWorld(t)
	const number = "3101000000970001"
	path := w.issue(t, number, 10000)
	base := startServe(t, w.hostDir, "--topup-provider", "sim", "--topup-timeout", "2m")

	dir := t.TempDir()
	waitEmpty(t, 0)
	d := startDaemon(t, "CARDD_HOST_URL="+base, "CARDD_HOST_SECRET_FILE="+w.secretFile(t, dir),
		"CARDD_STORE_PATH="+filepath.Join(dir, "cardd.db"), "CARDD_TERMINAL_ID="+termID,
		"CARDD_KIOSK_TOPUP_ENABLED=true", "CARDD_KIOSK_TOPUP_POLL=500ms", "CARDD_KIOSK_TOPUP_WAIT=30s")
	addr := d.apiAddr(t)
	d.waitLine(t, "reader added", 10*time.Second, func(m map[string]any) bool { return m["reader"] == slot0Reader })

	b := openKiosk(t, chromium, addr, 240*time.Second)

	// The card on the reader, and left there.
	in := insert(t, path, 0, vpcd.Options{})
	b.until("the tap done", `document.body.dataset.tap==="done"`)
	if got := b.text("#balance"); got != "100.00" {
		t.Fatalf("#balance %q, want 100.00", got)
	}
	visible := func(sel string) string {
		return `(function(){var e=document.querySelector("` + sel + `");return !!e&&e.offsetParent!==null})()`
	}
	b.until("the top-up button", visible("#topup-button"))
	b.do(chromedp.Tap(chromedp.CSS("#topup-button")))
	b.until("the amount screen", `document.getElementById("topup-overlay").dataset.screen==="amount"`)
	b.screenshot("kiosk-stack-topup-amount.png")
	b.do(chromedp.Tap(chromedp.CSS(`.topup-preset[data-fen="10000"]`)))
	b.until("the payment QR code", visible("#topup-qr"))
	if got := b.text("#topup-amount"); !strings.Contains(got, "100.00") {
		t.Errorf("#topup-amount %q, want 100.00", got)
	}
	b.screenshot("kiosk-stack-topup-qr.png")

	// The phone: the QR code's link, opened and paid; the provider tells
	// the host twice, 3 s late, so the terminal's query finds it first.
	link := b.eval(`document.getElementById("topup-qr").dataset.qr`)
	if !strings.HasPrefix(link, base+"/pay/sim/") {
		t.Fatalf("the QR code holds %q, want the sim provider's pay page at %s", link, base)
	}
	paidAt := time.Now()
	if status, page := payPage(t, http.MethodPost, link, url.Values{"twice": {"1"}, "delay": {"3s"}}); status != http.StatusOK || !strings.Contains(page, "Paid") {
		t.Fatalf("paying: %d\n%s", status, page)
	}
	b.until("the money written", `(function(){var r=document.getElementById("topup-result");return !!r&&r.dataset.result==="written"})()`)
	if got := b.text("#topup-balance"); !strings.Contains(got, "200.00") {
		t.Errorf("#topup-balance %q, want 200.00", got)
	}
	b.screenshot("kiosk-stack-topup-written.png")
	f, err := epursesim.LoadCardFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if f.EPBalance != 20000 {
		t.Fatalf("the card holds %d fen, want 200.00", f.EPBalance)
	}
	d.waitLine(t, "the load now tap", 15*time.Second, func(m map[string]any) bool {
		return m["msg"] == "tap" && m["outcome"] == "ok" && m["balance_after"] == "200.00"
	})
	// The late notifications, both, reach the host and change nothing.
	hostDB := sqlOpen(t, filepath.Join(w.hostDir, "host.db"))
	time.Sleep(time.Until(paidAt.Add(5 * time.Second)))
	var credits int
	if err := hostDB.QueryRow(`SELECT count(*) FROM credits WHERE card = ?`, number).Scan(&credits); err != nil || credits != 1 {
		t.Fatalf("%d credits for the card after the late notifications (%v), want 1", credits, err)
	}
	// Back on the card view, the balance is the card's.
	b.do(chromedp.Tap(chromedp.CSS("#topup-done")))
	b.until("the card view", `document.getElementById("topup-overlay").hidden && document.body.dataset.state==="card"`)
	if got := b.text("#balance"); got != "200.00" {
		t.Errorf("#balance %q after the top-up, want 200.00", got)
	}

	// Cancelled: closed at the host; its link then pays nothing.
	b.do(chromedp.Tap(chromedp.CSS("#topup-button")))
	b.until("the amount screen", `document.getElementById("topup-overlay").dataset.screen==="amount"`)
	b.do(chromedp.Tap(chromedp.CSS(`.topup-preset[data-fen="2000"]`)))
	b.until("the payment QR code", visible("#topup-qr"))
	link = b.eval(`document.getElementById("topup-qr").dataset.qr`)
	b.do(chromedp.Tap(chromedp.CSS("#topup-cancel")))
	b.until("closed", `(function(){var r=document.getElementById("topup-result");return !!r&&r.dataset.result==="closed"})()`)
	b.screenshot("kiosk-stack-topup-closed.png")
	if _, page := payPage(t, http.MethodPost, link, url.Values{}); !strings.Contains(page, "closed") {
		t.Fatalf("paying the cancelled order:\n%s", page)
	}
	if f, err = epursesim.LoadCardFile(path); err != nil || f.EPBalance != 20000 {
		t.Fatalf("the card holds %d fen after the cancelled order (%v), want 200.00", f.EPBalance, err)
	}
	// Lifted before paying: the page says where the money goes; the card's
	// next tap writes it.
	b.do(chromedp.Tap(chromedp.CSS("#topup-done")))
	b.do(chromedp.Tap(chromedp.CSS("#topup-button")))
	b.until("the amount screen", `document.getElementById("topup-overlay").dataset.screen==="amount"`)
	b.do(chromedp.Tap(chromedp.CSS(`.topup-preset[data-fen="5000"]`)))
	b.until("the payment QR code", visible("#topup-qr"))
	link = b.eval(`document.getElementById("topup-qr").dataset.qr`)
	if err := in.remove(t); err != nil {
		t.Fatal(err)
	}
	b.until("the note that the card left", visible(".topup-warn"))
	if status, page := payPage(t, http.MethodPost, link, url.Values{}); status != http.StatusOK || !strings.Contains(page, "Paid") {
		t.Fatalf("paying after the card left: %d\n%s", status, page)
	}
	b.until("paid, the card gone", `(function(){var r=document.getElementById("topup-result");return !!r&&r.dataset.result==="card_left"})()`)
	if got := b.text("#topup-result"); !strings.Contains(got, "下次刷卡时写入") {
		t.Errorf("#topup-result %q, want the next tap named", got)
	}
	b.screenshot("kiosk-stack-topup-card-left.png")
	if f, err = epursesim.LoadCardFile(path); err != nil || f.EPBalance != 20000 {
		t.Fatalf("the card holds %d fen off the reader (%v), want 200.00", f.EPBalance, err)
	}
	// The card's next tap, at another terminal (a second cardd on the
	// other reader), writes it.
	const term2 = "000000000002"
	secret2, err := host.NewTerminalSecret()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.host.AddTerminal(context.Background(), term2, secret2, time.Now()); err != nil {
		t.Fatal(err)
	}
	dir2 := t.TempDir()
	secretFile2 := filepath.Join(dir2, "host.secret")
	if err := os.WriteFile(secretFile2, []byte(secret2+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitEmpty(t, 1)
	d2 := startDaemon(t, "CARDD_READER_CARD_PATTERN=^"+regexp.QuoteMeta(slot1Reader)+"$", "CARDD_HOST_URL="+base,
		"CARDD_HOST_SECRET_FILE="+secretFile2, "CARDD_STORE_PATH="+filepath.Join(dir2, "cardd.db"), "CARDD_TERMINAL_ID="+term2)
	d2.waitLine(t, "reader added", 10*time.Second, func(m map[string]any) bool { return m["reader"] == slot1Reader })
	in2 := insert(t, path, 1, vpcd.Options{})
	d2.waitLine(t, "the next tap, at the other terminal", 15*time.Second, func(m map[string]any) bool {
		return m["msg"] == "tap" && m["outcome"] == "ok" && m["balance_after"] == "250.00"
	})
	if err := in2.remove(t); err != nil {
		t.Fatal(err)
	}
	if f, err = epursesim.LoadCardFile(path); err != nil || f.EPBalance != 25000 {
		t.Fatalf("the card holds %d fen after its next tap (%v), want 250.00", f.EPBalance, err)
	}

	// Left unpaid: the payment screen's wait (30 s) ends, the order is
	// closed, and its link pays nothing.
	b.do(chromedp.Tap(chromedp.CSS("#topup-done")))
	insert(t, path, 0, vpcd.Options{})
	b.until("the card view again", `document.body.dataset.tap==="done" && document.getElementById("balance").textContent==="250.00"`)
	b.do(chromedp.Tap(chromedp.CSS("#topup-button")))
	b.until("the amount screen", `document.getElementById("topup-overlay").dataset.screen==="amount"`)
	b.do(chromedp.Tap(chromedp.CSS(`.topup-preset[data-fen="2000"]`)))
	b.until("the payment QR code", visible("#topup-qr"))
	link = b.eval(`document.getElementById("topup-qr").dataset.qr`)
	b.untilWithin("closed after the wait", `(function(){var r=document.getElementById("topup-result");return !!r&&r.dataset.result==="closed"})()`, 45*time.Second)
	b.screenshot("kiosk-stack-topup-expired.png")
	if _, page := payPage(t, http.MethodPost, link, url.Values{}); !strings.Contains(page, "closed") {
		t.Fatalf("paying the order closed after its wait:\n%s", page)
	}
	if f, err = epursesim.LoadCardFile(path); err != nil || f.EPBalance != 25000 {
		t.Fatalf("the card holds %d fen after the unpaid order (%v), want 250.00", f.EPBalance, err)
	}

	if err := hostDB.QueryRow(`SELECT count(*) FROM credits WHERE card = ?`, number).Scan(&credits); err != nil || credits != 2 {
		t.Fatalf("%d credits for the card at the host (%v), want the two paid orders' alone", credits, err)
	}
	// The loads' TACs reach the host after the taps (the sync loop): the
	// credits are consumed, once each.
	waitConsumed(t, hostDB, number, 2)
}
