// Package sync is the terminal's link to the central host: a signed HTTP
// client for the upstream API (package hostapi), and the loops that pull
// pending credits and deny-list changes, upload the journal and report
// load completions, with capped backoff, until the daemon stops.
//
// Importers name it hostsync, since it shadows the standard library's sync.
package sync

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/cardd/cardd/hostapi"
)

// Client calls the host's upstream API, signing every request with the
// terminal's secret. Its zero value is not usable: set BaseURL, TerminalID
// and Secret.
type Client struct {
	// BaseURL is the host, like "http://127.0.0.1:8710".
	BaseURL string
	// TerminalID is the terminal's 12-hex-digit id; the host keys its secret
	// and the MAC inputs by it.
	TerminalID string
	// Secret is the terminal's HMAC secret. Never logged.
	Secret []byte
	// HTTP is the client used; nil means one with a 10 s timeout.
	HTTP *http.Client
	// Now is the clock; nil means time.Now. Tests move it.
	Now func() time.Time
}

// ErrUnreachable wraps every failure to get an answer from the host: a
// refused connection, a timeout, a proxy error. The caller treats the host as
// offline: the card is still read, its credits wait.
var ErrUnreachable = errors.New("host unreachable")

// ErrUntrustedHost wraps, beside ErrUnreachable, a handshake in which the
// host's certificate could not be verified (no trusted CA, a wrong name, an
// expired certificate, not the pinned key). Nothing was sent to that host.
var ErrUntrustedHost = errors.New("host certificate not verified; nothing sent")

// NewTransport is http.DefaultTransport's settings (proxy from the
// environment, bounded dials and handshakes) with tc for TLS.
func NewTransport(tc *tls.Config) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = tc
	return t
}

// HostError is an answer other than 2xx, with the host's reason.
type HostError struct {
	Status int
	Code   string // a hostapi.Code* constant
	Reason string
}

// Error gives the host's status, code and reason.
func (e *HostError) Error() string {
	return fmt.Sprintf("host answered %d %s: %s", e.Status, e.Code, e.Reason)
}

// HasCode reports whether err is a HostError with the given hostapi code.
func HasCode(err error, code string) bool {
	var he *HostError
	return errors.As(err, &he) && he.Code == code
}

var defaultHTTP = &http.Client{Timeout: 10 * time.Second}

// call POSTs req as JSON to path and decodes the answer into resp.
func (c *Client) call(ctx context.Context, path string, req, resp any) error {
	return c.send(ctx, c.httpClient(), path, req, resp)
}

// httpClient is c.HTTP, or the default one.
func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return defaultHTTP
}

// send is call through hc.
func (c *Client) send(ctx context.Context, hc *http.Client, path string, req, resp any) error {
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(c.BaseURL, "/")+path, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("host request %s: %w", path, err)
	}
	hr.Header.Set("Content-Type", "application/json")
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	var nonce [16]byte
	_, _ = rand.Read(nonce[:]) // never fails on Linux (crypto/rand doc)
	hostapi.Sign(hr, c.TerminalID, c.Secret, body, now(), hex.EncodeToString(nonce[:]))
	res, err := hc.Do(hr)
	if err != nil {
		var cve *tls.CertificateVerificationError
		if errors.As(err, &cve) {
			// Still unreachable to the caller (the card is read, credits
			// wait), but the log must say why: it is not the network.
			return fmt.Errorf("%w: %w: %s: %w", ErrUnreachable, ErrUntrustedHost, path, err)
		}
		return fmt.Errorf("%w: %s: %v", ErrUnreachable, path, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, 8<<20))
	if err != nil {
		return fmt.Errorf("%w: %s: reading answer: %v", ErrUnreachable, path, err)
	}
	if res.StatusCode/100 != 2 {
		var body hostapi.Error
		he := &HostError{Status: res.StatusCode}
		if json.Unmarshal(data, &body) == nil && body.Code != "" {
			he.Code, he.Reason = body.Code, body.Reason
		} else {
			// Not our host's error shape: a proxy or a broken host.
			if res.StatusCode >= 500 {
				return fmt.Errorf("%w: %s: HTTP %d", ErrUnreachable, path, res.StatusCode)
			}
			he.Code, he.Reason = "http_"+fmt.Sprint(res.StatusCode), strings.TrimSpace(string(data))
		}
		return he
	}
	if err := json.Unmarshal(data, resp); err != nil {
		return fmt.Errorf("host answer to %s is not the expected JSON: %w", path, err)
	}
	return nil
}

