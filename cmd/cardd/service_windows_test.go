package main

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/svc/mgr"
)

// TestSetRecovery: the installed service is restarted on failure, a crash
// or an exit with an error, as the service manager reads it back.
func TestSetRecovery(t *testing.T) {
	m, err := mgr.Connect()
	if errors.Is(err, windows.ERROR_ACCESS_DENIED) && os.Getenv("CI") != "true" {
		t.Skip("the service control manager needs an elevated Administrator")
	}
	if err != nil {
		t.Fatal(err)
	}
	defer m.Disconnect()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	const name = "cardd-test-recovery"
	if old, err := m.OpenService(name); err == nil { // a run killed half-way
		_ = old.Delete()
		old.Close()
	}
	s, err := m.CreateService(name, exe, mgr.Config{StartType: mgr.StartManual})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	defer s.Delete()
	var out strings.Builder
	if err := setRecovery(s, &out); err != nil {
		t.Fatal(err)
	}
	got, err := s.RecoveryActions()
	if underWine() && errors.Is(err, windows.ERROR_INVALID_LEVEL) {
		// Wine 8 takes the failure actions but cannot read them back, and
		// implements no SERVICE_CONFIG_FAILURE_ACTIONS_FLAG: install must
		// say so and go on.
		t.Logf("under Wine: the recovery actions are set but not read back (%v)", err)
		if !strings.Contains(out.String(), "only after a crash") {
			t.Errorf("setRecovery said %q, want that restarts follow crashes only", out.String())
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, recoveryActions) {
		t.Errorf("recovery actions %+v, want %+v", got, recoveryActions)
	}
	on, err := s.RecoveryActionsOnNonCrashFailures()
	if err != nil {
		t.Fatal(err)
	}
	if !on {
		t.Error("an exit with an error does not count as a failure")
	}
}

// TestInstallRefusesExeOutsideProgramFiles: the test binary is not under
// Program Files, so install refuses before it touches anything, naming the
// way out.
func TestInstallRefusesExeOutsideProgramFiles(t *testing.T) {
	var out strings.Builder
	err := installService(&out, false)
	if err == nil || !strings.Contains(err.Error(), "is not under") || !strings.Contains(err.Error(), allowExeAnywhere) {
		t.Fatalf("installService = %v, want the exe outside Program Files refused", err)
	}
}
