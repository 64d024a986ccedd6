package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cardd/cardd/config"
	"github.com/cardd/cardd/host"
	"github.com/cardd/cardd/hostapi"
)

// orderTopup asks the serving host for a top-up order as terminal
// 000000000001.
func orderTopup(t *testing.T, url string, secret []byte, key string, amount int64) hostapi.TopupOrder {
	t.Helper()
	body, _ := json.Marshal(hostapi.TopupOrderRequest{Card: number, AmountFen: amount, Key: key})
	req, _ := http.NewRequest(http.MethodPost, url+hostapi.PathTopupOrder, bytes.NewReader(body))
	hostapi.Sign(req, "000000000001", secret, body, time.Now(), "00112233445566778899aabbccdd"+key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var o hostapi.TopupOrder
	if err := json.NewDecoder(res.Body).Decode(&o); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("order: %d, %v", res.StatusCode, err)
	}
	return o
}

// TestTopupCommands: 'cardhost serve --topup-provider sim' sells a top-up;
// 'topup list' shows it unpaid, 'topup pay --twice' pays it on the serving
// host, 'topup show' and 'credit list' show it paid and credited once; an
// order left unpaid is closed by serve's expiry job and can no longer be
// paid; the sim secret is made private in the host directory.
func TestTopupCommands(t *testing.T) { eachStore(t, testTopupCommands) }

func testTopupCommands(t *testing.T) {
	dir, secretFile, _ := setup(t)
	secret, err := config.ReadSecretFile(secretFile)
	if err != nil {
		t.Fatal(err)
	}
	url, stderr, stop := serveInProcess(t, "--dir", dir, "--topup-provider", "sim", "--topup-timeout", "5s")
	defer stop()
	wantMode(t, filepath.Join(dir, SimSecretFile), 0o600)

	o := orderTopup(t, url, secret, "k1", 10000)
	if !strings.HasPrefix(o.QR, url+"/pay/sim/"+o.ID+"?sig=") || o.State != hostapi.TopupUnpaid {
		t.Fatalf("order %+v", o)
	}
	out, _ := wantCode(t, 0, "topup", "list", "--dir", dir)
	if !strings.Contains(out, o.ID) || !strings.Contains(out, "100.00") || !strings.Contains(out, "unpaid") {
		t.Fatalf("topup list:\n%s", out)
	}
	out, _ = wantCode(t, 0, "topup", "pay", "--dir", dir, "--id", o.ID, "--twice")
	if !strings.Contains(out, "at the host it is paid") {
		t.Fatalf("topup pay: %s", out)
	}
	out, _ = wantCode(t, 0, "topup", "show", "--dir", dir, "--id", o.ID)
	var info host.TopupInfo
	json.Unmarshal([]byte(out), &info)
	if info.State != hostapi.TopupPaid || info.CreditID != o.ID || info.PaidVia != "notification" {
		t.Fatalf("topup show:\n%s", out)
	}
	out, _ = wantCode(t, 0, "credit", "list", "--dir", dir, "--card", number)
	if strings.Count(out, o.ID) != 1 || !strings.Contains(out, "kiosk-topup") {
		t.Fatalf("credit list:\n%s", out)
	}
	_, errOut := wantCode(t, 1, "topup", "pay", "--dir", dir, "--id", o.ID)
	if !strings.Contains(errOut, "the order is paid") {
		t.Fatalf("paying a paid order: %s", errOut)
	}

	left := orderTopup(t, url, secret, "k2", 500)
	deadline := time.Now().Add(5*time.Second + 15*time.Second) // the timeout, then the job's bound
	for {
		out, _ = wantCode(t, 0, "topup", "list", "--dir", dir, "--state", "closed")
		if strings.Contains(out, left.ID) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("order %s not closed 15 s after its timeout:\n%s", left.ID, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	_, errOut = wantCode(t, 1, "topup", "pay", "--dir", dir, "--id", left.ID)
	if !strings.Contains(errOut, "the order is closed") {
		t.Fatalf("paying a closed order: %s", errOut)
	}
	if !strings.Contains(stderr(), "simulated payment provider") {
		t.Fatalf("serve did not warn that the sim provider pays without money:\n%s", stderr())
	}
}
