//go:build linux

// Package pty opens raw pseudo-terminal pairs: the virtual serial ports of
// the simulated printer and of the tests of serial devices (door relays).
package pty

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// Open opens a new pseudo-terminal pair: the master through /dev/ptmx
// (posix_openpt, unlockpt and ptsname done by hand), the slave at
// /dev/pts/N, both set raw. Both files are in non-blocking mode under Go's
// poller, so Close interrupts a read and deadlines work.
func Open() (master, slave *os.File, path string, err error) {
	master, err = os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, nil, "", fmt.Errorf("opening a pty: %w", err)
	}
	fail := func(e error) (*os.File, *os.File, string, error) {
		master.Close()
		if slave != nil {
			slave.Close()
		}
		return nil, nil, "", fmt.Errorf("pty: %w", e)
	}
	var n int
	err = control(master, func(fd int) error {
		if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil { // unlockpt
			return fmt.Errorf("unlock: %w", err)
		}
		var err error
		if n, err = unix.IoctlGetInt(fd, unix.TIOCGPTN); err != nil { // ptsname
			return fmt.Errorf("slave number: %w", err)
		}
		return nil
	})
	if err != nil {
		return fail(err)
	}
	path = "/dev/pts/" + strconv.Itoa(n)
	slave, err = os.OpenFile(path, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return fail(err)
	}
	// On Linux the termios of a pty pair is the slave's (the kernel applies
	// a master's TCSETS to its slave), and it is what shapes the bytes: the
	// slave's input processing acts on what the master writes, its output
	// processing on what the host writes. Raw on both fds, as asked.
	for _, f := range []*os.File{slave, master} {
		if err := control(f, setRaw); err != nil {
			return fail(err)
		}
	}
	return master, slave, path, nil
}

// control runs fn on f's file descriptor without taking f out of
// non-blocking mode (which f.Fd would do).
func control(f *os.File, fn func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return err
	}
	return ferr
}

// setRaw is cfmakeraw: no input or output processing, no echo, no
// canonical mode or signals, 8 bits, reads return at the first byte. For a
// virtual device that is what matters: echo would send a printer's status
// answers back to it as data, ISIG would swallow 0x1A (^Z) on its way to the
// host, and ONLCR would turn every 0A the host sends into 0D 0A.
func setRaw(fd int) error {
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return fmt.Errorf("get termios: %w", err)
	}
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR |
		unix.ICRNL | unix.IXON | unix.IXOFF | unix.IXANY | unix.INPCK | unix.IUCLC
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8 | unix.CREAD | unix.CLOCAL
	t.Cc[unix.VMIN] = 1
	t.Cc[unix.VTIME] = 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, t); err != nil {
		return fmt.Errorf("set termios: %w", err)
	}
	return nil
}

// Link points link at target (a pty's slave side, the port a daemon is
// configured with), replacing a symbolic link already there, so a
// simulator restarted on a new pty keeps the configured name. Anything
// else at link is refused, never replaced.
func Link(target, link string) error {
	if fi, err := os.Lstat(link); err == nil && fi.Mode()&os.ModeSymlink == 0 {
		return fmt.Errorf("pty: %s exists and is not a symbolic link; not replacing it", link)
	}
	tmp := fmt.Sprintf("%s.%d.tmp", link, os.Getpid())
	os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return fmt.Errorf("pty: link: %w", err)
	}
	if err := os.Rename(tmp, link); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("pty: link: %w", err)
	}
	return nil
}
