package config

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
)

// ErrHostPin is wrapped by the handshake error when the host's certificate
// chains to a trusted CA but its public key is not host.pin_sha256.
var ErrHostPin = errors.New("host certificate does not match host.pin_sha256")

// parsePin decodes host.pin_sha256: the SHA-256 of the host certificate's
// SubjectPublicKeyInfo, as 64 hex digits (openssl's "-hex" output, colons
// allowed) or as 44 characters of standard base64 (HPKP's pin-sha256).
func parsePin(s string) ([]byte, error) {
	h := strings.ReplaceAll(s, ":", "")
	if len(h) == 2*sha256.Size {
		if b, err := hex.DecodeString(h); err == nil {
			return b, nil
		}
	}
	if b, err := base64.StdEncoding.DecodeString(s); err == nil && len(b) == sha256.Size {
		return b, nil
	}
	return nil, errors.New("must be the SHA-256 of the host certificate's public key (SubjectPublicKeyInfo): 64 hex digits or 44 characters of base64")
}

// readCAFile reads host.ca_file: PEM with at least one certificate.
func readCAFile(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, errors.Unwrap(err) // the path is named with the key already
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, errors.New("holds no PEM certificate (want the CA that signed the host's certificate, -----BEGIN CERTIFICATE-----)")
	}
	return pool, nil
}

// validateTLS checks host.ca_file, host.pin_sha256 and host.insecure
// against host.url, whose scheme u has (nil when host.url is bad or
// empty): plain HTTP only to loopback or when insecure says so.
func (h HostConfig) validateTLS(p *problems, u *url.URL) {
	if h.CAFile != "" {
		if _, err := readCAFile(h.CAFile); err != nil {
			p.bad("host.ca_file", h.CAFile, "%v", err)
		}
	}
	if h.PinSHA256 != "" {
		if _, err := parsePin(h.PinSHA256); err != nil {
			p.bad("host.pin_sha256", h.PinSHA256, "%v", err)
		}
	}
	if u == nil || u.Scheme != "http" {
		return
	}
	switch {
	case h.CAFile != "":
		p.bad("host.ca_file", h.CAFile, "needs an https:// host.url (%q is plain HTTP, which has no certificate to verify)", h.URL)
	case h.PinSHA256 != "":
		p.bad("host.pin_sha256", h.PinSHA256, "needs an https:// host.url (%q is plain HTTP, which has no certificate to pin)", h.URL)
	case !isLoopback(u.Hostname()) && !h.Insecure:
		p.bad("host.url", h.URL, "plain http:// to a host off this machine: anyone on the network could read and change the link; use https:// (cardhost serve --tls-cert/--tls-key), or set host.insecure: true to accept it")
	}
}

// PlainOffLoopback reports whether the host link is plain HTTP to a host
// other than this machine: allowed only with host.insecure, and worth a
// warning (cardd doctor).
func (h HostConfig) PlainOffLoopback() bool {
	u, err := url.Parse(h.URL)
	return err == nil && u.Scheme == "http" && !isLoopback(u.Hostname())
}

// TLSConfig is the TLS configuration of the link to an https:// host:
// the certificate must chain to host.ca_file (the system roots when empty)
// and, when host.pin_sha256 is set, carry that public key. It never turns
// verification off, not even with host.insecure (which is only about plain
// http://). Call it on a validated configuration.
func (h HostConfig) TLSConfig() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if h.CAFile != "" {
		pool, err := readCAFile(h.CAFile)
		if err != nil {
			return nil, fmt.Errorf("host.ca_file = %q: %w", h.CAFile, err)
		}
		cfg.RootCAs = pool
	}
	if h.PinSHA256 != "" {
		pin, err := parsePin(h.PinSHA256)
		if err != nil {
			return nil, fmt.Errorf("host.pin_sha256 = %q: %w", h.PinSHA256, err)
		}
		// VerifyConnection runs after the chain was verified, so the pin
		// narrows the CA's trust and never replaces it. Its error has the
		// type of a failed chain, so the link reports both alike.
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return &tls.CertificateVerificationError{Err: ErrHostPin}
			}
			got := sha256.Sum256(cs.PeerCertificates[0].RawSubjectPublicKeyInfo)
			if !bytes.Equal(got[:], pin) {
				return &tls.CertificateVerificationError{UnverifiedCertificates: cs.PeerCertificates,
					Err: fmt.Errorf("%w: it has %s", ErrHostPin, hex.EncodeToString(got[:]))}
			}
			return nil
		}
	}
	return cfg, nil
}
