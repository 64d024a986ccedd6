package host

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	gosync "sync"
	"time"
)

// Webhook headers. AlertSignatureHeader is "t=UNIX,v1=HEX": HEX is
// HMAC-SHA256 with the secret over "UNIX." followed by the body, so a
// receiver checks both the body and when it was signed (and refuses an old
// signature: a replay).
const (
	AlertSignatureHeader = "Cardd-Signature"
	AlertIDHeader        = "Cardd-Alert-Id"
)

// SignAlert is the AlertSignatureHeader value of body signed at t.
func SignAlert(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(alertMAC(secret, ts, body))
}

func alertMAC(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte("."))
	m.Write(body)
	return m.Sum(nil)
}

// ErrAlertSignature is a webhook whose signature does not verify.
var ErrAlertSignature = errors.New("alert signature")

// VerifyAlert checks a webhook's AlertSignatureHeader value against its
// body, and that it was signed within tolerance of now: the receiver's side
// of SignAlert, in Go.
func VerifyAlert(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts, sig string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: no t=UNIX time in %q", ErrAlertSignature, header)
	}
	got, err := hex.DecodeString(sig)
	if err != nil || !hmac.Equal(got, alertMAC(secret, ts, body)) {
		return fmt.Errorf("%w: v1 does not verify", ErrAlertSignature)
	}
	if d := now.Sub(time.Unix(unix, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: signed at %s, more than %v from now: a replay?", ErrAlertSignature, time.Unix(unix, 0).UTC().Format(time.RFC3339), tolerance)
	}
	return nil
}

// AlertSender delivers the queued balance alerts to the configured
// webhook: one attempt at a time per alert, claimed with a lease in the
// store, so host instances on one PostgreSQL database never send one alert
// at the same time; a delivery that fails is tried again after a doubling
// pause, up to MaxAttempts or MaxAge, then marked failed.
//
// Delivery is at least once: a host stopped between the receiver's answer
// and its record sends the alert again after the lease; the payload's id
// lets the receiver drop the copy.
type AlertSender struct {
	Store  *Store
	Logger *slog.Logger
	// Client posts the webhooks; nil is a client with Timeout.
	Client *http.Client
	// Timeout bounds one delivery (connection, request, answer).
	Timeout time.Duration
	// Poll is how often the queue is looked at.
	Poll time.Duration
	// Backoff is the pause after the first failure, doubling after each
	// next one up to MaxBackoff.
	Backoff, MaxBackoff time.Duration
	// MaxAttempts and MaxAge: past either an alert is failed.
	MaxAttempts int
	MaxAge      time.Duration

	cancel context.CancelFunc
	wg     gosync.WaitGroup
}

// Defaults of AlertSender's zero fields.
const (
	DefaultAlertTimeout     = 10 * time.Second
	DefaultAlertPoll        = 2 * time.Second
	DefaultAlertBackoff     = 10 * time.Second
	DefaultAlertMaxBackoff  = 10 * time.Minute
	DefaultAlertMaxAttempts = 12
	DefaultAlertMaxAge      = 24 * time.Hour
)

