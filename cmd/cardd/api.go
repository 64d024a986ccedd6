package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/cardd/cardd/config"
	"github.com/cardd/cardd/kiosk"
	"github.com/cardd/cardd/localapi"
	"github.com/cardd/cardd/metrics"
	"github.com/cardd/cardd/offline"
	"github.com/cardd/cardd/printer/spool"
	"github.com/cardd/cardd/reader"
	"github.com/cardd/cardd/tap"
)

// newAPI builds the local API for the daemon's configuration.
func newAPI(cfg *config.Config) (*localapi.Server, error) {
	api := &localapi.Server{Base: localapi.Status{Version: version, Mode: cfg.Mode, TerminalID: cfg.Terminal.ID}}
	if cfg.API.TokenFile != "" {
		tok, err := config.ReadSecretFile(cfg.API.TokenFile)
		if err != nil {
			return nil, &exitError{code: 2, err: fmt.Errorf("api.token_file: %w", err)}
		}
		api.Token = string(tok)
	} else {
		// Without a token file a change still needs a token: a random one
		// for this run, in the runtime file only root reads (cardd pos).
		// A POS app or another local user gets 401 until api.token_file
		// is set.
		var err error
		if api.Token, err = randomToken(); err != nil {
			return nil, err
		}
	}
	// The kiosk page gets its own credential, which only asks for the
	// balance receipt of a tap: whoever can load the page (anyone at the
	// kiosk, any local user) can read it, so it must not arm a sale.
	var err error
	if api.PageToken, err = randomToken(); err != nil {
		return nil, err
	}
	api.Base.Printer.Enabled = cfg.Printer.Enabled
	api.Kiosk = kiosk.Handler(api.PageToken)
	return api, nil
}

// randomToken is 128 random bits in hex, a credential for one run.
func randomToken() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

// hookAPI feeds the API and the metrics from the tap runner, after the
// hooks already set.
func hookAPI(api *localapi.Server, m *metrics.Metrics, runner *tap.Runner) {
	runner.OnAPDU = m.APDU
	roles := runner.Roles
	prevEvent, prevBalance, prevTap := runner.OnEvent, runner.OnBalance, runner.OnTap
	runner.OnEvent = func(ev reader.Event) {
		if prevEvent != nil {
			prevEvent(ev)
		}
		api.ReaderEvent(ev, roles.Of(ev.Reader).String())
	}
	runner.OnBalance = func(res tap.Result) {
		if prevBalance != nil {
			prevBalance(res)
		}
		api.Balance(res)
	}
	runner.OnTap = func(res tap.Result) {
		if prevTap != nil {
			prevTap(res)
		}
		api.Tap(res)
		m.Tap(string(res.Outcome()), res.ToDone)
		if res.Load != nil {
			for _, l := range res.Load.Loads {
				if l.Applied {
					m.Load("applied")
				} else {
					m.Load("refused")
				}
			}
			for _, r := range res.Load.Recovered {
				if r.Applied {
					m.Load("recovered_applied")
				} else {
					m.Load("recovered_not_applied")
				}
			}
		}
	}
}

// balanceReceipt is the receipt of a balance query for the card read.
func balanceReceipt(cfg *config.Config) func(cr *tap.CardRead) (offline.NewReceipt, error) {
	return func(cr *tap.CardRead) (offline.NewReceipt, error) {
		f := spool.Facts{Kind: spool.KindBalance, Time: time.Now(), TerminalID: cfg.Terminal.ID,
			Card: cr.Info.CardNumber, BalanceFen: cr.Balance}
		cardFacts(&f, cr)
		return f.NewReceipt()
	}
}

// serveAPI listens on api.listen and serves the API until stop is called.
func serveAPI(cfg *config.Config, api *localapi.Server, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", cfg.API.Listen)
	if err != nil {
		return nil, &exitError{code: 1, err: fmt.Errorf("api.listen %q: %w", cfg.API.Listen, err)}
	}
	// The Host names the API answers to need the port bound (api.listen
	// may say port 0).
	if api.AllowedHosts, err = localapi.AllowedHosts(cfg.API.Listen, ln.Addr(), cfg.API.AllowedHosts); err != nil {
		ln.Close()
		return nil, &exitError{code: 2, err: fmt.Errorf("api.allowed_hosts: %w", err)}
	}
	srv := localapi.NewHTTPServer(api, localapi.DefaultTimeouts)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("local API stopped", "err", err)
		}
	}()
	log.Info("local API listening", "addr", ln.Addr().String(), "token_file", cfg.API.TokenFile != "", "hosts", api.AllowedHosts)
	// Operator commands on this machine (cardd pos) find the API here: its
	// address (api.listen may say port 0, or every address, which is not
	// one to connect to nor an allowed Host) and token (random per run
	// without api.token_file). 0600 and root's, like the store beside it.
	rt := runtimeAPIPath(cfg)
	if err := writeRuntimeAPI(rt, runtimeAPI{URL: "http://" + dialAddr(ln.Addr().String()), Token: api.Token}); err != nil {
		log.Warn("writing the API's runtime file; cardd pos needs api.token_file and a fixed api.listen", "path", rt, "err", err)
	}
	return func() {
		_ = os.Remove(rt)
		// Event streams never end by themselves: give plain calls a moment,
		// then close what is left.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if srv.Shutdown(ctx) != nil {
			srv.Close()
		}
		<-done
		api.Close() // its receipt watches poll the store, closed after this
	}, nil
}

// dialAddr is where a client on this machine reaches a listener on
// hostport: hostport itself, or 127.0.0.1 for a wildcard address (which is
// neither one to connect to nor a Host the API answers to).
func dialAddr(hostport string) string {
	h, port, err := net.SplitHostPort(hostport)
	if ip := net.ParseIP(h); err == nil && (h == "" || ip != nil && ip.IsUnspecified()) {
		return net.JoinHostPort("127.0.0.1", port)
	}
	return hostport
}
