package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/cardd/cardd/apdu/epurse"
	"github.com/cardd/cardd/host"
	"github.com/cardd/cardd/money"
)

// shutdownGrace is how long in-flight requests get to finish after SIGINT or
// SIGTERM. A load authorization is one short transaction; 10 s is plenty.
const shutdownGrace = 10 * time.Second

// maxHeaderBytes bounds a request's headers: a terminal's signed request
// carries well under 1 KiB of them, and Go's default (1 MiB) would let a
// client hold that much per connection before it is even authenticated.
// Bodies are bounded by the handler (host.MaxBodyBytes, answered 413).
const maxHeaderBytes = 16 << 10

func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, dir := newFlags("serve", stdout)
	listen := fs.String("listen", "127.0.0.1:8710", "address to listen on, host:port")
	balanceCap := fs.String("balance-cap", money.Format(host.DefaultBalanceCap), "the most a purse may hold after a load, in yuan")
	if err := parse(fs, args, dir); err != nil {
		return err
	}
	if _, _, err := net.SplitHostPort(*listen); err != nil {
		return usagef("--listen = %q: want host:port, like 127.0.0.1:8710", *listen)
	}
	capFen, err := money.Parse(*balanceCap)
	if err != nil || capFen <= 0 || capFen > epurse.MaxAmount {
		return usagef("--balance-cap = %q: want an amount like 1000.00, more than 0.00", *balanceCap)
	}
	st, err := openStore(*dir)
	if err != nil {
		return err
	}
	defer st.Close()
	keys, err := openKeys(*dir)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	h := host.NewHandler(st, keys, host.Options{BalanceCap: capFen, Logger: log})
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("--listen = %q: %w", *listen, err)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	fmt.Fprintf(stdout, "cardhost serving on http://%s (balance cap %s)\n", ln.Addr(), money.Format(capFen))
	log.Info("serving", "addr", ln.Addr().String(), "db", st.Path(), "balance_cap", money.Format(capFen))
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
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
