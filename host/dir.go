package host

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// The files of a host directory (cardhost --dir).
const (
	DBFile      = "host.db"      // the Store
	MastersFile = "masters.json" // the issuer master keys: the HSM stand-in
)

// ErrNotInitialized is wrapped when a directory has no host database.
var ErrNotInitialized = errors.New("not a cardhost directory")

// InitDir prepares a host directory: the directory itself (mode 0700), a
// new database and new random issuer master keys (mode 0600). The database
// is the directory's SQLite file when db is "", else the store db names
// (Open), whose schema is created. Existing keys are never overwritten
// (ErrExists), and new keys are refused beside a database that already
// holds cards, which were issued with other keys.
func InitDir(dir, db string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("host directory: %w", err)
	}
	masters := filepath.Join(dir, MastersFile)
	if _, err := os.Lstat(masters); err == nil {
		return fmt.Errorf("%s holds issuer master keys already; refusing to overwrite them (every card issued with them would become unloadable): %w", masters, ErrExists)
	}
	if db == "" {
		db = filepath.Join(dir, DBFile)
	}
	st, err := Open(db)
	if err != nil {
		return err
	}
	defer st.Close()
	var cards int
	if err := st.db.QueryRowContext(context.Background(), `SELECT count(*) FROM cards`).Scan(&cards); err != nil {
		return err
	}
	if cards > 0 {
		return fmt.Errorf("%s has %d cards issued with master keys that are gone; restore %s from a backup instead", st.Path(), cards, masters)
	}
	m, err := GenerateMasterKeys()
	if err != nil {
		return err
	}
	return WriteMasterKeys(masters, m)
}

// OpenDir opens the database of a host directory made by InitDir: its
// SQLite file when db is "", else the store db names.
func OpenDir(dir, db string) (*Store, error) {
	if db != "" {
		if _, err := os.Stat(filepath.Join(dir, MastersFile)); errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s: %w (no %s): run cardhost init --dir %s", dir, ErrNotInitialized, MastersFile, dir)
		}
		return Open(db)
	}
	path := filepath.Join(dir, DBFile)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w (no %s): run cardhost init --dir %s", dir, ErrNotInitialized, DBFile, dir)
	}
	return Open(path)
}

// LoadDirKeys reads the issuer master keys of a host directory.
func LoadDirKeys(dir string) (*Keys, error) {
	return LoadKeys(filepath.Join(dir, MastersFile))
}
