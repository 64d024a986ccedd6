package config

import (
	"os"
	"path/filepath"

	"golang.org/x/sys/windows"
)

// DefaultStorePath is store.path when nothing sets it: cardd.db in
// DataDir, Windows' place for a service's state.
func DefaultStorePath() string { return filepath.Join(DataDir(), "cardd.db") }

// DataDir is %ProgramData%\cardd, where the Windows service keeps its
// configuration (cardd.yaml), journal and log. ProgramData is the known
// folder (SHGetKnownFolderPath), not the environment variable: a service's
// environment may name another folder than an administrator's prompt does
// (Wine's does), and the two must agree on where cardd.yaml is.
func DataDir() string {
	pd, err := windows.KnownFolderPath(windows.FOLDERID_ProgramData, 0)
	if err != nil || pd == "" {
		pd = os.Getenv("ProgramData")
	}
	if pd == "" {
		pd = `C:\ProgramData`
	}
	return filepath.Join(pd, "cardd")
}

// doorSupported is false: door mode, its relay board and its tests are
// Linux-only so far; Windows runs kiosk and pos (docs/windows.md).
const doorSupported = false
