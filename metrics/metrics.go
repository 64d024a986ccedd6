// Package metrics is the daemon's Prometheus metrics, served at /metrics on
// the local API's listener: the build, taps and their durations by outcome,
// APDU round trips, top-ups by outcome, queue depths, the printer's state and
// host errors.
package metrics

import (
	"context"
	"log/slog"
	"net/http"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cardd/cardd/internal/buildinfo"
)

// Metrics holds the daemon's collectors in a registry of its own, so
// nothing global leaks in.
type Metrics struct {
	reg        *prometheus.Registry
	taps       *prometheus.CounterVec
	tapSeconds *prometheus.HistogramVec
	apdu       prometheus.Histogram
	loads      *prometheus.CounterVec
	hostErrors *prometheus.CounterVec
	printer    prometheus.Gauge
}

// Gauges are read when /metrics is scraped; a nil function leaves its gauge
// out. A function that fails makes its gauge fail the scrape (the metric is
// reported invalid, the rest are served), so a store that cannot be read is
// never taken for a number.
type Gauges struct {
	JournalQueue    func(ctx context.Context) (int, error) // rows the host has not acknowledged
	ReceiptsWaiting func(ctx context.Context) (int, error)
	StreamClients   func() int
	// Logger gets a line per gauge that could not be read (nil: slog's
	// default).
	Logger *slog.Logger
}

// New registers the collectors, the Go runtime's and the process's.
func New(g Gauges) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		taps: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cardd_taps_total",
			Help: "Card taps, by outcome (ok, card_removed_too_early, card_denied, ...)."}, []string{"outcome"}),
		tapSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "cardd_tap_duration_seconds",
			Help: "A tap, from the card's arrival to its result, by outcome.",
			// A kiosk read takes 0.1-0.3 s on a real card, a top-up or a
			// sale up to a second; past tap.timeout (3 s by default) it is a
			// hang.
			Buckets: []float64{0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5}}, []string{"outcome"}),
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
	build := prometheus.NewGauge(prometheus.GaugeOpts{Name: "cardd_build_info",
		Help:        "Always 1; its labels say which cardd runs, built with which Go.",
		ConstLabels: prometheus.Labels{"version": buildinfo.String(), "goversion": runtime.Version()}})
	build.Set(1)
	m.reg.MustRegister(build, m.taps, m.tapSeconds, m.apdu, m.loads, m.hostErrors, m.printer,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	log := g.Logger
	if log == nil {
		log = slog.Default()
	}
	gauge := func(name, help string, f func(ctx context.Context) (int, error)) {
		if f == nil {
			return
		}
		m.reg.MustRegister(&storeGauge{name: name, desc: prometheus.NewDesc(name, help, nil, nil), read: f, log: log})
	}
	gauge("cardd_journal_queue_rows", "Journal rows the host has not acknowledged yet.", g.JournalQueue)
	gauge("cardd_receipts_waiting", "Receipts queued for the printer.", g.ReceiptsWaiting)
	if g.StreamClients != nil {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "cardd_event_stream_clients",
			Help: "Clients connected to /v1/events."}, func() float64 { return float64(g.StreamClients()) }))
	}
	return m
}

// Tap counts a tap by its outcome and observes how long it took.
func (m *Metrics) Tap(outcome string, took time.Duration) {
	m.taps.WithLabelValues(outcome).Inc()
	m.tapSeconds.WithLabelValues(outcome).Observe(took.Seconds())
}

// storeGauge is a gauge read from the store at scrape time. A read that
// fails yields an invalid metric: the scrape reports the error for this
// gauge alone, where a -1 would have been graphed and summed as a count.
type storeGauge struct {
	name string
	desc *prometheus.Desc
	read func(ctx context.Context) (int, error)
	log  *slog.Logger
}

func (g *storeGauge) Describe(ch chan<- *prometheus.Desc) { ch <- g.desc }

func (g *storeGauge) Collect(ch chan<- prometheus.Metric) {
	// Bounded: a scrape must not hang on a locked or stalled store.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	n, err := g.read(ctx)
	if err != nil {
		g.log.Warn("metric not served: store read failed", "metric", g.name, "err", err)
		ch <- prometheus.NewInvalidMetric(g.desc, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(g.desc, prometheus.GaugeValue, float64(n))
}

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
