package offline

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// SaveAccessList keeps the door access list pulled from the host, so a door
// decides offline, across restarts, from the last list it had. The body is
// package door's JSON; this package stores it and does not interpret it.
func (s *Store) SaveAccessList(ctx context.Context, version string, body []byte) error {
	return s.write(ctx, "save access list", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO access_list (id, version, body, updated) VALUES (1, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET version = excluded.version, body = excluded.body, updated = excluded.updated`,
			version, body, s.now().UnixNano())
		return err
	})
}

// AccessList returns the stored access list and its version; "" and nil
// when none was pulled yet.
func (s *Store) AccessList(ctx context.Context) (version string, body []byte, err error) {
	err = s.db.QueryRowContext(ctx, `SELECT version, body FROM access_list WHERE id = 1`).Scan(&version, &body)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "", nil, nil
	case err != nil:
		return "", nil, fmt.Errorf("offline: access list: %w", err)
	}
	return version, body, nil
}
