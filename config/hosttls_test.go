package config

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/cardd/cardd/internal/tlsgen"
)

// TestHostLinkAccepted: what the TLS rules of the host link let through.
func TestHostLinkAccepted(t *testing.T) {
	files, err := tlsgen.Write(t.TempDir(), []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pin, _ := hex.DecodeString(files.PinSHA2)
	for _, h := range []HostConfig{
		{URL: "http://127.0.0.1:8710"},
		{URL: "http://127.3.4.5:8710"},
		{URL: "http://localhost:8710"},
		{URL: "http://[::1]:8710"},
		{URL: "http://10.0.0.5:8710", Insecure: true},
		{URL: "https://10.0.0.5:8710"},
		{URL: "https://10.0.0.5:8710", CAFile: files.CA},
		{URL: "https://10.0.0.5:8710", CAFile: files.CA, PinSHA256: files.PinSHA2},
		{URL: "https://10.0.0.5:8710", PinSHA256: base64.StdEncoding.EncodeToString(pin)},
	} {
		h.SecretFile = "/s"
		c := Default()
		c.Host = h
		if err := c.Validate(); err != nil {
			t.Errorf("%+v refused: %v", h, err)
		}
		if _, err := h.TLSConfig(); err != nil {
			t.Errorf("%+v: TLSConfig: %v", h, err)
		}
	}
	if (HostConfig{URL: "http://10.0.0.5:8710", Insecure: true}).PlainOffLoopback() != true ||
		(HostConfig{URL: "http://127.0.0.1:8710"}).PlainOffLoopback() ||
		(HostConfig{URL: "https://10.0.0.5"}).PlainOffLoopback() {
		t.Error("PlainOffLoopback misjudges")
	}
	// The insecure flag is about plain HTTP only: an https:// host with it
	// is still verified (a CA file is loaded, no InsecureSkipVerify).
	cfg, err := HostConfig{URL: "https://10.0.0.5", CAFile: files.CA, Insecure: true}.TLSConfig()
	if err != nil || cfg.InsecureSkipVerify || cfg.RootCAs == nil {
		t.Fatalf("insecure https config: %+v, %v", cfg, err)
	}
	var ve *ValidationError
	c := Default()
	c.Host = HostConfig{URL: "http://10.0.0.5:8710", SecretFile: "/s"}
	if err := c.Validate(); !errors.As(err, &ve) || ve.Key != "host.url" || ve.Value != "http://10.0.0.5:8710" {
		t.Fatalf("plain http to 10.0.0.5: %v", err)
	}
}
