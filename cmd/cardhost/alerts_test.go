package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cardd/cardd/config"
	"github.com/cardd/cardd/host"
	"github.com/cardd/cardd/hostapi"
)

// TestAlertCommands: 'alerts set' refuses a bad URL, a short secret and a
// URL without a secret, naming the flag, and changes nothing; set, it
// shows the webhook and never the secret; 'card alert' sets a card's own
// threshold, refuses an unknown card; 'alerts list' is empty and valid
// JSON; a crossing sale uploaded through serve is one alert queued, on
// /metrics.
func TestAlertCommands(t *testing.T) {
	dir, secretFile, _ := setup(t)
	secret := filepath.Join(t.TempDir(), "alert.secret")
	short := filepath.Join(t.TempDir(), "short.secret")
	if err := os.WriteFile(secret, []byte("a webhook secret of 32 bytes...\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(short, []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--url", "ftp://x/hook", "--secret-file", secret}, `--url = "ftp://x/hook"`},
		{[]string{"--url", "https://x/hook", "--secret-file", short}, "--secret-file"},
		{[]string{"--url", "https://x/hook"}, "--secret-file"},
		{[]string{"--below", "-1"}, "--below"},
		{[]string{"--below", "10.00", "--off"}, "--off"},
		{[]string{"--card-number", "half"}, "--card-number"},
	} {
		_, errOut := wantCode(t, 2, append([]string{"alerts", "set", "--dir", dir}, c.args...)...)
		if !strings.Contains(errOut, c.want) {
			t.Errorf("alerts set %v: %s; want it to name %s", c.args, errOut, c.want)
		}
	}
	if out, _ := wantCode(t, 0, "alerts", "set", "--dir", dir); !strings.Contains(out, "off") {
		t.Fatalf("alerts set after refusals: %s", out)
	}
	out, _ := wantCode(t, 0, "alerts", "set", "--dir", dir, "--url", "https://ops.example/hook", "--secret-file", secret, "--below", "10.00")
	if !strings.Contains(out, "https://ops.example/hook") || !strings.Contains(out, "below 10.00") || strings.Contains(out, "webhook secret") {
		t.Fatalf("alerts set: %s", out)
	}
	wantCode(t, 2, "alerts", "set", "--dir", dir, "--url", "https://x/hook", "--disable")
	wantCode(t, 0, "alerts", "set", "--dir", dir, "--disable")
	if out, _ := wantCode(t, 0, "alerts", "set", "--dir", dir); !strings.Contains(out, "off") {
		t.Fatalf("alerts set --disable: %s", out)
	}
	wantCode(t, 0, "alerts", "set", "--dir", dir, "--url", "https://ops.example/hook")
	wantCode(t, 2, "card", "alert", "--dir", dir, "--card", number)
	wantCode(t, 2, "card", "alert", "--dir", dir, "--card", "3101000000999999", "--below", "5.00")
	if out, _ := wantCode(t, 0, "card", "alert", "--dir", dir, "--card", number, "--below", "5.00"); !strings.Contains(out, "below 5.00") {
		t.Fatalf("card alert: %s", out)
	}
	wantCode(t, 2, "alerts", "list", "--dir", dir, "--state", "lost")
	out, _ = wantCode(t, 0, "alerts", "list", "--dir", dir, "--json")
	var list []host.Alert
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != 0 {
		t.Fatalf("alerts list --json: %s %v", out, err)
	}

	// A sale that takes the card from 10.00 to 4.00, below its own 5.00,
	// uploaded through serve: one alert, queued (its receiver does not
	// answer, and the retry waits), counted on /metrics.
	s, err := config.ReadSecretFile(secretFile)
	if err != nil {
		t.Fatal(err)
	}
	url, stderr, stop := serveInProcess(t, "--dir", dir, "--metrics-listen", "127.0.0.1:0")
	defer stop()
	sale := hostapi.JournalRow{ID: "000000000001-1", Kind: "purchase", State: "done", Card: number, Purse: "EP", Counter: 1,
		BalanceFen: 1000, AmountFen: 600, Time: time.Now().UTC().Format(time.RFC3339)}
	signedPost(t, url, "000000000001", s, hostapi.PathJournal, hostapi.JournalRequest{Rows: []hostapi.JournalRow{sale}}, nil)
	_, addr, ok := strings.Cut(stderr(), "msg=\"serving metrics\" addr=")
	if !ok {
		t.Fatalf("no metrics address logged: %s", stderr())
	}
	res, err := http.Get("http://" + strings.Fields(addr)[0])
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(b), `cardhost_alerts{state="queued"} 1`) || !strings.Contains(string(b), `cardhost_alerts{state="failed"} 0`) {
		t.Fatalf("metrics:\n%s", b)
	}
	out, _ = wantCode(t, 0, "alerts", "list", "--dir", dir)
	if !strings.Contains(out, "balance:000000000001:000000000001-1") || !strings.Contains(out, "3101") {
		t.Fatalf("alerts list:\n%s", out)
	}
}
