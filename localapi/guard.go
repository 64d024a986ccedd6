package localapi

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// MaxBody is the largest request body the API reads; its bodies are a few
// dozen bytes. A larger one is answered 413.
const MaxBody = 64 << 10

// MaxHeaderBytes bounds a request's header lines (net/http adds 4 KiB).
const MaxHeaderBytes = 16 << 10

// Timeouts bound what one connection may hold of the server.
type Timeouts struct {
	// ReadHeader bounds reading a request's header lines.
	ReadHeader time.Duration
	// Read bounds reading a whole request, body included: a client that
	// sends its headers and never its body is cut off after it.
	Read time.Duration
	// Write bounds writing an answer. The event stream pushes its own
	// deadline forward before each write instead.
	Write time.Duration
	// Idle bounds how long a kept-alive connection waits for its next request.
	Idle time.Duration
}

// DefaultTimeouts are the daemon's.
var DefaultTimeouts = Timeouts{ReadHeader: 5 * time.Second, Read: 10 * time.Second, Write: 15 * time.Second, Idle: 60 * time.Second}

// NewHTTPServer is the http.Server for the API h: every timeout of t set and
// the header size bounded, so that slow or silent clients cannot pile up.
func NewHTTPServer(h http.Handler, t Timeouts) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: t.ReadHeader, ReadTimeout: t.Read,
		WriteTimeout: t.Write, IdleTimeout: t.Idle, MaxHeaderBytes: MaxHeaderBytes}
}

// AllowedHosts is the list of Host header values the API answers to, for
// [Server.AllowedHosts]: the address it listens on as configured (listen)
// and as bound (bound, whose port counts when listen says port 0); the
// loopback names 127.0.0.1, localhost and [::1] when it listens on loopback
// or on every address; and extra, names or addresses with an optional port
// (without one, the bound port). A browser sends the name of the page's
// address as Host, so a page of another site whose name was made to resolve
// to this machine (DNS rebinding) is refused.
func AllowedHosts(listen string, bound net.Addr, extra []string) ([]string, error) {
	lhost, _, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("listen address %q: %w", listen, err)
	}
	bhost, port, err := net.SplitHostPort(bound.String())
	if err != nil {
		return nil, fmt.Errorf("bound address %q: %w", bound, err)
	}
	var out []string
	add := func(h string) {
		if n, ok := normalHost(h, port); ok && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	ip := net.ParseIP(lhost)
	wildcard := lhost == "" || ip != nil && ip.IsUnspecified()
	if !wildcard {
		add(net.JoinHostPort(lhost, port))
		add(net.JoinHostPort(bhost, port))
	}
	if wildcard || lhost == "localhost" || ip != nil && ip.IsLoopback() {
		for _, h := range []string{"127.0.0.1", "localhost", "::1"} {
			add(net.JoinHostPort(h, port))
		}
	}
	for _, e := range extra {
		n, ok := normalHost(e, port)
		if !ok {
			return nil, fmt.Errorf("allowed host %q: want a name or an address, with an optional :port", e)
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out, nil
}

// normalHost is h ("name", "name:port", "1.2.3.4", "[::1]:80", "::1") as
// "name:port" in lower case with the IP in its canonical form, port
// defPort when h has none.
func normalHost(h, defPort string) (string, bool) {
	host, port := h, defPort
	if ip := net.ParseIP(h); ip == nil { // a bare IPv6 address has colons too
		var err error
		if host, port, err = net.SplitHostPort(h); err != nil {
			if !strings.Contains(err.Error(), "missing port") {
				return "", false
			}
			host, port = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]"), defPort
		}
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 || host == "" {
		return "", false
	}
	if ip := net.ParseIP(host); ip != nil {
		host = ip.String()
	} else if strings.ContainsAny(host, "/@?#*[] \t") {
		return "", false
	}
	return net.JoinHostPort(strings.ToLower(host), port), true
}

// guard refuses, before any route, a request to a Host the API does not
// answer to, one that changes something coming from another web origin,
// and a body over MaxBody; it bounds the body of the rest.
func (s *Server) guard(w http.ResponseWriter, r *http.Request) bool {
	host, ok := normalHost(r.Host, "80")
	if !ok || !slices.Contains(s.AllowedHosts, host) {
		fail(w, http.StatusMisdirectedRequest, "Host %q is not an address of this API (api.listen, api.allowed_hosts)", r.Host)
		return false
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		// Reading is for this API's own page and for programs (no
		// Sec-Fetch-Site). Another site's script could not read the
		// answer, but could hold event streams and connections: refused,
		// except a plain navigation to the page.
		site := r.Header.Get("Sec-Fetch-Site")
		if site != "" && site != "same-origin" && site != "none" && r.Header.Get("Sec-Fetch-Mode") != "navigate" {
			fail(w, http.StatusForbidden, "refused: a %s request from another site (Sec-Fetch-Site: %s)", r.Method, site)
			return false
		}
	default:
		// A browser says where a request comes from; no other page may
		// change anything here, and none is granted CORS.
		if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
			fail(w, http.StatusForbidden, "refused: a %s request from another site (Sec-Fetch-Site: %s)", r.Method, site)
			return false
		}
		if o := r.Header.Get("Origin"); o != "" {
			u, err := url.Parse(o)
			oh, ok := "", false
			if err == nil && u.Scheme == "http" && u.Path == "" && u.User == nil {
				oh, ok = normalHost(u.Host, "80")
			}
			if !ok || oh != host {
				fail(w, http.StatusForbidden, "refused: a %s request from the web origin %q, not this API's own page", r.Method, o)
				return false
			}
		}
	}
	if r.ContentLength > MaxBody {
		fail(w, http.StatusRequestEntityTooLarge, "body of %d bytes: the most is %d", r.ContentLength, MaxBody)
		return false
	}
	r.Body = http.MaxBytesReader(w, r.Body, MaxBody)
	return true
}
