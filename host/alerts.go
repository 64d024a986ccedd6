package host

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/cardd/cardd/apdu/epurse"
	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/money"
	"github.com/cardd/cardd/redact"
)

// Balance alerts (issue 17 item 6): when an uploaded purchase takes a
// card's balance from at or above its threshold to below it, the upload's
// transaction queues one webhook (table alerts, keyed by the journal row,
// so a replayed upload queues nothing more), and the AlertSender delivers
// it. The webhook's URL, secret and default threshold are host settings;
// a card may have its own threshold or none (card_alerts).

// Settings of the balance alerts in the settings table.
const (
	settingAlertURL        = "alert_url"
	settingAlertSecret     = "alert_secret"
	settingAlertBelow      = "alert_below_fen"
	settingAlertCardNumber = "alert_card_number"
)

// Card number forms a webhook may carry (AlertConfig.CardNumber).
const (
	AlertNumberMasked = "masked" // first 4 and last 4 digits: the default
	AlertNumberFull   = "full"   // the whole number, for an operator's own system that looks the holder up
)

// Alert states.
const (
	AlertQueued = "queued" // waiting for its (next) delivery
	AlertSent   = "sent"   // the receiver answered 2xx
	AlertFailed = "failed" // given up after AlertSender.MaxAttempts or MaxAge
)

// AlertEvent is the event of a balance alert's payload.
const AlertEvent = "balance_below"

// minAlertSecretLen is the least length of the webhook's HMAC secret: a
// shorter one could be guessed from signed bodies.
const minAlertSecretLen = 16

// AlertConfig is the host's balance-alert setting. The secret signs the
// webhooks; it is never printed (Redacted).
type AlertConfig struct {
	URL      string `json:"url"`
	Secret   string `json:"secret,omitempty"`
	BelowFen int64  `json:"below_fen"` // the default threshold; 0: off for cards without their own
	// CardNumber is AlertNumberMasked or AlertNumberFull.
	CardNumber string `json:"card_number"`
	Actor      string `json:"actor,omitempty"`
	Updated    string `json:"updated,omitempty"`
}

// Redacted is c without its secret, for printing.
func (c AlertConfig) Redacted() AlertConfig {
	if c.Secret != "" {
		c.Secret = "(set)"
	}
	return c
}

// AlertConfigError refuses a balance-alert setting: the field and why.
type AlertConfigError struct {
	Field, Value, Reason string
}

func (e *AlertConfigError) Error() string {
	if e.Value == "" {
		return fmt.Sprintf("%s: %s", e.Field, e.Reason)
	}
	return fmt.Sprintf("%s = %q: %s", e.Field, e.Value, e.Reason)
}

// CheckAlertURL refuses a webhook URL that is not an absolute http or
// https URL with a host.
func CheckAlertURL(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return &AlertConfigError{Field: "url", Value: raw, Reason: err.Error()}
	case u.Scheme != "http" && u.Scheme != "https":
		return &AlertConfigError{Field: "url", Value: raw, Reason: "want an http:// or https:// URL"}
	case u.Host == "":
		return &AlertConfigError{Field: "url", Value: raw, Reason: "the URL names no host"}
	case u.User != nil:
		return &AlertConfigError{Field: "url", Value: raw, Reason: "no user or password in the URL: the body is signed with the secret instead"}
	}
	return nil
}

// check refuses a configuration that could not send what it promises.
func (c AlertConfig) check() error {
	if c.URL != "" {
		if err := CheckAlertURL(c.URL); err != nil {
			return err
		}
	}
	switch {
	case c.BelowFen < 0 || c.BelowFen > epurse.MaxAmount:
		return &AlertConfigError{Field: "below", Value: money.Format(c.BelowFen), Reason: "want 0.00 (off) to " + money.Format(epurse.MaxAmount)}
	case c.CardNumber != AlertNumberMasked && c.CardNumber != AlertNumberFull:
		return &AlertConfigError{Field: "card-number", Value: c.CardNumber, Reason: "want masked or full"}
	case c.Secret != "" && len(c.Secret) < minAlertSecretLen:
		return &AlertConfigError{Field: "secret", Reason: fmt.Sprintf("want at least %d bytes", minAlertSecretLen)}
	case c.URL != "" && c.Secret == "":
		return &AlertConfigError{Field: "secret", Reason: "a webhook URL needs a secret to sign with (--secret-file)"}
	}
	return nil
}

