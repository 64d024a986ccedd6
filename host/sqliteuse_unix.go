//go:build unix

package host

import (
	"errors"
	"io"
	"os"
	"syscall"
)

// shmDMS is the byte of an SQLite database's -shm file on which every
// connection in WAL mode holds a read lock for as long as it is open
// (UNIX_SHM_DMS in SQLite's os_unix.c: (22+8)*4 + 8).
const shmDMS = 128

// SQLiteHolder returns the pid of another process that has the SQLite
// database at path open, or 0. cardhost db copy asks it first: a host
// still running on the file would write on after the copy, and that would
// be lost. It reads the lock without taking it.
//
// Call it before this process opens the database: closing the file it
// opens for the probe drops every POSIX lock this process holds on it,
// SQLite's own included.
func SQLiteHolder(path string) (pid int, err error) {
	f, err := os.Open(path + "-shm")
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil // no connection in WAL mode has it open
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: io.SeekStart, Start: shmDMS, Len: 1}
	if err := syscall.FcntlFlock(f.Fd(), syscall.F_GETLK, &lk); err != nil {
		return 0, err
	}
	if lk.Type == syscall.F_UNLCK {
		return 0, nil
	}
	return int(lk.Pid), nil
}
