package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"

	"github.com/cardd/cardd/config"
	"github.com/cardd/cardd/doctor"
)

// cmdDoctor is `cardd doctor [--json]`: it checks the configuration, pcscd
// and the readers, the printer, the journal, the host link, the clock and
// the secret files (package doctor), prints a table (or JSON) and exits 0
// when nothing failed, 1 when a check failed, 2 when the configuration
// itself is bad (the report then has the config row only).
func cmdDoctor(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var fs *pflag.FlagSet
	var asJSON bool
	cfg, err := loadConfig("doctor", args, func(f *pflag.FlagSet) {
		fs = f
		f.BoolVar(&asJSON, "json", false, "print the results as JSON, for machines")
	})
	file := configFile(fs)
	write := func(results []doctor.Result) error {
		if asJSON {
			return doctor.NewReport(file, results).WriteJSON(stdout)
		}
		return doctor.WriteText(stdout, results)
	}
	if err != nil {
		var fe *config.FileError
		var ve *config.ValidationError
		if errors.As(err, &fe) || errors.As(err, &ve) {
			where := "the keys named"
			if file != "" {
				where += " in " + file + " (or the CARDD_* variables and flags that set them)"
			}
			detail := strings.ReplaceAll(err.Error(), "\n", "; ")
			if werr := write([]doctor.Result{{Check: doctor.CheckConfig, Status: doctor.Fail, Detail: detail,
				Fix: "correct " + where + "; cardd config prints the configuration in effect"}}); werr != nil {
				return werr
			}
		}
		return err // exit 2, one line per key on stderr
	}
	results := doctor.Run(ctx, cfg, doctor.Options{ConfigFile: file, Version: version})
	if err := write(results); err != nil {
		return err
	}
	if doctor.Failed(results) {
		var failed []string
		for _, r := range results {
			if r.Status == doctor.Fail {
				failed = append(failed, r.Check)
			}
		}
		return &exitError{code: 1, err: fmt.Errorf("doctor: %d check(s) failed: %s", len(failed), strings.Join(failed, ", "))}
	}
	return nil
}

// configFile is the configuration file Load reads for these flags: --config
// when given (even empty: none), else $CARDD_CONFIG; absolute for the report.
func configFile(fs *pflag.FlagSet) string {
	path := os.Getenv(config.EnvConfig)
	if fs != nil {
		if f := fs.Lookup(config.FlagConfig); f != nil && f.Changed {
			path = f.Value.String()
		}
	}
	if path == "" {
		return ""
	}
	if abs, err := filepath.Abs(path); err == nil {
		return abs
	}
	return path
}
