package localapi

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cardd/cardd/tap"
)

// A method a path does not take is 405 with the methods it does take in
// Allow and the reason in JSON, whatever the route.
func TestWrongMethod(t *testing.T) {
	s, srv, _ := newServer(t)
	s.Metrics = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "metrics") })
	for _, tc := range []struct {
		method, path string
		allow        []string
	}{
		{"POST", "/healthz", []string{"GET", "HEAD"}},
		{"DELETE", "/metrics", []string{"GET", "HEAD"}},
		{"PUT", "/v1/status", []string{"GET", "HEAD"}},
		{"POST", "/v1/events", []string{"GET", "HEAD"}},
		{"DELETE", "/v1/journal", []string{"GET", "HEAD"}},
		{"GET", "/v1/receipts", []string{"POST"}},
		{"PATCH", "/v1/purchase/arm", []string{"DELETE", "POST"}},
		{"GET", "/v1/purchase/arm", []string{"DELETE", "POST"}},
	} {
		code, h, body := send(t, srv, tc.method, tc.path, "", "Authorization", "Bearer "+token)
		allow := strings.Split(h.Get("Allow"), ", ")
		slices.Sort(allow)
		if code != http.StatusMethodNotAllowed || !slices.Equal(allow, tc.allow) ||
			!strings.HasPrefix(h.Get("Content-Type"), "application/json") || !strings.Contains(body, "is not allowed on "+tc.path) {
			t.Errorf("%s %s: %d Allow %q %s %s; want 405 Allow %q with a JSON reason", tc.method, tc.path, code, h.Get("Allow"), h.Get("Content-Type"), body, tc.allow)
		}
	}
	if _, ok := s.Till.View(nil); ok {
		t.Error("a refused method armed a sale")
	}
}

// The Host and origin checks come before routing: a request they refuse
// learns nothing of the routes, not even the methods a path takes.
func TestGuardBeforeMethod(t *testing.T) {
	_, srv, _ := newServer(t)
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	for _, tc := range []struct {
		method, path string
		hdr          []string
		want         int
	}{
		{"PUT", "/v1/status", []string{"Host", "evil.example"}, http.StatusMisdirectedRequest},
		{"GET", "/v1/receipts", []string{"Host", fmt.Sprintf("evil.example:%d", port)}, http.StatusMisdirectedRequest},
		{"PATCH", "/v1/purchase/arm", []string{"Host", "evil.example"}, http.StatusMisdirectedRequest},
		{"PUT", "/v1/status", []string{"Origin", "http://evil.example"}, http.StatusForbidden},
		{"PATCH", "/v1/purchase/arm", []string{"Sec-Fetch-Site", "cross-site"}, http.StatusForbidden},
		{"GET", "/v1/receipts", []string{"Sec-Fetch-Site", "cross-site"}, http.StatusForbidden},
	} {
		code, h, body := send(t, srv, tc.method, tc.path, "", tc.hdr...)
		if code != tc.want || h.Get("Allow") != "" {
			t.Errorf("%s %s %q: %d Allow %q %s; want %d and no Allow", tc.method, tc.path, tc.hdr, code, h.Get("Allow"), body, tc.want)
		}
	}
}

// watching counts the goroutines watching a receipt being printed.
func watching() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Count(string(buf[:n]), "localapi.(*Server).watchReceipt(")
		}
		buf = make([]byte, 2*len(buf))
	}
}

// A receipt nobody prints is watched for two minutes; closing the server
// ends the watch at once, and a receipt asked for after that is not watched.
func TestCloseEndsReceiptWatch(t *testing.T) {
	s, srv, _ := newServer(t)
	if n := watching(); n != 0 {
		t.Fatalf("%d receipt watches before any receipt (another test left them)", n)
	}
	s.Tap(tap.Result{Reader: "R0", Read: sampleRead()})
	if code, m := call(t, srv, "POST", "/v1/receipts", "Bearer "+token, `{"kind":"balance"}`); code != http.StatusAccepted {
		t.Fatalf("balance receipt: %d %v", code, m)
	}
	// The watch starts on a goroutine of its own: on a slow machine (arm64
	// under qemu) it may not be there yet when the answer is.
	for deadline := time.Now().Add(5 * time.Second); watching() != 1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d receipt watches 5 s after a receipt, want 1", watching())
		}
	}
	closed := make(chan struct{})
	go func() { s.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatalf("Close still waiting after 5 s; %d receipt watches", watching())
	}
	if n := watching(); n != 0 {
		t.Errorf("%d receipt watches left after Close", n)
	}
	if code, m := call(t, srv, "POST", "/v1/receipts", "Bearer "+token, `{"kind":"reprint-last"}`); code != http.StatusAccepted {
		t.Fatalf("reprint after Close: %d %v", code, m)
	}
	if n := watching(); n != 0 {
		t.Errorf("%d receipt watches started after Close", n)
	}
}
