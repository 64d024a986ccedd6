// Package migrate brings a SQLite schema up to date: ordered steps, each in
// its own transaction with its number, recorded in PRAGMA user_version. The
// journal of cardd and the store of cardhost both use it.
package migrate

import (
	"context"
	"database/sql"
	"fmt"
)

// InTx runs fn in one write transaction and commits it when fn returns nil,
// rolls it back otherwise. A store passes its own (cardd's serializes its
// writers); WithDB is the plain one.
type InTx func(ctx context.Context, fn func(*sql.Tx) error) error

// WithDB returns an InTx on db. The transaction should take the write lock at
// BEGIN (go-sqlite3's _txlock=immediate): then two processes opening a new
// file at once wait for each other instead of both reading version 0.
func WithDB(db *sql.DB) InTx {
	return func(ctx context.Context, fn func(*sql.Tx) error) error {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("begin transaction: %w", err)
		}
		if err := fn(tx); err != nil {
			tx.Rollback()
			return err
		}
		return tx.Commit()
	}
}

// NewerError is returned for a database whose schema is newer than the
// steps the code knows: a newer release wrote it, and an older one must not
// run on it. The database is left untouched.
type NewerError struct {
	Version int // the database's user_version
	Known   int // the version the code writes: len(steps)
}

// Error says both versions; callers add what the operator should do.
func (e *NewerError) Error() string {
	return fmt.Sprintf("database schema version %d is newer than this code understands (%d)", e.Version, e.Known)
}

// Run brings the database to version len(steps): steps[i] takes it from
// user_version i to i+1. Steps are only ever appended, never edited, since
// databases in the field have already run them.
//
// Each step and its version number commit together (user_version lives in
// the file header, which is part of the transaction), so a crash or a
// failing step leaves the database at a whole version that the next Run
// carries on from. The version is read again inside each transaction, so a
// second process that got there first is not run over.
func Run(ctx context.Context, inTx InTx, steps []string) error {
	return RunVersioned(ctx, inTx, UserVersion{}, steps)
}

// Version is where a database keeps the number of the last step it ran.
// Get is the first statement of each step's transaction and Set the last.
type Version interface {
	Get(ctx context.Context, tx *sql.Tx) (int, error)
	Set(ctx context.Context, tx *sql.Tx, v int) error
}

// UserVersion keeps the version in SQLite's PRAGMA user_version.
type UserVersion struct{}

// Get reads PRAGMA user_version.
func (UserVersion) Get(ctx context.Context, tx *sql.Tx) (int, error) {
	var v int
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return 0, fmt.Errorf("read user_version: %w", err)
	}
	return v, nil
}

// Set writes PRAGMA user_version.
func (UserVersion) Set(ctx context.Context, tx *sql.Tx, v int) error {
	// PRAGMA takes no parameters; v is our own integer.
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", v)); err != nil {
		return fmt.Errorf("set user_version: %w", err)
	}
	return nil
}

// RunVersioned is Run with the version kept by ver: a database other than
// SQLite has no user_version.
func RunVersioned(ctx context.Context, inTx InTx, ver Version, steps []string) error {
	for {
		done := false
		err := inTx(ctx, func(tx *sql.Tx) error {
			v, err := ver.Get(ctx, tx)
			if err != nil {
				return err
			}
			switch {
			case v > len(steps):
				return &NewerError{Version: v, Known: len(steps)}
			case v < 0:
				return fmt.Errorf("database schema version %d is invalid", v)
			case v == len(steps):
				done = true
				return nil
			}
			if _, err := tx.ExecContext(ctx, steps[v]); err != nil {
				return fmt.Errorf("migration to version %d: %w", v+1, err)
			}
			if err := ver.Set(ctx, tx, v+1); err != nil {
				return fmt.Errorf("migration to version %d: %w", v+1, err)
			}
			return nil
		})
		if err != nil || done {
			return err
		}
	}
}
