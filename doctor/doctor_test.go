package doctor

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/ebfe/scard"
	"go.bug.st/serial"

	"github.com/cardd/cardd/config"
	"github.com/cardd/cardd/internal/lockfile"
	"github.com/cardd/cardd/printer"
	"github.com/cardd/cardd/printer/spool"
)

// TestRunWithFakes: every check runs, in the documented order, and on a
// configuration without host, printer or token the machine-free checks pass
// or skip.
func TestRunWithFakes(t *testing.T) {
	cfg := testConfig(t)
	res := Run(context.Background(), cfg, Options{ConfigFile: "/etc/cardd/cardd.yaml", DialPCSC: dialer(slot0, slot1)})
	order := []string{CheckConfig, CheckPCSCD, CheckCardReader, CheckSAMReader, CheckPrinter, CheckStoreFiles,
		CheckStore, CheckHostSecret, CheckHost, CheckHostTLS, CheckClock, CheckAPIToken}
	if len(res) != len(order) {
		t.Fatalf("%d results, want %d: %+v", len(res), len(order), res)
	}
	for i, name := range order {
		if res[i].Check != name {
			t.Errorf("result %d is %s, want %s", i, res[i].Check, name)
		}
	}
	want(t, "config", res[0], Pass, "/etc/cardd/cardd.yaml", "kiosk", "000000000001")
	want(t, "pcscd", res[1], Pass, "2 reader(s)")
	want(t, "card reader", res[2], Pass, `"Virtual PCD 00 00"`)
	want(t, "sam reader", res[3], Skip, "sam_pattern is empty")
	want(t, "printer", res[4], Skip, "printer.enabled is false")
	// No host and no printer: cardd keeps no journal, so none is no problem.
	want(t, "store files", res[5], Skip, "does not exist")
	want(t, "store", res[6], Skip, "no journal without host.url or a printer")
	for _, r := range res[7:] {
		want(t, r.Check, r, Skip)
	}
	if Failed(res) {
		t.Error("Failed() is true without a FAIL")
	}
	if _, err := os.Stat(filepath.Dir(cfg.Store.Path)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the doctor created the store's directory (%v)", err)
	}
}

func TestConfigCheck(t *testing.T) {
	cfg := testConfig(t)
	r := &run{cfg: cfg}
	want(t, "no file", r.checkConfig(context.Background()), Pass, "no configuration file")
	cfg.Terminal.ID = "xyz"
	want(t, "hand-built invalid config", r.checkConfig(context.Background()), Fail, "terminal.id", "fix:cardd config")
}

func TestRunAfterCancelFailsTheRest(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res := Run(ctx, testConfig(t), Options{DialPCSC: func() (PCSC, error) { t.Error("pcscd dialled after cancel"); return nil, nil }})
	for _, r := range res {
		want(t, r.Check, r, Fail, "not run", "fix:again")
	}
}

func TestPCSCDUnreachable(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("it fakes pcscd's socket; doctor names the smart card service on Windows, which scripts/wintest checks under Wine")
	}
	t.Setenv(envPCSCSocket, filepath.Join(t.TempDir(), "no-such.comm"))
	cfg := testConfig(t)
	res := Run(context.Background(), cfg, Options{DialPCSC: func() (PCSC, error) { return nil, scard.ErrNoService }})
	want(t, "pcscd", find(t, res, CheckPCSCD), Fail, "pcscd is not running", "no-such.comm",
		"fix:systemctl start pcscd", "fix:PCSCLITE_CSOCK_NAME")
	want(t, "card reader", find(t, res, CheckCardReader), Skip, "pcscd is not reachable")
	cfg.Reader.SAMPattern = "01$"
	res = Run(context.Background(), cfg, Options{DialPCSC: func() (PCSC, error) { return nil, scard.ErrNoService }})
	want(t, "sam reader", find(t, res, CheckSAMReader), Skip, "pcscd is not reachable")
	if !Failed(res) {
		t.Error("Failed() is false with pcscd down")
	}
}

