package localapi

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cardd/cardd/offline"
	"github.com/cardd/cardd/tap"
)

func TestAllowedHosts(t *testing.T) {
	bound := func(s string) net.Addr {
		a, err := net.ResolveTCPAddr("tcp", s)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	for _, tc := range []struct {
		listen, bound string
		extra         []string
		want          []string
	}{
		{"127.0.0.1:0", "127.0.0.1:4321", nil, []string{"127.0.0.1:4321", "localhost:4321", "[::1]:4321"}},
		{"localhost:8711", "127.0.0.1:8711", nil, []string{"localhost:8711", "127.0.0.1:8711", "[::1]:8711"}},
		{"0.0.0.0:8711", "0.0.0.0:8711", []string{"Kiosk-3.Canteen.lan", "10.0.0.7:80", "[FE80::0001]"},
			[]string{"127.0.0.1:8711", "localhost:8711", "[::1]:8711", "kiosk-3.canteen.lan:8711", "10.0.0.7:80", "[fe80::1]:8711"}},
		{"192.168.1.10:8711", "192.168.1.10:8711", nil, []string{"192.168.1.10:8711"}},
		{":8711", "[::]:8711", nil, []string{"127.0.0.1:8711", "localhost:8711", "[::1]:8711"}},
	} {
		got, err := AllowedHosts(tc.listen, bound(tc.bound), tc.extra)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("AllowedHosts(%q, %s, %q) = %q, %v; want %q", tc.listen, tc.bound, tc.extra, got, err, tc.want)
		}
	}
	for _, bad := range []string{"http://kiosk.lan", "kiosk.lan/x", "*.lan", "kiosk.lan:99999", "kiosk.lan:x", "", "a:b:c"} {
		if got, err := AllowedHosts("127.0.0.1:1", bound("127.0.0.1:1"), []string{bad}); err == nil {
			t.Errorf("extra %q accepted: %q", bad, got)
		}
	}
}

// do sends one request with the given headers ("Host" sets the Host line).
func do(t *testing.T, srv *httptest.Server, method, path, body string, hdr ...string) (int, string) {
	t.Helper()
	code, _, b := send(t, srv, method, path, body, hdr...)
	return code, b
}

// send is do that also hands back the answer's header.
func send(t *testing.T, srv *httptest.Server, method, path, body string, hdr ...string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
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
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// Every path answers only to the API's own addresses: a page of another
// site whose name was made to resolve here (DNS rebinding) reads nothing.
func TestForeignHostRefused(t *testing.T) {
	s, srv, _ := newServer(t)
	s.Kiosk = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "the page") })
	s.Metrics = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "metrics") })
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	for _, path := range []string{"/", "/app.js", "/healthz", "/metrics", "/v1/status", "/v1/events", "/v1/journal"} {
		for _, host := range []string{fmt.Sprintf("evil.example:%d", port), "evil.example", fmt.Sprintf("127.0.0.2:%d", port),
			"127.0.0.1:1", fmt.Sprintf("localhost.:%d", port)} {
			code, body := do(t, srv, "GET", path, "", "Host", host)
			if code != http.StatusMisdirectedRequest || !strings.Contains(body, "not an address of this API") {
				t.Errorf("GET %s Host %q: %d %s, want 421", path, host, code, body)
			}
		}
	}
	for _, host := range []string{fmt.Sprintf("127.0.0.1:%d", port), fmt.Sprintf("LOCALHOST:%d", port), fmt.Sprintf("[::1]:%d", port)} {
		if code, body := do(t, srv, "GET", "/", "", "Host", host); code != 200 || body != "the page" {
			t.Errorf("GET / Host %q: %d %s", host, code, body)
		}
	}
	code, body := do(t, srv, "POST", "/v1/purchase/arm", `{"amount":"499.00"}`, "Host", fmt.Sprintf("evil.example:%d", port), "Authorization", "Bearer "+token)
	if code != http.StatusMisdirectedRequest {
		t.Errorf("arm with the token through a foreign Host: %d %s", code, body)
	}
	if _, ok := s.Till.View(nil); ok {
		t.Error("a refused request armed a sale")
	}
	// The refusal quotes the Host sent: no browser may take it for a page.
	req, _ := http.NewRequest("GET", srv.URL+"/v1/status", nil)
	req.Host = "<script>x</script>"
	if resp, err := http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Errorf("refusal headers %v: want JSON with nosniff", resp.Header)
		}
	}
	s.AllowedHosts = nil
	if code, _ := do(t, srv, "GET", "/healthz", ""); code != http.StatusMisdirectedRequest {
		t.Errorf("no allowed hosts: %d, want every request refused", code)
	}
}

