// Package metrics is the daemon's Prometheus metrics, served at /metrics on
// the local API's listener: taps by outcome, APDU round trips, top-ups by
// outcome, queue depths, the printer's state and host errors.
package metrics

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds the daemon's collectors in a registry of its own, so
// nothing global leaks in.
type Metrics struct {
	reg        *prometheus.Registry
	taps       *prometheus.CounterVec
	apdu       prometheus.Histogram
	loads      *prometheus.CounterVec
	hostErrors *prometheus.CounterVec
	printer    prometheus.Gauge
}

// Gauges are read when /metrics is scraped; a nil function leaves its gauge
// out.
type Gauges struct {
	JournalQueue    func(ctx context.Context) (int, error) // rows the host has not acknowledged
	ReceiptsWaiting func(ctx context.Context) (int, error)
	StreamClients   func() int
}

// New registers the collectors, the Go runtime's and the process's.
func New(g Gauges) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		taps: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cardd_taps_total",
			Help: "Card taps, by outcome (ok, card_removed_too_early, card_denied, ...)."}, []string{"outcome"}),
		apdu: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "cardd_apdu_seconds",
			Help: "Round trip of one APDU through pcscd to the card and back.",
			// A contactless card answers in 5-50 ms; a simulated one in well
			// under a millisecond.
			Buckets: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1}}),
		loads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cardd_loads_total",
			Help: "Pending top-ups met on a tap, by outcome: applied, refused, recovered_applied, recovered_not_applied."}, []string{"outcome"}),
		hostErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cardd_host_errors_total",
			Help: "Requests to the host that got no answer or a 5xx, by path."}, []string{"path"}),
		printer: prometheus.NewGauge(prometheus.GaugeOpts{Name: "cardd_printer_ready",
			Help: "1 when the printer's last check found it able to print, else 0."}),
	}
	m.reg.MustRegister(m.taps, m.apdu, m.loads, m.hostErrors, m.printer,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	gauge := func(name, help string, f func(ctx context.Context) (int, error)) {
		if f == nil {
			return
		}
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			n, err := f(ctx)
			if err != nil {
				return -1
			}
			return float64(n)
		}))
	}
	gauge("cardd_journal_queue_rows", "Journal rows the host has not acknowledged yet (-1: unreadable).", g.JournalQueue)
	gauge("cardd_receipts_waiting", "Receipts queued for the printer (-1: unreadable).", g.ReceiptsWaiting)
	if g.StreamClients != nil {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "cardd_event_stream_clients",
			Help: "Clients connected to /v1/events."}, func() float64 { return float64(g.StreamClients()) }))
	}
	return m
}

// Tap counts a tap by its outcome.
func (m *Metrics) Tap(outcome string) { m.taps.WithLabelValues(outcome).Inc() }

// APDU observes one APDU's round trip.
func (m *Metrics) APDU(d time.Duration) { m.apdu.Observe(d.Seconds()) }

// Load counts a top-up by outcome.
func (m *Metrics) Load(outcome string) { m.loads.WithLabelValues(outcome).Inc() }

// HostError counts a failed request to the host.
func (m *Metrics) HostError(path string) { m.hostErrors.WithLabelValues(path).Inc() }

// PrinterReady sets the printer gauge.
func (m *Metrics) PrinterReady(ready bool) {
	v := 0.0
	if ready {
		v = 1
	}
	m.printer.Set(v)
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Transport counts failed requests to the host: no answer, or a 5xx. It
// wraps next (nil: http.DefaultTransport).
func (m *Metrics) Transport(next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		resp, err := next.RoundTrip(r)
		if err != nil || resp.StatusCode >= 500 {
			m.HostError(r.URL.Path)
		}
		return resp, err
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
