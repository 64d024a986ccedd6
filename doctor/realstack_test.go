//go:build linux

// Linux only: the real stack is pcscd with the vpcd readers and a printer
// on a pty (printer/sim), which Windows has not (docs/windows.md).

package doctor

import (
	"context"
	"github.com/cardd/cardd/printer/spool"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"go.bug.st/serial"

	"github.com/cardd/cardd/config"
	"github.com/cardd/cardd/printer/sim"
	"github.com/cardd/cardd/reader"
)

// requirePCSCD waits for the machine's pcscd to list the vpcd slots (the
// integration tests may be restarting it), and fails under CI=true or skips
// when it does not. The doctor only lists readers and never uses a slot, so
// it does not take the vpcd slot lock.
func requirePCSCD(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		names, err := reader.ListReaders()
		if err == nil && slices.Contains(names, slot0) && slices.Contains(names, slot1) {
			return
		}
		if time.Now().After(deadline) {
			requireCI(t, "pcscd with the vpcd readers %q and %q is needed (readers %q, err %v): run scripts/setup, or pcscd as root", slot0, slot1, names, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestRealPCSCD runs the PC/SC checks through the real pcsc-lite client
// against the machine's pcscd with the vpcd readers.
func TestRealPCSCD(t *testing.T) {
	requirePCSCD(t)
	cfg := testConfig(t)
	cfg.Reader.SAMPattern = "^" + slot1 + "$"
	ctx := context.Background()
	var r *run
	var res Result
	for attempt := 0; attempt < 3; attempt++ { // a concurrent pcscd restart
		r = &run{cfg: cfg}
		if res = r.checkPCSCD(ctx); res.Status == Pass && len(r.readers) >= 2 {
			break
		}
		time.Sleep(time.Second)
	}
	want(t, "pcscd", res, Pass, "answers at")
	want(t, "card reader", r.checkCardReader(ctx), Pass, `"`+slot0+`"`)
	want(t, "sam reader", r.checkSAMReader(ctx), Pass, `"`+slot1+`"`)

	cfg.Reader.CardPattern = "ACS ACR1281"
	want(t, "card reader, wrong pattern", r.checkCardReader(ctx), Fail, `"ACS ACR1281"`, slot0, "fix:reader.card_pattern")
}

// openSim starts the virtual ESC/POS printer on a pty, linked at link.
func openSim(t *testing.T, opt sim.Options) *sim.Printer {
	t.Helper()
	p, err := sim.Open(opt)
	if err != nil {
		requireCI(t, "virtual printer on a pty: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// TestPrinterOnVirtualPrinter runs the printer check through the real
// serial line (spool.Line, go.bug.st/serial) against the virtual printer.
func TestPrinterOnVirtualPrinter(t *testing.T) {
	for _, tc := range []struct {
		name   string
		opt    sim.Options
		status Status
		subs   []string
	}{
		{"ready", sim.Options{}, Pass, []string{"ready"}},
		{"paper out", sim.Options{Initial: sim.State{PaperOut: true}}, Fail, []string{"paper out", "fix:new roll"}},
		{"cover open", sim.Options{Initial: sim.State{CoverOpen: true}}, Fail, []string{"cover open", "fix:close the printer's cover"}},
		{"near end", sim.Options{Initial: sim.State{PaperNearEnd: true}}, Warn, []string{"nearly used up"}},
		{"silent", sim.Options{Silent: true}, Fail, []string{"did not answer DLE EOT", "fix:status_checks to false"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t)
			tc.opt.Link = filepath.Join(t.TempDir(), "printer")
			p := openSim(t, tc.opt)
			cfg.Printer.Enabled, cfg.Printer.Port = true, p.Link()
			cfg.Printer.StatusTimeout = 300 * time.Millisecond
			r := &run{cfg: cfg}
			want(t, "printer", r.checkPrinter(context.Background()), tc.status, tc.subs...)
			if st := p.Stats(); st.Printed+st.Lost != 0 {
				t.Errorf("the check printed something: %+v", st)
			}
		})
	}
}

// TestPrinterSerialLineFollowsConfig: the line is set up as cardd run sets
// it up.
func TestPrinterSerialLineFollowsConfig(t *testing.T) {
	c := config.Default()
	c.Printer.Port, c.Printer.Baud, c.Printer.Parity, c.Printer.StopBits, c.Printer.FlowControl = "/dev/ttyUSB0", 115200, "even", "2", "xonxoff"
	l := spool.ConfiguredLine(c.Printer, nil)
	if l.Port != "/dev/ttyUSB0" || l.Mode.BaudRate != 115200 || l.Mode.DataBits != 8 || !l.XonXoff || l.StatusTimeout != c.Printer.StatusTimeout {
		t.Errorf("line %+v", l)
	}
	if l.Mode.Parity != serial.EvenParity || l.Mode.StopBits != serial.TwoStopBits {
		t.Errorf("mode %+v", l.Mode)
	}
}

// requireCI fails under CI=true and skips elsewhere: for what the machine
// may lack (pcscd, a pty).
func requireCI(t *testing.T, format string, a ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf(format, a...)
	}
	t.Skipf(format, a...)
}