func TestPCSCDListFailsAndReleases(t *testing.T) {
	f := &fakePCSC{err: scard.ErrCommError}
	r := &run{cfg: testConfig(t), opts: Options{DialPCSC: func() (PCSC, error) { return f, nil }}}
	want(t, "pcscd", r.checkPCSCD(context.Background()), Fail, "listing readers")
	if !f.released {
		t.Error("context not released")
	}
	// No readers is not a pcscd failure: the reader check says it.
	f = &fakePCSC{err: scard.ErrNoReadersAvailable}
	r = &run{cfg: testConfig(t), opts: Options{DialPCSC: func() (PCSC, error) { return f, nil }}}
	want(t, "pcscd", r.checkPCSCD(context.Background()), Pass, "0 reader(s)")
	want(t, "card reader", r.checkCardReader(context.Background()), Fail, "no readers", "fix:plug in the card reader")
}

func TestPCSCDHangIsBounded(t *testing.T) {
	block := make(chan struct{})
	defer close(block)
	r := &run{cfg: testConfig(t), opts: Options{PCSCTimeout: 50 * time.Millisecond,
		DialPCSC: func() (PCSC, error) { <-block; return nil, scard.ErrNoService }}}
	want(t, "pcscd", r.checkPCSCD(context.Background()), Fail, "did not answer within 50ms", "fix:restart")
	want(t, "card reader", r.checkCardReader(context.Background()), Skip)
}

func TestReaderChecks(t *testing.T) {
	for _, tc := range []struct {
		name       string
		mode       string
		card, sam  string
		readers    []string
		cardStatus Status
		samStatus  Status
		subs       []string // of the card check
		samSubs    []string
	}{
		{name: "vpcd card and SAM", card: "^Virtual PCD 00 00$", sam: "^Virtual PCD 00 01$", readers: []string{slot0, slot1},
			cardStatus: Pass, samStatus: Pass, subs: []string{slot0}, samSubs: []string{slot1}},
		{name: "broad card pattern leaves the SAM out", card: ".*", sam: "01$", readers: []string{slot0, slot1},
			cardStatus: Pass, samStatus: Pass, subs: []string{`"Virtual PCD 00 00" (`}},
		{name: "card pattern matches nothing", card: "PICC", readers: []string{slot0, slot1},
			cardStatus: Fail, samStatus: Skip, subs: []string{`"PICC"`, slot0, slot1, `fix:^Virtual PCD 00 00$`}},
		{name: "the SAM pattern takes every reader", card: ".*", sam: "Virtual", readers: []string{slot0, slot1},
			cardStatus: Fail, samStatus: Warn, subs: []string{"fix:reader.sam_pattern"}, samSubs: []string{"2 readers", "fix:anchor"}},
		{name: "SAM reader missing", card: "00 00", sam: "SAM", readers: []string{slot0},
			cardStatus: Pass, samStatus: Fail, samSubs: []string{`"SAM"`, "fix:seat the PSAM"}},
		{name: "pos without a SAM", mode: config.ModePOS, card: ".*", readers: []string{slot0},
			cardStatus: Pass, samStatus: Fail, samSubs: []string{"PSAM", "fix:reader.sam_pattern"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.Reader.CardPattern, cfg.Reader.SAMPattern = tc.card, tc.sam
			if tc.mode != "" {
				cfg.Mode = tc.mode
			}
			r := &run{cfg: cfg, opts: Options{DialPCSC: dialer(tc.readers...)}}
			ctx := context.Background()
			want(t, "pcscd", r.checkPCSCD(ctx), Pass)
			want(t, "card reader", r.checkCardReader(ctx), tc.cardStatus, tc.subs...)
			want(t, "sam reader", r.checkSAMReader(ctx), tc.samStatus, tc.samSubs...)
		})
	}
}

// printerConfig enables a printer on a port that exists (a plain file: the
// fake line never opens it).
func printerConfig(t *testing.T) *config.Config {
	cfg := testConfig(t)
	cfg.Printer.Enabled = true
	cfg.Printer.Port = filepath.Join(t.TempDir(), "ttyFAKE")
	writeFile(t, cfg.Printer.Port, "", 0o600)
	return cfg
}