func (a *AlertSender) defaults() {
	if a.Logger == nil {
		a.Logger = slog.Default()
	}
	if a.Timeout <= 0 {
		a.Timeout = DefaultAlertTimeout
	}
	if a.Client == nil {
		// A redirect is a failure, not a second receiver the secret
		// never named.
		a.Client = &http.Client{Timeout: a.Timeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if a.Poll <= 0 {
		a.Poll = DefaultAlertPoll
	}
	if a.Backoff <= 0 {
		a.Backoff = DefaultAlertBackoff
	}
	if a.MaxBackoff <= 0 {
		a.MaxBackoff = DefaultAlertMaxBackoff
	}
	if a.MaxAttempts <= 0 {
		a.MaxAttempts = DefaultAlertMaxAttempts
	}
	if a.MaxAge <= 0 {
		a.MaxAge = DefaultAlertMaxAge
	}
}

// Start runs the sender until Stop or ctx's end.
func (a *AlertSender) Start(ctx context.Context) {
	a.defaults()
	ctx, a.cancel = context.WithCancel(ctx)
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		tick := time.NewTicker(a.Poll)
		defer tick.Stop()
		for {
			if _, err := a.SendDue(ctx, time.Now); err != nil && ctx.Err() == nil {
				a.Logger.Warn("balance alerts", "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
}

// Stop ends the sender and waits for its delivery in flight (bounded by
// Timeout).
func (a *AlertSender) Stop() {
	if a.cancel != nil {
		a.cancel()
	}
	a.wg.Wait()
}

// claimed is an alert a sender holds the lease of.
type claimed struct {
	id, body string
	attempts int
	created  time.Time
}

// SendDue delivers every alert due at now() once; it returns how many it
// tried. Without a configured URL it sends nothing (the alerts wait).
func (a *AlertSender) SendDue(ctx context.Context, now func() time.Time) (int, error) {
	a.defaults()
	n := 0
	for ctx.Err() == nil {
		cfg, err := a.Store.AlertConfig(ctx)
		if err != nil || cfg.URL == "" {
			return n, err
		}
		c, ok, err := a.claim(ctx, now())
		if err != nil || !ok {
			return n, err
		}
		n++
		sendErr := a.post(ctx, cfg, c, now())
		if err := a.record(ctx, c, sendErr, now()); err != nil {
			return n, err
		}
	}
	return n, nil
}

// claim takes the lease of the oldest due alert nobody holds: one
// transaction (serializable on PostgreSQL), so two senders never both
// take it.
func (a *AlertSender) claim(ctx context.Context, now time.Time) (claimed, bool, error) {
	var c claimed
	var found bool
	err := a.Store.inTx(ctx, func(tx *sql.Tx) error {
		found = false
		var created string
		err := tx.QueryRow(`SELECT id, body, attempts, created FROM alerts WHERE state = ? AND next_at <= ? AND lease_until <= ?
			ORDER BY next_at, id LIMIT 1`, AlertQueued, dbTime(now), dbTime(now)).Scan(&c.id, &c.body, &c.attempts, &created)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		c.attempts++
		c.created = parseDBTime(created)
		// The lease outlasts a delivery's bound: it lapses only when its
		// sender died.
		lease := now.Add(a.Timeout + 30*time.Second)
		_, err = tx.Exec(`UPDATE alerts SET attempts = ?, lease_until = ? WHERE id = ?`, c.attempts, dbTime(lease), c.id)
		found = err == nil
		return err
	})
	return c, found, err
}

// post delivers one alert, signed; nil when the receiver answered 2xx.
func (a *AlertSender) post(ctx context.Context, cfg AlertConfig, c claimed, now time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, a.Timeout)
	defer cancel()
	body := []byte(c.body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cfg.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "cardhost")
	req.Header.Set(AlertIDHeader, c.id)
	req.Header.Set(AlertSignatureHeader, SignAlert([]byte(cfg.Secret), now, body))
	resp, err := a.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // the connection goes back to the pool
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("the receiver answered %s", resp.Status)
	}
	return nil
}

// record writes an attempt's outcome: sent, due again after the backoff,
// or failed for good. Only the lease's holder (its attempt) writes.
func (a *AlertSender) record(ctx context.Context, c claimed, sendErr error, now time.Time) error {
	state, next, done, errText := AlertSent, now, dbTime(now), ""
	if sendErr != nil {
		errText = sendErr.Error()
		pause := a.Backoff << min(c.attempts-1, 30)
		if pause <= 0 || pause > a.MaxBackoff {
			pause = a.MaxBackoff
		}
		next = now.Add(pause)
		state, done = AlertQueued, ""
		if c.attempts >= a.MaxAttempts || next.Sub(c.created) > a.MaxAge {
			state, done = AlertFailed, dbTime(now)
		}
	}
	log := a.Logger.With("alert", c.id, "attempt", c.attempts)
	switch {
	case state == AlertSent:
		log.Info("balance alert sent")
	case state == AlertFailed:
		log.Error("balance alert failed: given up", "err", errText)
	default:
		log.Warn("balance alert not delivered: will retry", "err", errText, "next", next.UTC().Format(time.RFC3339))
	}
	// The delivery happened: its record is written even when the sender
	// is stopping now, within its own bound.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.Timeout)
	defer cancel()
	return a.Store.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(`UPDATE alerts SET state = ?, next_at = ?, lease_until = '', last_error = ?, done = ? WHERE id = ? AND attempts = ?`,
			state, dbTime(next), errText, done, c.id, c.attempts)
		return err
	})
}
