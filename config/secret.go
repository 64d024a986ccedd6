package config

import (
	"bytes"
	"errors"
	"io"
	"os"
	"runtime"
)

// maxSecretSize bounds what ReadSecretFile reads: an HMAC secret or a token is
// tens of bytes, so a larger file is the wrong file.
const maxSecretSize = 64 << 10

// ReadSecretFile reads a secret (host.secret_file, api.token_file) and returns
// it without its trailing newline(s), so that "echo s3cret > file" works.
//
// It refuses, with a [*SecretFileError] naming the file, a file that group or
// others may access (mode & 0077 != 0: the fix, chmod 600, is in the message),
// one that is not a regular file, one larger than 64 KiB, and one that is empty
// after trimming (an empty HMAC key would sign everything and prove nothing).
// The mode is taken from the open file, not the path, so the file checked is
// the file read. Permission bits are not checked on Windows, where Go reports
// every file as 0666.
func ReadSecretFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &SecretFileError{Path: path, Err: err}
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, &SecretFileError{Path: path, Err: err}
	}
	if !st.Mode().IsRegular() {
		return nil, &SecretFileError{Path: path, Err: errors.New("not a regular file (mode " + st.Mode().String() + ")")}
	}
	if runtime.GOOS != "windows" && st.Mode().Perm()&0o077 != 0 {
		return nil, &SecretFileError{Path: path, Mode: st.Mode().Perm()}
	}
	b, err := io.ReadAll(io.LimitReader(f, maxSecretSize+1))
	if err != nil {
		return nil, &SecretFileError{Path: path, Err: err}
	}
	if len(b) > maxSecretSize {
		return nil, &SecretFileError{Path: path, Err: errors.New("larger than 64 KiB: not a secret file")}
	}
	b = bytes.TrimRight(b, "\r\n")
	if len(b) == 0 {
		return nil, &SecretFileError{Path: path, Err: errors.New("is empty")}
	}
	return b, nil
}
