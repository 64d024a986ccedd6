package doctor

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"go.bug.st/serial"

	"github.com/cardd/cardd/config"
	"github.com/cardd/cardd/internal/lockfile"
	"github.com/cardd/cardd/printer"
	"github.com/cardd/cardd/printer/spool"
)

// PrinterLockPath is the lock file beside the store that the process driving
// the printer holds (cmd/cardd's printLock): the daemon while it runs.
func PrinterLockPath(cfg *config.Config) string { return spool.LockPath(cfg.Store.Path) }

// lockPrinter takes the printer lock when no one holds it, so that a daemon
// starting meanwhile does not write to the port under the check. The file is
// never created here: a doctor run as root would leave a lock file the
// daemon's user cannot open. A missing file means no cardd ever drove the
// printer of this store. held reports that another process holds it.
func lockPrinter(cfg *config.Config) (release func(), held bool, err error) {
	l, err := lockfile.AcquireExisting(PrinterLockPath(cfg))
	var he *lockfile.HeldError
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return func() {}, false, nil
	case errors.As(err, &he):
		return nil, true, nil
	case err != nil:
		return nil, false, err
	}
	return func() { l.Release() }, false, nil
}

const portsHint = "ls -l /dev/serial/by-id/ /dev/ttyUSB* /dev/ttyACM* lists the serial ports present"

func (r *run) checkPrinter(ctx context.Context) Result {
	p := r.cfg.Printer
	if !p.Enabled {
		return skip("printer.enabled is false: no receipt printer")
	}
	release, held, err := lockPrinter(r.cfg)
	if err != nil {
		return warn(fmt.Sprintf("cannot tell whether cardd drives the printer (%s: %v), so the port was not opened", PrinterLockPath(r.cfg), err),
			"run cardd doctor as the daemon's user or as root")
	}
	if held {
		return skip("the running cardd drives the printer (%s is held): its state is in the daemon's log and heartbeat", PrinterLockPath(r.cfg))
	}
	defer release()

	if _, err := os.Stat(p.Port); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fail(fmt.Sprintf("printer.port %s does not exist", p.Port),
				"connect the printer's cable and switch it on; check printer.port ("+portsHint+"; a udev rule can give the printer a stable name)")
		}
		return fail(fmt.Sprintf("printer.port %s: %v", p.Port, err), "check printer.port and the permissions of its directory")
	}

	ctx, cancel := context.WithTimeout(ctx, orDefault(r.opts.PrinterTimeout, 5*time.Second))
	defer cancel()
	var line Printer
	if r.opts.OpenPrinter != nil {
		line = r.opts.OpenPrinter(r.cfg)
	} else {
		line = spool.ConfiguredLine(r.cfg.Printer, nil)
	}
	defer line.Close()
	// No bytes: this opens the port (and sets its mode) and sends nothing.
	if err := line.Write(ctx, nil); err != nil {
		return printerOpenFailure(p.Port, err)
	}
	where := fmt.Sprintf("%s at %d baud", p.Port, p.Baud)
	if !p.StatusChecks {
		return pass("%s opens; printer.status_checks is false, so its state is not asked", where)
	}
	st, err := line.State(ctx)
	switch {
	case errors.Is(err, spool.ErrNoAnswer):
		return fail(fmt.Sprintf("%s opens, but the printer did not answer DLE EOT within printer.status_timeout (%v)", where, p.StatusTimeout),
			"switch the printer on and check its cable; set printer.baud, data_bits, parity and stop_bits to the printer's own setting (its self-test page shows them); a printer on a one-way cable cannot answer: set printer.status_checks to false")
	case errors.Is(err, printer.ErrMalformedStatus):
		return fail(fmt.Sprintf("%s: the printer's answer is not a status byte (%v)", where, err),
			"the line setting is wrong: set printer.baud, data_bits, parity and stop_bits to the printer's own setting (its self-test page shows them)")
	case err != nil:
		return fail(fmt.Sprintf("%s: asking the printer's state: %v", where, err), "check the printer's cable and power")
	}
	if !st.CanPrint() {
		problem, fix := printerProblem(st)
		return fail(fmt.Sprintf("%s answers, but cannot print: %s", where, problem), fix)
	}
	if st.PaperNearEnd {
		return warn(fmt.Sprintf("%s: ready, but the paper roll is nearly used up", where), "put in a new roll of paper soon")
	}
	return pass("%s: ready (online, cover closed, paper loaded)", where)
}

// printerOpenFailure explains a port that exists but does not open.
func printerOpenFailure(port string, err error) Result {
	var pe *serial.PortError
	if errors.As(err, &pe) {
		switch pe.Code() {
		case serial.PortBusy:
			return fail(fmt.Sprintf("%s is busy: another program has it open", port),
				fmt.Sprintf("find it with fuser -v %s and stop it: only cardd may write to the printer", port))
		case serial.PermissionDenied:
			return fail(fmt.Sprintf("no permission to open %s", port),
				fmt.Sprintf("give the daemon's user the port's group (ls -l %s shows it; usually dialout): usermod -aG dialout USER; the cardd.service unit has SupplementaryGroups=dialout", port))
		case serial.InvalidSerialPort:
			return fail(fmt.Sprintf("%s is not a serial port: %v", port, err),
				"printer.port must name the printer's serial device ("+portsHint+")")
		}
	}
	return fail(fmt.Sprintf("cannot open %s: %v", port, err), "check the printer's cable and printer.port ("+portsHint+")")
}

// printerProblem says why a printer with status st cannot print, and what
// to do about it.
func printerProblem(st printer.Status) (problem, fix string) {
	switch {
	case st.PaperOut || st.PaperEndStop:
		return "paper out", "put in a new roll of paper and close the cover"
	case st.CoverOpen:
		return "cover open", "close the printer's cover"
	case st.CutterError:
		return "cutter error", "clear the paper jammed at the cutter, then switch the printer off and on"
	case st.UnrecoverableError:
		return "unrecoverable error", "switch the printer off and on; if the error stays, the printer needs service"
	case st.AutoRecoverableError:
		return "head overheated", "wait: printing resumes by itself when the head has cooled down"
	case st.RecoverableError || st.Error:
		return "printer error", "switch the printer off and on and check the paper path"
	}
	return "offline", "switch the printer on and check it is online (holding the feed button or opening the cover takes it offline)"
}
