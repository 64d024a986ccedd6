package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/spf13/pflag"

	"github.com/cardd/cardd/apdu/epurse"
	"github.com/cardd/cardd/host"
	"github.com/cardd/cardd/money"
)

// shutdownGrace is how long in-flight requests get to finish after SIGINT or
// SIGTERM. A load authorization is one short transaction; 10 s is plenty.
const shutdownGrace = 10 * time.Second

// writeTimeout bounds the time from a request's headers to the end of its
// answer: a held pull (host.MaxPullWait) and the query that answers it.
const writeTimeout = host.MaxPullWait + 10*time.Second

// maxHeaderBytes bounds a request's headers: a terminal's signed request
// carries well under 1 KiB of them, and Go's default (1 MiB) would let a
// client hold that much per connection before it is even authenticated.
// Bodies are bounded by the handler (host.MaxBodyBytes, answered 413).
const maxHeaderBytes = 16 << 10

// serve serves the upstream API to terminals until ctx is done.
type serve struct {
	listen, balanceCap string
	capFen             int64  // balanceCap, checked
	metricsListen      string // "" serves no metrics
	alertPoll          time.Duration
	topup              topupFlags
	// tlsCert and tlsKey are PEM files; with both set the host serves
	// HTTPS, so terminals off the host's own network can verify it.
	tlsCert, tlsKey string
	cert            *tls.Certificate // tlsCert and tlsKey, loaded by check
}

func (c *serve) flags(fs *pflag.FlagSet) {
	fs.StringVar(&c.listen, "listen", "127.0.0.1:8710", "address to listen on, host:port")
	fs.StringVar(&c.balanceCap, "balance-cap", money.Format(host.DefaultBalanceCap), "the most a purse may hold after a load, in yuan")
	fs.StringVar(&c.tlsCert, "tls-cert", "", "PEM certificate (chain) to serve HTTPS with; needs --tls-key")
	fs.StringVar(&c.tlsKey, "tls-key", "", "PEM private key of --tls-cert")
	fs.StringVar(&c.metricsListen, "metrics-listen", "", "address to serve Prometheus /metrics on (open alarms), host:port; empty for none")
	fs.DurationVar(&c.alertPoll, "alert-poll", host.DefaultAlertPoll, "how often the balance-alert queue is looked at")
	c.topup.flags(fs)
}

// checkTLS loads --tls-cert and --tls-key when given: a bad file is refused
// at start, not at the first terminal's handshake.
func (c *serve) checkTLS() error {
	switch {
	case c.tlsCert == "" && c.tlsKey == "":
		return nil
	case c.tlsKey == "":
		return usagef("--tls-cert = %q: needs --tls-key, the certificate's private key", c.tlsCert)
	case c.tlsCert == "":
		return usagef("--tls-key = %q: needs --tls-cert, the certificate it belongs to", c.tlsKey)
	}
	cert, err := tls.LoadX509KeyPair(c.tlsCert, c.tlsKey)
	if err != nil {
		return usagef("--tls-cert = %q, --tls-key = %q: %v", c.tlsCert, c.tlsKey, err)
	}
	c.cert = &cert
	return nil
}

func (c *serve) check() error {
	if _, _, err := net.SplitHostPort(c.listen); err != nil {
		return usagef("--listen = %q: want host:port, like 127.0.0.1:8710", c.listen)
	}
	if _, _, err := net.SplitHostPort(c.metricsListen); c.metricsListen != "" && err != nil {
		return usagef("--metrics-listen = %q: want host:port, like 127.0.0.1:9710", c.metricsListen)
	}
	if c.alertPoll <= 0 {
		return usagef("--alert-poll = %v: want a duration more than 0, like 2s", c.alertPoll)
	}
	capFen, err := money.Parse(c.balanceCap)
	if err != nil || capFen <= 0 || capFen > epurse.MaxAmount {
		return usagef("--balance-cap = %q: want an amount like 1000.00, more than 0.00", c.balanceCap)
	}
	c.capFen = capFen
	if err := c.checkTLS(); err != nil {
		return err
	}
	if err := c.topup.check(); err != nil {
		return err
	}
	// A phone cannot open a link to 0.0.0.0: the pay pages need the
	// address it reaches.
	if h, _, _ := net.SplitHostPort(c.listen); c.topup.provider != "" && c.topup.publicURL == "" && (h == "" || net.ParseIP(h).IsUnspecified()) {
		return usagef("--listen = %q with --topup-provider %s: give --topup-public-url, the host's address as phones reach it (http://192.168.1.10:8710)", c.listen, c.topup.provider)
	}
	return nil
}

