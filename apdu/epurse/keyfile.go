package epurse

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"runtime"

	"github.com/cardd/cardd/internal/atomicfile"
)

// WriteMasterKeyFile writes m as JSON to a new file with mode 0600, synced.
// An existing file is never overwritten: every card issued with the old
// keys would become unloadable. The file appears whole or not at all, so a
// failed write (a full disk) reports an error and leaves no cut-short key
// file that a later start would take for the real one.
func WriteMasterKeyFile(path string, m MasterKeys) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Create(path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("master key file %s: %w", path, err)
	}
	return nil
}

// ReadMasterKeyFile reads a master key file. It refuses a file that group or
// others may read (checked on the open file, so the file checked is the file
// read) and unknown fields (a misspelt "dlk" would otherwise leave a zero
// key). Its errors never quote the file's content.
func ReadMasterKeyFile(path string) (MasterKeys, error) {
	var m MasterKeys
	f, err := os.Open(path)
	if err != nil {
		return m, fmt.Errorf("master key file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return m, fmt.Errorf("master key file: %w", err)
	}
	if !st.Mode().IsRegular() {
		return m, fmt.Errorf("master key file %s is not a regular file", path)
	}
	// Windows keeps others out with ACLs; its mode bits say only read-only
	// or not (as config.ReadSecretFile).
	if perm := st.Mode().Perm(); runtime.GOOS != "windows" && perm&0o077 != 0 {
		return m, fmt.Errorf("master key file %s has mode %04o, readable by group or others: run chmod 600 %s", path, perm, path)
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(f); err != nil {
		return m, fmt.Errorf("master key file %s: %w", path, err)
	}
	dec := json.NewDecoder(&buf)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		// json's syntax errors quote no input; type errors name the field only.
		return MasterKeys{}, fmt.Errorf("master key file %s: %w", path, err)
	}
	return m, nil
}
