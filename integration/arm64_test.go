package integration

import (
	"context"
	"debug/elf"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cardd/cardd/money"
	"github.com/cardd/cardd/reader/vpcd"
)

// requireArm64 fails (under CI=true) or skips the test when the arm64 cross
// toolchain, pcsc-lite's arm64 package or qemu-user is not installed
// (scripts/test installs them: ensure_arm64). It returns qemu's path.
func requireArm64(t *testing.T) string {
	t.Helper()
	var missing []string
	qemu, err := exec.LookPath("qemu-aarch64-static")
	if err != nil {
		missing = append(missing, "qemu-aarch64-static (qemu-user-static)")
	}
	if _, err := exec.LookPath("aarch64-linux-gnu-gcc"); err != nil {
		missing = append(missing, "aarch64-linux-gnu-gcc (gcc-aarch64-linux-gnu)")
	}
	if _, err := os.Stat("/usr/lib/aarch64-linux-gnu/pkgconfig/libpcsclite.pc"); err != nil {
		missing = append(missing, "libpcsclite.pc for arm64 (libpcsclite-dev:arm64)")
	}
	if len(missing) > 0 {
		msg := "linux/arm64 under qemu needs " + strings.Join(missing, ", ") + ": run scripts/test, or ensure_arm64 of scripts/lib.sh"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return qemu
}

// TestScanArm64UnderQEMU cross-builds cardd for linux/arm64 (scripts/cross)
// and runs its `cardd scan` under qemu-user against this machine's pcscd:
// the arm64 pcsc-lite client speaks to the amd64 pcscd over its socket, and
// the simulated card in the vpcd slot reads as the card file holds it.
func TestScanArm64UnderQEMU(t *testing.T) {
	requirePCSC(t)
	qemu := requireArm64(t)

	bin := filepath.Join(t.TempDir(), "cardd")
	// A first arm64 build compiles the standard library for arm64 too:
	// minutes on a busy machine.
	build, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(build, "scripts/cross", "arm64", "go", "build", "-o", bin, "./cmd/cardd")
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("scripts/cross arm64 go build ./cmd/cardd: %v\n%s", err, out)
	}
	// Not this machine's binary run by mistake: the test is worth nothing
	// unless qemu runs an arm64 cardd.
	ef, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	if ef.Machine != elf.EM_AARCH64 {
		t.Fatalf("scripts/cross built a %v binary, want %v", ef.Machine, elf.EM_AARCH64)
	}
	ef.Close()

	f, path := newCardFile(t, "3101000000135790", "周八", 43210, 7)
	waitEmpty(t, 0)
	run, cancelRun := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancelRun()
	// -L /: the arm64 loader and libraries (libpcsclite1:arm64) are
	// multiarch's, at their own paths under / (scripts/qemu-exec).
	scan := exec.CommandContext(run, qemu, "-L", "/", bin, "scan", "--json", "--wait", "90s", "--reader-card", "^Virtual PCD 00 00$")
	scan.Env = append(os.Environ(), "CARDD_CONFIG=")
	scan.Stderr = testWriter{t}
	outc := make(chan []byte, 1)
	errc := make(chan error, 1)
	go func() { b, err := scan.Output(); outc <- b; errc <- err }()
	// The monitor takes a card already in the slot when it starts for a tap,
	// so the card may go in before or after cardd scan is ready.
	in := insert(t, path, 0, vpcd.Options{})
	out := <-outc
	if err := <-errc; err != nil {
		t.Fatalf("cardd scan (arm64, qemu): %v; %s\n%s", err, in.status(), out)
	}
	if err := in.remove(t); err != nil {
		t.Errorf("card left the slot with %v", err)
	}
	var got struct {
		Card, Holder, Balance string
		BalanceFen            int64 `json:"balance_fen"`
		Transactions          []struct {
			Time    string
			Counter uint16
		}
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("scan output is not JSON: %v\n%s", err, out)
	}
	if got.Card != "3101********5790" || got.Holder != "周八" {
		t.Errorf("card %q holder %q, want 3101********5790 周八", got.Card, got.Holder)
	}
	if got.BalanceFen != f.EPBalance || got.Balance != money.Format(f.EPBalance) {
		t.Errorf("balance %q (%d fen), card file %d", got.Balance, got.BalanceFen, f.EPBalance)
	}
	want := newestFirst(f.Log, 5)
	if len(got.Transactions) != len(want) {
		t.Fatalf("%d transactions, want the %d newest", len(got.Transactions), len(want))
	}
	for i, tx := range got.Transactions {
		if tx.Counter != want[i].Counter || tx.Time != want[i].Time.Format("2006-01-02 15:04:05") {
			t.Errorf("transaction %d: %+v, card file %+v", i+1, tx, want[i])
		}
	}
}
