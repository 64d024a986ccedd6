package doctor

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Report is the machine-readable form of a doctor run (`cardd doctor --json`).
type Report struct {
	// OK is true when no check failed.
	OK bool `json:"ok"`
	// ConfigFile is the configuration file used, "" for none.
	ConfigFile string `json:"config_file"`
	// Checks are the results in the order they ran.
	Checks []Result `json:"checks"`
	// Counts are the number of results per status.
	Counts map[Status]int `json:"counts"`
}

// NewReport builds the report of results.
func NewReport(configFile string, results []Result) Report {
	counts := map[Status]int{}
	for _, s := range []Status{Pass, Warn, Fail, Skip} {
		counts[s] = Count(results, s)
	}
	return Report{OK: !Failed(results), ConfigFile: configFile, Checks: results, Counts: counts}
}

// WriteJSON writes the report as indented JSON.
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes results as a table for a person: check, result and
// detail, with each fix on a line of its own beneath, then a summary line.
//
//	CHECK        RESULT  DETAIL
//	pcscd        FAIL    cannot use pcscd at /run/pcscd/pcscd.comm: ...
//	                     fix: start pcscd: systemctl start pcscd.socket pcscd ...
func WriteText(w io.Writer, results []Result) error {
	width := len("CHECK")
	for _, r := range results {
		width = max(width, len(r.Check))
	}
	var b strings.Builder
	row := func(check, result, detail string) {
		fmt.Fprintf(&b, "%-*s  %-6s  %s\n", width, check, result, detail)
	}
	row("CHECK", "RESULT", "DETAIL")
	for _, r := range results {
		row(r.Check, string(r.Status), r.Detail)
		if r.Fix != "" && (r.Status == Fail || r.Status == Warn) {
			fmt.Fprintf(&b, "%s  fix: %s\n", strings.Repeat(" ", width+2+6), r.Fix)
		}
	}
	fmt.Fprintf(&b, "\n%d checks: %d passed, %d warned, %d failed, %d skipped\n", len(results),
		Count(results, Pass), Count(results, Warn), Count(results, Fail), Count(results, Skip))
	_, err := io.WriteString(w, b.String())
	return err
}