// readAlertConfig reads the setting in q; the zero setting (off, masked)
// when none was ever set.
func readAlertConfig(q querier) (AlertConfig, error) {
	c := AlertConfig{CardNumber: AlertNumberMasked}
	rows, err := q.Query(`SELECT name, value, actor, updated FROM settings WHERE name IN (?, ?, ?, ?)`,
		settingAlertURL, settingAlertSecret, settingAlertBelow, settingAlertCardNumber)
	if err != nil {
		return c, err
	}
	defer rows.Close()
	for rows.Next() {
		var name, value, actor, updated string
		if err := rows.Scan(&name, &value, &actor, &updated); err != nil {
			return c, err
		}
		c.Actor, c.Updated = actor, rfc3339(updated)
		switch name {
		case settingAlertURL:
			c.URL = value
		case settingAlertSecret:
			c.Secret = value
		case settingAlertCardNumber:
			c.CardNumber = value
		case settingAlertBelow:
			if c.BelowFen, err = strconv.ParseInt(value, 10, 64); err != nil {
				return c, fmt.Errorf("setting %s = %q is not an amount in fen", settingAlertBelow, value)
			}
		}
	}
	return c, rows.Err()
}

// AlertConfig returns the balance-alert setting, secret included: print
// its Redacted form.
func (s *Store) AlertConfig(ctx context.Context) (AlertConfig, error) {
	return readAlertConfig(s.db)
}

// SetAlertConfig replaces the balance-alert setting; a bad one
// (*AlertConfigError) changes nothing.
func (s *Store) SetAlertConfig(ctx context.Context, c AlertConfig, actor string, now time.Time) error {
	if c.CardNumber == "" {
		c.CardNumber = AlertNumberMasked
	}
	if err := c.check(); err != nil {
		return err
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		for _, kv := range [][2]string{
			{settingAlertURL, c.URL},
			{settingAlertSecret, c.Secret},
			{settingAlertBelow, strconv.FormatInt(c.BelowFen, 10)},
			{settingAlertCardNumber, c.CardNumber},
		} {
			if _, err := tx.Exec(`INSERT INTO settings (name, value, updated, actor) VALUES (?, ?, ?, ?)
				ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated = excluded.updated, actor = excluded.actor`,
				kv[0], kv[1], dbTime(now), actor); err != nil {
				return err
			}
		}
		return nil
	})
}

// CardAlert is one card's own threshold: BelowFen 0 turns its alerts off
// whatever the default. A card without one follows the default.
type CardAlert struct {
	Card     string `json:"card"`
	BelowFen int64  `json:"below_fen"`
	Actor    string `json:"actor"`
	Updated  string `json:"updated"`
}

// SetCardAlert gives card number its own threshold (0: none for it); clear
// puts it back on the default. An unknown card is ErrNotFound.
func (s *Store) SetCardAlert(ctx context.Context, number string, belowFen int64, clear bool, actor string, now time.Time) error {
	if belowFen < 0 || belowFen > epurse.MaxAmount {
		return &AlertConfigError{Field: "below", Value: money.Format(belowFen), Reason: "want 0.00 (off) to " + money.Format(epurse.MaxAmount)}
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := card(tx, number); err != nil {
			return err
		}
		if clear {
			_, err := tx.Exec(`DELETE FROM card_alerts WHERE card = ?`, number)
			return err
		}
		_, err := tx.Exec(`INSERT INTO card_alerts (card, below_fen, actor, updated) VALUES (?, ?, ?, ?)
			ON CONFLICT (card) DO UPDATE SET below_fen = excluded.below_fen, actor = excluded.actor, updated = excluded.updated`,
			number, belowFen, actor, dbTime(now))
		return err
	})
}

// CardAlert returns a card's own threshold; found is false when the card
// follows the default.
func (s *Store) CardAlert(ctx context.Context, number string) (a CardAlert, found bool, err error) {
	a.Card = number
	err = s.db.QueryRowContext(ctx, `SELECT below_fen, actor, updated FROM card_alerts WHERE card = ?`, number).Scan(&a.BelowFen, &a.Actor, &a.Updated)
	if errors.Is(err, sql.ErrNoRows) {
		return a, false, nil
	}
	a.Updated = rfc3339(a.Updated)
	return a, err == nil, err
}

// AlertPayload is the JSON body of a balance alert's webhook. ID is the
// idempotency key: a receiver that sees it again (a delivery whose answer
// was lost is sent again) ignores it.
type AlertPayload struct {
	ID           string `json:"id"`
	Event        string `json:"event"` // AlertEvent
	Card         string `json:"card"`  // masked (first 4, last 4) unless the setting says full
	Purse        string `json:"purse"`
	BalanceFen   int64  `json:"balance_fen"` // after the purchase
	Balance      string `json:"balance"`     // the same in yuan, "9.50"
	ThresholdFen int64  `json:"threshold_fen"`
	AmountFen    int64  `json:"amount_fen"` // the purchase's
	Terminal     string `json:"terminal"`
	Row          string `json:"row"`     // the journal row's id at the terminal
	Time         string `json:"time"`    // the purchase's time, as the terminal recorded it
	Created      string `json:"created"` // when the host queued the alert, RFC 3339
}

// alertID is the idempotency key of the alert of a journal row: one row,
// one alert, however often it is uploaded.
func alertID(terminal, rowID string) string { return "balance:" + terminal + ":" + rowID }

