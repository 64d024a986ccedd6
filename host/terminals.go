package host

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cardd/cardd/hostapi"
)

// ErrExists is wrapped by the errors of adding what is already there: a
// terminal, a card, a key file.
var ErrExists = errors.New("already exists")

// ErrNotFound is wrapped by the errors of naming what is not there: a card,
// a credit, a terminal.
var ErrNotFound = errors.New("not found")

// CanonicalTerminalID checks a terminal id (12 hex digits, the 6-byte
// e-purse terminal id) and returns it in upper case, the form the host keys
// terminals by. The terminal's config accepts either case, so the host does.
func CanonicalTerminalID(id string) (string, error) {
	if len(id) != 12 {
		return "", fmt.Errorf("terminal id %q: want 12 hex digits, like 000000000001", id)
	}
	if _, err := hex.DecodeString(id); err != nil {
		return "", fmt.Errorf("terminal id %q: want 12 hex digits, like 000000000001", id)
	}
	return strings.ToUpper(id), nil
}

// terminalBytes is the 6-byte terminal id that goes into the MAC inputs.
func terminalBytes(id string) [6]byte {
	var t [6]byte
	hex.Decode(t[:], []byte(id)) // checked by CanonicalTerminalID
	return t
}

// NewTerminalSecret makes a terminal's HMAC secret: 32 random bytes as 64
// hex digits. The HMAC key is that text itself, exactly what the terminal's
// config.ReadSecretFile returns from the file it is written to.
func NewTerminalSecret() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random terminal secret: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// AddTerminal registers a terminal with its secret (see NewTerminalSecret).
func (s *Store) AddTerminal(ctx context.Context, id, secret string, now time.Time) error {
	id, err := CanonicalTerminalID(id)
	if err != nil {
		return err
	}
	if len(secret) < 32 {
		return errors.New("terminal secret: want at least 32 characters")
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRow(`SELECT count(*) FROM terminals WHERE id = ?`, id).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("terminal %s: %w", id, ErrExists)
		}
		_, err := tx.Exec(`INSERT INTO terminals (id, secret, created) VALUES (?, ?, ?)`, id, secret, dbTime(now))
		return err
	})
}

// Terminal is a registered terminal as the last heartbeat left it.
type Terminal struct {
	ID         string            `json:"id"`
	Created    string            `json:"created"`   // RFC 3339
	LastSeen   string            `json:"last_seen"` // RFC 3339; "" before the first heartbeat
	Version    string            `json:"version,omitempty"`
	QueueDepth int               `json:"queue_depth"`
	Readers    []string          `json:"readers,omitempty"`
	Printer    string            `json:"printer,omitempty"`
	Extra      map[string]string `json:"extra,omitempty"`
	Merchant   string            `json:"merchant,omitempty"` // SetTerminalMerchant
}

// Terminals lists the registered terminals by id; secrets are not returned.
func (s *Store) Terminals(ctx context.Context) ([]Terminal, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, created, coalesce(last_seen, ''), coalesce(version, ''),
		coalesce(queue_depth, 0), coalesce(readers, ''), coalesce(printer, ''), coalesce(extra, ''), merchant
		FROM terminals ORDER BY id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Terminal
	for rows.Next() {
		var t Terminal
		var readers, extra string
		if err := rows.Scan(&t.ID, &t.Created, &t.LastSeen, &t.Version, &t.QueueDepth, &readers, &t.Printer, &extra, &t.Merchant); err != nil {
			return nil, err
		}
		t.Created, t.LastSeen = rfc3339(t.Created), rfc3339(t.LastSeen)
		if readers != "" {
			_ = json.Unmarshal([]byte(readers), &t.Readers) // written by Heartbeat; a bad value shows as none
		}
		if extra != "" {
			_ = json.Unmarshal([]byte(extra), &t.Extra)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// terminalSecret returns the HMAC key of a terminal; false when unknown.
func (s *Store) terminalSecret(ctx context.Context, id string) ([]byte, bool, error) {
	var secret string
	err := s.db.QueryRowContext(ctx, `SELECT secret FROM terminals WHERE id = ?`, id).Scan(&secret)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return []byte(secret), true, nil
}

// spendNonce records a terminal's nonce durably and reports whether it had
// been used already, by this host process or any other on the same
// database: the insert is one statement that the primary key decides, so
// two instances given the same request cannot both spend its nonce.
// Nonces older than 2*hostapi.MaxSkew are purged now and then: a request
// that old is refused as stale before its nonce is looked at, so
// forgetting it cannot let a replay through.
func (s *Store) spendNonce(ctx context.Context, terminal, nonce string, ts, now time.Time) (seen bool, err error) {
	if err := s.purgeNonces(ctx, now); err != nil {
		return false, err
	}
	res, err := s.db.ExecContext(ctx, `INSERT INTO nonces (terminal, nonce, ts) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, terminal, nonce, ts.Unix())
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 0, err
}

// noncePurgeEvery is how often a host process deletes stale nonces: a
// delete per request would have every request of every instance contend
// for the same rows.
const noncePurgeEvery = time.Minute

// purgeNonces deletes the nonces too old to matter, at most once per
// noncePurgeEvery in this process.
func (s *Store) purgeNonces(ctx context.Context, now time.Time) error {
	s.purgeMu.Lock()
	due := now.Sub(s.lastPurge) >= noncePurgeEvery || now.Before(s.lastPurge)
	if due {
		s.lastPurge = now
	}
	s.purgeMu.Unlock()
	if !due {
		return nil
	}
	_, err := s.db.ExecContext(ctx, `DELETE FROM nonces WHERE ts < ?`, now.Add(-2*hostapi.MaxSkew).Unix())
	return err
}

// heartbeat stores what a terminal reported about itself.
func (s *Store) heartbeat(ctx context.Context, terminal string, hb hostapi.HeartbeatRequest, now time.Time) error {
	readers, err := json.Marshal(hb.Readers)
	if err != nil {
		return err
	}
	extra, err := json.Marshal(hb.Extra)
	if err != nil {
		return err
	}
	_, err = s.db.ExecContext(ctx, `UPDATE terminals SET last_seen = ?, version = ?, queue_depth = ?, readers = ?, printer = ?, extra = ?
		WHERE id = ?`, dbTime(now), hb.Version, hb.QueueDepth, string(readers), hb.Printer, string(extra), terminal)
	return err
}
