package hostapi

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Headers that carry the signature.
const (
	HeaderTerminal  = "X-Cardd-Terminal"  // terminal id, 12 hex digits
	HeaderTimestamp = "X-Cardd-Timestamp" // Unix seconds
	HeaderNonce     = "X-Cardd-Nonce"     // 16 random bytes, hex; never reused
	HeaderSignature = "X-Cardd-Signature" // hex HMAC-SHA256
)

// MaxSkew is how far a request's timestamp may be from the host's clock.
// Nonces are remembered at least this long, so a captured request can be
// replayed neither late (stale) nor early (nonce seen).
const MaxSkew = 5 * time.Minute

// StringToSign is what the signature covers: method, path, timestamp, nonce
// and the hex SHA-256 of the body, one per line (DESIGN.md, upstream link).
func StringToSign(method, path, timestamp, nonce string, body []byte) string {
	sum := sha256.Sum256(body)
	return strings.Join([]string{method, path, timestamp, nonce, hex.EncodeToString(sum[:])}, "\n")
}

// Signature returns the hex HMAC-SHA256 of the string to sign.
func Signature(secret []byte, method, path, timestamp, nonce string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(StringToSign(method, path, timestamp, nonce, body)))
	return hex.EncodeToString(m.Sum(nil))
}

// Sign sets the signature headers on r for body, which must be r's body.
func Sign(r *http.Request, terminal string, secret []byte, body []byte, now time.Time, nonce string) {
	ts := strconv.FormatInt(now.Unix(), 10)
	r.Header.Set(HeaderTerminal, terminal)
	r.Header.Set(HeaderTimestamp, ts)
	r.Header.Set(HeaderNonce, nonce)
	r.Header.Set(HeaderSignature, Signature(secret, r.Method, r.URL.Path, ts, nonce, body))
}

// ErrAuth is wrapped by every Verify failure; its text is the reason the
// host answers with 401.
var ErrAuth = errors.New("request not authenticated")

// Verify checks r's signature headers against body. secretOf returns the
// terminal's secret (false for an unknown terminal); seen records a nonce and
// reports whether it was already used. It returns the terminal id.
func Verify(r *http.Request, body []byte, now time.Time, secretOf func(terminal string) ([]byte, bool), seen func(terminal, nonce string, ts time.Time) bool) (string, error) {
	term := r.Header.Get(HeaderTerminal)
	tsText := r.Header.Get(HeaderTimestamp)
	nonce := r.Header.Get(HeaderNonce)
	sig := r.Header.Get(HeaderSignature)
	if term == "" || tsText == "" || nonce == "" || sig == "" {
		return "", fmt.Errorf("%w: missing %s, %s, %s or %s header", ErrAuth, HeaderTerminal, HeaderTimestamp, HeaderNonce, HeaderSignature)
	}
	secret, ok := secretOf(term)
	if !ok {
		return "", fmt.Errorf("%w: unknown terminal %q", ErrAuth, term)
	}
	secs, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return "", fmt.Errorf("%w: timestamp %q is not Unix seconds", ErrAuth, tsText)
	}
	ts := time.Unix(secs, 0)
	if d := now.Sub(ts); d > MaxSkew || d < -MaxSkew {
		return "", fmt.Errorf("%w: stale timestamp, %v off the host's clock (limit %v)", ErrAuth, d.Round(time.Second), MaxSkew)
	}
	want := Signature(secret, r.Method, r.URL.Path, tsText, nonce, body)
	if !hmac.Equal([]byte(strings.ToLower(sig)), []byte(want)) {
		return "", fmt.Errorf("%w: bad signature", ErrAuth)
	}
	// Only a correctly signed request may spend a nonce, so a forger cannot
	// burn a terminal's future nonces.
	if seen(term, nonce, ts) {
		return "", fmt.Errorf("%w: replayed request (nonce already used)", ErrAuth)
	}
	return term, nil
}
