package config

import (
	"os"
	"path/filepath"
)

// DefaultStorePath is store.path when nothing sets it: cardd.db in
// DataDir, Windows' place for a service's state.
func DefaultStorePath() string { return filepath.Join(DataDir(), "cardd.db") }

// DataDir is %ProgramData%\cardd, where the Windows service keeps its
// configuration (cardd.yaml), journal and log. ProgramData is
// C:\ProgramData unless the machine moved it.
func DataDir() string {
	pd := os.Getenv("ProgramData")
	if pd == "" {
		pd = `C:\ProgramData`
	}
	return filepath.Join(pd, "cardd")
}

// doorSupported is false: door mode, its relay board and its tests are
// Linux-only so far; Windows runs kiosk and pos (docs/windows.md).
const doorSupported = false
