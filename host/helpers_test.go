package host

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cardd/cardd/apdu/epurse"
	epursesim "github.com/cardd/cardd/apdu/epurse/sim"
	"github.com/cardd/cardd/hostapi"
)

const (
	testTerm   = "000000000001"
	testNumber = "3101000000123456"
)

// env is a host over loopback HTTP with a real SQLite file, one registered
// terminal, and one issued card simulated in memory, driven as a terminal
// drives a real one.
type env struct {
	t       *testing.T
	dir     string
	dsn     string // the store: an SQLite file in dir, or a PostgreSQL database
	st      *Store
	keys    *Keys
	masters epurse.MasterKeys
	opt     Options
	srv     *httptest.Server
	secret  string
	card    *epursesim.SimCard
	termID  [6]byte
}

func newEnv(t *testing.T, opt Options) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir(), opt: opt, termID: terminalBytes(testTerm)}
	e.dsn = storeDSN(t, e.dir)
	var err error
	if e.masters, err = GenerateMasterKeys(); err != nil {
		t.Fatal(err)
	}
	if e.keys, err = NewKeys(e.masters); err != nil {
		t.Fatal(err)
	}
	e.open()
	if e.secret, err = NewTerminalSecret(); err != nil {
		t.Fatal(err)
	}
	if err := e.st.AddTerminal(context.Background(), testTerm, e.secret, time.Now()); err != nil {
		t.Fatal(err)
	}
	cardFile := filepath.Join(e.dir, "card.json")
	req := IssueRequest{Number: testNumber, Holder: "张三", BalanceFen: 10000, Start: epurse.Date{Year: 2026, Month: 1, Day: 1}, Expiry: epurse.Date{Year: 2030, Month: 1, Day: 1}}
	if _, err := e.st.IssueCard(context.Background(), e.keys, req, cardFile, "operator test", time.Now()); err != nil {
		t.Fatal(err)
	}
	f, err := epursesim.LoadCardFile(cardFile)
	if err != nil {
		t.Fatal(err)
	}
	e.card = epursesim.NewSimCard(f, "")
	t.Cleanup(e.close)
	return e
}

// open starts the host on the database in e.dir: the first start, or a
// restart after close.
func (e *env) open() {
	e.t.Helper()
	st, err := Open(e.dsn)
	if err != nil {
		e.t.Fatal(err)
	}
	st.rehearse = st.postgres
	e.st = st
	e.srv = httptest.NewServer(NewHandler(st, e.keys, e.opt))
}

func (e *env) close() {
	if e.srv != nil {
		e.srv.Close()
		e.srv = nil
	}
	if e.st != nil {
		e.st.Close()
		e.st = nil
	}
}

// restart stops the host and starts it again on the same database.
func (e *env) restart() {
	e.t.Helper()
	e.close()
	e.open()
}

func newNonce() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// signed builds a request as the terminal's sync client does.
func (e *env) signed(path string, body any, term, secret string, at time.Time) *http.Request {
	e.t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.signedRaw(path, b, term, secret, at, newNonce())
}

func (e *env) signedRaw(path string, b []byte, term, secret string, at time.Time, nonce string) *http.Request {
	e.t.Helper()
	r, err := http.NewRequest(http.MethodPost, e.srv.URL+path, bytes.NewReader(b))
	if err != nil {
		e.t.Fatal(err)
	}
	r.Header.Set("Content-Type", "application/json")
	hostapi.Sign(r, term, []byte(secret), b, at, nonce)
	return r
}

// send sends a request (again, for a replay: its body is rebuilt from b)
// and returns the status and the body.
func (e *env) send(r *http.Request) (int, []byte) {
	e.t.Helper()
	res, err := e.srv.Client().Do(r)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return res.StatusCode, b
}

// call posts body to path as the test terminal and decodes a 200 answer
// into out; it returns the status and, for any other, the error body.
func (e *env) call(path string, body, out any) (int, hostapi.Error) {
	e.t.Helper()
	status, b := e.send(e.signed(path, body, testTerm, e.secret, time.Now()))
	var apiErr hostapi.Error
	if status == http.StatusOK {
		if out != nil {
			if err := json.Unmarshal(b, out); err != nil {
				e.t.Fatalf("%s: answer %s: %v", path, b, err)
			}
		}
		return status, apiErr
	}
	if err := json.Unmarshal(b, &apiErr); err != nil || apiErr.Code == "" {
		e.t.Fatalf("%s: status %d with a body that is not a hostapi.Error: %s", path, status, b)
	}
	return status, apiErr
}

// mustCall is call that wants 200.
func (e *env) mustCall(path string, body, out any) {
	e.t.Helper()
	if status, apiErr := e.call(path, body, out); status != http.StatusOK {
		e.t.Fatalf("%s: %d %s: %s", path, status, apiErr.Code, apiErr.Reason)
	}
}