// alertThreshold is the threshold in force for card number: its own, or
// the default.
func alertThreshold(q querier, number string, def int64) (int64, error) {
	var below int64
	err := q.QueryRow(`SELECT below_fen FROM card_alerts WHERE card = ?`, number).Scan(&below)
	if errors.Is(err, sql.ErrNoRows) {
		return def, nil
	}
	return below, err
}

// crossesBelow says whether a purchase from before to after takes the
// balance below threshold: from at or above it to under it. A balance
// already below stays quiet, so one low card is not an alert per meal.
func crossesBelow(before, after, threshold int64) bool {
	return threshold > 0 && before >= threshold && after < threshold
}

// queueBalanceAlert queues, in the upload's transaction tx, the alert of
// purchase row r just stored done (its stored state was was, "" when new),
// when it crosses its card's threshold and a webhook is configured. A row
// already queued (its id) adds nothing.
func queueBalanceAlert(tx *sql.Tx, terminal string, r hostapi.JournalRow, was string, now time.Time) error {
	// A closing debit (close.go) takes the balance to be refunded: no
	// news of a low balance for the holder who closed the card.
	if r.Kind != rowPurchase || r.State != rowDone || was == rowDone || closingRow(r) {
		return nil
	}
	cfg, err := readAlertConfig(tx)
	if err != nil || cfg.URL == "" {
		return err
	}
	threshold, err := alertThreshold(tx, r.Card, cfg.BelowFen)
	after := r.BalanceFen - r.AmountFen
	if err != nil || !crossesBelow(r.BalanceFen, after, threshold) {
		return err
	}
	// A TAC the card's key does not give (checked just before, in this
	// transaction) is a row the card never made: its balance is no news
	// for the holder, and its alarm is the operator's.
	var check string
	if err := tx.QueryRow(`SELECT tac_check FROM journal WHERE terminal = ? AND id = ?`, terminal, r.ID).Scan(&check); err != nil || check == tacBad {
		return err
	}
	p := AlertPayload{ID: alertID(terminal, r.ID), Event: AlertEvent, Card: redact.CardNumber(r.Card), Purse: r.Purse,
		BalanceFen: after, Balance: money.Format(after), ThresholdFen: threshold, AmountFen: r.AmountFen,
		Terminal: terminal, Row: r.ID, Time: r.Time, Created: now.UTC().Format(time.RFC3339)}
	if cfg.CardNumber == AlertNumberFull {
		p.Card = r.Card
	}
	body, err := json.Marshal(p)
	if err != nil {
		return err
	}
	_, err = tx.Exec(`INSERT INTO alerts (id, card, terminal, row_id, body, created, state, next_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO NOTHING`, p.ID, r.Card, terminal, r.ID, string(body), dbTime(now), AlertQueued, dbTime(now))
	return err
}

// Alert is a queued balance alert as operators see it.
type Alert struct {
	ID        string `json:"id"`
	Card      string `json:"card"` // masked
	Terminal  string `json:"terminal"`
	Row       string `json:"row"`
	State     string `json:"state"`
	Attempts  int    `json:"attempts"`
	Created   string `json:"created"`
	NextAt    string `json:"next_at,omitempty"` // a queued alert's next attempt
	Done      string `json:"done,omitempty"`    // when it was sent or given up
	LastError string `json:"last_error,omitempty"`
	Body      string `json:"body"`
}

// Alerts lists the balance alerts, newest first; state "" lists all.
func (s *Store) Alerts(ctx context.Context, state string) ([]Alert, error) {
	q := `SELECT id, card, terminal, row_id, state, attempts, created, next_at, done, last_error, body FROM alerts`
	var args []any
	if state != "" {
		q += ` WHERE state = ?`
		args = append(args, state)
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY created DESC, id`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	list := []Alert{}
	for rows.Next() {
		var a Alert
		if err := rows.Scan(&a.ID, &a.Card, &a.Terminal, &a.Row, &a.State, &a.Attempts, &a.Created, &a.NextAt, &a.Done, &a.LastError, &a.Body); err != nil {
			return nil, err
		}
		a.Card = redact.CardNumber(a.Card)
		a.Created, a.Done = rfc3339(a.Created), rfc3339(a.Done)
		a.NextAt = rfc3339(a.NextAt)
		if a.State != AlertQueued {
			a.NextAt = ""
		}
		list = append(list, a)
	}
	return list, rows.Err()
}

// AlertCounts returns how many alerts wait for delivery and how many
// failed, for the metrics.
func (s *Store) AlertCounts(ctx context.Context) (queued, failed int, err error) {
	err = s.db.QueryRowContext(ctx, `SELECT coalesce(sum(CASE WHEN state = ? THEN 1 ELSE 0 END), 0),
		coalesce(sum(CASE WHEN state = ? THEN 1 ELSE 0 END), 0) FROM alerts`, AlertQueued, AlertFailed).Scan(&queued, &failed)
	return queued, failed, err
}
