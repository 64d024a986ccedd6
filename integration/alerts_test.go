package integration

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/cardd/cardd/host"
	"github.com/cardd/cardd/reader/vpcd"
)

// TestBalanceAlertWebhook is issue 17 item 6 through pcscd, `cardd run
// --mode pos` with the PSAM and `cardhost serve`: with `cardhost alerts
// set --below 10.00`, sales of 3.00 (15.00 → 12.00), 4.00 (→ 8.00, below
// 10.00) and 1.00 (→ 7.00, still below) deliver exactly one webhook, for
// the second sale, signed so that the receiver verifies it with the
// secret, carrying the card masked and its balance; 'cardhost alerts list'
// shows it sent.
func TestBalanceAlertWebhook(t *testing.T) {
	requirePCSC(t)
	ctx := context.Background()
	w := newHostWorld(t)
	insertPSAM(t, w.hostDir)
	const number = "3101000000800061"
	path := w.issue(t, number, 1500)
	dir := t.TempDir()
	secret := []byte("the operator's webhook secret, 40 bytes")
	secretFile := filepath.Join(dir, "alert.secret")
	if err := os.WriteFile(secretFile, append(secret, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	var mu gosync.Mutex
	var bodies [][]byte
	rcv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		if err := host.VerifyAlert(secret, req.Header.Get(host.AlertSignatureHeader), b, time.Now(), 5*time.Minute); err != nil {
			t.Errorf("webhook: %v", err)
			http.Error(rw, err.Error(), http.StatusUnauthorized)
			return
		}
		mu.Lock()
		bodies = append(bodies, b)
		mu.Unlock()
	}))
	defer rcv.Close()
	cardhostCLI(t, w.hostDir, "alerts", "set", "--url", rcv.URL+"/hook", "--secret-file", secretFile, "--below", "10.00")
	hostURL := startServe(t, w.hostDir, "--alert-poll", "200ms")

	env := []string{"CARDD_MODE=pos", "CARDD_READER_SAM_PATTERN=^" + regexp.QuoteMeta(slot1Reader) + "$",
		"CARDD_HOST_URL=" + hostURL, "CARDD_HOST_SECRET_FILE=" + w.secretFile(t, dir),
		"CARDD_STORE_PATH=" + filepath.Join(dir, "cardd.db"), "CARDD_TERMINAL_ID=" + termID}
	waitEmpty(t, 0)
	d := startDaemon(t, env...)
	d.waitLine(t, "reader added", 10*time.Second, func(m map[string]any) bool { return m["reader"] == slot1Reader && m["role"] == "sam" })
	for _, amount := range []string{"3.00", "4.00", "1.00"} {
		wait := posCharge(t, env, "", amount, "--wait", "20s")
		in := insert(t, path, 0, vpcd.Options{})
		if out, err := wait(); err != nil || !strings.Contains(out, "paid "+amount) {
			t.Fatalf("cardd pos charge %s: %v\n%s", amount, err, out)
		}
		if err := in.remove(t); err != nil {
			t.Fatal(err)
		}
	}
	wantBalance(t, path, 700)
	day := time.Now().Format(time.DateOnly)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		rep, err := w.host.Daily(ctx, day)
		if err == nil && rep.Total.Purchases == 3 {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("the host holds %+v (%v); want 3 purchases", rep.Total, err)
		}
	}
	// All three rows are at the host: the one alert is queued. Wait for
	// its delivery, then a few more of the sender's polls for any other.
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		mu.Lock()
		n := len(bodies)
		mu.Unlock()
		if n > 0 {
			break
		} else if time.Now().After(deadline) {
			t.Fatal("no webhook within 15 s of the uploads")
		}
	}
	time.Sleep(time.Second)
	d.stop(t, 10*time.Second)
	mu.Lock()
	defer mu.Unlock()
	if len(bodies) != 1 {
		t.Fatalf("%d webhooks; want exactly 1: %s", len(bodies), bodies)
	}
	var p host.AlertPayload
	if err := json.Unmarshal(bodies[0], &p); err != nil {
		t.Fatal(err)
	}
	if p.Event != host.AlertEvent || p.Card != "3101********0061" || p.BalanceFen != 800 || p.Balance != "8.00" || p.ThresholdFen != 1000 ||
		p.AmountFen != 400 || p.Terminal != termID || p.ID == "" || strings.Contains(string(bodies[0]), number) {
		t.Fatalf("webhook %s", bodies[0])
	}
	out := cardhostCLI(t, w.hostDir, "alerts", "list")
	if !strings.Contains(out, p.ID) || !strings.Contains(out, " sent ") || strings.Count(out, "\n") != 2 {
		t.Fatalf("alerts list:\n%s", out)
	}
}
