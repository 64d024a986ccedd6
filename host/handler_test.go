package host

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cardd/cardd/hostapi"
)

// wantUnauthorized sends r and wants 401 with reason containing want.
func (e *env) wantUnauthorized(r *http.Request, want string) {
	e.t.Helper()
	status, b := e.send(r)
	var apiErr hostapi.Error
	json.Unmarshal(b, &apiErr)
	if status != http.StatusUnauthorized || apiErr.Code != hostapi.CodeUnauthorized || !strings.Contains(apiErr.Reason, want) {
		e.t.Fatalf("got %d %s, want 401 unauthorized with %q", status, b, want)
	}
}

func TestAuthentication(t *testing.T) { eachStore(t, testAuthentication) }

func testAuthentication(t *testing.T) {
	e := newEnv(t, Options{})
	body, _ := json.Marshal(hostapi.HeartbeatRequest{Version: "test"})
	now := time.Now()

	// A captured request, replayed.
	nonce := newNonce()
	if status, b := e.send(e.signedRaw(hostapi.PathHeartbeat, body, testTerm, e.secret, now, nonce)); status != http.StatusOK {
		t.Fatalf("first send: %d %s", status, b)
	}
	e.wantUnauthorized(e.signedRaw(hostapi.PathHeartbeat, body, testTerm, e.secret, now, nonce), "replayed")

	// A request captured before a restart, replayed after it.
	nonce2 := newNonce()
	if status, b := e.send(e.signedRaw(hostapi.PathHeartbeat, body, testTerm, e.secret, now, nonce2)); status != http.StatusOK {
		t.Fatalf("before restart: %d %s", status, b)
	}
	e.restart()
	e.wantUnauthorized(e.signedRaw(hostapi.PathHeartbeat, body, testTerm, e.secret, now, nonce2), "replayed")
	e.wantUnauthorized(e.signedRaw(hostapi.PathHeartbeat, body, testTerm, e.secret, now, nonce), "replayed")

	other, _ := NewTerminalSecret()
	e.wantUnauthorized(e.signed(hostapi.PathHeartbeat, hostapi.HeartbeatRequest{}, testTerm, other, now), "bad signature")
	e.wantUnauthorized(e.signed(hostapi.PathHeartbeat, hostapi.HeartbeatRequest{}, testTerm, e.secret, now.Add(-10*time.Minute)), "stale")
	e.wantUnauthorized(e.signed(hostapi.PathHeartbeat, hostapi.HeartbeatRequest{}, "00000000FFFF", e.secret, now), "unknown terminal")
	e.wantUnauthorized(e.signed(hostapi.PathHeartbeat, hostapi.HeartbeatRequest{}, "not-an-id", e.secret, now), "unknown terminal")

	// The body is signed: changing it breaks the signature.
	r := e.signedRaw(hostapi.PathHeartbeat, body, testTerm, e.secret, now, newNonce())
	r.Body = http.NoBody
	r.ContentLength = 0
	e.wantUnauthorized(r, "bad signature")

	// No headers at all.
	plain, _ := http.NewRequest(http.MethodPost, e.srv.URL+hostapi.PathPull, strings.NewReader(`{}`))
	e.wantUnauthorized(plain, "missing")

	// A nonce is kept durably: exactly the ones spent are in the table.
	if n := e.count("nonces", "terminal = ?", testTerm); n != 2 {
		t.Fatalf("%d nonces stored, want 2", n)
	}
}

func TestTerminalIDCase(t *testing.T) { eachStore(t, testTerminalIDCase) }

func testTerminalIDCase(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	secret, _ := NewTerminalSecret()
	if err := e.st.AddTerminal(ctx, "0102030405a6", secret, time.Now()); err != nil {
		t.Fatal(err)
	}
	var hb hostapi.HeartbeatResponse
	status, b := e.send(e.signed(hostapi.PathHeartbeat, hostapi.HeartbeatRequest{Version: "1.0"}, "0102030405a6", secret, time.Now()))
	if status != http.StatusOK || json.Unmarshal(b, &hb) != nil {
		t.Fatalf("lower-case terminal id: %d %s", status, b)
	}
	// Replaying with the id in upper case is the same terminal and nonce.
	body, _ := json.Marshal(hostapi.HeartbeatRequest{})
	nonce := newNonce()
	if status, b := e.send(e.signedRaw(hostapi.PathHeartbeat, body, "0102030405a6", secret, time.Now(), nonce)); status != http.StatusOK {
		t.Fatalf("%d %s", status, b)
	}
	e.wantUnauthorized(e.signedRaw(hostapi.PathHeartbeat, body, "0102030405A6", secret, time.Now(), nonce), "replayed")
	if err := e.st.AddTerminal(ctx, "0102030405A6", secret, time.Now()); err == nil {
		t.Fatal("the same terminal was added twice")
	}
}

