// Package sdnotify speaks systemd's service notification protocol
// (sd_notify(3)) without libsystemd: one datagram per message, on the
// AF_UNIX socket named by $NOTIFY_SOCKET, which systemd sets for a unit of
// Type=notify. A name starting with '@' is in the abstract namespace (Go's
// net package maps the '@' to the leading NUL byte).
//
// Outside systemd NOTIFY_SOCKET is unset and every call is a no-op that
// reports sent == false, so the daemon calls these unconditionally.
//
// The watchdog (WatchdogSec= in the unit): systemd sets $WATCHDOG_USEC and
// $WATCHDOG_PID and restarts the service when no WATCHDOG=1 arrives within
// the interval. [Run] sends one every half interval, but only while the
// daemon says it is healthy, so a daemon whose work loop has wedged is
// restarted instead of being kept alive by a timer goroutine.
package sdnotify

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Environment variables systemd sets for the service.
const (
	EnvSocket        = "NOTIFY_SOCKET"
	EnvWatchdogUSec  = "WATCHDOG_USEC"
	EnvWatchdogPID   = "WATCHDOG_PID"
	sendTimeout      = time.Second
	maxDatagramBytes = 4096
)

// Notify sends state, one or more newline-separated VAR=value assignments
// such as "READY=1", to the service manager. It returns sent == false and a
// nil error when $NOTIFY_SOCKET is unset (not started by systemd, or a unit
// that is not Type=notify), and an error when the socket is named but the
// message could not be delivered. It does not unset the variable, so it can
// be called any number of times.
func Notify(state string) (sent bool, err error) {
	name := os.Getenv(EnvSocket)
	if name == "" {
		return false, nil
	}
	if name[0] != '/' && name[0] != '@' {
		// systemd 254+ may also name an AF_VSOCK address ("vsock:CID:PORT")
		// for virtual machines; a kiosk daemon never runs under one.
		return false, fmt.Errorf("sdnotify: %s=%q is not a unix socket path or an abstract name (@...)", EnvSocket, name)
	}
	if len(state) > maxDatagramBytes {
		return false, fmt.Errorf("sdnotify: message of %d bytes is too long", len(state))
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		return false, fmt.Errorf("sdnotify: %s=%s: %w", EnvSocket, name, err)
	}
	defer conn.Close()
	// A datagram to a full queue blocks: never let a stuck manager hang the
	// daemon's caller.
	if err := conn.SetWriteDeadline(time.Now().Add(sendTimeout)); err != nil {
		return false, fmt.Errorf("sdnotify: %w", err)
	}
	if _, err := conn.Write([]byte(state)); err != nil {
		return false, fmt.Errorf("sdnotify: sending to %s: %w", name, err)
	}
	return true, nil
}

// Ready tells systemd that start-up is finished (READY=1): a Type=notify unit
// counts as started, and units ordered after it start, only then.
func Ready() (bool, error) { return Notify("READY=1") }

// Stopping tells systemd that the service is shutting down (STOPPING=1).
func Stopping() (bool, error) { return Notify("STOPPING=1") }

// Status sets the one-line status text that systemctl status shows. Newlines
// in s are replaced by spaces: each line of a message is an assignment.
func Status(s string) (bool, error) {
	s = strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s)
	return Notify("STATUS=" + s)
}

// Watchdog sends one keep-alive (WATCHDOG=1).
func Watchdog() (bool, error) { return Notify("WATCHDOG=1") }

// WatchdogInterval returns the watchdog interval systemd asks for
// ($WATCHDOG_USEC, from WatchdogSec=), and false when there is none: the
// variable is unset, zero or not a number, or $WATCHDOG_PID is set and names
// another process (the variables were inherited from a parent).
func WatchdogInterval() (time.Duration, bool) {
	usec, err := strconv.ParseUint(os.Getenv(EnvWatchdogUSec), 10, 63)
	if err != nil || usec == 0 {
		return 0, false
	}
	if p := os.Getenv(EnvWatchdogPID); p != "" {
		pid, err := strconv.Atoi(p)
		if err != nil || pid != os.Getpid() {
			return 0, false
		}
	}
	if usec > uint64(1<<63-1)/uint64(time.Microsecond) {
		return 0, false
	}
	return time.Duration(usec) * time.Microsecond, true
}

// Run keeps systemd's watchdog fed until ctx ends: every half of
// [WatchdogInterval] it calls healthy and sends WATCHDOG=1 only when it
// returns true (the first check is at once). A daemon that stops being
// healthy therefore stops the keep-alives and systemd restarts it after
// WatchdogSec (with Restart=on-failure). A nil healthy counts as always
// healthy. Run returns at once when no watchdog is asked for. Failed sends
// are not fatal: the next tick tries again, and systemd acts on the silence
// if they keep failing.
func Run(ctx context.Context, healthy func() bool) {
	interval, ok := WatchdogInterval()
	if !ok {
		return
	}
	t := time.NewTicker(interval / 2)
	defer t.Stop()
	for {
		if healthy == nil || healthy() {
			_, _ = Watchdog()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