func TestPrinterCheckWithFakes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		checks bool
		p      fakePrinter
		status Status
		subs   []string
	}{
		{"ready", true, fakePrinter{}, Pass, []string{"9600 baud", "ready"}},
		{"status checks off", false, fakePrinter{}, Pass, []string{"opens", "status_checks is false"}},
		{"paper out", true, fakePrinter{st: printer.Status{Offline: true, PaperOut: true, PaperEndStop: true}}, Fail, []string{"paper out", "fix:new roll"}},
		{"cover open", true, fakePrinter{st: printer.Status{Offline: true, CoverOpen: true}}, Fail, []string{"cover open", "fix:close the printer's cover"}},
		{"cutter", true, fakePrinter{st: printer.Status{Offline: true, Error: true, CutterError: true}}, Fail, []string{"cutter error", "fix:jammed"}},
		{"offline", true, fakePrinter{st: printer.Status{Offline: true}}, Fail, []string{"offline", "fix:switch the printer on"}},
		{"near end", true, fakePrinter{st: printer.Status{PaperNearEnd: true}}, Warn, []string{"nearly used up", "fix:new roll"}},
		{"no answer", true, fakePrinter{stateErr: spool.ErrNoAnswer}, Fail, []string{"did not answer DLE EOT", "fix:printer.baud", "fix:status_checks to false"}},
		{"garbled answer", true, fakePrinter{stateErr: printer.ErrMalformedStatus}, Fail, []string{"not a status byte", "fix:printer.baud"}},
		{"busy", true, fakePrinter{openErr: &serial.PortError{}}, Fail, []string{"busy", "fix:fuser -v"}},
		{"open fails", true, fakePrinter{openErr: errors.New("input/output error")}, Fail, []string{"input/output error", "fix:cable"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := printerConfig(t)
			cfg.Printer.StatusChecks = tc.checks
			p := tc.p
			r := &run{cfg: cfg, opts: Options{OpenPrinter: func(*config.Config) Printer { return &p }}}
			want(t, "printer", r.checkPrinter(context.Background()), tc.status, tc.subs...)
			if !p.opened || !p.closed {
				t.Errorf("port opened %v, closed %v; want both", p.opened, p.closed)
			}
			if p.asked != (tc.checks && p.openErr == nil) {
				t.Errorf("state asked %v with status_checks %v", p.asked, tc.checks)
			}
		})
	}
}

func TestPrinterPortMissing(t *testing.T) {
	cfg := testConfig(t)
	cfg.Printer.Enabled, cfg.Printer.Port = true, filepath.Join(t.TempDir(), "ttyUSB9")
	r := &run{cfg: cfg, opts: Options{OpenPrinter: func(*config.Config) Printer { t.Error("opened a missing port"); return &fakePrinter{} }}}
	want(t, "printer", r.checkPrinter(context.Background()), Fail, "ttyUSB9 does not exist", "fix:printer.port")
}

// TestPrinterHeldByTheDaemon: while another process (here another open file,
// which flock treats alike) holds the printer lock, the port is not touched.
func TestPrinterHeldByTheDaemon(t *testing.T) {
	cfg := printerConfig(t)
	lock := PrinterLockPath(cfg)
	writeFile(t, lock, "", 0o600)
	// Another lock on the file, through a handle of its own: flock and
	// LockFileEx both refuse it to this process's other handles too.
	held, err := lockfile.Acquire(lock)
	if err != nil {
		t.Fatal(err)
	}
	r := &run{cfg: cfg, opts: Options{OpenPrinter: func(*config.Config) Printer { t.Error("opened the daemon's printer"); return &fakePrinter{} }}}
	want(t, "printer", r.checkPrinter(context.Background()), Skip, "the running cardd drives the printer")

	// Released: the check takes the lock for itself while it looks, so a
	// daemon starting meanwhile does not print under it.
	if err := held.Release(); err != nil {
		t.Fatal(err)
	}
	p := &fakePrinter{}
	r.opts.OpenPrinter = func(*config.Config) Printer {
		if l, err := lockfile.Acquire(lock); err == nil {
			t.Error("the lock is free while the doctor uses the port")
			l.Release()
		}
		return p
	}
	want(t, "printer", r.checkPrinter(context.Background()), Pass)
	l, err := lockfile.Acquire(lock)
	if err != nil {
		t.Fatalf("the doctor kept the lock: %v", err)
	}
	l.Release()
}

func TestPrinterLockFileIsNotCreated(t *testing.T) {
	cfg := printerConfig(t)
	r := &run{cfg: cfg, opts: Options{OpenPrinter: func(*config.Config) Printer { return &fakePrinter{} }}}
	want(t, "printer", r.checkPrinter(context.Background()), Pass)
	if _, err := os.Stat(PrinterLockPath(cfg)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lock file created (%v): a doctor run as root would leave one the daemon cannot open", err)
	}
}