// A call that changes something from another web origin is refused even
// with the right token; the page's own origin and clients that are not
// browsers (no Origin) go through.
func TestCrossOriginRefused(t *testing.T) {
	s, srv, _ := newServer(t)
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	self := fmt.Sprintf("http://127.0.0.1:%d", port)
	auth := "Bearer " + token
	for _, hdr := range [][]string{
		{"Origin", "http://evil.example"},
		{"Origin", fmt.Sprintf("http://evil.example:%d", port)},
		{"Origin", "null"},
		{"Origin", fmt.Sprintf("http://127.0.0.1:%d", port+1)},
		{"Origin", fmt.Sprintf("http://localhost:%d", port)}, // another origin, even if allowed as Host
		{"Origin", "https://evil.example"},
		{"Origin", fmt.Sprintf("https://127.0.0.1:%d", port)}, // the API speaks http only
		{"Origin", self + "/x"},
		{"Sec-Fetch-Site", "cross-site"},
		{"Sec-Fetch-Site", "same-site"},
		{"Origin", self, "Sec-Fetch-Site", "cross-site"},
	} {
		for _, m := range []string{"POST", "DELETE"} {
			code, body := do(t, srv, m, "/v1/purchase/arm", `{"amount":"499.00"}`, append(hdr, "Authorization", auth)...)
			if code != http.StatusForbidden || !strings.Contains(body, "refused") {
				t.Errorf("%s arm %q: %d %s, want 403", m, hdr, code, body)
			}
		}
	}
	if _, ok := s.Till.View(nil); ok {
		t.Fatal("a cross-origin request armed a sale")
	}
	if code, body := do(t, srv, "POST", "/v1/purchase/arm", `{"amount":"4.00"}`, "Origin", self, "Sec-Fetch-Site", "same-origin", "Authorization", auth); code != 200 {
		t.Errorf("arm from the API's own origin: %d %s", code, body)
	}
	if code, body := do(t, srv, "POST", "/v1/purchase/arm", `{"amount":"5.00"}`, "Authorization", auth); code != 200 {
		t.Errorf("arm without Origin (curl, cardd pos): %d %s", code, body)
	}
	// Reads from another site are refused too: the browser would hide the
	// answer, but the request could still hold event streams. A plain
	// navigation to the page, and programs (no Sec-Fetch-Site), read.
	for _, site := range []string{"cross-site", "same-site"} {
		for _, path := range []string{"/v1/status", "/v1/events"} {
			if code, _ := do(t, srv, "GET", path, "", "Origin", "http://evil.example", "Sec-Fetch-Site", site); code != http.StatusForbidden {
				t.Errorf("%s read %s: %d, want 403", path, site, code)
			}
		}
	}
	if code, _ := do(t, srv, "GET", "/", "", "Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "navigate"); code == http.StatusForbidden {
		t.Errorf("a navigation to the page from a link: 403")
	}
	if code, _ := do(t, srv, "GET", "/v1/status", "", "Sec-Fetch-Site", "same-origin"); code != 200 {
		t.Errorf("status read by the page: %d", code)
	}
}

