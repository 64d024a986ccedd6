// Package benchproc starts the project's commands as processes for the
// bench programs (cmd/benchupload, cmd/benchhost): each with its own log,
// stopped within a bound, its peak RSS read from /proc.
package benchproc

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Proc is a started command whose output goes to a log file.
type Proc struct {
	// Cmd is the running command.
	Cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
	once sync.Once
}

// Start starts name with args, its stdout and stderr into logPath. A
// non-nil env replaces the caller's CARDD_* and PCSCLITE_* variables with
// env.
func Start(logPath string, env []string, name string, args ...string) (*Proc, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if env != nil {
		// Only our settings: a CARDD_* of the caller's shell must not change
		// what is measured.
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "CARDD_") && !strings.HasPrefix(kv, "PCSCLITE_") {
				cmd.Env = append(cmd.Env, kv)
			}
		}
		cmd.Env = append(cmd.Env, env...)
	}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("starting %s: %w", filepath.Base(name), err)
	}
	p := &Proc{Cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

// Exited returns a non-nil error once the process has ended.
func (p *Proc) Exited() error {
	select {
	case <-p.done:
		if p.err == nil {
			return errors.New("exit status 0")
		}
		return p.err
	default:
		return nil
	}
}

// Stop sends SIGTERM and waits (10 s, then SIGKILL); safe to call twice.
func (p *Proc) Stop() error {
	var err error
	p.once.Do(func() {
		select {
		case <-p.done:
			return
		default:
		}
		_ = p.Cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
			err = p.err
		case <-time.After(10 * time.Second):
			_ = p.Cmd.Process.Kill()
			<-p.done
			err = errors.New("did not stop within 10 s of SIGTERM; killed")
		}
	})
	return err
}

// Tail is the end of the process's log.
func (p *Proc) Tail() string {
	b, _ := os.ReadFile(p.log)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(bytes.TrimSpace(b))
}

// PeakRSS reads VmHWM, the process's peak resident set, in bytes.
func PeakRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("VmHWM %q: %v", rest, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
}

// FreeAddr returns a loopback address with a port nobody listens on now.
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// WaitListening waits until p accepts connections on addr (15 s at most).
func WaitListening(addr string, p *Proc) error {
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if perr := p.Exited(); perr != nil {
			return fmt.Errorf("%s exited: %v\n%s", filepath.Base(p.Cmd.Path), perr, p.Tail())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not listening on %s after 15 s\n%s", filepath.Base(p.Cmd.Path), addr, p.Tail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ModuleRoot is the directory of go.mod, so the commands build from
// anywhere inside the repository.
func ModuleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not inside the cardd module: run it from the repository")
	}
	return filepath.Dir(mod), nil
}
