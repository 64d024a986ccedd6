// Package atomicfile writes a file so that a crash leaves either the old
// content or the new, never half of each: what the simulated cards' and
// PSAM's files need to behave like a card's EEPROM transaction, and what a
// runtime file read by another process needs.
package atomicfile

import (
	"encoding/json"
	"os"
	"path/filepath"
)

// Write writes data to path with mode perm: a temporary file in the same
// directory, fsync, rename over path, fsync of the directory (the rename is
// durable only once the directory entry is).
func Write(path string, data []byte, perm os.FileMode) error {
	tmp, err := writeTemp(path, data, perm)
	if err != nil {
		return err
	}
	if err := replace(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(path)
}

// Create is Write for a file that must not exist yet, such as a key file
// whose loss would strand every card made with it: it fails with an error
// matching fs.ErrExist when path exists, and leaves it alone. The complete
// file appears under path (a hard link of the synced temporary file) or
// nothing does; a failed write never leaves a cut-short file behind.
func Create(path string, data []byte, perm os.FileMode) error {
	tmp, err := writeTemp(path, data, perm)
	if err != nil {
		return err
	}
	// link(2), unlike rename(2), refuses an existing target.
	err = os.Link(tmp, path)
	os.Remove(tmp)
	if err != nil {
		return err
	}
	return syncDir(path)
}

// writeTemp writes data with mode perm to a new temporary file beside path,
// syncs and closes it, and returns its name. On error nothing is left.
func writeTemp(path string, data []byte, perm os.FileMode) (name string, err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = tmp.Chmod(perm); err != nil {
		return "", err
	}
	if _, err = tmp.Write(data); err != nil {
		return "", err
	}
	if err = tmp.Sync(); err != nil {
		return "", err
	}
	if err = tmp.Close(); err != nil {
		return "", err
	}
	return tmp.Name(), nil
}

// WriteJSON is Write of v as indented JSON with a final newline: the form
// of the simulators' card, PSAM and key files, which people read.
func WriteJSON(path string, v any, perm os.FileMode) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return Write(path, append(b, '\n'), perm)
}
