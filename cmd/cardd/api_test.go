package main

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cardd/cardd/config"
)

// Without api.token_file a change still needs a token: a random one per
// run, which the kiosk page carries and nobody else knows.
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
	if len(a.Token) != 32 || a.Token == b.Token {
		t.Fatalf("tokens %q and %q: want 32 hex digits, different per run", a.Token, b.Token)
	}
	rec := httptest.NewRecorder()
	a.ServeHTTP(rec, httptest.NewRequest("POST", "/v1/purchase/arm", strings.NewReader(`{"amount":"1.00"}`)))
	if rec.Code != 401 {
		t.Errorf("arm without a token: %d, want 401", rec.Code)
	}
	rec = httptest.NewRecorder()
	a.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if !strings.Contains(rec.Body.String(), a.Token) {
		t.Error("the kiosk page does not carry the run's token")
	}
}
