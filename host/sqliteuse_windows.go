package host

import "errors"

// SQLiteHolder cannot tell on Windows, where SQLite takes LockFileEx locks
// that another process cannot query; it says so rather than answer "no
// one". cardhost runs on Linux (docs/windows.md).
func SQLiteHolder(path string) (pid int, err error) {
	return 0, errors.New("cannot tell on Windows whether another process has " + path + " open: stop cardhost first")
}
