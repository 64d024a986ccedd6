package main

import (
	"fmt"
	"io"

	"github.com/cardd/cardd/internal/buildinfo"
)

// versionCmd is `cardhost version`: the version alone on a line, as `cardd
// version` prints it (set at build time with -ldflags "-X
// github.com/cardd/cardd/internal/buildinfo.Version=...", which scripts/package
// does). It takes no --dir: it is asked before there is one.
func versionCmd(args []string, stdout io.Writer) error {
	if len(args) > 0 {
		return usagef("version takes no arguments, got %q", args[0])
	}
	_, err := fmt.Fprintln(stdout, buildinfo.String())
	return err
}
