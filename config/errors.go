package config

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
)

// ValidationError is one bad configuration key. Its message is one line:
//
//	config: reader.card_pattern = "[": invalid regexp: error parsing regexp: missing closing ]: `[`
//
// Value is the offending value as the operator wrote it (for a list, the bad
// entry; empty when the key is missing). Key is the dotted key, as in the file.
type ValidationError struct {
	Key    string
	Value  string
	Reason string
}

// Error returns the single-line message. Newlines that a value or a wrapped
// error might carry are flattened, because the daemon prints one line per key.
func (e *ValidationError) Error() string {
	return oneLine(fmt.Sprintf("config: %s = %q: %s", e.Key, e.Value, e.Reason))
}

// FileError is a configuration file that cannot be read (missing, permission
// denied, a directory) or parsed (bad YAML). Its message is one line naming the
// file and the cause:
//
//	config: file "/etc/cardd/cardd.yaml": open: permission denied
//	config: file "/etc/cardd/cardd.yaml": yaml: line 3: could not find expected ':'
//
// Err is the underlying error, so errors.Is(err, fs.ErrNotExist) works.
type FileError struct {
	Path string
	Err  error
}

// Error returns the single-line message.
func (e *FileError) Error() string {
	return oneLine(fmt.Sprintf("config: file %q: %s", e.Path, causeOf(e.Err)))
}

// Unwrap returns the underlying error.
func (e *FileError) Unwrap() error { return e.Err }

// SecretFileError is a secret file that [ReadSecretFile] refuses: unreadable,
// not a regular file, empty, or open to group or others. For the last, Err is
// nil and the message tells the fix:
//
//	config: secret file "/etc/cardd/host.secret" has mode 0644, readable by group or others: run chmod 600 /etc/cardd/host.secret
type SecretFileError struct {
	Path string
	// Mode is the file's permission bits when they were the problem.
	Mode fs.FileMode
	// Err is the cause when the file could not be used at all.
	Err error
}

// Error returns the single-line message.
func (e *SecretFileError) Error() string {
	if e.Err != nil {
		return oneLine(fmt.Sprintf("config: secret file %q: %s", e.Path, causeOf(e.Err)))
	}
	return oneLine(fmt.Sprintf("config: secret file %q has mode %04o, readable by group or others: run chmod 600 %s",
		e.Path, uint32(e.Mode.Perm()), e.Path))
}

// Unwrap returns the underlying error, if any.
func (e *SecretFileError) Unwrap() error { return e.Err }

// causeOf shortens an *fs.PathError to "op: cause", since the caller's message
// already names the file.
func causeOf(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Op + ": " + pe.Err.Error()
	}
	return err.Error()
}

// oneLine joins the lines of a multi-line message (yaml's "unmarshal errors:"
// list, for one) with single spaces, leaving spaces inside a line alone.
func oneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	lines := strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' })
	out := lines[:0]
	for _, l := range lines {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return strings.Join(out, " ")
}
