package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/cardd/cardd/config"
	"github.com/cardd/cardd/host"
	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/money"
)

// SimSecretFile is the simulated provider's secret in the host directory
// when serve's --topup-sim-secret leaves it out: made on first use.
const SimSecretFile = "paysim.secret"

// topupFlags are serve's kiosk top-up settings.
type topupFlags struct {
	provider, timeout, publicURL, simSecret string
	timeoutDur                              time.Duration
}

func (c *topupFlags) flags(fs *pflag.FlagSet) {
	fs.StringVar(&c.provider, "topup-provider", "", `payment provider of kiosk top-ups: "" (none: the endpoints answer 503) or sim (simulated: anyone with the link pays without money; tests and demos only)`)
	fs.StringVar(&c.timeout, "topup-timeout", host.DefaultTopupTimeout.String(), "an unpaid top-up order is closed after this")
	fs.StringVar(&c.publicURL, "topup-public-url", "", "the host's URL as phones reach it, for the sim pay pages (default http:// and the listening address, https:// with --tls-cert)")
	fs.StringVar(&c.simSecret, "topup-sim-secret", "", "file of the sim provider's signing secret (default "+SimSecretFile+" in --dir, made when missing)")
}

// minTopupTimeout keeps an order open long enough to scan and pay.
const minTopupTimeout = 5 * time.Second

func (c *topupFlags) check() error {
	switch c.provider {
	case "", host.SimProviderName:
	default:
		return usagef("--topup-provider = %q: want %q (none) or %q", c.provider, "", host.SimProviderName)
	}
	d, err := time.ParseDuration(c.timeout)
	if err != nil || d < minTopupTimeout || d > 24*time.Hour {
		return usagef("--topup-timeout = %q: want a duration from %s to 24h, like 5m", c.timeout, minTopupTimeout)
	}
	c.timeoutDur = d
	if c.publicURL != "" {
		u, err := url.Parse(c.publicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.Trim(u.Path, "/") != "" || u.RawQuery != "" {
			return usagef("--topup-public-url = %q: want http://HOST:PORT, like http://192.168.1.10:8710", c.publicURL)
		}
	}
	return nil
}

// readSecret reads the sim provider's secret (made in the host directory
// when no file is named), before serve listens: bad configuration binds
// nothing.
func (c *topupFlags) readSecret(e *env) ([]byte, error) {
	if c.provider == "" {
		return nil, nil
	}
	path := c.simSecret
	if path == "" {
		path = filepath.Join(e.dir, SimSecretFile)
		if err := makeSimSecret(path); err != nil {
			return nil, err
		}
	}
	secret, err := config.ReadSecretFile(path)
	if err != nil {
		return nil, usagef("--topup-sim-secret = %q: %v", path, err)
	}
	return secret, nil
}

// topups makes the top-up service serve runs, or nil without a provider.
// base is where serve listens, as scheme://addr.
func (c *topupFlags) topups(e *env, secret []byte, listenURL string, opt host.TopupOptions) (*host.Topups, error) {
	if c.provider == "" {
		return nil, nil
	}
	base := c.publicURL
	if base == "" {
		base = listenURL
	}
	sim, err := host.NewSimProvider(e.st, secret, base, opt.Logger)
	if err != nil {
		return nil, usagef("--topup-public-url = %q: %v", base, err)
	}
	return host.NewTopups(e.st, sim, opt), nil
}

// makeSimSecret writes a new random secret to path (mode 0600) unless a
// file is there already.
func makeSimSecret(path string) error {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("sim provider secret: %w", err)
	}
	if _, err := f.WriteString(hex.EncodeToString(b[:]) + "\n"); err != nil {
		f.Close()
		return fmt.Errorf("sim provider secret %s: %w", path, err)
	}
	return f.Close()
}

// expireEvery is how often serve closes expired orders: often enough that
// an order closes soon after its time, at most every 30 s.
func expireEvery(timeout time.Duration) time.Duration {
	return min(max(timeout/4, time.Second), 30*time.Second)
}

// runExpiry closes expired top-up orders until ctx is done; each run is
// bounded (a batch of orders, each call to the provider by its timeout).
func runExpiry(ctx context.Context, tp *host.Topups, every time.Duration, logf func(msg string, args ...any)) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		rctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		n, err := tp.CloseExpired(rctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			logf("closing expired top-up orders", "closed", n, "err", err)
		}
	}
}

// topupList prints top-up orders, newest first.
type topupList struct {
	number, state string
	limit         int
	asJSON        bool
}

func (c *topupList) flags(fs *pflag.FlagSet) {
	fs.StringVar(&c.number, "card", "", "only this card's orders")
	fs.StringVar(&c.state, "state", "", "only orders in this state: unpaid, paid or closed")
	fs.IntVar(&c.limit, "limit", 100, "at most this many, newest first")
	fs.BoolVar(&c.asJSON, "json", false, "print JSON instead of a table")
}