// The kiosk page's credential asks for the balance receipt of the last tap,
// once per tap, and can do nothing else; the POS token can do it all.
func TestPageCredential(t *testing.T) {
	s, srv, _ := newServer(t)
	page, pos := "Bearer "+pageToken, "Bearer "+token
	for _, tc := range []struct{ method, path, body string }{
		{"POST", "/v1/purchase/arm", `{"amount":"499.00"}`},
		{"DELETE", "/v1/purchase/arm", ``},
		{"POST", "/v1/receipts", `{"kind":"reprint-last"}`},
	} {
		code, body := do(t, srv, tc.method, tc.path, tc.body, "Authorization", page)
		if code != http.StatusForbidden || !strings.Contains(body, "POS token") {
			t.Errorf("page credential %s %s %s: %d %s, want 403", tc.method, tc.path, tc.body, code, body)
		}
	}
	if _, ok := s.Till.View(nil); ok {
		t.Fatal("the page's credential armed a sale")
	}
	if code, body := do(t, srv, "POST", "/v1/receipts", `{"kind":"balance"}`, "Authorization", page); code != http.StatusConflict || !strings.Contains(body, "no card tapped yet") {
		t.Errorf("page receipt before a tap: %d %s", code, body)
	}
	s.Tap(tap.Result{Reader: "R0", Read: sampleRead()})
	if code, body := do(t, srv, "POST", "/v1/receipts", `{"kind":"balance"}`, "Authorization", page); code != http.StatusAccepted {
		t.Fatalf("page receipt: %d %s", code, body)
	}
	if code, body := do(t, srv, "POST", "/v1/receipts", `{"kind":"balance"}`, "Authorization", page); code != http.StatusConflict || !strings.Contains(body, "already asked") {
		t.Errorf("second page receipt of one tap: %d %s, want 409", code, body)
	}
	if code, body := do(t, srv, "POST", "/v1/receipts", `{"kind":"balance"}`, "Authorization", pos); code != http.StatusAccepted {
		t.Errorf("POS token receipt of the same tap: %d %s", code, body)
	}
	s.Tap(tap.Result{Reader: "R0", Read: sampleRead()})
	if code, body := do(t, srv, "POST", "/v1/receipts", `{"kind":"balance"}`, "Authorization", page); code != http.StatusAccepted {
		t.Errorf("page receipt after the next tap: %d %s", code, body)
	}
	// A daemon without a POS token: the page's credential still arms nothing.
	s.Token = ""
	if code, _ := do(t, srv, "POST", "/v1/purchase/arm", `{"amount":"1.00"}`, "Authorization", page); code != http.StatusForbidden {
		t.Errorf("page credential, no POS token: arm %d", code)
	}
	if code, _ := do(t, srv, "POST", "/v1/purchase/arm", `{"amount":"1.00"}`, "Authorization", "Bearer "); code != http.StatusUnauthorized {
		t.Errorf("empty bearer with no POS token: arm %d, want 401", code)
	}
}

// A client that sends its headers and never its body is cut off by the
// read timeout; an event stream lives on past both timeouts; the server has
// every limit set.
func TestTimeouts(t *testing.T) {
	d := NewHTTPServer(http.NotFoundHandler(), DefaultTimeouts)
	if d.ReadHeaderTimeout <= 0 || d.ReadTimeout <= 0 || d.WriteTimeout <= 0 || d.IdleTimeout <= 0 || d.MaxHeaderBytes <= 0 {
		t.Fatalf("server limits %+v: want every timeout and MaxHeaderBytes set", d)
	}
	s, _, _ := newServer(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if s.AllowedHosts, err = AllowedHosts(addr, ln.Addr(), nil); err != nil {
		t.Fatal(err)
	}
	hs := NewHTTPServer(s, Timeouts{ReadHeader: 200 * time.Millisecond, Read: 300 * time.Millisecond, Write: 300 * time.Millisecond, Idle: time.Second})
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })

	stream, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	fmt.Fprintf(stream, "GET /v1/events HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
	sr := bufio.NewReader(stream)

	var slow []net.Conn
	for range 20 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "POST /v1/purchase/arm HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"amo", addr, token)
		slow = append(slow, c)
	}
	for i, c := range slow {
		// Bounded by far more than the read timeout: not a speed test.
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err := io.ReadAll(c)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("slow client %d still held after 10 s (read timeout 300 ms)", i)
		}
	}
	// The stream outlives both timeouts: an event published well after
	// them reaches it.
	time.Sleep(500 * time.Millisecond)
	s.Tap(tap.Result{Reader: "R0", Read: sampleRead()})
	stream.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		line, err := sr.ReadString('\n')
		if err != nil {
			t.Fatalf("event stream cut: %v", err)
		}
		if strings.HasPrefix(line, "event: "+EventCardTap) {
			break
		}
	}
}

