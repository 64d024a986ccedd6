//go:build !windows

package config

// DefaultStorePath is store.path when nothing sets it: the FHS place for a
// daemon's state.
func DefaultStorePath() string { return "/var/lib/cardd/cardd.db" }

// doorSupported: door mode drives relay boards and runs on Linux.
const doorSupported = true