func TestRequestShape(t *testing.T) { eachStore(t, testRequestShape) }

func testRequestShape(t *testing.T) {
	e := newEnv(t, Options{})
	// Unknown fields are refused, by name.
	raw := []byte(`{"cursor": "", "limit": 5, "since": "yesterday"}`)
	status, b := e.send(e.signedRaw(hostapi.PathPull, raw, testTerm, e.secret, time.Now(), newNonce()))
	if status != http.StatusBadRequest || !bytes.Contains(b, []byte("since")) {
		t.Fatalf("unknown field: %d %s", status, b)
	}
	// A name in another case and a key given twice are refused, by name:
	// encoding/json alone would take "Limit" for "limit" and keep the last
	// of two "limit"s.
	for body, want := range map[string]string{
		`{"cursor": "", "Limit": 5}`:             `unknown field \"Limit\": field names are case-sensitive, did you mean \"limit\"?`,
		`{"cursor": "", "limit": 5, "limit": 1}`: `key \"limit\" given twice`,
		`{"rows": [{"id": "a", "ID": "b"}]}`:     `unknown field \"ID\" in rows[0]`,
	} {
		path := hostapi.PathPull
		if strings.Contains(body, "rows") {
			path = hostapi.PathJournal
		}
		status, b := e.send(e.signedRaw(path, []byte(body), testTerm, e.secret, time.Now(), newNonce()))
		if status != http.StatusBadRequest || !bytes.Contains(b, []byte(want)) {
			t.Errorf("body %s: %d %s, want 400 with %s", body, status, b, want)
		}
	}
	for _, body := range []string{``, `{"cursor": ""} {}`, `[1]`, `{"limit": "ten"}`} {
		status, b := e.send(e.signedRaw(hostapi.PathPull, []byte(body), testTerm, e.secret, time.Now(), newNonce()))
		if status != http.StatusBadRequest || !bytes.Contains(b, []byte(hostapi.CodeBadRequest)) {
			t.Errorf("body %q: %d %s", body, status, b)
		}
	}
	// Bodies are limited.
	big := append([]byte(`{"rows": [`), bytes.Repeat([]byte(" "), MaxBodyBytes)...)
	status, _ = e.send(e.signedRaw(hostapi.PathJournal, big, testTerm, e.secret, time.Now(), newNonce()))
	if status != http.StatusRequestEntityTooLarge {
		t.Fatalf("a body over the limit: %d", status)
	}
	// Only POST, only known paths.
	res, err := e.srv.Client().Get(e.srv.URL + hostapi.PathPull)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET: %d", res.StatusCode)
	}
	status, _ = e.send(e.signed("/v1/nothing", struct{}{}, testTerm, e.secret, time.Now()))
	if status != http.StatusNotFound {
		t.Fatalf("unknown path: %d", status)
	}
}

func TestJournal(t *testing.T) { eachStore(t, testJournal) }

