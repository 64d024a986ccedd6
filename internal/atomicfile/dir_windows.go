package atomicfile

import "golang.org/x/sys/windows"

// replace moves tmp over path with MoveFileEx: REPLACE_EXISTING makes it
// the rename over an existing file that os.Rename also does, WRITE_THROUGH
// returns only once the move is on disk, which stands for the directory
// fsync Windows cannot do.
func replace(tmp, path string) error {
	from, err := windows.UTF16PtrFromString(tmp)
	if err != nil {
		return err
	}
	to, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return err
	}
	return windows.MoveFileEx(from, to, windows.MOVEFILE_REPLACE_EXISTING|windows.MOVEFILE_WRITE_THROUGH)
}

// syncDir does nothing: Windows opens no directory for FlushFileBuffers
// (ERROR_ACCESS_DENIED); NTFS journals the directory entry, and Write's
// move is write-through. Create's hard link has no write-through flag,
// so its name is as durable as NTFS's metadata journal makes it.
func syncDir(string) error { return nil }
