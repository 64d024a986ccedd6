//go:build unix

package lockfile

import (
	"os"
	"syscall"
)

// openFlags refuses a symbolic link in place of the lock file.
const openFlags = syscall.O_NOFOLLOW

// errWouldBlock is what lockNB returns when another process holds the lock.
var errWouldBlock error = syscall.EWOULDBLOCK

// lockNB takes flock(2)'s exclusive lock on f without waiting.
func lockNB(f *os.File) error {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
}
