//go:build unix

package doctor

import (
	"io/fs"
	"syscall"
)

// modesMean says the file mode bits are what guards the journal and the
// secrets, so the checks judge them.
const modesMean = true

// fileUID is the owner of the file fi describes.
func fileUID(fi fs.FileInfo) (int, bool) {
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(sys.Uid), true
	}
	return 0, false
}
