package daemon

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
	"github.com/cardd/cardd/internal/buildinfo"
	"github.com/cardd/cardd/kiosk"
	"github.com/cardd/cardd/localapi"
)

// newAPI builds the local API for the daemon's configuration.
func newAPI(cfg *config.Config) (*localapi.Server, error) {
	api := &localapi.Server{Base: localapi.Status{Version: buildinfo.String(), Mode: cfg.Mode, TerminalID: cfg.Terminal.ID}}
	if cfg.API.TokenFile != "" {
		tok, err := config.ReadSecretFile(cfg.API.TokenFile)
		if err != nil {
			return nil, &ConfigError{Err: fmt.Errorf("api.token_file: %w", err)}
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
	k := cfg.Kiosk
	api.KioskConfig = localapi.KioskView{Title: k.Title, Merchant: k.Merchant, IdleSeconds: k.IdleSeconds, Language: k.Language,
		Colors: localapi.KioskColors{Primary: k.Colors.Primary, Background: k.Colors.Background, Text: k.Colors.Text}}
	if k.InvoiceURL != "" {
		api.InvoiceLink = k.InvoiceLink
	}
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

// serveAPI listens on api.listen and serves the API until stop is called.
func serveAPI(cfg *config.Config, api *localapi.Server, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", cfg.API.Listen)
	if err != nil {
		return nil, fmt.Errorf("api.listen %q: %w", cfg.API.Listen, err)
	}
	// The Host names the API answers to need the port bound (api.listen
	// may say port 0).
	if api.AllowedHosts, err = localapi.AllowedHosts(cfg.API.Listen, ln.Addr(), cfg.API.AllowedHosts); err != nil {
		ln.Close()
		return nil, &ConfigError{Err: fmt.Errorf("api.allowed_hosts: %w", err)}
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
	rt := RuntimeAPIPath(cfg)
	if err := writeRuntimeAPI(rt, RuntimeAPI{URL: "http://" + DialAddr(ln.Addr().String()), Token: api.Token}); err != nil {
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
