package main

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/cardd/cardd/daemon"
)

// A daemon that takes the call and never answers does not hang cardd pos.
func TestAPICallBounded(t *testing.T) {
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-stop:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(stop)
	defer func(d time.Duration) { apiTimeout = d }(apiTimeout)
	apiTimeout = 200 * time.Millisecond
	done := make(chan error, 1)
	go func() {
		done <- apiCall(context.Background(), daemon.RuntimeAPI{URL: srv.URL, Token: "t"}, "DELETE", "/v1/purchase/arm", nil, nil)
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("apiCall to a silent daemon: %v, want the deadline", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("apiCall to a silent daemon still waiting after 10 s (timeout 200 ms)")
	}
}
