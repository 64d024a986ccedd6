package metrics

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("/metrics: %d", rec.Code)
	}
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

func TestMetrics(t *testing.T) {
	m := New(Gauges{
		JournalQueue:    func(context.Context) (int, error) { return 7, nil },
		ReceiptsWaiting: func(context.Context) (int, error) { return 0, errors.New("closed") },
		StreamClients:   func() int { return 2 },
	})
	m.Tap("ok")
	m.Tap("ok")
	m.Tap("card_removed_too_early")
	m.APDU(3 * time.Millisecond)
	m.Load("applied")
	m.PrinterReady(true)
	out := scrape(t, m)
	for _, want := range []string{
		`cardd_taps_total{outcome="ok"} 2`,
		`cardd_taps_total{outcome="card_removed_too_early"} 1`,
		`cardd_apdu_seconds_bucket{le="0.005"} 1`,
		`cardd_apdu_seconds_count 1`,
		`cardd_loads_total{outcome="applied"} 1`,
		`cardd_printer_ready 1`,
		`cardd_journal_queue_rows 7`,
		`cardd_receipts_waiting -1`,
		`cardd_event_stream_clients 2`,
		`go_goroutines`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestTransportCountsHostErrors(t *testing.T) {
	m := New(Gauges{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/journal" {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusUnauthorized) // a 4xx is an answer, not a host error
	}))
	defer srv.Close()
	c := &http.Client{Transport: m.Transport(nil)}
	for _, p := range []string{"/v1/journal", "/v1/heartbeat"} {
		resp, err := c.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	srv.Close()
	if _, err := c.Get(srv.URL + "/v1/credits"); err == nil {
		t.Fatal("request to a closed server succeeded")
	}
	out := scrape(t, m)
	for _, want := range []string{`cardd_host_errors_total{path="/v1/journal"} 1`, `cardd_host_errors_total{path="/v1/credits"} 1`} {
		if !strings.Contains(out, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(out, `path="/v1/heartbeat"`) {
		t.Error("a 401 counted as a host error")
	}
}