func (c *serve) run(ctx context.Context, e *env) error {
	log := slog.New(slog.NewTextHandler(e.stderr, nil))
	simSecret, err := c.topup.readSecret(e)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", c.listen)
	if err != nil {
		return fmt.Errorf("--listen = %q: %w", c.listen, err)
	}
	defer ln.Close()
	scheme := "http"
	if c.cert != nil {
		scheme = "https"
	}
	tp, err := c.topup.topups(e, simSecret, scheme+"://"+ln.Addr().String(), host.TopupOptions{Timeout: c.topup.timeoutDur, Logger: log})
	if err != nil {
		return err
	}
	h := host.NewHandler(e.st, e.keys, host.Options{BalanceCap: c.capFen, Logger: log, Topups: tp})
	subsidyJob, stopSubsidyJob := context.WithCancel(ctx)
	defer stopSubsidyJob()
	go runSubsidyExpiry(subsidyJob, e.st, subsidyExpiryEvery, log.Warn)
	go runReconcileSweep(subsidyJob, e.st, reconcileEvery, log)
	alerts := &host.AlertSender{Store: e.st, Logger: log, Poll: c.alertPoll}
	alerts.Start(ctx)
	defer alerts.Stop()
	if c.metricsListen != "" {
		addr, stopMetrics, err := serveMetrics(c.metricsListen, e.st, log)
		if err != nil {
			return err
		}
		defer stopMetrics()
		log.Info("serving metrics", "addr", addr.String()+"/metrics")
	}
	var handler http.Handler = h
	topupNote := ""
	if tp != nil {
		mux := http.NewServeMux()
		mux.Handle("/pay/", tp) // the provider's notifications and pay pages: no terminal signature
		mux.Handle("/", handler)
		handler = mux
		jobCtx, stopJob := context.WithCancel(ctx)
		defer stopJob()
		go runExpiry(jobCtx, tp, expireEvery(c.topup.timeoutDur), log.Warn)
		topupNote = fmt.Sprintf(", top-up provider %s, orders close after %s", c.topup.provider, c.topup.timeoutDur)
		log.Warn("top-ups through the simulated payment provider: anyone who opens a pay link pays without money; never with cards of real value")
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	// A shutdown answers the held pulls rather than wait them out.
	srv.RegisterOnShutdown(h.EndWaits)
	if c.cert != nil {
		// TLS 1.2 is the oldest without known breaks that the terminals'
		// Go client still speaks; older versions are refused.
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{*c.cert}}
	}
	fmt.Fprintf(e.stdout, "cardhost serving on %s://%s (balance cap %s%s)\n", scheme, ln.Addr(), money.Format(c.capFen), topupNote)
	log.Info("serving", "addr", ln.Addr().String(), "scheme", scheme, "db", e.st.Path(), "balance_cap", money.Format(c.capFen))
	done := make(chan error, 1)
	go func() {
		if c.cert != nil {
			done <- srv.ServeTLS(ln, "", "") // the certificate is in srv.TLSConfig
			return
		}
		done <- srv.Serve(ln)
	}()
	select {
	case err := <-done:
		return fmt.Errorf("serving on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing requests in flight", "grace", shutdownGrace)
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("stopped")
	return nil
}
