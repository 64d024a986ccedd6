package metrics

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/cardd/cardd/internal/buildinfo"
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
	m.Tap("ok", 120*time.Millisecond)
	m.Tap("ok", 800*time.Millisecond)
	m.Tap("card_removed_too_early", 40*time.Millisecond)
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
		`cardd_event_stream_clients 2`,
		`go_goroutines`,
		`cardd_build_info{goversion="` + runtime.Version() + `",version="` + buildinfo.String() + `"} 1`,
		// 0.12 s and 0.8 s: one in the 0.2 s bucket, both by 1 s.
		`cardd_tap_duration_seconds_bucket{outcome="ok",le="0.1"} 0`,
		`cardd_tap_duration_seconds_bucket{outcome="ok",le="0.2"} 1`,
		`cardd_tap_duration_seconds_bucket{outcome="ok",le="1"} 2`,
		`cardd_tap_duration_seconds_sum{outcome="ok"} 0.92`,
		`cardd_tap_duration_seconds_count{outcome="ok"} 2`,
		`cardd_tap_duration_seconds_bucket{outcome="card_removed_too_early",le="0.05"} 1`,
		`cardd_tap_duration_seconds_bucket{outcome="card_removed_too_early",le="5"} 1`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// A gauge the store cannot answer for is left out of the scrape, with the
// error logged, not reported as -1: a -1 queue depth is graphed, summed
// across a fleet and alerted on as if it were a count. The other metrics are
// still served.
func TestStoreReadErrorMakesTheGaugeInvalid(t *testing.T) {
	var logs strings.Builder
	m := New(Gauges{
		JournalQueue:    func(context.Context) (int, error) { return 3, nil },
		ReceiptsWaiting: func(context.Context) (int, error) { return 0, errors.New("sql: database is closed") },
		Logger:          slog.New(slog.NewTextHandler(&logs, nil)),
	})
	m.Tap("ok", time.Second)
	out := scrape(t, m)
	if strings.Contains(out, "cardd_receipts_waiting") {
		t.Errorf("an unreadable gauge is served:\n%s", out)
	}
	for _, want := range []string{`cardd_journal_queue_rows 3`, `cardd_taps_total{outcome="ok"} 1`, `cardd_build_info{`} {
		if !strings.Contains(out, want) {
			t.Errorf("/metrics lacks %q beside the unreadable gauge", want)
		}
	}
	if l := logs.String(); !strings.Contains(l, "cardd_receipts_waiting") || !strings.Contains(l, "database is closed") {
		t.Errorf("the failed read is not logged with the metric and the error: %q", l)
	}
	// The registry itself reports the failure, for a caller that gathers.
	if _, err := m.reg.Gather(); err == nil || !strings.Contains(err.Error(), "database is closed") {
		t.Errorf("Gather: %v, want the store's error", err)
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
