package doctor

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/cardd/cardd/hostapi"
	hostsync "github.com/cardd/cardd/sync"
)

// heartbeat is what the host check saw, for the clock check.
type heartbeat struct {
	done           bool // a request went out
	sent, received time.Time
	resp           hostapi.HeartbeatResponse
	err            error
	date           time.Time // the answer's Date header, zero if none
}

// dateRecorder keeps the Date header of the last answer: when the host
// refuses a request (a stale timestamp, a wrong secret) its clock is still
// known from it.
type dateRecorder struct {
	base http.RoundTripper
	mu   sync.Mutex
	date time.Time
}

func (d *dateRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := d.base.RoundTrip(req)
	if err == nil {
		if t, perr := http.ParseTime(res.Header.Get("Date")); perr == nil {
			d.mu.Lock()
			d.date = t
			d.mu.Unlock()
		}
	}
	return res, err
}

func (d *dateRecorder) last() time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.date
}

const unreachableFix = "check the network (ip route, ping the host), DNS and any proxy, and that host.url is the host's base URL (https://host.example.com); curl -sS -X POST URL/v1/heartbeat should answer 401 unauthorized"

// checkHost sends one signed heartbeat: it proves the host is reachable,
// knows this terminal and accepts its secret. The heartbeat says it comes
// from the doctor (extra "source"); the daemon's next one replaces it.
func (r *run) checkHost(ctx context.Context) Result {
	h := r.cfg.Host
	if h.URL == "" {
		return skip("host.url is not set: cardd runs offline and keeps the journal until a host is configured")
	}
	if r.secret == nil {
		return fail("host.secret_file cannot be used (see host-secret), so no signed request can be sent",
			"fix host-secret first")
	}
	hc := http.Client{Timeout: orDefault(r.opts.HostTimeout, 10*time.Second)}
	if r.opts.HTTP != nil {
		hc = *r.opts.HTTP
	} else {
		tc, err := h.TLSConfig()
		if err != nil {
			return fail(err.Error(), "correct host.ca_file or host.pin_sha256")
		}
		hc.Transport = hostsync.NewTransport(tc) // verified as the daemon verifies it
	}
	base := hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	rec := &dateRecorder{base: base}
	hc.Transport = rec
	client := &hostsync.Client{BaseURL: h.URL, TerminalID: r.cfg.Terminal.ID, Secret: r.secret, HTTP: &hc, Now: r.opts.Now}

	ctx, cancel := context.WithTimeout(ctx, orDefault(r.opts.HostTimeout, 10*time.Second))
	defer cancel()
	req := hostapi.HeartbeatRequest{Version: r.opts.Version, Readers: r.readers, Extra: map[string]string{"source": "cardd doctor"}}
	hb := heartbeat{done: true, sent: r.opts.now()}
	hb.resp, hb.err = client.Heartbeat(ctx, req)
	hb.received = r.opts.now()
	hb.date = rec.last()
	r.hb = hb

	err := hb.err
	if err == nil {
		return pass("%s accepted a heartbeat signed for terminal %s (%v)", h.URL, r.cfg.Terminal.ID, hb.received.Sub(hb.sent).Round(time.Millisecond))
	}
	var he *hostsync.HostError
	switch {
	case errors.Is(err, hostsync.ErrUntrustedHost):
		why := err.Error()
		if cve := (*tls.CertificateVerificationError)(nil); errors.As(err, &cve) {
			why = cve.Err.Error() // the cause, not the URL and path again
		}
		return fail(fmt.Sprintf("%s: the host's certificate was not verified, nothing was sent: %s", h.URL, clip(why)),
			"host.ca_file must hold the CA that signed the host's certificate (empty: the system roots), the certificate must name the host of host.url, and host.pin_sha256, when set, must be its public key's SHA-256")
	case errors.Is(err, hostsync.ErrUnreachable):
		return fail(fmt.Sprintf("cannot reach %s: %s", h.URL, clip(err.Error())), unreachableFix)
	case errors.As(err, &he) && he.Code == hostapi.CodeUnauthorized:
		reason := clip(he.Reason)
		switch {
		case strings.Contains(he.Reason, "unknown terminal"):
			return fail(fmt.Sprintf("%s does not know terminal %s: %s", h.URL, r.cfg.Terminal.ID, reason),
				fmt.Sprintf("register it on the host (cardhost terminal add --id %s --secret-out FILE) and install FILE as host.secret_file (mode 0600); or correct terminal.id", r.cfg.Terminal.ID))
		case strings.Contains(he.Reason, "stale timestamp"):
			return fail(fmt.Sprintf("%s refused the request's time: %s", h.URL, reason), "set this terminal's clock (see clock)")
		case strings.Contains(he.Reason, "bad signature"):
			return fail(fmt.Sprintf("%s does not accept the secret of terminal %s (bad signature)", h.URL, r.cfg.Terminal.ID),
				fmt.Sprintf("host.secret_file must hold the secret the host has for terminal %s, exactly as cardhost terminal add wrote it; or issue a new one there and install it", r.cfg.Terminal.ID))
		}
		return fail(fmt.Sprintf("%s refused the request: %s", h.URL, reason), "see the host's log for this terminal")
	case errors.As(err, &he):
		return fail(fmt.Sprintf("%s answered %d %s: %s", h.URL, he.Status, he.Code, clip(he.Reason)),
			"check host.url: it must be the base URL of the cardd host (its API lives under /v1/), not a web page or a proxy")
	}
	return fail(fmt.Sprintf("%s: %s", h.URL, clip(err.Error())),
		"check host.url: it must be the base URL of the cardd host, not a web page or a proxy")
}

