// Package kiosk serves the kiosk screen: one page with its script and style
// sheet, embedded in the binary so nothing is built or fetched at run time.
//
// The page is made for a 1024×768 landscape touch screen: no scrolling, no
// hover, buttons at least 64 px. It talks to the local API on its own
// origin: it reads its title, merchant, colours, idle time, first language
// and whether to offer invoices from GET /v1/kiosk/config (kiosk.* keys;
// strings go into text only, colours into CSS custom properties only when
// they are hex colours), listens to GET /v1/events (and reads GET
// /v1/status once at start), and asks for a balance or invoice slip with
// POST /v1/receipts, sending the page's credential the daemon put into the
// page: not the POS app's token, but one that can only ask for those slips.
//
// Every screen is in Chinese and English, switched at run time by the
// header's toggle; document.documentElement.lang says which ("zh-CN" or
// "en"), and each change dispatches "kiosk-lang" on document for screens
// other scripts draw. After kiosk.idle_seconds without a touch (and no card
// on the reader) the page is idle again, in kiosk.language.
//
// What the page shows follows the events: idle ("请刷卡 / Tap your card"),
// reading on card.present, the card as soon as card.balance comes, the whole
// tap (top-ups applied, the 5 newest transactions, a print button when the
// printer is enabled) or an error in plain words on card.tap. On card.leave
// (the money moved, only the receipt and the host's report remain) it says
// 可以移开卡片 / You may remove your card, in the header in the title's
// place, until the card leaves. After a
// top-up, with kiosk.invoice_url set, it offers 开票 / Invoice: the QR code
// of the order's invoicing page (GET /v1/invoices/{order}), and a button
// that prints it on a slip. After
// card.removed the last tap stays 20 seconds (?linger=<seconds> in the
// page's address changes that), then the page is idle again; a new card
// replaces it at once.
//
// For browser tests the page keeps stable hooks: body[data-state] is idle,
// reading, card or error; body[data-tap] is pending while a tap goes on and
// done when it ended; body[data-conn] is up or down; body[data-lang] is zh
// or en. The elements are #balance, #card-number, #holder, #validity,
// #transactions li, #topup, #message (with data-outcome and, for support,
// the technical data-detail), #print-button, #print-state (data-phase),
// #lang-toggle, #conn-badge, #reader-note, #brand, #merchant, #leave-note,
// #invoice-button and the invoice screen #invoice-view with #invoice-qr,
// #invoice-amount, #invoice-order, #invoice-print, #invoice-state
// (data-phase) and #invoice-close; body[data-invoice] is loading, shown or
// error while it is open.
package kiosk

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"html"
	"net/http"
	"strings"
	"time"
)

//go:embed assets
var assets embed.FS

// tokenPlaceholder is the text in index.html that Handler replaces with the
// page's credential.
const tokenPlaceholder = "{{TOKEN}}"

// csp keeps the page to its own files and its own origin: no inline script,
// no other hosts. Only the page itself needs it.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
	"img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

type asset struct {
	body  []byte
	ctype string
	etag  string // empty for the page, which holds the credential
}

func mustRead(name string) []byte {
	b, err := assets.ReadFile("assets/" + name)
	if err != nil {
		panic("kiosk: embedded " + name + " missing: " + err.Error())
	}
	return b
}

func etag(b []byte) string {
	sum := sha256.Sum256(b)
	return `"` + hex.EncodeToString(sum[:8]) + `"`
}

// Handler serves the kiosk page at "/", its scripts at "/app.js" and
// "/topup.js" (the top-up paid by phone) and its style sheets at
// "/style.css" and "/topup.css", each with Cache-Control: no-cache; any other
// path is 404 and any method but GET or HEAD is 405. token is the page's
// bearer credential ("" for none); it is written, trimmed of surrounding
// white space and escaped for an HTML attribute, into the page's
// <meta name="cardd-token"> so the page can send it on its receipt request.
// Anyone who can load the page can read it, so it must never be a token that
// can do more than the page does: the daemon gives the page its own, which
// the local API takes only for the page's own calls (docs/local-api.md).
//
// topup.js is the top-up paid by phone (kiosk.topup.enabled): a "充值 /
// Top up" button for a card read on the reader, and over the card view the
// amount screen (presets and a keypad, whole fen throughout), the payment
// screen (the host's QR code, a countdown, cancel) and a result in plain
// words. It calls the local API's /v1/topup routes with the page's
// credential and hears the daemon's events through app.js ("kiosk-event"
// on document).
func Handler(token string) http.Handler {
	index := mustRead("index.html")
	page := bytes.ReplaceAll(index, []byte(tokenPlaceholder), []byte(html.EscapeString(strings.TrimSpace(token))))
	files := map[string]asset{"/": {body: page, ctype: "text/html; charset=utf-8"}}
	for _, name := range []string{"app.js", "style.css", "topup.js", "topup.css"} {
		b := mustRead(name)
		ctype := "text/javascript; charset=utf-8"
		if strings.HasSuffix(name, ".css") {
			ctype = "text/css; charset=utf-8"
		}
		files["/"+name] = asset{body: b, ctype: ctype, etag: etag(b)}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, r.Method+" is not allowed here; use GET", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Type", f.ctype)
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		if f.etag != "" {
			h.Set("ETag", f.etag)
		} else {
			h.Set("Content-Security-Policy", csp)
			h.Set("Referrer-Policy", "no-referrer")
			h.Set("X-Frame-Options", "DENY")
		}
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.body))
	})
}
