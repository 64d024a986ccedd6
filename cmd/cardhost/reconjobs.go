package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cardd/cardd/host"
)

// reconcileEvery is how often serve checks the journal rows an upload
// stored but could not reconcile after its commit.
const reconcileEvery = time.Minute

// runReconcileSweep runs host.Store.ReconcileSweep until ctx is done; each
// run is bounded.
func runReconcileSweep(ctx context.Context, st *host.Store, every time.Duration, log *slog.Logger) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		rctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		alarms, err := st.ReconcileSweep(rctx, time.Now())
		for _, a := range alarms {
			log.Error("ALARM: reconciliation", "detail", a)
		}
		if err != nil && ctx.Err() == nil {
			log.Warn("reconciliation sweep", "err", err)
		}
		// Replacements whose settle window ended carry their balance.
		settled, alarms, err := st.SettleReplacements(rctx, time.Now())
		cancel()
		for _, l := range settled {
			log.Info("replacement settled", "detail", l)
		}
		for _, a := range alarms {
			log.Error("ALARM: reconciliation", "detail", a)
		}
		if err != nil && ctx.Err() == nil {
			log.Warn("replacement settlement", "err", err)
		}
	}
}

// metricsQueryTimeout bounds the store query behind a scrape.
const metricsQueryTimeout = 5 * time.Second

// metricsHandler serves the host's Prometheus metrics: the alarms nobody
// acknowledged, the balance alerts queued and failed. A store that cannot
// be read gives NaN, never a number.
func metricsHandler(st *host.Store, log *slog.Logger) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "cardhost_open_alarms",
		Help: "Alarms (reconciliation, TACs, the cards' books) no operator acknowledged: 'cardhost alarms' lists them."},
		func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), metricsQueryTimeout)
			defer cancel()
			n, err := st.OpenAlarms(ctx)
			if err != nil {
				log.Warn("metrics: open alarms", "err", err)
				return math.NaN()
			}
			return float64(n)
		}))
	for _, state := range []string{host.AlertQueued, host.AlertFailed} {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "cardhost_alerts", ConstLabels: prometheus.Labels{"state": state},
			Help: "Balance alerts waiting for their webhook's delivery (queued) or given up (failed): 'cardhost alerts list' lists them."},
			func() float64 { return alertCount(st, state, log) }))
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return mux
}

// serveMetrics serves metricsHandler on addr, apart from the terminals'
// listener, until the returned stop is called.
func serveMetrics(addr string, st *host.Store, log *slog.Logger) (net.Addr, func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, usagef("--metrics-listen = %q: %v", addr, err)
	}
	srv := &http.Server{Handler: metricsHandler(st, log), ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second,
		MaxHeaderBytes: maxHeaderBytes}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics listener", "err", err)
		}
	}()
	return ln.Addr(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			log.Warn("metrics listener shutdown", "err", fmt.Sprint(err))
		}
	}, nil
}

// alertCount is the number of balance alerts in state (queued or failed),
// NaN when the store cannot be read.
func alertCount(st *host.Store, state string, log *slog.Logger) float64 {
	ctx, cancel := context.WithTimeout(context.Background(), metricsQueryTimeout)
	defer cancel()
	queued, failed, err := st.AlertCounts(ctx)
	if err != nil {
		log.Warn("metrics: balance alerts", "err", err)
		return math.NaN()
	}
	if state == host.AlertFailed {
		return float64(failed)
	}
	return float64(queued)
}
