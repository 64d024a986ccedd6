package localapi

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
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