// checkHostTLS says how the host link is protected: verified TLS passes,
// plain HTTP off this machine (host.insecure) warns.
func (r *run) checkHostTLS(context.Context) Result {
	h := r.cfg.Host
	switch {
	case h.URL == "":
		return skip("host.url is not set")
	case h.PlainOffLoopback():
		return warn(fmt.Sprintf("host.insecure is true and host.url %s is plain HTTP off this machine: anyone on the network can read and change the link (the signature still authenticates this terminal)", h.URL),
			"serve the host over HTTPS (cardhost serve --tls-cert FILE --tls-key FILE), set host.url to https://… with host.ca_file, and remove host.insecure")
	case h.Insecure:
		return warn("host.insecure is true; unused here (host.url is https or loopback), but it would let a plain http:// URL to another machine through",
			"remove host.insecure")
	case strings.HasPrefix(h.URL, "http:"):
		return pass("plain HTTP to this machine's loopback (%s)", h.URL)
	}
	roots := "the system roots"
	if h.CAFile != "" {
		roots = h.CAFile
	}
	if h.PinSHA256 != "" {
		return pass("TLS, the host's certificate verified against %s and its pinned public key", roots)
	}
	return pass("TLS, the host's certificate verified against %s", roots)
}

const clockFix = "set the clock and keep it synchronised: timedatectl set-ntp true (with systemd-timesyncd or chrony; the campus NTP server or the host can serve time). " +
	"It matters for money: the host refuses signed requests more than 5 minutes off its clock, and the date and time of a load go into its MAC2 and TAC and into the card's own log"

// checkClock compares the terminal's clock with the host's: the heartbeat's
// answer when there is one, else the Date header of the host's refusal.
func (r *run) checkClock(context.Context) Result {
	if r.cfg.Host.URL == "" {
		return skip("host.url is not set: no host clock to compare with")
	}
	hb := r.hb
	if !hb.done {
		return skip("no request reached the host (see host)")
	}
	local := hb.sent.Add(hb.received.Sub(hb.sent) / 2)
	var hostTime time.Time
	source := "its heartbeat answer"
	switch {
	case hb.err == nil:
		t, err := time.Parse(time.RFC3339Nano, hb.resp.Time)
		if err != nil {
			return warn(fmt.Sprintf("the host's time %q is not RFC 3339", clip(hb.resp.Time)), "upgrade the host: its heartbeat must answer its clock")
		}
		hostTime = t
	case !hb.date.IsZero():
		hostTime, source = hb.date, "the Date of its answer"
	default:
		var he *hostsync.HostError
		if errors.As(hb.err, &he) && strings.Contains(he.Reason, "stale timestamp") {
			return fail("the host says this terminal's clock is off: "+clip(he.Reason), clockFix)
		}
		return skip("the host did not answer (see host)")
	}
	if hostTime.Nanosecond() == 0 {
		// Whole seconds, truncated: the host's instant was up to a second later.
		hostTime = hostTime.Add(500 * time.Millisecond)
	}
	skew := local.Sub(hostTime)
	abs := skew.Abs()
	how := fmt.Sprintf("this terminal's clock is %v %s the host's (from %s)", abs.Round(time.Second), aheadBehind(skew), source)
	if abs < time.Second {
		how = fmt.Sprintf("this terminal's clock agrees with the host's to within a second (from %s)", source)
	}
	switch {
	case abs > ClockFail:
		return fail(how+"; more than 5 minutes, so the host refuses its requests", clockFix)
	case abs > ClockWarn:
		return warn(how+"; more than 30 s", clockFix)
	}
	return pass("%s", how)
}

func aheadBehind(skew time.Duration) string {
	if skew < 0 {
		return "behind"
	}
	return "ahead of"
}

// clip makes a message from outside (a host's reason, a proxy's page) one
// short line.
func clip(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > 200 {
		s = string(r[:200]) + "..."
	}
	return s
}
