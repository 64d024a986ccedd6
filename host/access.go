package host

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/cardd/cardd/door"
)

// SetAccessList replaces the door access list that terminals in door mode
// pull. body must be a valid door.List (it is checked here, so a terminal
// never receives one it would refuse). Its version is the hash of its
// content, so setting the same list twice changes nothing for terminals.
func (s *Store) SetAccessList(ctx context.Context, body []byte, actor string, now time.Time) (version string, err error) {
	if _, err := door.ParseList(body); err != nil {
		return "", fmt.Errorf("access list: %w", err)
	}
	sum := sha256.Sum256(body)
	version = hex.EncodeToString(sum[:8])
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO access_list (id, version, body, updated, actor) VALUES (1, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET version = excluded.version, body = excluded.body, updated = excluded.updated, actor = excluded.actor`,
			version, body, dbTime(now), actor)
		return err
	})
	return version, err
}

// AccessList returns the access list and its version; "" and nil when none
// was ever set.
func (s *Store) AccessList(ctx context.Context) (version string, body []byte, err error) {
	err = s.db.QueryRowContext(ctx, `SELECT version, body FROM access_list WHERE id = 1`).Scan(&version, &body)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil, nil
	}
	return version, body, err
}
