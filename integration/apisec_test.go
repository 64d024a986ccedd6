package integration

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// apiRequest sends one request to the daemon's API at addr; hdr are header
// pairs, "Host" setting the Host line. It returns the status and body.
func apiRequest(t *testing.T, addr, method, path, body string, hdr ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+addr+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			req.Host = hdr[i+1]
		} else {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	c := &http.Client{Timeout: 15 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var pageCredential = regexp.MustCompile(`<meta name="cardd-token" content="([^"]*)">`)

// TestAPISecurityThroughDaemon: `cardd run` in mode pos with api.token_file.
// The kiosk page does not carry the POS token, only its own credential,
// which cannot arm or cancel a sale; a request with a foreign Host (DNS
// rebinding) is refused whatever the path; a sale armed with the real token
// from another web origin is refused; bodies that are too large, case-folded
// or repeat a key are refused; the real token from this machine (curl,
// cardd pos) still works; clients that never send their body are cut off.
func TestAPISecurityThroughDaemon(t *testing.T) {
	requirePCSC(t)
	dir := t.TempDir()
	const posToken = "pos-app-token-5f3a"
	tokenFile := filepath.Join(dir, "api.token")
	if err := os.WriteFile(tokenFile, []byte(posToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"CARDD_MODE=pos", "CARDD_READER_SAM_PATTERN=^" + regexp.QuoteMeta(slot1Reader) + "$",
		"CARDD_STORE_PATH=" + filepath.Join(dir, "cardd.db"), "CARDD_TERMINAL_ID=" + termID, "CARDD_API_TOKEN_FILE=" + tokenFile}
	d := startDaemon(t, env...)
	addr := d.apiAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	evil := "evil.example:" + port
	pos := "Bearer " + posToken

	// The page: served on the API's own address, without the POS token.
	code, page := apiRequest(t, addr, "GET", "/", "")
	if code != 200 {
		t.Fatalf("GET /: %d", code)
	}
	if strings.Contains(page, posToken) {
		t.Error("the kiosk page carries the POS token")
	}
	m := pageCredential.FindStringSubmatch(page)
	if m == nil || m[1] == "" {
		t.Fatalf("the kiosk page has no credential of its own:\n%s", page)
	}
	pageAuth := "Bearer " + m[1]

	// A foreign Host, as a page of another site rebound to this address
	// sends it: refused on every path, the page first.
	for _, path := range []string{"/", "/healthz", "/metrics", "/v1/status", "/v1/journal"} {
		code, body := apiRequest(t, addr, "GET", path, "", "Host", evil)
		if code != http.StatusMisdirectedRequest || strings.Contains(body, posToken) || strings.Contains(body, m[1]) {
			t.Errorf("GET %s with Host %s: %d %.200s, want 421 without any credential", path, evil, code, body)
		}
	}
	if code, body := apiRequest(t, addr, "POST", "/v1/purchase/arm", `{"amount":"499.00"}`,
		"Host", evil, "Origin", "http://evil.example", "Authorization", pos); code != http.StatusMisdirectedRequest {
		t.Errorf("arm with the POS token through Host %s: %d %s, want 421", evil, code, body)
	}

	// The page's credential cannot arm or cancel a sale.
	if code, body := apiRequest(t, addr, "POST", "/v1/purchase/arm", `{"amount":"499.00"}`, "Authorization", pageAuth); code != http.StatusForbidden {
		t.Errorf("arm with the page's credential: %d %s, want 403", code, body)
	}

	// The real token, from another web origin: refused.
	for _, hdr := range [][]string{{"Origin", "http://evil.example"}, {"Origin", "http://" + evil}, {"Sec-Fetch-Site", "cross-site"}} {
		if code, body := apiRequest(t, addr, "POST", "/v1/purchase/arm", `{"amount":"499.00"}`, append(hdr, "Authorization", pos)...); code != http.StatusForbidden {
			t.Errorf("arm with the POS token and %q: %d %s, want 403", hdr, code, body)
		}
	}
	// Bodies: too large, a case-folded field, a repeated key.
	for _, tc := range []struct {
		body string
		want int
		in   string
	}{
		{strings.Repeat(" ", 10<<20), http.StatusRequestEntityTooLarge, "the most is 65536"},
		{`{"Amount":"3.00"}`, http.StatusBadRequest, "case-sensitive"},
		{`{"amount":"1.00","amount":"499.00"}`, http.StatusBadRequest, "given twice"},
	} {
		code, body := apiRequest(t, addr, "POST", "/v1/purchase/arm", tc.body, "Authorization", pos)
		if code != tc.want || !strings.Contains(body, tc.in) {
			t.Errorf("arm with a %d-byte body: %d %.200s, want %d with %q", len(tc.body), code, body, tc.want, tc.in)
		}
	}
	status := func() map[string]any {
		t.Helper()
		code, body := apiRequest(t, addr, "GET", "/v1/status", "")
		var st map[string]any
		if code != 200 || json.Unmarshal([]byte(body), &st) != nil {
			t.Fatalf("status: %d %s", code, body)
		}
		return st
	}
	if st := status(); st["armed_purchase_fen"] != float64(0) {
		t.Fatalf("a refused request armed a sale: %v", st)
	}

	// The real token on the API's own address, as the page's origin or as
	// a client that is not a browser: armed.
	code, body := apiRequest(t, addr, "POST", "/v1/purchase/arm", `{"amount":"4.00"}`,
		"Origin", "http://"+addr, "Sec-Fetch-Site", "same-origin", "Authorization", pos)
	if code != 200 {
		t.Fatalf("arm with the POS token from the API's own origin: %d %s", code, body)
	}
	if st := status(); st["armed_purchase_fen"] != float64(400) {
		t.Fatalf("status after arming 4.00: %v", st)
	}
	if code, body := apiRequest(t, addr, "DELETE", "/v1/purchase/arm", "", "Authorization", pageAuth); code != http.StatusForbidden {
		t.Errorf("cancel with the page's credential: %d %s, want 403", code, body)
	}
	// cardd pos, through the runtime file, cancels it.
	cmd := exec.Command(binary(t, "cardd"), "pos", "cancel")
	cmd.Env = append(append(os.Environ(), "CARDD_CONFIG="), env...)
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "sale cancelled") {
		t.Fatalf("cardd pos cancel: %v\n%s", err, out)
	}
	if st := status(); st["armed_purchase_fen"] != float64(0) {
		t.Fatalf("status after cardd pos cancel: %v", st)
	}

	// Clients that send their headers and never their body are cut off
	// (api read timeout 10 s), and the API answers meanwhile.
	var slow []net.Conn
	for range 200 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "POST /v1/purchase/arm HTTP/1.1\r\nHost: %s\r\nAuthorization: %s\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"amo", addr, pos)
		slow = append(slow, c)
	}
	if code, body := apiRequest(t, addr, "GET", "/healthz", ""); code != 200 {
		t.Errorf("healthz with 200 silent clients: %d %s", code, body)
	}
	deadline := time.Now().Add(30 * time.Second) // a bound for a hang, not a speed
	for i, c := range slow {
		_ = c.SetReadDeadline(deadline)
		_, err := io.ReadAll(c)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("silent client %d still held after 30 s", i)
		}
	}

	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	if err := <-d.exit; err != nil {
		t.Fatalf("cardd exited with %v after SIGTERM", err)
	}
}