func (c *topupList) check() error {
	switch c.state {
	case "", hostapi.TopupUnpaid, hostapi.TopupPaid, hostapi.TopupClosed:
	default:
		return usagef("--state = %q: want unpaid, paid or closed", c.state)
	}
	if c.limit < 1 {
		return usagef("--limit = %d: want 1 or more", c.limit)
	}
	if c.number == "" {
		return nil
	}
	return parseCard("card", &c.number)
}

func (c *topupList) run(ctx context.Context, e *env) error {
	list, err := e.st.Topups(ctx, c.number, c.state, c.limit)
	if err != nil {
		return err
	}
	if c.asJSON {
		return printJSON(e.stdout, list)
	}
	tw, flush := newTable(e.stdout)
	fmt.Fprintln(tw, "ORDER\tCARD\tAMOUNT\tSTATE\tCREATED\tTERMINAL\tPROVIDER\tTXN")
	for _, o := range list {
		state := o.State
		if o.Late {
			state += " (late)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", o.ID, o.Card, money.Format(o.AmountFen), state, o.Created, o.Terminal, o.Provider, dash(o.TxnID))
	}
	return flush()
}

// topupShow prints one order as JSON.
type topupShow struct{ id string }

func (c *topupShow) flags(fs *pflag.FlagSet) {
	fs.StringVar(&c.id, "id", "", "the order id (required)")
}

func (c *topupShow) check() error { return required("id", c.id) }

func (c *topupShow) run(ctx context.Context, e *env) error {
	o, err := readTopup(ctx, e, c.id)
	if err != nil {
		return err
	}
	return printJSON(e.stdout, o)
}

// readTopup reads the order --id names.
func readTopup(ctx context.Context, e *env, id string) (host.TopupInfo, error) {
	o, err := e.st.Topup(ctx, id)
	if errors.Is(err, host.ErrNotFound) {
		return o, fmt.Errorf("--id = %q: no such order", id)
	}
	return o, err
}

// topupPay is the phone of a demo: it opens an unpaid sim order's pay page
// (its QR code's link) on the running 'cardhost serve' and presses pay.
type topupPay struct {
	id, delay string
	twice     bool
	noNotify  bool
}

func (c *topupPay) flags(fs *pflag.FlagSet) {
	fs.StringVar(&c.id, "id", "", "the unpaid order to pay, with the sim provider (required)")
	fs.BoolVar(&c.twice, "twice", false, "the provider sends its notification twice")
	fs.StringVar(&c.delay, "delay", "", "the provider sends its notification after this, like 2s (at most "+host.MaxSimDelay.String()+")")
	fs.BoolVar(&c.noNotify, "no-notify", false, "the provider sends no notification: the host learns it by querying")
}

func (c *topupPay) check() error {
	if err := required("id", c.id); err != nil {
		return err
	}
	if c.delay != "" {
		if d, err := time.ParseDuration(c.delay); err != nil || d < 0 || d > host.MaxSimDelay {
			return usagef("--delay = %q: want a duration from 0s to %s, like 2s", c.delay, host.MaxSimDelay)
		}
	}
	if c.noNotify && (c.twice || c.delay != "") {
		return usagef("--no-notify sends nothing: it takes neither --twice nor --delay")
	}
	return nil
}

// payTimeout bounds the pay request: the serving host pays and, without
// --delay, notifies itself (10 s per notification) before it answers.
const payTimeout = 30 * time.Second

func (c *topupPay) run(ctx context.Context, e *env) error {
	o, err := readTopup(ctx, e, c.id)
	if err != nil {
		return err
	}
	switch {
	case o.Provider != host.SimProviderName:
		return fmt.Errorf("--id = %q: order of provider %q: only the sim provider's can be paid from here", c.id, o.Provider)
	case o.State != hostapi.TopupUnpaid:
		return fmt.Errorf("--id = %q: the order is %s", c.id, o.State)
	case o.QR == "":
		return fmt.Errorf("--id = %q: the provider never answered for this order; ask for it again", c.id)
	}
	form := url.Values{}
	if c.twice {
		form.Set("twice", "1")
	}
	if c.delay != "" {
		form.Set("delay", c.delay)
	}
	if c.noNotify {
		form.Set("notify", "0")
	}
	rctx, cancel := context.WithTimeout(ctx, payTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, o.QR, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("paying at %s (is 'cardhost serve --topup-provider sim' running there?): %w", strings.Split(o.QR, "?")[0], err)
	}
	defer res.Body.Close()
	io.Copy(io.Discard, io.LimitReader(res.Body, 1<<20))
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("pay page answered %s", res.Status)
	}
	after, err := e.st.Topup(ctx, c.id)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "order %s: paid %s at the provider; at the host it is %s\n", c.id, money.Format(o.AmountFen), after.State)
	return nil
}
