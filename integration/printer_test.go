package integration

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

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
	secretFile := filepath.Join(dir, "host.secret")
	if err := os.WriteFile(secretFile, []byte(w.secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
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