// wantRefusal is call that wants status and code.
func (e *env) wantRefusal(path string, body any, status int, code string) hostapi.Error {
	e.t.Helper()
	got, apiErr := e.call(path, body, nil)
	if got != status || apiErr.Code != code {
		e.t.Fatalf("%s: got %d %q (%s), want %d %q", path, got, apiErr.Code, apiErr.Reason, status, code)
	}
	return apiErr
}

func (e *env) addCredit(amount int64) string {
	e.t.Helper()
	c, err := e.st.AddCredit(context.Background(), testNumber, amount, "wechat", "operator test", time.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	return c.ID
}

// initLoad selects the card's application and runs INITIALIZE FOR LOAD, as
// the terminal does on a tap; its answer goes to the host.
func (e *env) initLoad(amount int64) epurse.LoadInit {
	e.t.Helper()
	e.card.Reset()
	if _, err := epurse.Select(e.card); err != nil {
		e.t.Fatal(err)
	}
	li, err := epurse.InitLoad(e.card, epurse.PurseEP, 1, amount, e.termID)
	if err != nil {
		e.t.Fatal(err)
	}
	return li
}

// loadTime is the terminal's wall clock for a load, as the card gets it.
func loadTime() time.Time { return time.Now().UTC().Truncate(time.Second) }

func authorizeRequest(creditID string, li epurse.LoadInit, amount int64, when time.Time) hostapi.LoadAuthorizeRequest {
	return hostapi.LoadAuthorizeRequest{
		CreditID: creditID, Card: testNumber, Purse: "EP", AmountFen: amount,
		OldBalanceFen: li.OldBalance, OnlineCounter: li.OnlineCounter, KeyVersion: li.KeyVersion, AlgID: li.AlgID,
		Random: strings.ToUpper(hex.EncodeToString(li.Random[:])), MAC1: strings.ToUpper(hex.EncodeToString(li.MAC1[:])),
		Time: when.Format(hostapi.TimeLayout),
	}
}

// authorize runs INIT on the card and asks the host for MAC2.
func (e *env) authorize(creditID string, amount int64) (epurse.LoadInit, hostapi.LoadAuthorizeResponse) {
	e.t.Helper()
	li := e.initLoad(amount)
	var resp hostapi.LoadAuthorizeResponse
	e.mustCall(hostapi.PathLoadAuthorize, authorizeRequest(creditID, li, amount, loadTime()), &resp)
	return li, resp
}

// credit sends CREDIT FOR LOAD with the host's MAC2 and returns the TAC.
func (e *env) credit(resp hostapi.LoadAuthorizeResponse) [4]byte {
	e.t.Helper()
	when, err := time.Parse(hostapi.TimeLayout, resp.Time)
	if err != nil {
		e.t.Fatal(err)
	}
	var mac2 [4]byte
	if _, err := hex.Decode(mac2[:], []byte(resp.MAC2)); err != nil {
		e.t.Fatal(err)
	}
	tac, err := epurse.CreditLoad(e.card, when, mac2)
	if err != nil {
		e.t.Fatalf("CREDIT FOR LOAD: %v", err)
	}
	return tac
}

func tacRequest(creditID string, counter uint16, tac [4]byte) hostapi.LoadCompleteRequest {
	return hostapi.LoadCompleteRequest{CreditID: creditID, Card: testNumber, Counter: counter, TAC: strings.ToUpper(hex.EncodeToString(tac[:]))}
}

func probeRequest(creditID string, counter uint16, probe epurse.LoadInit, amount int64) hostapi.LoadCompleteRequest {
	return hostapi.LoadCompleteRequest{
		CreditID: creditID, Card: testNumber, Counter: counter, NotApplied: true,
		ProbeOldBalanceFen: probe.OldBalance, ProbeAmountFen: amount,
		ProbeRandom: hex.EncodeToString(probe.Random[:]), ProbeMAC1: hex.EncodeToString(probe.MAC1[:]),
	}
}

// creditState reads a credit's state straight from the database.
func (e *env) creditState(id string) string {
	e.t.Helper()
	var s string
	if err := e.st.db.QueryRow(`SELECT state FROM credits WHERE id = ?`, id).Scan(&s); err != nil {
		e.t.Fatal(err)
	}
	return s
}

// authStates lists the states of a credit's authorizations, oldest first.
func (e *env) authStates(id string) []string {
	e.t.Helper()
	rows, err := e.st.db.Query(`SELECT state FROM authorizations WHERE credit = ? ORDER BY id`, id)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		rows.Scan(&s)
		out = append(out, s)
	}
	return out
}

// count counts rows of a table matching a condition.
func (e *env) count(table, where string, args ...any) int {
	e.t.Helper()
	var n int
	if err := e.st.db.QueryRow(`SELECT count(*) FROM `+table+` WHERE `+where, args...).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

func (e *env) balance() int64 { return e.card.File().EPBalance }

func flip(s string) string {
	b, _ := hex.DecodeString(s)
	b[0] ^= 0x01
	return strings.ToUpper(hex.EncodeToString(b))
}

func nowForTest() time.Time { return time.Now() }