// A 10 MB body is answered 413, whether its length is announced or not.
func TestBodyLimit(t *testing.T) {
	s, srv, _ := newServer(t)
	big := `{"amount":"1.00","pin":"` + strings.Repeat("1", 10<<20) + `"}`
	for _, chunked := range []bool{false, true} {
		var body io.Reader = strings.NewReader(big)
		if chunked {
			body = io.MultiReader(body) // hides the length: sent chunked
		}
		req, _ := http.NewRequest("POST", srv.URL+"/v1/purchase/arm", body)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			// The server may close before the client sent it all.
			if !errors.Is(err, os.ErrDeadlineExceeded) && !strings.Contains(err.Error(), "connection reset") && !strings.Contains(err.Error(), "broken pipe") {
				t.Fatalf("chunked %v: %v", chunked, err)
			}
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(b), "the most is 65536") {
			t.Errorf("chunked %v: %d %s, want 413", chunked, resp.StatusCode, b)
		}
	}
	if _, ok := s.Till.View(nil); ok {
		t.Error("an over-long body armed a sale")
	}
}

// Each event stream holds a connection for ever: past maxStreams a new one
// is refused, and a place frees when one ends.
func TestStreamLimit(t *testing.T) {
	s, srv, _ := newServer(t)
	var open []*sse
	for range maxStreams {
		st := openStream(t, srv)
		st.next(t) // hello: subscribed
		open = append(open, st)
	}
	if code, body := do(t, srv, "GET", "/v1/events", ""); code != http.StatusServiceUnavailable || !strings.Contains(body, "event streams are open") {
		t.Fatalf("stream %d: %d %s, want 503", maxStreams+1, code, body)
	}
	open[0].resp.Body.Close()
	deadline := time.Now().Add(10 * time.Second)
	for s.Hub.Clients() >= maxStreams {
		if time.Now().After(deadline) {
			t.Fatal("a closed stream still counts after 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	openStream(t, srv).next(t)
	// With every anonymous stream taken, the POS token and the page's
	// credential still get one of the reserved streams, up to their own
	// limit.
	for i := range reservedStreams {
		var resp *http.Response
		var err error
		if i%2 == 0 {
			req, _ := http.NewRequest("GET", srv.URL+"/v1/events", nil)
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err = http.DefaultClient.Do(req)
		} else {
			resp, err = http.Get(srv.URL + "/v1/events?credential=" + pageToken)
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("reserved stream %d with every anonymous one taken: %s", i, resp.Status)
		}
	}
	req, _ := http.NewRequest("GET", srv.URL+"/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("reserved stream %d: %v %v, want 503", reservedStreams+1, resp, err)
	} else {
		resp.Body.Close()
	}
	if code, _ := do(t, srv, "GET", "/v1/events?credential=wrong", ""); code != http.StatusServiceUnavailable {
		t.Errorf("a wrong credential got a stream: %d", code)
	}
}

// A page receipt that fails slowly for one tap frees that tap's claim
// only: a later tap's receipt, asked for meanwhile and printed, is not
// printable from the page a second time.
func TestPageReceiptFailureFreesItsOwnClaim(t *testing.T) {
	s, srv, _ := newServer(t)
	page := "Bearer " + pageToken
	first := sampleRead()
	failing, release := make(chan struct{}), make(chan struct{})
	layout := s.BalanceReceipt
	s.BalanceReceipt = func(cr *tap.CardRead) (offline.NewReceipt, error) {
		if cr.Info.CardNumber == first.Info.CardNumber {
			close(failing)
			<-release
			return offline.NewReceipt{}, errors.New("the printer's layout failed")
		}
		return layout(cr)
	}
	s.Tap(tap.Result{Reader: "R0", Read: first})
	done := make(chan int)
	go func() {
		code, _ := do(t, srv, "POST", "/v1/receipts", `{"kind":"balance"}`, "Authorization", page)
		done <- code
	}()
	<-failing
	second := sampleRead()
	second.Info.CardNumber = "3101000000009999"
	s.Tap(tap.Result{Reader: "R0", Read: second})
	if code, body := do(t, srv, "POST", "/v1/receipts", `{"kind":"balance"}`, "Authorization", page); code != http.StatusOK && code != http.StatusAccepted {
		t.Fatalf("second tap's page receipt: %d %s", code, body)
	}
	close(release)
	if code := <-done; code < 400 {
		t.Fatalf("the failing receipt answered %d", code)
	}
	if code, body := do(t, srv, "POST", "/v1/receipts", `{"kind":"balance"}`, "Authorization", page); code != http.StatusConflict {
		t.Fatalf("the second tap's receipt again from the page: %d %s, want 409", code, body)
	}
}
