// Package lockfile is the exclusive lock a process holds on a file beside
// what it alone may drive: the store of a daemon, the printer of a
// terminal. The lock is flock(2), so it ends with the process however the
// process ends, and a lock file left behind by a killed process holds
// nothing. On Windows it is LockFileEx on one byte far past the pid, which
// also ends with the process and leaves the pid readable. The holder writes
// its pid into the file so that whoever finds it held can say which process
// to look at.
package lockfile

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
)

// HeldError is returned when another process holds the lock.
type HeldError struct {
	// Path is the lock file.
	Path string
	// PID is the holder's process id as it wrote it, 0 when unknown (the
	// holder took the lock and has not written it yet, or never does).
	PID int
}

// Error names the lock file and, when known, the process holding it.
func (e *HeldError) Error() string {
	if e.PID > 0 {
		return fmt.Sprintf("%s is held by pid %d", e.Path, e.PID)
	}
	return fmt.Sprintf("%s is held by another process", e.Path)
}

// Lock is a lock this process holds. It lasts until Release or the end of
// the process.
type Lock struct {
	f *os.File
}

// Acquire takes the lock at path without waiting, creating the file (0600)
// if needed, and writes this process's pid into it. It returns a
// *HeldError when another process holds it.
func Acquire(path string) (*Lock, error) {
	// openFlags: O_NOFOLLOW where there is one: a link planted where the
	// lock goes (a store in a folder others can write) must not make a root
	// daemon truncate its target.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|openFlags, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock file: %w", err)
	}
	l, err := take(f)
	if err != nil {
		return nil, err
	}
	// The pid is for people, not for the lock: a failure to write it is
	// not a failure to lock.
	if f.Truncate(0) == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return l, nil
}

// AcquireExisting takes the lock at path without waiting, creating nothing
// and writing nothing: for a check run by another user (root), which must
// not leave a lock file the owner's user cannot open, and needs no write
// access to lock. It returns an error matching fs.ErrNotExist when there is
// no lock file, and a *HeldError when another process holds it.
func AcquireExisting(path string) (*Lock, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	return take(f)
}

// take locks f, which it closes on failure.
func take(f *os.File) (*Lock, error) {
	if err := lockNB(f); err != nil {
		defer f.Close()
		if errors.Is(err, errWouldBlock) {
			return nil, &HeldError{Path: f.Name(), PID: readPID(f)}
		}
		return nil, fmt.Errorf("locking %s: %w", f.Name(), err)
	}
	return &Lock{f: f}, nil
}

// readPID reads the pid the holder wrote, 0 when there is none.
func readPID(f *os.File) int {
	b := make([]byte, 32)
	n, _ := f.ReadAt(b, 0)
	pid, err := strconv.Atoi(string(bytes.TrimSpace(b[:n])))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

// Holder reports whether a process holds the lock at path, and its pid (0
// when unknown), without keeping the lock or creating the file. A missing
// file is not held.
func Holder(path string) (pid int, held bool, err error) {
	l, err := AcquireExisting(path)
	var he *HeldError
	switch {
	case errors.As(err, &he):
		return he.PID, true, nil
	case errors.Is(err, os.ErrNotExist):
		return 0, false, nil
	case err != nil:
		return 0, false, err
	}
	return 0, false, l.Release()
}

// Release gives the lock up. The file stays: removing it would let a
// process that opened it just before lock a file no longer in the
// directory, beside one that locks the new file.
func (l *Lock) Release() error {
	return l.f.Close()
}
