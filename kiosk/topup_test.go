package kiosk

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// TestTopupAssets: the top-up's script and style sheet are served like
// the page's own, linked from the page, and hold to the page's rules:
// offline, no hover, every text in Chinese and English, no float money.
func TestTopupAssets(t *testing.T) {
	h := Handler("tok")
	for path, ctype := range map[string]string{"/topup.js": "text/javascript; charset=utf-8", "/topup.css": "text/css; charset=utf-8"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != 200 || rec.Header().Get("Content-Type") != ctype || rec.Header().Get("ETag") == "" {
			t.Errorf("%s: %d %q etag %q", path, rec.Code, rec.Header().Get("Content-Type"), rec.Header().Get("ETag"))
		}
	}
	index := string(mustRead("index.html"))
	for _, tag := range []string{`<script src="topup.js" defer></script>`, `<link rel="stylesheet" href="topup.css">`, `id="topup-root"`} {
		if !strings.Contains(index, tag) {
			t.Errorf("index.html lacks %s", tag)
		}
	}
	js, css := string(mustRead("topup.js")), string(mustRead("topup.css"))
	ext := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}|@import|@font-face|url\(`)
	for name, body := range map[string]string{"topup.js": js, "topup.css": css} {
		if m := ext.FindString(body); m != "" {
			t.Errorf("%s refers to %q: the kiosk runs offline", name, m)
		}
	}
	if strings.Contains(css, ":hover") || strings.Contains(js, "mouseover") || strings.Contains(js, "mouseenter") {
		t.Error("the top-up depends on hovering; a touch screen has none")
	}
	// Money is whole fen: yuan text is parsed as text, never as a
	// fractional number.
	for _, bad := range []string{"parseFloat", "toFixed", "Number("} {
		if strings.Contains(js, bad) {
			t.Errorf("topup.js uses %s: amounts must stay whole fen", bad)
		}
	}
	zh := bothLanguages(t, "topup.js", js, 30)
	// Every key the script asks for exists.
	for _, m := range regexp.MustCompile(`\bt\("(\w+)"`).FindAllStringSubmatch(js, -1) {
		if !zh[m[1]] {
			t.Errorf("topup.js asks for %q, which its tables lack", m[1])
		}
	}
}

// bothLanguages checks that every text key the script has in its zh table
// has an English text in its en table and the other way round, with at
// least least keys; it returns the zh keys.
func bothLanguages(t *testing.T, name, js string, least int) map[string]bool {
	t.Helper()
	zhAt, enAt := strings.Index(js, "\n    zh: {"), strings.Index(js, "\n    en: {")
	if zhAt < 0 || enAt < 0 || enAt < zhAt {
		t.Fatalf("%s: zh and en string tables not found", name)
	}
	end := strings.Index(js[enAt:], "\n    }\n")
	if end < 0 {
		t.Fatalf("%s: end of the en table not found", name)
	}
	key := regexp.MustCompile(`(?m)^\s{6}(\w+):`)
	keys := func(s string) map[string]bool {
		m := map[string]bool{}
		for _, k := range key.FindAllStringSubmatch(s, -1) {
			m[k[1]] = true
		}
		return m
	}
	zh, en := keys(js[zhAt:enAt]), keys(js[enAt:enAt+end])
	if len(zh) < least {
		t.Fatalf("%s: found only %d zh keys", name, len(zh))
	}
	for k := range zh {
		if !en[k] {
			t.Errorf("%s: %s has no English text", name, k)
		}
	}
	for k := range en {
		if !zh[k] {
			t.Errorf("%s: %s has no Chinese text", name, k)
		}
	}
	return zh
}
