//go:build !windows

package doctor

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"strings"
)

// pcscSocket is the socket the client library uses, for messages.
func pcscSocket() string {
	if s := os.Getenv(envPCSCSocket); s != "" {
		return s
	}
	return defaultPCSCSocket
}

// pcscFailure is the check's detail and fix when no PC/SC context could be
// had, or no reader list, from pcscd at sock.
func pcscFailure(sock string, err error) (detail, fix string) {
	detail = fmt.Sprintf("cannot use pcscd at %s: %v", sock, err)
	if _, serr := os.Stat(sock); errors.Is(serr, fs.ErrNotExist) {
		detail = fmt.Sprintf("pcscd is not running: its socket %s does not exist (%v)", sock, err)
	}
	return detail, pcscdFix(sock)
}

// pcscdFix says how to get pcscd answering: start it, install it, or stop
// pointing the client elsewhere.
func pcscdFix(sock string) string {
	var fix []string
	if v := os.Getenv(envPCSCSocket); v != "" {
		if _, err := os.Stat(v); err != nil {
			fix = append(fix, fmt.Sprintf("%s=%s names a socket that does not exist: unset it to use pcscd's default socket, or point it at the one pcscd listens on", envPCSCSocket, v))
		}
	}
	if pcscdInstalled() {
		fix = append(fix, "start pcscd: systemctl start pcscd.socket pcscd (or run pcscd as root), then pcsc_scan should list the readers")
	} else {
		fix = append(fix, "install and start pcscd: apt-get install pcscd (with the reader's driver, e.g. libccid; vsmartcard-vpcd for the simulated readers), then systemctl start pcscd")
	}
	if _, err := os.Stat(sock); err == nil {
		fix = append(fix, "its socket exists, so if pcscd runs, this user may be refused by it (polkit): run cardd doctor as the daemon's user, and allow that user in pcscd's polkit rules")
	}
	return strings.Join(fix, "; ")
}

// pcscdInstalled reports whether a pcscd binary is there, to tell "start
// it" from "install it".
func pcscdInstalled() bool {
	if _, err := exec.LookPath("pcscd"); err == nil {
		return true
	}
	for _, p := range []string{"/usr/sbin/pcscd", "/usr/local/sbin/pcscd", "/sbin/pcscd"} {
		if _, err := os.Stat(p); err == nil {
			return true
		}
	}
	return false
}
