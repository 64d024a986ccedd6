package sync

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cardd/cardd/config"
	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/internal/tlsgen"
)

// TestClientVerifiesTheHost runs the client against a TLS host with the
// link's TLS configuration (config.HostConfig.TLSConfig, as the daemon
// builds it): the host's certificate as host.ca_file is accepted, another
// CA or a wrong pin refuses the host before any request reaches it.
func TestClientVerifiesTheHost(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	var served int
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if _, err := hostapi.Verify(r, body, time.Now(),
			func(term string) ([]byte, bool) { return secret, term == "000000000001" },
			func(string, string, time.Time) bool { return false }); err != nil {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		served++
		json.NewEncoder(w).Encode(hostapi.HeartbeatResponse{Time: time.Now().UTC().Format(time.RFC3339Nano)})
	}))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	hostCA := filepath.Join(dir, "host-ca.pem")
	if err := os.WriteFile(hostCA, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	other, err := tlsgen.Write(dir, []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(srv.Certificate().RawSubjectPublicKeyInfo)
	pinHex, pinB64 := hex.EncodeToString(sum[:]), base64.StdEncoding.EncodeToString(sum[:])

	for _, tc := range []struct {
		name    string
		h       config.HostConfig
		trusted bool
		why     string // in the refusal
	}{
		{"host's certificate as CA", config.HostConfig{CAFile: hostCA}, true, ""},
		{"pin in hex matches", config.HostConfig{CAFile: hostCA, PinSHA256: pinHex}, true, ""},
		{"pin in base64 matches", config.HostConfig{CAFile: hostCA, PinSHA256: pinB64}, true, ""},
		{"another CA", config.HostConfig{CAFile: other.CA}, false, "certificate signed by unknown authority"},
		{"system roots", config.HostConfig{}, false, "certificate signed by unknown authority"},
		{"pin mismatch", config.HostConfig{CAFile: hostCA, PinSHA256: other.PinSHA2}, false, "does not match host.pin_sha256"},
		// A pin never stands in for the chain: the right key under an
		// untrusted CA is still refused.
		{"pin matches, CA does not", config.HostConfig{CAFile: other.CA, PinSHA256: pinHex}, false, "unknown authority"},
		// host.insecure is about plain HTTP only.
		{"insecure does not skip verification", config.HostConfig{CAFile: other.CA, Insecure: true}, false, "unknown authority"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.h.URL = srv.URL
			tlsCfg, err := tc.h.TLSConfig()
			if err != nil {
				t.Fatal(err)
			}
			c := &Client{BaseURL: srv.URL, TerminalID: "000000000001", Secret: secret,
				HTTP: &http.Client{Timeout: 10 * time.Second, Transport: NewTransport(tlsCfg)}}
			before := served
			_, err = c.Heartbeat(context.Background(), hostapi.HeartbeatRequest{Version: "test"})
			if tc.trusted {
				if err != nil || served != before+1 {
					t.Fatalf("trusted host: %v (served %d)", err, served-before)
				}
				return
			}
			if !errors.Is(err, ErrUntrustedHost) || !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), tc.why) {
				t.Fatalf("untrusted host: %v; want ErrUntrustedHost saying %q", err, tc.why)
			}
			if served != before {
				t.Fatal("a request reached a host that was not verified")
			}
		})
	}
}
