package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/svc"
	"golang.org/x/sys/windows/svc/eventlog"
	"golang.org/x/sys/windows/svc/mgr"

	"github.com/cardd/cardd/config"
)

// serviceName is the Windows service's name (sc query cardd) and its event
// log source.
const serviceName = "cardd"

const serviceUsage = "usage: cardd service install [--allow-exe-anywhere]|uninstall|start|stop|run (docs/windows.md)"

// allowExeAnywhere is install's flag that registers cardd.exe outside
// %ProgramFiles% (installService says why that is refused by default).
const allowExeAnywhere = "--allow-exe-anywhere"

// The recovery policy: the service manager restarts cardd 5 s after a
// failure, 5 s after a second one and 30 s after each one after that, and
// forgets the count after a day without failure, as systemd's
// Restart=on-failure does on Linux (dist/cardd.service).
var (
	recoveryActions = []mgr.RecoveryAction{
		{Type: mgr.ServiceRestart, Delay: 5 * time.Second},
		{Type: mgr.ServiceRestart, Delay: 5 * time.Second},
		{Type: mgr.ServiceRestart, Delay: 30 * time.Second},
	}
	recoveryResetSeconds = uint32((24 * time.Hour).Seconds())
)

// stopWait bounds how long cardd service stop waits for the daemon to
// finish its tap and close the journal.
const stopWait = 30 * time.Second

// cmdService is `cardd service ...`: the Windows service that runs `cardd
// run` with %ProgramData%\cardd\cardd.yaml, installed, removed, started
// and stopped through the service control manager. run is what the
// service control manager starts; people use the others.
func cmdService(ctx context.Context, args []string, stdout, _ io.Writer) error {
	if len(args) == 2 && args[0] == "install" && args[1] == allowExeAnywhere {
		return installService(stdout, true)
	}
	if len(args) != 1 {
		return usageErr(serviceUsage)
	}
	switch args[0] {
	case "install":
		return installService(stdout, false)
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
// service cardd, restarted on failure, and as an event log source, and
// makes %ProgramData%\cardd and all in it SYSTEM's and Administrators'
// alone (secureDataDir).
//
// cardd.exe must be under %ProgramFiles% unless anywhere is set: the
// service runs it as SYSTEM, so whoever may replace the file, or write to
// its folder, may run anything as SYSTEM. A folder made elsewhere, C:\cardd
// for one, inherits C:\'s list, which lets every Authenticated User modify
// its subfolders. Program Files' list lets only Administrators change it;
// judging an arbitrary folder's list (groups, deny entries, inheritance,
// the folders above it) is harder to get right than asking for the one
// place that is right.
func installService(stdout io.Writer, anywhere bool) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	if !anywhere {
		ok, pf, err := underProgramFiles(exe)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%s is not under %s: the service runs it as SYSTEM, so anyone who may replace it, or write to its folder, could run anything as SYSTEM; copy it to a folder in %s (for example %s) and install from there, or give %s if its folder's access list lets only Administrators write (docs/windows.md)",
				exe, pf, pf, filepath.Join(pf, "cardd", "cardd.exe"), allowExeAnywhere)
		}
	}
	// Connected first: its refusal says "run as Administrator", where a
	// data folder made by a user who is not elevated would fail obscurely
	// (Administrators may not be made its owner).
	m, err := mgr.Connect()
	if err != nil {
		return fmt.Errorf("service control manager (run as Administrator): %w", err)
	}
	defer m.Disconnect()
	if err := secureDataDir(config.DataDir()); err != nil {
		return err
	}
	s, err := m.CreateService(serviceName, exe, mgr.Config{
		DisplayName: "cardd (NFC kiosk and POS)",
		Description: "Reads the cards tapped on this terminal's readers; configuration " + configPath(),
		StartType:   mgr.StartAutomatic,
	}, "service", "run")
	if err != nil {
		return fmt.Errorf("creating service %s: %w", serviceName, err)
	}
	defer s.Close()
	if err := setRecovery(s, stdout); err != nil {
		_ = s.Delete()
		return err
	}
	if err := eventlog.InstallAsEventCreate(serviceName, eventlog.Error|eventlog.Warning|eventlog.Info); err != nil {
		_ = s.Delete()
		return fmt.Errorf("event log source %s: %w", serviceName, err)
	}
	_, err = fmt.Fprintf(stdout, "service %s installed: %s service run, configuration %s; start it with cardd service start\n", serviceName, exe, configPath())
	return err
}

// setRecovery sets the recovery policy (recoveryActions) on s, for exits
// with an error as well as crashes: Execute reports cardd run's error as
// the service's exit code, which Windows counts as a failure only with
// SetRecoveryActionsOnNonCrashFailures. Windows has had that flag since
// Vista; Wine 8 answers ERROR_INVALID_LEVEL, which is said on stdout and
// leaves the restart after a crash.
func setRecovery(s *mgr.Service, stdout io.Writer) error {
	if err := s.SetRecoveryActions(recoveryActions, recoveryResetSeconds); err != nil {
		return fmt.Errorf("service %s: restart on failure: %w", serviceName, err)
	}
	err := s.SetRecoveryActionsOnNonCrashFailures(true)
	if errors.Is(err, windows.ERROR_INVALID_LEVEL) {
		_, err = fmt.Fprintf(stdout, "service %s: this Windows cannot restart it after an exit with an error (%v), only after a crash\n", serviceName, err)
		return err
	}
	if err != nil {
		return fmt.Errorf("service %s: restart on exit with an error: %w", serviceName, err)
	}
	return nil
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
		// No cardd.log: say why in the event log, if there is one.
		if el, elErr := eventlog.Open(serviceName); elErr == nil {
			_ = el.Error(1, "cardd: "+err.Error())
			el.Close()
		}
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
// (appended to) and the event log source cardd. A missing
// %ProgramData%\cardd (deleted since the install) is made again with the
// install's access list, not ProgramData's user-readable one; a junction
// or link there is refused.
func serviceLog() (io.Writer, func(), error) {
	if _, err := makeDataDir(config.DataDir()); err != nil {
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
