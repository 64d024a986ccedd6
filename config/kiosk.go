package config

import (
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/cardd/cardd/money"
)

// KioskConfig is what the kiosk page shows besides the card: a mall's
// title, merchant and colours, how long it waits for a touch, its first
// language, and where a cardholder asks for an invoice. The page gets it
// as JSON from the local API (GET /v1/kiosk/config) and only ever puts it
// into text, never into markup.
type KioskConfig struct {
	// Title is the header's title, shown as is in both languages; empty
	// keeps the page's own 校园卡自助服务 / Campus card self-service.
	Title string `mapstructure:"title"`
	// Merchant is the name shown beside the title (empty: none).
	Merchant string           `mapstructure:"merchant"`
	Colors   KioskColorConfig `mapstructure:"colors"`
	// IdleSeconds is how long the page waits without a touch or a card
	// before it goes back to the idle screen in Language: 5 to 3600, or 0
	// to stay (a staffed counter).
	IdleSeconds int `mapstructure:"idle_seconds"`
	// Language is the page's first language and the one it returns to when
	// idle: "zh-CN" or "en".
	Language string `mapstructure:"language"`
	// InvoiceURL is the operator's invoicing page for one top-up order, a
	// template with {order} (required) and {amount} (yuan, "100.00"), each
	// replaced URL-escaped: "https://fapiao.example.cn/k?o={order}&a={amount}".
	// Empty: the page offers no invoice.
	InvoiceURL string `mapstructure:"invoice_url"`
	// Topup is kiosk.topup, the top-up paid by phone (topup.go).
	Topup TopupConfig `mapstructure:"topup"`
}

// KioskColorConfig is the page's colours, each a CSS hex colour (#rgb or
// #rrggbb): nothing else, so a value can never carry CSS of its own.
type KioskColorConfig struct {
	// Primary is the header's and the buttons' colour.
	Primary string `mapstructure:"primary"`
	// Background is the page's background.
	Background string `mapstructure:"background"`
	// Text is the colour of the page's text.
	Text string `mapstructure:"text"`
}

// Kiosk bounds and defaults.
const (
	// DefaultIdleSeconds is kiosk.idle_seconds' default: a minute.
	DefaultIdleSeconds = 60
	// MinIdleSeconds keeps a cardholder from losing the screen while
	// still reading it; MaxIdleSeconds is an hour.
	MinIdleSeconds = 5
	MaxIdleSeconds = 3600
	// maxKioskText bounds the title and merchant: the header is one line.
	maxKioskText = 40
)

// defaultKiosk keeps today's campus look: the page's own title, its blue
// header on a grey-blue page, Chinese first.
func defaultKiosk() KioskConfig {
	return KioskConfig{IdleSeconds: DefaultIdleSeconds, Language: "zh-CN", Topup: defaultTopup(),
		Colors: KioskColorConfig{Primary: "#0b4f8a", Background: "#eef2f6", Text: "#17202c"}}
}

var hexColor = regexp.MustCompile(`^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$`)

// invoicePlaceholder is any {word} in kiosk.invoice_url.
var invoicePlaceholder = regexp.MustCompile(`\{[^{}]*\}`)

func (k KioskConfig) validate(p *problems) {
	for _, f := range []struct{ key, value string }{{"kiosk.title", k.Title}, {"kiosk.merchant", k.Merchant}} {
		if n := len([]rune(f.value)); n > maxKioskText || strings.ContainsFunc(f.value, isControl) {
			p.bad(f.key, f.value, "must be one line of at most %d characters (it has %d)", maxKioskText, n)
		}
	}
	for _, c := range []struct{ key, value string }{
		{"kiosk.colors.primary", k.Colors.Primary}, {"kiosk.colors.background", k.Colors.Background}, {"kiosk.colors.text", k.Colors.Text},
	} {
		if !hexColor.MatchString(c.value) {
			p.bad(c.key, c.value, "must be a CSS hex colour, #rgb or #rrggbb, like \"#0b4f8a\" (no names, no other CSS)")
		}
	}
	if n := k.IdleSeconds; n != 0 && (n < MinIdleSeconds || n > MaxIdleSeconds) {
		p.bad("kiosk.idle_seconds", strconv.Itoa(n), "must be %d..%d (seconds without a touch before the idle screen), or 0 to stay", MinIdleSeconds, MaxIdleSeconds)
	}
	oneOf(p.bad, "kiosk.language", k.Language, "zh-CN", "en")
	if k.InvoiceURL != "" {
		if reason := invoiceURLProblem(k.InvoiceURL); reason != "" {
			p.bad("kiosk.invoice_url", k.InvoiceURL, "%s", reason)
		}
	}
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// invoiceURLProblem says what is wrong with an invoice URL template, ""
// when nothing is.
func invoiceURLProblem(tmpl string) string {
	for _, ph := range invoicePlaceholder.FindAllString(tmpl, -1) {
		if ph != "{order}" && ph != "{amount}" {
			return "unknown placeholder " + ph + ": use {order} and {amount}"
		}
	}
	if !strings.Contains(tmpl, "{order}") {
		return "must hold {order}: the invoice is for one top-up order"
	}
	u, err := url.Parse(invoiceURL(tmpl, "o", 1))
	switch {
	case err != nil:
		return "not a URL: " + unwrapURLError(err).Error()
	case u.Scheme != "https" && u.Scheme != "http":
		return "must be an absolute http:// or https:// URL, like \"https://fapiao.example.cn/k?o={order}&a={amount}\""
	case u.Host == "" || u.User != nil:
		return "must name a host and no user, like \"https://fapiao.example.cn/k?o={order}\""
	}
	return ""
}

// InvoiceLink is kiosk.invoice_url for one order: {order} and {amount}
// (fen as yuan, "100.00") replaced, each escaped for any part of a URL.
// Call it on a validated configuration with a non-empty template.
func (k KioskConfig) InvoiceLink(order string, amountFen int64) string {
	return invoiceURL(k.InvoiceURL, order, amountFen)
}

func invoiceURL(tmpl, order string, amountFen int64) string {
	return strings.NewReplacer("{order}", urlEscape(order), "{amount}", urlEscape(money.Format(amountFen))).Replace(tmpl)
}

// urlEscape escapes s for a query value or a path segment alike: a space
// is %20, not a query's +.
func urlEscape(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}
