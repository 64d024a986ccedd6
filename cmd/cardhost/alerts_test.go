package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cardd/cardd/host"
)

// TestAlertCommands: 'alerts set' refuses a bad URL, a short secret and a
// URL without a secret, naming the flag, and changes nothing; set, it
// shows the webhook and never the secret; 'card alert' sets a card's own
// threshold, refuses an unknown card; 'alerts list' is empty and valid
// JSON.
func TestAlertCommands(t *testing.T) {
	dir, _, _ := setup(t)
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
}
