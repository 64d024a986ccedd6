package lockfile

import (
	"os"

	"golang.org/x/sys/windows"
)

// openFlags is empty: Windows has no O_NOFOLLOW, and the lock files live
// under %ProgramData%\cardd, which only administrators may write.
const openFlags = 0

// errWouldBlock is what lockNB returns when another process holds the lock.
var errWouldBlock error = windows.ERROR_LOCK_VIOLATION

// lockOffset is the byte locked: far past the pid, because Windows locks
// are mandatory and a lock over the pid would keep others from reading it.
const lockOffset = 1 << 62

// lockNB takes LockFileEx's exclusive lock on one byte of f without
// waiting. Windows drops it when the handle closes or the process ends.
func lockNB(f *os.File) error {
	ol := windows.Overlapped{Offset: uint32(lockOffset & 0xffffffff), OffsetHigh: uint32(lockOffset >> 32)}
	return windows.LockFileEx(windows.Handle(f.Fd()),
		windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, &ol)
}
