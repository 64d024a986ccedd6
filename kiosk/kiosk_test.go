package kiosk

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, method, path string, hdr ...string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func readBody(t *testing.T, res *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var tokenMeta = regexp.MustCompile(`<meta name="cardd-token" content="([^"]*)">`)

func metaToken(t *testing.T, page string) string {
	t.Helper()
	m := tokenMeta.FindAllStringSubmatch(page, -1)
	if len(m) != 1 {
		t.Fatalf("want exactly one cardd-token meta, got %d in:\n%s", len(m), page)
	}
	return m[0][1]
}

func TestTokenInjected(t *testing.T) {
	for _, tc := range []struct{ token, want string }{
		{"", ""},
		{"s3cr3t-token", "s3cr3t-token"},
		{"  padded\n", "padded"}, // as read from a token file
		{`a"b<c>&d'e`, "a&#34;b&lt;c&gt;&amp;d&#39;e"},
		{`"><script>alert(1)</script>`, "&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"},
	} {
		res := get(t, Handler(tc.token), http.MethodGet, "/")
		if res.StatusCode != http.StatusOK {
			t.Fatalf("token %q: GET / = %d", tc.token, res.StatusCode)
		}
		page := readBody(t, res)
		if got := metaToken(t, page); got != tc.want {
			t.Errorf("token %q: meta content %q, want %q", tc.token, got, tc.want)
		}
		if strings.Contains(page, tokenPlaceholder) {
			t.Errorf("token %q: placeholder left in the page", tc.token)
		}
		if strings.Contains(page, "<script>alert") {
			t.Errorf("token %q: markup from the token reached the page", tc.token)
		}
	}
}

func TestPlaceholderInAsset(t *testing.T) {
	// The placeholder must stay exactly once in the embedded page, inside
	// the meta tag the script reads.
	page := string(mustRead("index.html"))
	if n := strings.Count(page, tokenPlaceholder); n != 1 {
		t.Fatalf("index.html holds %s %d times, want 1", tokenPlaceholder, n)
	}
	if !strings.Contains(page, `<meta name="cardd-token" content="{{TOKEN}}">`) {
		t.Fatal("index.html: the placeholder is not in <meta name=\"cardd-token\">")
	}
}

func TestContentTypes(t *testing.T) {
	h := Handler("tok")
	for _, tc := range []struct{ path, ctype, contains string }{
		{"/", "text/html; charset=utf-8", "请刷卡"},
		{"/app.js", "text/javascript; charset=utf-8", "EventSource"},
		{"/style.css", "text/css; charset=utf-8", "#balance"},
	} {
		res := get(t, h, http.MethodGet, tc.path)
		if res.StatusCode != http.StatusOK {
			t.Errorf("GET %s = %d", tc.path, res.StatusCode)
			continue
		}
		if got := res.Header.Get("Content-Type"); got != tc.ctype {
			t.Errorf("GET %s: Content-Type %q, want %q", tc.path, got, tc.ctype)
		}
		if got := res.Header.Get("Cache-Control"); got != "no-cache" {
			t.Errorf("GET %s: Cache-Control %q, want no-cache", tc.path, got)
		}
		if got := res.Header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("GET %s: X-Content-Type-Options %q", tc.path, got)
		}
		if body := readBody(t, res); !strings.Contains(body, tc.contains) {
			t.Errorf("GET %s: body lacks %q", tc.path, tc.contains)
		}
		head := get(t, h, http.MethodHead, tc.path)
		if head.StatusCode != http.StatusOK || head.Header.Get("Content-Type") != tc.ctype {
			t.Errorf("HEAD %s = %d %q", tc.path, head.StatusCode, head.Header.Get("Content-Type"))
		}
		if b := readBody(t, head); b != "" {
			t.Errorf("HEAD %s: body %q", tc.path, b)
		}
	}
	if csp := get(t, h, http.MethodGet, "/").Header.Get("Content-Security-Policy"); !strings.Contains(csp, "connect-src 'self'") {
		t.Errorf("page CSP %q", csp)
	}
}

func TestETagRevalidation(t *testing.T) {
	h := Handler("")
	res := get(t, h, http.MethodGet, "/app.js")
	tag := res.Header.Get("ETag")
	if tag == "" {
		t.Fatal("app.js has no ETag")
	}
	if res := get(t, h, http.MethodGet, "/app.js", "If-None-Match", tag); res.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match %s = %d, want 304", tag, res.StatusCode)
	}
	// The page holds the token: no ETag derived from it.
	if tag := get(t, h, http.MethodGet, "/").Header.Get("ETag"); tag != "" {
		t.Errorf("page ETag %q, want none", tag)
	}
}

func TestNotFound(t *testing.T) {
	h := Handler("tok")
	for _, p := range []string{"/index.html", "/assets/app.js", "/app.js/", "/favicon.ico", "/v1/status", "/style.css.map", "/../kiosk.go", "/x/"} {
		res := get(t, h, http.MethodGet, p)
		if res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", p, res.StatusCode)
		}
		if strings.Contains(readBody(t, res), "tok") {
			t.Errorf("GET %s: 404 body mentions the token", p)
		}
	}
}

func TestMethodNotAllowed(t *testing.T) {
	res := get(t, Handler(""), http.MethodPost, "/")
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST / = %d, want 405", res.StatusCode)
	}
	if got := res.Header.Get("Allow"); got != "GET, HEAD" {
		t.Errorf("Allow %q", got)
	}
}

// TestAssetsOffline guards the rule that the page works with no network:
// no external scripts, styles, fonts or images.
func TestAssetsOffline(t *testing.T) {
	ext := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}|@import|@font-face|url\(`)
	for _, name := range []string{"index.html", "app.js", "style.css"} {
		if m := ext.FindString(string(mustRead(name))); m != "" {
			t.Errorf("%s refers to %q: the kiosk runs offline", name, m)
		}
	}
}

// TestNoHover guards the touch screen: nothing may depend on hovering.
func TestNoHover(t *testing.T) {
	if strings.Contains(string(mustRead("style.css")), ":hover") {
		t.Error("style.css uses :hover; a touch screen has none")
	}
	for _, ev := range []string{"mouseover", "mouseenter", "mousemove"} {
		if strings.Contains(string(mustRead("app.js")), ev) {
			t.Errorf("app.js listens to %s; a touch screen has none", ev)
		}
	}
}

// TestStringsBothLanguages checks that every text key the script has in
// Chinese also has an English version, and the other way round.
func TestStringsBothLanguages(t *testing.T) {
	zh := bothLanguages(t, "app.js", string(mustRead("app.js")), 20)
	// The static markup's keys must exist too.
	attr := regexp.MustCompile(`data-i18n="(\w+)"`)
	for _, m := range attr.FindAllStringSubmatch(string(mustRead("index.html")), -1) {
		if !zh[m[1]] {
			t.Errorf("index.html uses data-i18n=%q, which app.js lacks", m[1])
		}
	}
}
