//go:build !windows

package reader

// serviceName is the PC/SC service as messages name it.
const serviceName = "PC/SC service (pcscd)"

// serviceDown is the monitor's log message while there is no service.
const serviceDown = "pcscd not reachable; retrying"
