// Package jsonfile loads and saves the JSON files that people read and
// edit: the simulated cards', the simulated PSAM's. Every one is read the
// same strict way, so that a misspelt field, a second value pasted after the
// first or an impossible value is refused with the file's name, never half
// read; and written the same atomic way, so that a crash leaves the old file
// or the new one, as a card's EEPROM transaction does.
package jsonfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"

	"github.com/cardd/cardd/internal/atomicfile"
	"github.com/cardd/cardd/internal/strictjson"
)

// Validator is a file's content that can tell whether it could exist.
type Validator interface {
	Validate() error
}

// Options are what a kind of file asks of Load beyond the strict decoding.
type Options struct {
	// Private refuses a file that is not a regular file, or that group or
	// others may read: a file that holds a master key.
	Private bool
}

// Error is a file that could not be loaded or saved. Its text names the
// kind and the path, never the content (the files hold keys).
type Error struct {
	Kind string // "card file", "PSAM file"
	Path string
	Err  error
}

func (e *Error) Error() string {
	// os's errors name the path too: say it once.
	if pe, ok := e.Err.(*fs.PathError); ok && pe.Path == e.Path {
		return fmt.Sprintf("%s %s: %s: %v", e.Kind, e.Path, pe.Op, pe.Err)
	}
	return fmt.Sprintf("%s %s: %v", e.Kind, e.Path, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// ErrEmpty is a file with no JSON value in it.
var ErrEmpty = errors.New("the file is empty")

// Load reads the file at path, of the kind named (for errors), into a copy
// of defaults, whose fields stand for those the file leaves out. The file
// must hold exactly one JSON value, every key a field of T spelt exactly
// (strictjson: no unknown, case-folded or repeated key), and what it decodes
// to must pass Validate. Nothing is returned otherwise.
func Load[T any, P interface {
	*T
	Validator
}](path, kind string, defaults T, opt Options) (*T, error) {
	b, err := read(path, opt)
	if err != nil {
		return nil, &Error{Kind: kind, Path: path, Err: err}
	}
	v := defaults
	if err := strictjson.Unmarshal(b, &v); err != nil {
		if errors.Is(err, strictjson.ErrEmpty) {
			err = ErrEmpty
		}
		return nil, &Error{Kind: kind, Path: path, Err: err}
	}
	if err := P(&v).Validate(); err != nil {
		return nil, &Error{Kind: kind, Path: path, Err: err}
	}
	return &v, nil
}

// read returns the file's bytes, checking first what opt asks of the file.
func read(path string, opt Options) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if opt.Private {
		st, err := f.Stat()
		if err != nil {
			return nil, err
		}
		if !st.Mode().IsRegular() {
			return nil, errors.New("not a regular file")
		}
		// Windows keeps others out with ACLs; its mode bits say only
		// read-only or not (as config.ReadSecretFile).
		if perm := st.Mode().Perm(); runtime.GOOS != "windows" && perm&0o077 != 0 {
			return nil, fmt.Errorf("mode %04o, readable by group or others: run chmod 600 %s", perm, path)
		}
	}
	return io.ReadAll(f)
}

// Save writes v to path as indented JSON with mode perm, atomically
// (atomicfile.WriteJSON): a crash leaves either the old file or the new one.
func Save(path, kind string, v any, perm os.FileMode) error {
	if err := atomicfile.WriteJSON(path, v, perm); err != nil {
		return &Error{Kind: kind, Path: path, Err: err}
	}
	return nil
}
