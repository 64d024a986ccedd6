// Package tlsgen makes a throwaway certificate authority and a host
// certificate signed by it, for the tests and the demo of the host link over
// TLS. It is not a PKI: the CA's key is written beside its certificate and
// lives as long as the directory.
package tlsgen

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Files names what [Write] wrote.
type Files struct {
	CA      string // the CA's certificate, PEM: the terminals' host.ca_file
	Cert    string // the host's certificate, PEM: cardhost serve --tls-cert
	Key     string // the host's private key, PEM, mode 0600: --tls-key
	PinSHA2 string // hex SHA-256 of the host certificate's public key: host.pin_sha256
}

// Write makes a CA and a host certificate for hosts (names or IP
// addresses), valid for validity from now, and writes ca.pem, host.pem and
// host-key.pem into dir.
func Write(dir string, hosts []string, validity time.Duration) (Files, error) {
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Files{}, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "cardd throwaway CA"},
		NotBefore:             now.Add(-time.Hour), // a terminal's clock a little behind still accepts it
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return Files{}, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return Files{}, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Files{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "cardhost"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return Files{}, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return Files{}, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return Files{}, err
	}
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	f := Files{CA: filepath.Join(dir, "ca.pem"), Cert: filepath.Join(dir, "host.pem"), Key: filepath.Join(dir, "host-key.pem"),
		PinSHA2: hex.EncodeToString(sum[:])}
	for _, w := range []struct {
		path, typ string
		der       []byte
		mode      os.FileMode
	}{{f.CA, "CERTIFICATE", caDER, 0o644}, {f.Cert, "CERTIFICATE", der, 0o644}, {f.Key, "PRIVATE KEY", keyDER, 0o600}} {
		data := pem.EncodeToMemory(&pem.Block{Type: w.typ, Bytes: w.der})
		if err := os.WriteFile(w.path, data, w.mode); err != nil {
			return Files{}, fmt.Errorf("tlsgen: %w", err)
		}
	}
	return f, nil
}

// serial is a random 128-bit serial number, as RFC 5280 wants them unique.
func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128)) // never fails on Linux
	return n
}
