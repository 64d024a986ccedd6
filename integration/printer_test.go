package integration

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cardd/cardd/localapi"
	"github.com/cardd/cardd/printer/sim"
	"github.com/cardd/cardd/reader/vpcd"
)

// openPrinter starts the virtual printer on a pty linked at link; without a
// pty the test fails under CI=true.
func openPrinter(t *testing.T, link string, opt sim.Options) *sim.Printer {
	t.Helper()
	opt.Link = link
	p, err := sim.Open(opt)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("virtual printer on a pty: %v", err)
		}
		t.Skipf("no pty: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func printerEnv(link string) []string {
	return []string{"CARDD_PRINTER_ENABLED=true", "CARDD_PRINTER_PORT=" + link, "CARDD_PRINTER_BAUD=115200",
		"CARDD_RECEIPT_MERCHANT=测试大学", "CARDD_RECEIPT_FOOTER=谢谢"}
}

// TestReceiptSurvivesDaemonKill: a top-up loads on a tap while the printer
// is out of paper, so its receipt waits in the queue; `cardd run` is
// SIGKILLed there, the paper comes back, and the restarted daemon prints
// the receipt exactly once: not again on a further restart.
func TestReceiptSurvivesDaemonKill(t *testing.T) {
	requirePCSC(t)
	w := newHostWorld(t)
	dir := t.TempDir()
	secretFile := w.secretFile(t, dir)
	link := filepath.Join(dir, "printer")
	if err := os.Mkdir(filepath.Join(dir, "receipts"), 0o755); err != nil {
		t.Fatal(err)
	}
	p := openPrinter(t, link, sim.Options{Initial: sim.State{PaperOut: true}, Dir: filepath.Join(dir, "receipts")})
	env := append([]string{
		"CARDD_HOST_URL=" + w.srv.URL, "CARDD_HOST_SECRET_FILE=" + secretFile,
		"CARDD_STORE_PATH=" + filepath.Join(dir, "cardd.db"), "CARDD_TERMINAL_ID=" + termID,
	}, printerEnv(link)...)
	const number = "3101000000900001"
	path := w.issue(t, number, 10000)
	w.credit(t, number, 5000)

	waitEmpty(t, 0)
	d := startDaemon(t, env...)
	d.waitLine(t, "reader added", 10*time.Second, func(m map[string]any) bool { return m["reader"] == slot0Reader })
	in := insert(t, path, 0, vpcd.Options{})
	d.waitLine(t, "tap", 15*time.Second, isTap("ok"))
	in.remove(t)
	d.waitLine(t, "printer out of paper", 10*time.Second, func(m map[string]any) bool { return m["problem"] == "paper out" })
	_ = d.cmd.Process.Signal(syscall.SIGKILL)
	<-d.exit
	if n := len(p.Receipts()); n != 0 {
		t.Fatalf("%d receipts printed with no paper", n)
	}

	p.SetPaperOut(false)
	d = startDaemon(t, env...)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	got, err := p.WaitReceipts(ctx, 1)
	if err != nil {
		t.Fatalf("receipt not printed after the restart: %v", err)
	}
	text := got[0].Text()
	for _, want := range []string{"测试大学", "充值成功", "3101********0001", "充值前余额", "100.00", "充值金额", "50.00", "充值后余额", "150.00", "谢谢"} {
		if !strings.Contains(text, want) {
			t.Errorf("receipt lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, number) {
		t.Errorf("receipt shows the whole card number:\n%s", text)
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	if err := <-d.exit; err != nil {
		t.Fatalf("cardd exited with %v after SIGTERM", err)
	}

	// A third run has nothing to print.
	d = startDaemon(t, env...)
	d.waitLine(t, "start", 10*time.Second, func(m map[string]any) bool { return m["msg"] == "cardd starting" })
	time.Sleep(3 * time.Second) // the worker looks at the queue every 2 s
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	<-d.exit
	if n := len(p.Receipts()); n != 1 {
		t.Errorf("%d receipts printed in all, want 1", n)
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "receipts", "receipt-*.txt")); len(files) != 1 {
		t.Errorf("receipt files %q, want one", files)
	}
}

// TestPrintTestAndReprint: `cardd print-test` prints a test page through
// the real serial stack when no daemon runs, and `cardd receipts
// reprint-last` prints it again marked as a copy.
func TestPrintTestAndReprint(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(dir, "printer")
	p := openPrinter(t, link, sim.Options{})
	env := append([]string{"CARDD_CONFIG=", "CARDD_STORE_PATH=" + filepath.Join(dir, "cardd.db")}, printerEnv(link)...)
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(binary(t, "cardd"), args...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("cardd %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	if out := run("print-test"); !strings.Contains(out, "printed") {
		t.Errorf("print-test said %q", out)
	}
	if out := run("receipts", "reprint-last"); !strings.Contains(out, "printed") {
		t.Errorf("reprint-last said %q", out)
	}
	got := p.Receipts()
	if len(got) != 2 {
		t.Fatalf("%d receipts printed, want the test page and its copy", len(got))
	}
	if !strings.Contains(got[0].Text(), "测试页") || strings.Contains(got[0].Text(), "补打") {
		t.Errorf("test page:\n%s", got[0].Text())
	}
	if !strings.Contains(got[1].Text(), "测试页") || !strings.Contains(got[1].Text(), "补打") {
		t.Errorf("reprint, want the test page marked 补打:\n%s", got[1].Text())
	}

	// Without a printer configured, a clear error naming the key.
	cmd := exec.Command(binary(t, "cardd"), "print-test")
	cmd.Env = append(os.Environ(), "CARDD_CONFIG=", "CARDD_STORE_PATH="+filepath.Join(dir, "cardd.db"))
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "printer.enabled") {
		t.Errorf("print-test without a printer: %v\n%s", err, out)
	}
}

// TestPrinterGoneAfterReceipt: the printer's port vanishes just after a
// receipt (the pty hung up, the link removed, as when a USB serial cable is
// pulled): the daemon's status query after the receipt fails, and the
// printer is then not ready, in the log and in /v1/status, and stays so:
// no "printer ready" without a status answer, so the kiosk does not offer
// a receipt that cannot print.
func TestPrinterGoneAfterReceipt(t *testing.T) {
	requirePCSC(t)
	dir := t.TempDir()
	link := filepath.Join(dir, "printer")
	printed, release := make(chan struct{}, 1), make(chan struct{})
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	// The printer holds its reading after the receipt until the port is
	// gone, so the daemon's status query can never be answered first.
	p := openPrinter(t, link, sim.Options{OnReceipt: func(sim.Receipt) {
		printed <- struct{}{}
		<-release
	}})
	env := append([]string{"CARDD_STORE_PATH=" + filepath.Join(dir, "cardd.db"), "CARDD_TERMINAL_ID=" + termID}, printerEnv(link)...)
	d := startDaemon(t, env...)
	addr := d.apiAddr(t)
	d.waitLine(t, "start", 10*time.Second, func(m map[string]any) bool { return m["msg"] == "cardd starting" })

	cmd := exec.Command(binary(t, "cardd"), "print-test")
	cmd.Env = append(os.Environ(), append([]string{"CARDD_CONFIG="}, env...)...)
	out := make(chan []byte, 1)
	go func() { b, _ := cmd.CombinedOutput(); out <- b }()
	select {
	case <-printed:
	case <-time.After(30 * time.Second):
		t.Fatal("the test page was not printed within 30 s")
	}
	closed := make(chan error, 1)
	go func() { closed <- p.Close() }() // hangs up now; returns once released
	d.waitLine(t, "printer not ready", 10*time.Second, func(m map[string]any) bool { return m["msg"] == "printer cannot print" })
	close(release)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if b := <-out; !strings.Contains(string(b), "printed") {
		t.Errorf("print-test said %q", b)
	}
	if _, err := os.Lstat(link); !os.IsNotExist(err) {
		t.Fatalf("the printer's link is still there: %v", err)
	}

	// Past the worker's idle poll (2 s): still not ready, and never said
	// ready in between.
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case m := <-d.lines:
			if m["msg"] == "printer ready" {
				t.Fatalf("the daemon says the printer is ready with its port gone: %v", m)
			}
		case <-time.After(100 * time.Millisecond):
		}
	}
	resp, err := http.Get("http://" + addr + "/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st localapi.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	if !st.Printer.Enabled || st.Printer.Ready || st.Printer.Problem == "" {
		t.Fatalf("/v1/status printer %+v, want enabled, not ready, with the problem", st.Printer)
	}
}