// Pull fetches credits and deny-list changes since cursor. With wait above
// zero the host may hold the request until a change arrives, up to wait
// (hostapi.PullRequest.WaitMS); the request is then bounded by wait plus
// the HTTP client's own timeout (10 s when it has none) instead of that
// timeout alone, which would cut every held answer short.
func (c *Client) Pull(ctx context.Context, cursor string, limit int, wait time.Duration) (hostapi.PullResponse, error) {
	var r hostapi.PullResponse
	req := hostapi.PullRequest{Cursor: cursor, Limit: limit}
	hc := c.httpClient()
	if wait > 0 {
		req.WaitMS = int(wait / time.Millisecond)
		var cancel context.CancelFunc
		grace := hc.Timeout
		if grace <= 0 {
			grace = defaultHTTP.Timeout
		}
		ctx, cancel = context.WithTimeout(ctx, wait+grace)
		defer cancel()
		held := *hc
		held.Timeout = 0 // the context's deadline bounds it
		hc = &held
	}
	err := c.send(ctx, hc, hostapi.PathPull, req, &r)
	return r, err
}

// CardCredits asks for one card's pending credits.
func (c *Client) CardCredits(ctx context.Context, card string) (hostapi.CardCreditsResponse, error) {
	var r hostapi.CardCreditsResponse
	err := c.call(ctx, hostapi.PathCardCredits, hostapi.CardCreditsRequest{Card: card}, &r)
	return r, err
}

// AuthorizeLoad sends the card's INIT FOR LOAD answer and gets MAC2.
func (c *Client) AuthorizeLoad(ctx context.Context, req hostapi.LoadAuthorizeRequest) (hostapi.LoadAuthorizeResponse, error) {
	var r hostapi.LoadAuthorizeResponse
	err := c.call(ctx, hostapi.PathLoadAuthorize, req, &r)
	return r, err
}

// CompleteLoad reports a load's TAC, or the proof it did not happen.
func (c *Client) CompleteLoad(ctx context.Context, req hostapi.LoadCompleteRequest) (hostapi.LoadCompleteResponse, error) {
	var r hostapi.LoadCompleteResponse
	err := c.call(ctx, hostapi.PathLoadComplete, req, &r)
	return r, err
}

// CardBlock asks for the MAC of APPLICATION BLOCK for a card on the host's
// deny list, over the challenge the card gave (hostapi.PathCardBlock).
func (c *Client) CardBlock(ctx context.Context, req hostapi.CardBlockRequest) (hostapi.CardBlockResponse, error) {
	var r hostapi.CardBlockResponse
	err := c.call(ctx, hostapi.PathCardBlock, req, &r)
	return r, err
}

// UploadJournal sends rows and returns the host's answer: the ids it
// acknowledged and the rows it refused.
func (c *Client) UploadJournal(ctx context.Context, rows []hostapi.JournalRow) (hostapi.JournalResponse, error) {
	var r hostapi.JournalResponse
	err := c.call(ctx, hostapi.PathJournal, hostapi.JournalRequest{Rows: rows}, &r)
	return r, err
}

// Access fetches the door access list when the host's differs from version.
func (c *Client) Access(ctx context.Context, version string) (hostapi.AccessResponse, error) {
	var resp hostapi.AccessResponse
	err := c.call(ctx, hostapi.PathAccess, hostapi.AccessRequest{Version: version}, &resp)
	return resp, err
}

// Heartbeat reports the terminal's state and returns the host's clock.
func (c *Client) Heartbeat(ctx context.Context, req hostapi.HeartbeatRequest) (hostapi.HeartbeatResponse, error) {
	var r hostapi.HeartbeatResponse
	err := c.call(ctx, hostapi.PathHeartbeat, req, &r)
	return r, err
}