func testJournal(t *testing.T) {
	e := newEnv(t, Options{})
	at := time.Now().UTC().Format(time.RFC3339)
	rows := []hostapi.JournalRow{
		{ID: testTerm + "-1", Kind: "read", State: "done", Card: testNumber, Purse: "EP", BalanceFen: 100, Time: at},
		{ID: testTerm + "-2", Kind: "load", State: "done", Card: testNumber, Purse: "EP", Counter: 3, BalanceFen: 100, AmountFen: 50, CreditID: "cr-x", TAC: "01020304", Time: at},
		{ID: testTerm + "-3", Kind: "load", State: "unknown", Card: testNumber, Purse: "EP", Counter: 4, BalanceFen: 150, AmountFen: 70, CreditID: "cr-y", Time: at},
	}
	for i := 0; i < 2; i++ {
		var resp hostapi.JournalResponse
		e.mustCall(hostapi.PathJournal, hostapi.JournalRequest{Rows: rows}, &resp)
		if len(resp.Acked) != 3 || resp.Acked[0] != rows[0].ID || resp.Acked[2] != rows[2].ID || len(resp.Refused) != 0 {
			t.Fatalf("send %d: acked %v, refused %v", i+1, resp.Acked, resp.Refused)
		}
	}
	if n, _ := e.st.JournalCount(context.Background(), testTerm); n != 3 {
		t.Fatalf("%d rows stored, want 3", n)
	}

	// A thousand rows in batches of 100, one batch sent twice.
	for b := 0; b < 10; b++ {
		batch := make([]hostapi.JournalRow, 100)
		for i := range batch {
			batch[i] = hostapi.JournalRow{ID: fmt.Sprintf("%s-%d", testTerm, 1000+b*100+i), Kind: "access", State: "done", Card: testNumber, Time: at}
		}
		for send := 0; send < 1+b%2; send++ {
			var resp hostapi.JournalResponse
			e.mustCall(hostapi.PathJournal, hostapi.JournalRequest{Rows: batch}, &resp)
			if len(resp.Acked) != 100 {
				t.Fatalf("batch %d acked %d", b, len(resp.Acked))
			}
		}
	}
	if n, _ := e.st.JournalCount(context.Background(), ""); n != 1003 {
		t.Fatalf("%d rows stored, want 1003", n)
	}

	// A row settled after its upload comes again with the same id: the
	// host takes its outcome; a late copy of the unknown version is refused
	// and the settled row stays.
	row := rows[2]
	row.State, row.TAC, row.Detail = "done", "0A0B0C0D", "recovered"
	stored := func() (state, tac string, versions int) {
		t.Helper()
		if err := e.st.db.QueryRow(`SELECT state, tac, versions FROM journal WHERE id = ?`, row.ID).Scan(&state, &tac, &versions); err != nil {
			t.Fatal(err)
		}
		return
	}
	e.mustCall(hostapi.PathJournal, hostapi.JournalRequest{Rows: []hostapi.JournalRow{row}}, nil)
	if state, tac, v := stored(); state != "done" || tac != "0A0B0C0D" || v != 2 {
		t.Fatalf("settled row stored as %s %s, %d versions", state, tac, v)
	}
	var late hostapi.JournalResponse
	e.mustCall(hostapi.PathJournal, hostapi.JournalRequest{Rows: rows[2:]}, &late) // the old unknown version, late
	if len(late.Acked) != 0 || len(late.Refused) != 1 || late.Refused[0].Code != hostapi.CodeRowSettled {
		t.Fatalf("a late unknown copy of a done row: %+v", late)
	}
	// (Its made-up TAC is an alarm of the reconciliation, not this one.)
	if n := e.count("ledger", "event = 'alarm' AND detail LIKE '%re-uploaded changed%'"); n != 0 {
		t.Fatalf("%d alarms for the row's own earlier version arriving late", n)
	}
	e.mustCall(hostapi.PathJournal, hostapi.JournalRequest{Rows: []hostapi.JournalRow{row}}, nil)
	if state, _, v := stored(); state != "done" || v != 2 {
		t.Fatalf("after a late old version and a repeat: %s, %d versions", state, v)
	}

	// An empty batch is fine.
	var resp hostapi.JournalResponse
	e.mustCall(hostapi.PathJournal, hostapi.JournalRequest{}, &resp)
	if len(resp.Acked) != 0 {
		t.Fatalf("empty batch acked %v", resp.Acked)
	}
}

func TestPull(t *testing.T) { eachStore(t, testPull) }

