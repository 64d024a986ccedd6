package sync

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cardd/cardd/hostapi"
)

// fakeHost verifies signatures with hostapi.Verify, as the real host does.
func fakeHost(t *testing.T, secret []byte, handle func(path string, body []byte) (int, any)) *httptest.Server {
	t.Helper()
	seen := map[string]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		_, err := hostapi.Verify(r, body, time.Now(),
			func(term string) ([]byte, bool) { return secret, term == "000000000001" },
			func(term, nonce string, _ time.Time) bool { k := term + nonce; s := seen[k]; seen[k] = true; return s })
		if err != nil {
			w.WriteHeader(http.StatusUnauthorized)
			json.NewEncoder(w).Encode(hostapi.Error{Code: hostapi.CodeUnauthorized, Reason: err.Error()})
			return
		}
		code, v := handle(r.URL.Path, body)
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(v)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestClientSignsAndDecodes(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	srv := fakeHost(t, secret, func(path string, body []byte) (int, any) {
		switch path {
		case hostapi.PathCardCredits:
			var req hostapi.CardCreditsRequest
			if err := json.Unmarshal(body, &req); err != nil || req.Card != "3101000000123456" {
				return 400, hostapi.Error{Code: hostapi.CodeBadRequest, Reason: "card"}
			}
			return 200, hostapi.CardCreditsResponse{Credits: []hostapi.Credit{{ID: "c1", Card: req.Card, AmountFen: 5000}}}
		case hostapi.PathLoadAuthorize:
			return 409, hostapi.Error{Code: hostapi.CodeCreditConsumed, Reason: "credit c1 is on the card"}
		}
		return 404, hostapi.Error{Code: hostapi.CodeNotFound, Reason: path}
	})
	c := &Client{BaseURL: srv.URL, TerminalID: "000000000001", Secret: secret}
	ctx := context.Background()
	r, err := c.CardCredits(ctx, "3101000000123456")
	if err != nil || len(r.Credits) != 1 || r.Credits[0].AmountFen != 5000 {
		t.Fatalf("CardCredits = %+v, %v", r, err)
	}
	// Every call has a fresh nonce, so the same request twice is accepted.
	if _, err := c.CardCredits(ctx, "3101000000123456"); err != nil {
		t.Fatalf("second call: %v", err)
	}
	_, err = c.AuthorizeLoad(ctx, hostapi.LoadAuthorizeRequest{CreditID: "c1"})
	var he *HostError
	if !errors.As(err, &he) || he.Status != 409 || !HasCode(err, hostapi.CodeCreditConsumed) || !strings.Contains(err.Error(), "on the card") {
		t.Fatalf("AuthorizeLoad error = %v", err)
	}

	wrong := &Client{BaseURL: srv.URL, TerminalID: "000000000001", Secret: []byte("not the secret")}
	if _, err := wrong.CardCredits(ctx, "3101000000123456"); !HasCode(err, hostapi.CodeUnauthorized) || !strings.Contains(err.Error(), "bad signature") {
		t.Fatalf("wrong secret: %v", err)
	}
	skewed := &Client{BaseURL: srv.URL, TerminalID: "000000000001", Secret: secret, Now: func() time.Time { return time.Now().Add(-10 * time.Minute) }}
	if _, err := skewed.CardCredits(ctx, "3101000000123456"); !HasCode(err, hostapi.CodeUnauthorized) || !strings.Contains(err.Error(), "stale") {
		t.Fatalf("stale timestamp: %v", err)
	}
}

func TestClientUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadGateway) // a proxy in front of a dead host
		io.WriteString(w, "<html>bad gateway</html>")
	}))
	defer srv.Close()
	c := &Client{BaseURL: srv.URL, TerminalID: "000000000001", Secret: []byte("s")}
	if _, err := c.Heartbeat(context.Background(), hostapi.HeartbeatRequest{}); !errors.Is(err, ErrUnreachable) {
		t.Errorf("502 from a proxy: %v, want ErrUnreachable", err)
	}
	srv.Close()
	if _, err := c.Heartbeat(context.Background(), hostapi.HeartbeatRequest{}); !errors.Is(err, ErrUnreachable) {
		t.Errorf("closed port: %v, want ErrUnreachable", err)
	}
}

func TestVerifyRefusesReplay(t *testing.T) {
	secret := []byte("k")
	body := []byte(`{"card":"1"}`)
	r := httptest.NewRequest(http.MethodPost, hostapi.PathCardCredits, nil)
	now := time.Now()
	hostapi.Sign(r, "000000000001", secret, body, now, "abcd")
	seen := map[string]bool{}
	sec := func(string) ([]byte, bool) { return secret, true }
	mark := func(term, nonce string, _ time.Time) bool { s := seen[nonce]; seen[nonce] = true; return s }
	if _, err := hostapi.Verify(r, body, now, sec, mark); err != nil {
		t.Fatalf("first: %v", err)
	}
	if _, err := hostapi.Verify(r, body, now, sec, mark); err == nil || !strings.Contains(err.Error(), "replayed") {
		t.Fatalf("replay: %v", err)
	}
	if _, err := hostapi.Verify(r, []byte(`{"card":"2"}`), now, sec, func(string, string, time.Time) bool { return false }); err == nil || !strings.Contains(err.Error(), "bad signature") {
		t.Fatalf("tampered body: %v", err)
	}
}
