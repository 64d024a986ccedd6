package sync

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/cardd/cardd/hostapi"
)

// TestTopupCalls: the three calls are signed, reach their paths with the
// contract's bodies, and decode the order.
func TestTopupCalls(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	var paths []string
	srv := fakeHost(t, secret, func(path string, body []byte) (int, any) {
		paths = append(paths, path)
		switch path {
		case hostapi.PathTopupOrder:
			var req hostapi.TopupOrderRequest
			if err := json.Unmarshal(body, &req); err != nil || req.Card != "3101000000123456" || req.AmountFen != 10000 || req.Key != "k-1" {
				return 400, hostapi.Error{Code: hostapi.CodeBadRequest, Reason: string(body)}
			}
			return 200, hostapi.TopupOrder{ID: "o1", Card: req.Card, AmountFen: req.AmountFen, QR: "http://pay/o1", State: hostapi.TopupUnpaid, Expires: "2026-12-03T20:00:00Z", Provider: "sim"}
		case hostapi.PathTopupQuery, hostapi.PathTopupClose:
			var req hostapi.TopupQueryRequest
			if err := json.Unmarshal(body, &req); err != nil || req.ID != "o1" {
				return 404, hostapi.Error{Code: hostapi.CodeNotFound, Reason: string(body)}
			}
			if path == hostapi.PathTopupClose {
				return 200, hostapi.TopupOrder{ID: "o1", State: hostapi.TopupClosed, AmountFen: 10000}
			}
			return 200, hostapi.TopupOrder{ID: "o1", State: hostapi.TopupPaid, CreditID: "o1", AmountFen: 10000}
		}
		return 404, hostapi.Error{Code: hostapi.CodeNotFound, Reason: path}
	})
	c := &Client{BaseURL: srv.URL, TerminalID: "000000000001", Secret: secret}
	ctx := context.Background()
	o, err := c.TopupOrder(ctx, hostapi.TopupOrderRequest{Card: "3101000000123456", AmountFen: 10000, Key: "k-1"})
	if err != nil || o.ID != "o1" || o.QR != "http://pay/o1" || o.State != hostapi.TopupUnpaid {
		t.Fatalf("TopupOrder = %+v, %v", o, err)
	}
	if o, err = c.TopupQuery(ctx, "o1"); err != nil || o.State != hostapi.TopupPaid || o.CreditID != "o1" {
		t.Fatalf("TopupQuery = %+v, %v", o, err)
	}
	if o, err = c.TopupClose(ctx, "o1"); err != nil || o.State != hostapi.TopupClosed {
		t.Fatalf("TopupClose = %+v, %v", o, err)
	}
	want := []string{hostapi.PathTopupOrder, hostapi.PathTopupQuery, hostapi.PathTopupClose}
	if len(paths) != 3 || paths[0] != want[0] || paths[1] != want[1] || paths[2] != want[2] {
		t.Fatalf("paths = %v, want %v", paths, want)
	}
}

// TestTopupErrors: each top-up code of the host comes back as its own
// error, with the host's reason kept; a dead host is ErrUnreachable.
func TestTopupErrors(t *testing.T) {
	secret := []byte("s")
	cases := []struct {
		status int
		code   string
		want   error
	}{
		{409, hostapi.CodeTopupClosed, ErrTopupClosed},
		{503, hostapi.CodeTopupUnavailable, ErrTopupUnavailable},
		{409, hostapi.CodeCardDenied, ErrTopupCardDenied},
		{409, hostapi.CodeBalanceCap, ErrTopupBalanceCap},
	}
	for _, tc := range cases {
		srv := fakeHost(t, secret, func(string, []byte) (int, any) {
			return tc.status, hostapi.Error{Code: tc.code, Reason: "because " + tc.code}
		})
		c := &Client{BaseURL: srv.URL, TerminalID: "000000000001", Secret: secret}
		_, err := c.TopupQuery(context.Background(), "o1")
		if !errors.Is(err, tc.want) || !HasCode(err, tc.code) {
			t.Errorf("%s: err = %v, want %v with the code kept", tc.code, err, tc.want)
		}
	}
	srv := fakeHost(t, secret, func(string, []byte) (int, any) {
		return 404, hostapi.Error{Code: hostapi.CodeNotFound, Reason: "no such order"}
	})
	c := &Client{BaseURL: srv.URL, TerminalID: "000000000001", Secret: secret}
	if _, err := c.TopupClose(context.Background(), "o9"); !HasCode(err, hostapi.CodeNotFound) || errors.Is(err, ErrTopupClosed) {
		t.Errorf("not found: %v", err)
	}
	srv.Close()
	if _, err := c.TopupOrder(context.Background(), hostapi.TopupOrderRequest{}); !errors.Is(err, ErrUnreachable) {
		t.Errorf("closed port: %v, want ErrUnreachable", err)
	}
}

// TestTopupBounded: a host that never answers is given up within
// TopupTimeout when the caller set no deadline of its own, and within the
// caller's when it did.
func TestTopupBounded(t *testing.T) {
	hang := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(hang)
	c := &Client{BaseURL: srv.URL, TerminalID: "000000000001", Secret: []byte("s"), HTTP: &http.Client{}}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { _, err := c.TopupQuery(ctx, "o1"); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, ErrUnreachable) {
			t.Fatalf("err = %v, want ErrUnreachable", err)
		}
	case <-time.After(TopupTimeout + time.Second):
		t.Fatal("TopupQuery did not give up")
	}
}
