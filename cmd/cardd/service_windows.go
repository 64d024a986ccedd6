package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/windows/svc"
	"golang.org/x/sys/windows/svc/eventlog"
	"golang.org/x/sys/windows/svc/mgr"

	"github.com/cardd/cardd/config"
)

// serviceName is the Windows service's name (sc query cardd) and its event
// log source.
const serviceName = "cardd"

const serviceUsage = "usage: cardd service install|uninstall|start|stop|run (docs/windows.md)"

// stopWait bounds how long cardd service stop waits for the daemon to
// finish its tap and close the journal.
const stopWait = 30 * time.Second

// cmdService is `cardd service ...`: the Windows service that runs `cardd
// run` with %ProgramData%\cardd\cardd.yaml, installed, removed, started
// and stopped through the service control manager. run is what the
// service control manager starts; people use the others.
func cmdService(ctx context.Context, args []string, stdout, _ io.Writer) error {
	if len(args) != 1 {
		return usageErr(serviceUsage)
	}
	switch args[0] {
	case "install":
		return installService(stdout)
	case "uninstall":
		return uninstallService(stdout)
	case "start":
		return withService(func(s *mgr.Service) error { return s.Start() })
	case "stop":
		return withService(stopService)
	case "run":
		return svc.Run(serviceName, &service{ctx: ctx})
	}
	return usageErr("unknown service command %q; %s", args[0], serviceUsage)
}

// configPath is the service's configuration file.
func configPath() string { return filepath.Join(config.DataDir(), "cardd.yaml") }

// installService registers cardd.exe, where it is now, as the automatic
// service cardd and as an event log source, and makes %ProgramData%\cardd,
// readable by SYSTEM and Administrators only (restrictDataDir).
func installService(stdout io.Writer) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(config.DataDir(), 0o700); err != nil {
		return err
	}
	if err := restrictDataDir(config.DataDir()); err != nil {
		return err
	}
	m, err := mgr.Connect()
	if err != nil {
		return fmt.Errorf("service control manager (run as Administrator): %w", err)
	}
	defer m.Disconnect()
	s, err := m.CreateService(serviceName, exe, mgr.Config{
		DisplayName: "cardd (NFC kiosk and POS)",
		Description: "Reads the cards tapped on this terminal's readers; configuration " + configPath(),
		StartType:   mgr.StartAutomatic,
	}, "service", "run")
	if err != nil {
		return fmt.Errorf("creating service %s: %w", serviceName, err)
	}
	defer s.Close()
	if err := eventlog.InstallAsEventCreate(serviceName, eventlog.Error|eventlog.Warning|eventlog.Info); err != nil {
		_ = s.Delete()
		return fmt.Errorf("event log source %s: %w", serviceName, err)
	}
	_, err = fmt.Fprintf(stdout, "service %s installed: %s service run, configuration %s; start it with cardd service start\n", serviceName, exe, configPath())
	return err
}

// uninstallService removes the service and its event log source; the
// configuration and the journal stay.
func uninstallService(stdout io.Writer) error {
	err := withService(func(s *mgr.Service) error { return s.Delete() })
	if err != nil {
		return err
	}
	if err := eventlog.Remove(serviceName); err != nil {
		return fmt.Errorf("removing event log source %s: %w", serviceName, err)
	}
	_, err = fmt.Fprintf(stdout, "service %s removed; %s is kept\n", serviceName, config.DataDir())
	return err
}

// withService runs f on the installed service.
func withService(f func(*mgr.Service) error) error {
	m, err := mgr.Connect()
	if err != nil {
		return fmt.Errorf("service control manager (run as Administrator): %w", err)
	}
	defer m.Disconnect()
	s, err := m.OpenService(serviceName)
	if err != nil {
		return fmt.Errorf("service %s (cardd service install first): %w", serviceName, err)
	}
	defer s.Close()
	return f(s)
}

// stopService asks the service to stop and waits, within stopWait, until
// it has.
func stopService(s *mgr.Service) error {
	st, err := s.Control(svc.Stop)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(stopWait)
	for st.State != svc.Stopped {
		if time.Now().After(deadline) {
			return fmt.Errorf("service %s did not stop within %v (state %d)", serviceName, stopWait, st.State)
		}
		time.Sleep(300 * time.Millisecond)
		if st, err = s.Query(); err != nil {
			return err
		}
	}
	return nil
}

// service is cardd run under the service control manager.
type service struct{ ctx context.Context }

// Execute runs `cardd run --config %ProgramData%\cardd\cardd.yaml` until
// the manager asks it to stop, its log going to the event log and to
// cardd.log beside the configuration.
func (s *service) Execute(_ []string, req <-chan svc.ChangeRequest, status chan<- svc.Status) (bool, uint32) {
	status <- svc.Status{State: svc.StartPending}
	out, closeLog, err := serviceLog()
	if err != nil {
		return true, 1
	}
	defer closeLog()
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- cmdRun(ctx, []string{"--config", configPath()}, out) }()
	status <- svc.Status{State: svc.Running, Accepts: svc.AcceptStop | svc.AcceptShutdown}
	for {
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) {
				fmt.Fprintf(out, "cardd: %v\n", err)
				return true, 1
			}
			return false, 0
		case c := <-req:
			switch c.Cmd {
			case svc.Interrogate:
				status <- c.CurrentStatus
			case svc.Stop, svc.Shutdown:
				status <- svc.Status{State: svc.StopPending}
				cancel()
			}
		}
	}
}

// serviceLog opens the service's log: %ProgramData%\cardd\cardd.log
// (appended to) and the event log source cardd.
func serviceLog() (io.Writer, func(), error) {
	if err := os.MkdirAll(config.DataDir(), 0o700); err != nil {
		return nil, nil, err
	}
	f, err := os.OpenFile(filepath.Join(config.DataDir(), "cardd.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, nil, err
	}
	el, err := eventlog.Open(serviceName)
	if err != nil {
		// The file log still works; say why the event log has nothing.
		fmt.Fprintf(f, "cardd: event log source %s: %v (cardd service install registers it)\n", serviceName, err)
		return f, func() { f.Close() }, nil
	}
	return io.MultiWriter(f, eventWriter{el}), func() { el.Close(); f.Close() }, nil
}

// eventWriter writes each log line as one event at the line's level.
type eventWriter struct{ l *eventlog.Log }

func (w eventWriter) Write(p []byte) (int, error) {
	for _, line := range splitLines(p) {
		var err error
		switch eventLevel([]byte(line)) {
		case 'E':
			err = w.l.Error(1, line)
		case 'W':
			err = w.l.Warning(1, line)
		default:
			err = w.l.Info(1, line)
		}
		if err != nil {
			return 0, err
		}
	}
	return len(p), nil
}
