package doctor

import (
	"context"
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"runtime"
	"testing"
	"time"

	"github.com/cardd/cardd/config"
	"github.com/cardd/cardd/host"
	"github.com/cardd/cardd/internal/tlsgen"
)

// refHost is the reference host (package host) over loopback HTTP with a
// real SQLite file and terminal 000000000001 registered; its secret is
// installed as the config's host.secret_file.
type refHost struct {
	srv    *httptest.Server
	store  *host.Store
	secret string
}

func startHost(t *testing.T, opt host.Options) *refHost {
	t.Helper()
	st, err := host.Open(filepath.Join(t.TempDir(), host.DBFile))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	masters, err := host.GenerateMasterKeys()
	if err != nil {
		t.Fatal(err)
	}
	keys, err := host.NewKeys(masters)
	if err != nil {
		t.Fatal(err)
	}
	secret, err := host.NewTerminalSecret()
	if err != nil {
		t.Fatal(err)
	}
	if err := st.AddTerminal(context.Background(), "000000000001", secret, time.Now()); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(host.NewHandler(st, keys, opt))
	t.Cleanup(srv.Close)
	return &refHost{srv: srv, store: st, secret: secret}
}

// hostConfig points cfg at h with the right secret in a 0600 file.
func hostConfig(t *testing.T, h *refHost) *config.Config {
	cfg := testConfig(t)
	cfg.Host.URL = h.srv.URL
	cfg.Host.SecretFile = filepath.Join(t.TempDir(), "host.secret")
	writeFile(t, cfg.Host.SecretFile, h.secret+"\n", 0o600)
	return cfg
}

// hostChecks runs the secret, host and clock checks as Run does.
func hostChecks(t *testing.T, cfg *config.Config, opts Options) (secret, hostRes, clock Result) {
	t.Helper()
	r := &run{cfg: cfg, opts: opts}
	ctx := context.Background()
	return r.checkHostSecret(ctx), r.checkHost(ctx), r.checkClock(ctx)
}

func TestHostAcceptsTheTerminal(t *testing.T) {
	h := startHost(t, host.Options{})
	cfg := hostConfig(t, h)
	secret, hr, clock := hostChecks(t, cfg, Options{Version: "test"})
	want(t, "secret", secret, Pass)
	want(t, "host", hr, Pass, h.srv.URL, "000000000001")
	want(t, "clock", clock, Pass, "agrees with the host's to within a second")
	terms, err := h.store.Terminals(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(terms) != 1 || terms[0].LastSeen == "" {
		t.Errorf("the host did not record the heartbeat: %+v", terms)
	}
}

func TestHostClockSkew(t *testing.T) {
	h := startHost(t, host.Options{})
	cfg := hostConfig(t, h)
	for _, tc := range []struct {
		name          string
		off           time.Duration // the terminal's clock minus the true time
		host, clock   Status
		hostS, clockS []string
		skew          *regexp.Regexp // the skew the detail reports, within a few seconds of off
	}{
		{"in step", 0, Pass, Pass, nil, nil, nil},
		{"10 s ahead", 10 * time.Second, Pass, Pass, nil, []string{"ahead of"}, nil},
		// The skew is measured against the host's Date, to the second, less
		// half the round trip: a slow machine (arm64 under qemu) reads 1m59s.
		{"2 min behind", -2 * time.Minute, Pass, Warn, nil, []string{" behind", "more than 30 s", "fix:timedatectl set-ntp true", "fix:MAC2"},
			regexp.MustCompile(`\b(1m5[5-9]s|2m[0-5]s) behind`)},
		// The host refuses it: its clock comes from the Date of the refusal.
		{"10 min ahead", 10 * time.Minute, Fail, Fail, []string{"stale timestamp", "fix:clock"},
			[]string{" ahead of", "Date", "refuses its requests", "fix:5 minutes", "fix:MAC2"},
			regexp.MustCompile(`\b(9m5[5-9]s|10m[0-5]s) ahead of`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := Options{Now: func() time.Time { return time.Now().Add(tc.off) }}
			_, hr, clock := hostChecks(t, cfg, opts)
			want(t, "host", hr, tc.host, tc.hostS...)
			want(t, "clock", clock, tc.clock, tc.clockS...)
			if tc.skew != nil && !tc.skew.MatchString(clock.Detail) {
				t.Errorf("clock: detail %q does not report a skew matching %s", clock.Detail, tc.skew)
			}
		})
	}
}

func TestHostRefusals(t *testing.T) {
	h := startHost(t, host.Options{})
	cfg := hostConfig(t, h)
	cfg.Terminal.ID = "0000000000FF"
	_, hr, clock := hostChecks(t, cfg, Options{})
	want(t, "unknown terminal", hr, Fail, "does not know terminal 0000000000FF", "fix:cardhost terminal add --id 0000000000FF")
	// Refused, but the host's clock is still known from its answer's Date.
	want(t, "unknown terminal, clock", clock, Pass, "Date")

	cfg = hostConfig(t, h)
	writeFile(t, cfg.Host.SecretFile, "not-the-secret", 0o600)
	_, hr, _ = hostChecks(t, cfg, Options{})
	want(t, "wrong secret", hr, Fail, "bad signature", "fix:cardhost terminal add")
}

// TestHostCheckedDespiteSecretOwner: run as another user than the file's
// owner (root checking the cardd user's file), the owner fails but the host
// is still asked.
func TestHostCheckedDespiteSecretOwner(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("it makes the secret file someone else's by uid; Windows owners are SIDs, which the check does not read")
	}
	h := startHost(t, host.Options{})
	cfg := hostConfig(t, h)
	secret, hr, clock := hostChecks(t, cfg, Options{Euid: func() int { return 4242 }})
	want(t, "secret", secret, Fail, "is owned by", "fix:sudo -u")
	want(t, "host", hr, Pass)
	want(t, "clock", clock, Pass)
}

func TestHostUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + l.Addr().String()
	l.Close() // nothing listens there now
	h := startHost(t, host.Options{})
	cfg := hostConfig(t, h)
	cfg.Host.URL = url
	_, hr, clock := hostChecks(t, cfg, Options{})
	want(t, "host", hr, Fail, "cannot reach", "fix:host.url")
	want(t, "clock", clock, Skip, "did not answer")
}

func TestHostNotACarddHost(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "<html><body>Welcome\nto nginx</body></html>", http.StatusNotFound)
	}))
	defer srv.Close()
	h := startHost(t, host.Options{})
	cfg := hostConfig(t, h)
	cfg.Host.URL = srv.URL
	_, hr, _ := hostChecks(t, cfg, Options{})
	want(t, "host", hr, Fail, "404", "Welcome to nginx", "fix:base URL")

	// A host whose heartbeat answer has no readable time.
	srv2 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"time":"yesterday"}`))
	}))
	defer srv2.Close()
	cfg.Host.URL = srv2.URL
	_, hr, clock := hostChecks(t, cfg, Options{})
	want(t, "host", hr, Pass)
	want(t, "clock", clock, Warn, `"yesterday"`)
}

func TestHostTimeoutIsBounded(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-block }))
	defer srv.Close()
	defer close(block)
	h := startHost(t, host.Options{})
	cfg := hostConfig(t, h)
	cfg.Host.URL = srv.URL
	start := time.Now()
	_, hr, _ := hostChecks(t, cfg, Options{HostTimeout: 100 * time.Millisecond})
	want(t, "host", hr, Fail, "cannot reach")
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("the host check took %v with a 100ms timeout", el)
	}
}

func TestNoHost(t *testing.T) {
	cfg := testConfig(t)
	secret, hr, clock := hostChecks(t, cfg, Options{})
	want(t, "secret", secret, Skip)
	want(t, "host", hr, Skip, "offline")
	want(t, "clock", clock, Skip)
}

// TestHostTLSCheck: plain HTTP off loopback (host.insecure) and a stray
// host.insecure are warnings; a verified link passes, naming what it
// trusts.
func TestHostTLSCheck(t *testing.T) {
	for _, tc := range []struct {
		h      config.HostConfig
		status Status
		says   string
	}{
		{config.HostConfig{}, Skip, "not set"},
		{config.HostConfig{URL: "http://10.0.0.5:8710", Insecure: true}, Warn, "plain HTTP off this machine"},
		{config.HostConfig{URL: "https://10.0.0.5:8710", Insecure: true}, Warn, "host.insecure is true"},
		{config.HostConfig{URL: "http://127.0.0.1:8710"}, Pass, "loopback"},
		{config.HostConfig{URL: "https://10.0.0.5:8710", CAFile: "/etc/cardd/ca.pem"}, Pass, "/etc/cardd/ca.pem"},
		{config.HostConfig{URL: "https://10.0.0.5:8710", PinSHA256: "x"}, Pass, "pinned"},
	} {
		cfg := testConfig(t)
		cfg.Host = tc.h
		r := &run{cfg: cfg}
		want(t, tc.h.URL, r.checkHostTLS(context.Background()), tc.status, tc.says)
	}
}

// TestHostOverTLS: the host check verifies an https:// host as the daemon
// does: its certificate as host.ca_file passes, another CA fails naming the
// certificate and host.ca_file in the fix.
func TestHostOverTLS(t *testing.T) {
	h := startHost(t, host.Options{})
	srv := httptest.NewTLSServer(h.srv.Config.Handler)
	t.Cleanup(srv.Close)
	cfg := hostConfig(t, h)
	cfg.Host.URL = srv.URL
	cfg.Host.CAFile = filepath.Join(t.TempDir(), "host.pem")
	writeFile(t, cfg.Host.CAFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})), 0o644)
	_, hr, _ := hostChecks(t, cfg, Options{Version: "test"})
	want(t, "host with its CA", hr, Pass, srv.URL)

	other, err := tlsgen.Write(t.TempDir(), []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Host.CAFile = other.CA
	_, hr, _ = hostChecks(t, cfg, Options{Version: "test"})
	want(t, "host with another CA", hr, Fail, "certificate was not verified", "unknown authority", "fix:host.ca_file must hold the CA")
}
