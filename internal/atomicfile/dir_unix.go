//go:build unix

package atomicfile

import (
	"os"
	"path/filepath"
)

// replace renames tmp over path: rename(2) is atomic.
func replace(tmp, path string) error { return os.Rename(tmp, path) }

// syncDir fsyncs the directory of path: a new name is durable only once
// the directory entry is.
func syncDir(path string) error {
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
