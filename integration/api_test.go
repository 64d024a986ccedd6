package integration

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cardd/cardd/localapi"
	"github.com/cardd/cardd/printer/sim"
	"github.com/cardd/cardd/reader/vpcd"
)

// apiAddr waits for the daemon's "local API listening" line.
func (d *daemon) apiAddr(t testing.TB) string {
	t.Helper()
	m := d.waitLine(t, "local API", 10*time.Second, func(m map[string]any) bool { return m["msg"] == "local API listening" })
	return m["addr"].(string)
}

// kioskTerminal is the environment of a `cardd run` with this world's host,
// the API token "kiosk-token" and a virtual printer, which it returns.
func (w *world) kioskTerminal(t *testing.T) ([]string, *sim.Printer) {
	t.Helper()
	dir := t.TempDir()
	secretFile, tokenFile := w.secretFile(t, dir), filepath.Join(dir, "api.token")
	if err := os.WriteFile(tokenFile, []byte("kiosk-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "printer")
	p := openPrinter(t, link, sim.Options{})
	return append([]string{
		"CARDD_HOST_URL=" + w.srv.URL, "CARDD_HOST_SECRET_FILE=" + secretFile, "CARDD_API_TOKEN_FILE=" + tokenFile,
		"CARDD_STORE_PATH=" + filepath.Join(dir, "cardd.db"), "CARDD_TERMINAL_ID=" + termID,
	}, printerEnv(link)...), p
}

// stream is a client of /v1/events.
type stream struct {
	body io.Closer
	ch   chan localapi.Event
}

func openEvents(t testing.TB, addr string) *stream {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/v1/events")
	if err != nil {
		t.Fatal(err)
	}
	s := &stream{body: resp.Body, ch: make(chan localapi.Event, 256)}
	t.Cleanup(func() { resp.Body.Close() })
	go func() {
		defer close(s.ch)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var e localapi.Event
				if json.Unmarshal([]byte(data), &e) == nil {
					s.ch <- e
				}
			}
		}
	}()
	return s
}

func (s *stream) wait(t testing.TB, typ string) localapi.Event {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		select {
		case e, ok := <-s.ch:
			if !ok {
				t.Fatalf("event stream ended while waiting for %s", typ)
			}
			if e.Type == typ {
				return e
			}
		case <-deadline:
			t.Fatalf("no %s event within 15 s", typ)
		}
	}
}

// TestAPIThroughTheStack: `cardd run` with the host, the virtual printer and
// a token; a stream client sees a tap as card.present, card.balance and
// card.tap (masked, with the top-up applied), even while another client
// that never reads is connected; the balance receipt asked through the API
// reaches the virtual printer; without the token the same call is refused.
func TestAPIThroughTheStack(t *testing.T) {
	requirePCSC(t)
	w := newHostWorld(t)
	env, p := w.kioskTerminal(t)
	const number = "3101000000910001"
	path := w.issue(t, number, 10000)
	w.credit(t, number, 5000)

	waitEmpty(t, 0)
	d := startDaemon(t, env...)
	addr := d.apiAddr(t)
	d.waitLine(t, "reader added", 10*time.Second, func(m map[string]any) bool { return m["reader"] == slot0Reader })

	// A client that subscribes and never reads a byte.
	stalled, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	if _, err := io.WriteString(stalled, "GET /v1/events HTTP/1.1\r\nHost: "+addr+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	s := openEvents(t, addr)
	if e := s.wait(t, localapi.EventHello); e.Status == nil || e.Status.TerminalID != termID || !e.Status.Printer.Enabled {
		t.Fatalf("hello %+v", e.Status)
	}

	// Taps with the stalled client connected: each one reaches the
	// reading client whole.
	for i := range 3 {
		in := insert(t, path, 0, vpcd.Options{})
		s.wait(t, localapi.EventCardPresent)
		if e := s.wait(t, localapi.EventCardBalance); e.Card == nil || e.Card.Number != "3101********0001" {
			t.Errorf("tap %d: balance event card %+v", i, e.Card)
		}
		e := s.wait(t, localapi.EventCardTap)
		in.remove(t)
		s.wait(t, localapi.EventCardRemoved)
		if e.Tap == nil || e.Tap.Outcome != "ok" || e.Card == nil {
			t.Fatalf("tap %d: %+v", i, e)
		}
		if i == 0 && (len(e.Tap.Loads) != 1 || !e.Tap.Loads[0].Applied || e.Card.Balance != "150.00" || e.Tap.BalanceAfter != "150.00") {
			t.Errorf("first tap: loads %+v, card balance %s; want 50.00 applied, 150.00", e.Tap.Loads, e.Card.Balance)
		}
		if strings.Contains(mustJSON(t, e), number) {
			t.Errorf("tap %d: the event carries the whole card number", i)
		}
	}

	// The same taps in /metrics.
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metricsText, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`cardd_taps_total{outcome="ok"} 3`, `cardd_loads_total{outcome="applied"} 1`,
		`cardd_apdu_seconds_count`, `cardd_printer_ready`, `cardd_journal_queue_rows`, `cardd_event_stream_clients`,
		`cardd_tap_duration_seconds_count{outcome="ok"} 3`, `cardd_build_info{goversion="go`} {
		if !strings.Contains(string(metricsText), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	post := func(auth string) (int, string) {
		return apiRequest(t, addr, "POST", "/v1/receipts", `{"kind":"balance"}`, "Authorization", auth)
	}
	if code, body := post(""); code != http.StatusUnauthorized {
		t.Errorf("receipt without the token: %d %s", code, body)
	}
	if code, body := post("Bearer nope"); code != http.StatusUnauthorized {
		t.Errorf("receipt with a wrong token: %d %s", code, body)
	}
	before := len(p.Receipts()) // the top-up's own receipt
	if code, body := post("Bearer kiosk-token"); code != http.StatusAccepted {
		t.Fatalf("receipt: %d %s", code, body)
	}
	if e := s.wait(t, localapi.EventReceipt); e.Receipt.State != "queued" {
		t.Errorf("receipt event %+v", e.Receipt)
	}
	if e := s.wait(t, localapi.EventReceipt); e.Receipt.State != "printed" {
		t.Errorf("receipt event %+v, want printed", e.Receipt)
	}
	got := p.Receipts()
	if len(got) != before+1 || !strings.Contains(got[len(got)-1].Text(), "余额查询") || !strings.Contains(got[len(got)-1].Text(), "150.00") {
		t.Errorf("printed %d receipts (had %d); last:\n%s", len(got), before, got[len(got)-1].Text())
	}

	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	if err := <-d.exit; err != nil {
		t.Fatalf("cardd exited with %v after SIGTERM (with a stalled stream client)", err)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
