//go:build !linux

package main

import (
	"context"
	"errors"
	"io"
	"strings"
)

// cmdRelay refuses: the virtual relay board is a Linux pty (internal/pty),
// and door mode, which drives relay boards, is Linux-only (docs/windows.md).
func cmdRelay(context.Context, []string, io.Writer) error {
	return errors.New("cardsim relay needs Linux: the virtual relay board is a pty")
}

// compact drops the spaces of a hex string.
func compact(h string) string { return strings.ReplaceAll(h, " ", "") }
