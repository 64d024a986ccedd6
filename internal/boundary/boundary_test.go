package boundary

import (
	"maps"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/cardd/cardd/"

// terminal are the packages that run in cardd against real readers, cards
// and printers. cmd/cardd links the rest of them; they are listed too so
// that one cardd stops importing is still checked.
var terminal = []string{
	"cmd/cardd",
	"daemon",
	"apdu",
	"apdu/epurse",
	"apdu/mifare",
	"apdu/psam",
	"apdu/trace",
	"tap",
	"reader",
	"doctor",
	"localapi",
	"kiosk",
	"door",
	"printer",
	"printer/spool",
	"offline",
	"sync",
	"config",
}

// simulators are what terminal code must not link: the simulated cards,
// PSAM and printer, and the virtual reader's card side.
var simulators = []string{
	"apdu/epurse/sim",
	"apdu/mifare/sim",
	"apdu/psam/sim",
	"printer/sim",
	"reader/vpcd",
	"sync/sim",
}

// deps lists the packages pkg builds from, without tests, each with the
// module's packages it imports.
func deps(t *testing.T, pkg string) map[string][]string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, module+pkg).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, ee.Stderr)
		}
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	m := map[string][]string{}
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		if len(f) > 0 {
			m[strings.TrimPrefix(f[0], module)] = trim(f[1:])
		}
	}
	return m
}

func trim(paths []string) []string {
	var out []string
	for _, p := range paths {
		if rest, ok := strings.CutPrefix(p, module); ok {
			out = append(out, rest)
		}
	}
	return out
}

// TestTerminalLinksNoSimulator: no terminal package depends on a simulator,
// directly or through another package; the message names who imports it.
func TestTerminalLinksNoSimulator(t *testing.T) {
	for _, pkg := range terminal {
		d := deps(t, pkg)
		if _, ok := d[pkg]; !ok {
			t.Fatalf("go list -deps %s does not list %s itself", pkg, pkg)
		}
		for _, sim := range simulators {
			if _, ok := d[sim]; !ok {
				continue
			}
			var by []string
			for p, imports := range d {
				if slices.Contains(imports, sim) {
					by = append(by, p)
				}
			}
			slices.Sort(by)
			t.Errorf("%s depends on %s (imported by %s)", pkg, sim, strings.Join(by, ", "))
		}
	}
}

// TestSimulatorsExist keeps the test above from passing by naming packages
// that are gone: cardsim and the fleet simulator cardfleet link every
// simulator between them.
func TestSimulatorsExist(t *testing.T) {
	d := deps(t, "cmd/cardsim")
	maps.Copy(d, deps(t, "cmd/cardfleet"))
	for _, sim := range simulators {
		if _, ok := d[sim]; !ok {
			t.Errorf("neither cmd/cardsim nor cmd/cardfleet links %s: has it moved? update this test", sim)
		}
	}
}