func testPull(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	ids := []string{e.addCredit(100), e.addCredit(200), e.addCredit(300)}
	if _, err := e.st.Deny(ctx, "3101000000999999", "stolen", "operator test", time.Now()); err != nil {
		t.Fatal(err)
	}

	var p hostapi.PullResponse
	e.mustCall(hostapi.PathPull, hostapi.PullRequest{Limit: 2}, &p)
	if len(p.Credits) != 2 || p.Credits[0].ID != ids[0] || p.Credits[1].ID != ids[1] || !p.More || len(p.Deny) != 0 {
		t.Fatalf("first page %+v", p)
	}
	if p.Credits[0].State != hostapi.CreditPending || p.Credits[0].AmountFen != 100 || p.Credits[0].Card != testNumber || p.Credits[0].Created == "" {
		t.Fatalf("credit %+v", p.Credits[0])
	}
	cursor := p.NextCursor
	p = hostapi.PullResponse{}
	e.mustCall(hostapi.PathPull, hostapi.PullRequest{Cursor: cursor, Limit: 2}, &p)
	if len(p.Credits) != 1 || p.Credits[0].ID != ids[2] || len(p.Deny) != 1 || p.More {
		t.Fatalf("second page %+v", p)
	}
	if d := p.Deny[0]; d.Card != "3101000000999999" || !d.Denied || d.Reason != "stolen" {
		t.Fatalf("deny change %+v", d)
	}
	cursor = p.NextCursor

	// Nothing new: the same cursor back.
	p = hostapi.PullResponse{}
	e.mustCall(hostapi.PathPull, hostapi.PullRequest{Cursor: cursor}, &p)
	if len(p.Credits)+len(p.Deny) != 0 || p.NextCursor != cursor || p.More {
		t.Fatalf("empty pull %+v", p)
	}

	// A load consumes the first credit; a cancel and an undeny follow.
	li, resp := e.authorize(ids[0], 100)
	e.mustCall(hostapi.PathLoadComplete, tacRequest(ids[0], li.OnlineCounter, e.credit(resp)), nil)
	if err := e.st.CancelCredit(ctx, ids[1], "operator test", time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := e.st.Undeny(ctx, "3101000000999999", "operator test", time.Now()); err != nil {
		t.Fatal(err)
	}
	p = hostapi.PullResponse{}
	e.mustCall(hostapi.PathPull, hostapi.PullRequest{Cursor: cursor}, &p)
	if len(p.Credits) != 2 || p.Credits[0].ID != ids[0] || p.Credits[0].State != hostapi.CreditConsumed ||
		p.Credits[1].ID != ids[1] || p.Credits[1].State != hostapi.CreditCancelled {
		t.Fatalf("changes after the load %+v", p.Credits)
	}
	if len(p.Deny) != 1 || p.Deny[0].Denied {
		t.Fatalf("undeny %+v", p.Deny)
	}

	// From the start, history is replayed in order.
	p = hostapi.PullResponse{}
	e.mustCall(hostapi.PathPull, hostapi.PullRequest{}, &p)
	if len(p.Credits) != 5 || p.Credits[3].State != hostapi.CreditConsumed || len(p.Deny) != 2 {
		t.Fatalf("whole history %+v", p)
	}

	e.wantRefusal(hostapi.PathPull, hostapi.PullRequest{Cursor: "abc"}, http.StatusBadRequest, hostapi.CodeBadRequest)
	e.wantRefusal(hostapi.PathPull, hostapi.PullRequest{Limit: -1}, http.StatusBadRequest, hostapi.CodeBadRequest)
}

func TestHeartbeat(t *testing.T) { eachStore(t, testHeartbeat) }

func testHeartbeat(t *testing.T) {
	e := newEnv(t, Options{})
	var hb hostapi.HeartbeatResponse
	e.mustCall(hostapi.PathHeartbeat, hostapi.HeartbeatRequest{Version: "0.3.0", QueueDepth: 7, Readers: []string{"Virtual PCD 00 00"}, Printer: "ok", Extra: map[string]string{"mode": "kiosk"}}, &hb)
	ts, err := time.Parse(time.RFC3339, hb.Time)
	if err != nil || time.Since(ts) > time.Minute {
		t.Fatalf("host time %q: %v", hb.Time, err)
	}
	list, err := e.st.Terminals(context.Background())
	if err != nil || len(list) != 1 {
		t.Fatalf("terminals %v, %v", list, err)
	}
	if tm := list[0]; tm.Version != "0.3.0" || tm.QueueDepth != 7 || len(tm.Readers) != 1 || tm.Extra["mode"] != "kiosk" || tm.LastSeen == "" {
		t.Fatalf("terminal %+v", tm)
	}
}

// TestLogs checks what the host writes about a load and its refusals: card
// numbers masked, no secret, no key.
func TestLogs(t *testing.T) { eachStore(t, testLogs) }

func testLogs(t *testing.T) {
	var buf bytes.Buffer
	e := newEnv(t, Options{Logger: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	id := e.addCredit(500)
	li, resp := e.authorize(id, 500)
	e.mustCall(hostapi.PathLoadComplete, tacRequest(id, li.OnlineCounter, e.credit(resp)), nil)
	bad := authorizeRequest(id, e.initLoad(500), 500, loadTime())
	bad.MAC1 = flip(bad.MAC1)
	e.call(hostapi.PathLoadAuthorize, bad, nil)
	e.send(e.signed(hostapi.PathPull, hostapi.PullRequest{}, testTerm, "wrong secret, long enough to be one", time.Now()))
	e.close()
	logs := buf.String()
	for _, want := range []string{"load authorized", "load completed", "request refused", "3101********3456", "bad signature"} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
	keys := e.keys.cardKeys([10]byte{})
	for _, secret := range []string{testNumber, e.secret, hex.EncodeToString(e.masters.DLK[:]), fmt.Sprintf("%X", e.masters.DLK[:]), fmt.Sprintf("%X", keys.DLK[:])} {
		if strings.Contains(strings.ToUpper(logs), strings.ToUpper(secret)) {
			t.Errorf("logs contain %q:\n%s", secret, logs)
		}
	}
}
