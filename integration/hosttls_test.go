package integration

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	epursesim "github.com/cardd/cardd/apdu/epurse/sim"
	"github.com/cardd/cardd/internal/tlsgen"
	"github.com/cardd/cardd/reader/vpcd"
)

// TestDaemonHostOverTLS runs the host link over TLS through the real
// binaries: `cardhost serve --tls-cert --tls-key` with a certificate made
// here for 127.0.0.1, and `cardd run` with host.ca_file. A credit added at
// the host is pulled and loaded on a tap. A second cardd given another CA
// refuses the host: its log says the certificate was not verified, and a
// tap with a credit waiting at the host loads nothing.
func TestDaemonHostOverTLS(t *testing.T) {
	requirePCSC(t)
	w := newHostWorld(t)
	const number = "3101000000770031"
	path := w.issue(t, number, 1000)
	dir := t.TempDir()
	files, err := tlsgen.Write(dir, []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	base := startServe(t, w.hostDir, "--tls-cert", files.Cert, "--tls-key", files.Key)
	if !strings.HasPrefix(base, "https://") {
		t.Fatalf("cardhost serve with a certificate serves %s, want https://", base)
	}
	balance := func() int64 {
		t.Helper()
		f, err := epursesim.LoadCardFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return int64(f.EPBalance)
	}

	storePath := filepath.Join(dir, "cardd.db")
	waitEmpty(t, 0)
	d := startDaemon(t, "CARDD_HOST_URL="+base, "CARDD_HOST_SECRET_FILE="+w.secretFile(t, dir), "CARDD_HOST_CA_FILE="+files.CA,
		"CARDD_STORE_PATH="+storePath, "CARDD_TERMINAL_ID="+termID)
	d.waitLine(t, "reader added", 10*time.Second, func(m map[string]any) bool { return m["reader"] == slot0Reader })
	waitPulled(t, storePath, 10*time.Second)
	cardhostCLI(t, w.hostDir, "credit", "add", "--card", number, "--amount", "25.00")
	list, err := w.host.Credits(context.Background(), number)
	if err != nil || len(list) != 1 {
		t.Fatalf("host credits %+v, %v", list, err)
	}
	waitCached(t, storePath, list[0].ID, 5*time.Second) // pulled over TLS
	in := insert(t, path, 0, vpcd.Options{})
	d.waitLine(t, "tap", 15*time.Second, isTap("ok"))
	in.remove(t)
	if got := balance(); got != 3500 {
		t.Fatalf("card holds %d fen after the load over TLS, want 3500", got)
	}
	d.stop(t, 10*time.Second)

	// Another CA: the same host is not verified, so nothing is sent to it.
	other, err := tlsgen.Write(t.TempDir(), []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dir2 := t.TempDir()
	waitEmpty(t, 0)
	d2 := startDaemon(t, "CARDD_HOST_URL="+base, "CARDD_HOST_SECRET_FILE="+w.secretFile(t, dir2), "CARDD_HOST_CA_FILE="+other.CA,
		"CARDD_STORE_PATH="+filepath.Join(dir2, "cardd.db"), "CARDD_TERMINAL_ID="+termID)
	var ready, refused bool
	d2.waitLine(t, "the reader and the refusal of the host", 20*time.Second, func(m map[string]any) bool {
		if m["reader"] == slot0Reader {
			ready = true
		}
		if e, _ := m["err"].(string); m["msg"] == "host sync failing; retrying" &&
			strings.Contains(e, "host certificate not verified") && strings.Contains(e, "unknown authority") {
			refused = true
		}
		return ready && refused
	})
	cardhostCLI(t, w.hostDir, "credit", "add", "--card", number, "--amount", "10.00")
	in = insert(t, path, 0, vpcd.Options{})
	d2.waitLine(t, "tap", 15*time.Second, func(m map[string]any) bool { return m["msg"] == "tap" })
	in.remove(t)
	if got := balance(); got != 3500 {
		t.Fatalf("card holds %d fen after a tap at a terminal that cannot verify the host, want 3500 (nothing loaded)", got)
	}
	list, err = w.host.Credits(context.Background(), number)
	if err != nil || len(list) != 2 || list[1].ConsumedAt != "" {
		t.Fatalf("host credits %+v, %v; want the 10.00 credit still waiting", list, err)
	}
	d2.stop(t, 10*time.Second)
}
