//go:build !windows

package main

import (
	"context"
	"io"
)

// cmdService refuses: cardd service is the Windows service's; on Linux
// systemd runs cardd (dist/cardd.service).
func cmdService(_ context.Context, _ []string, _, _ io.Writer) error {
	return usageErr("cardd service is for Windows (docs/windows.md); on Linux systemd runs cardd run (dist/cardd.service)")
}
