package daemon

import (
	"net"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cardd/cardd/config"
	"github.com/cardd/cardd/localapi"
)

// Without api.token_file a change still needs a token: a random one per
// run. The kiosk page carries its own credential, never that token, and
// with it cannot arm a sale.
func TestAPITokenWithoutFile(t *testing.T) {
	cfg := config.Default()
	a, err := newAPI(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := newAPI(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Token) != 32 || a.Token == b.Token || len(a.PageToken) != 32 || a.PageToken == b.PageToken || a.PageToken == a.Token {
		t.Fatalf("tokens %q/%q and %q/%q: want 32 hex digits each, different per run and from each other", a.Token, a.PageToken, b.Token, b.PageToken)
	}
	if a.AllowedHosts, err = localapi.AllowedHosts("127.0.0.1:8711", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8711}, nil); err != nil {
		t.Fatal(err)
	}
	arm := func(auth string) int {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", "http://127.0.0.1:8711/v1/purchase/arm", strings.NewReader(`{"amount":"1.00"}`))
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		a.ServeHTTP(rec, req)
		return rec.Code
	}
	if code := arm(""); code != 401 {
		t.Errorf("arm without a token: %d, want 401", code)
	}
	if code := arm(a.PageToken); code != 403 {
		t.Errorf("arm with the page's credential: %d, want 403", code)
	}
	rec := httptest.NewRecorder()
	a.ServeHTTP(rec, httptest.NewRequest("GET", "http://127.0.0.1:8711/", nil))
	if page := rec.Body.String(); rec.Code != 200 || strings.Contains(page, a.Token) || !strings.Contains(page, a.PageToken) {
		t.Errorf("kiosk page (%d): want the page's credential in it and the run's token not", rec.Code)
	}
}

func TestDialAddr(t *testing.T) {
	for in, want := range map[string]string{"0.0.0.0:8711": "127.0.0.1:8711", "[::]:8711": "127.0.0.1:8711", ":8711": "127.0.0.1:8711",
		"127.0.0.1:8711": "127.0.0.1:8711", "192.168.1.10:8711": "192.168.1.10:8711", "kiosk.lan:8711": "kiosk.lan:8711"} {
		if got := DialAddr(in); got != want {
			t.Errorf("DialAddr(%q) = %q, want %q", in, got, want)
		}
	}
}
