package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cardd/cardd/apdu/epurse"
	epursesim "github.com/cardd/cardd/apdu/epurse/sim"
	"github.com/cardd/cardd/config"
	"github.com/cardd/cardd/host"
	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/internal/tlsgen"
)

const number = "3101000000123456"

// cli runs cardhost with args and returns its exit code and output.
func cli(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := Main(args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// wantCode runs cardhost and wants the exit code; it returns stdout.
func wantCode(t *testing.T, want int, args ...string) (string, string) {
	t.Helper()
	code, out, errOut := cli(t, args...)
	if code != want {
		t.Fatalf("cardhost %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, want, out, errOut)
	}
	return out, errOut
}

func wantMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Fatalf("%s has mode %04o, want %04o", path, got, want)
	}
}

// setup makes a host directory with a terminal and an issued card.
func setup(t *testing.T) (dir, secretFile, cardFile string) {
	t.Helper()
	base := t.TempDir()
	dir = filepath.Join(base, "host")
	secretFile = filepath.Join(base, "host.secret")
	cardFile = filepath.Join(base, "card.json")
	wantCode(t, 0, "init", "--dir", dir)
	wantCode(t, 0, "terminal", "add", "--dir", dir, "--id", "000000000001", "--secret-out", secretFile)
	wantCode(t, 0, "card", "issue", "--dir", dir, "--number", number, "--holder", "张三", "--balance", "100.00",
		"--start", "2026-09-01", "--expiry", "2030-08-31", "--out", cardFile)
	return dir, secretFile, cardFile
}

func TestOperatorFlow(t *testing.T) { eachStore(t, testOperatorFlow) }

func testOperatorFlow(t *testing.T) {
	dir, secretFile, cardFile := setup(t)
	wantMode(t, dir, 0o700)
	if !onPostgres(t) {
		wantMode(t, filepath.Join(dir, host.DBFile), 0o600)
	}
	wantMode(t, filepath.Join(dir, host.MastersFile), 0o600)
	wantMode(t, secretFile, 0o600)
	wantMode(t, cardFile, 0o600)

	// The terminal reads its secret with the same function the daemon uses.
	secret, err := config.ReadSecretFile(secretFile)
	if err != nil || len(secret) != 64 {
		t.Fatalf("secret file: %d bytes, %v", len(secret), err)
	}

	// The card file is what the simulator loads, keyed from the host's masters.
	f, err := epursesim.LoadCardFile(cardFile)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, host.MastersFile))
	var masters epurse.MasterKeys
	if err := json.Unmarshal(b, &masters); err != nil {
		t.Fatal(err)
	}
	if f.Keys != masters.Diversify(f.Info.AppSerial[:]) {
		t.Fatal("the card's keys are not diversified from the host's masters")
	}
	if f.Info.CardNumber != number || f.EPBalance != 10000 || f.Holder == nil || f.Holder.Name != "张三" ||
		f.Info.StartDate.String() != "2026-09-01" || f.Info.ExpiryDate.String() != "2030-08-31" {
		t.Fatalf("card file: %v, holder %+v, valid %s to %s", f, f.Holder, f.Info.StartDate, f.Info.ExpiryDate)
	}

	out, _ := wantCode(t, 0, "credit", "add", "--dir", dir, "--card", number, "--amount", "50.00", "--note", "wechat")
	id := strings.TrimSpace(out)
	if !strings.HasPrefix(id, "cr-") || strings.Contains(id, "\n") {
		t.Fatalf("credit add printed %q, want just the id", out)
	}
	out, _ = wantCode(t, 0, "credit", "list", "--dir", dir, "--card", number)
	if !strings.Contains(out, id) || !strings.Contains(out, "50.00") || !strings.Contains(out, "pending") {
		t.Fatalf("credit list:\n%s", out)
	}

	out, _ = wantCode(t, 0, "ledger", "--dir", dir, "--card", number)
	for _, want := range []string{id, "added", "pending 50.00", "initial balance 100.00"} {
		if !strings.Contains(out, want) {
			t.Fatalf("ledger lacks %q:\n%s", want, out)
		}
	}
	out, _ = wantCode(t, 0, "ledger", "--dir", dir, "--card", number, "--json")
	var l host.CardLedger
	if err := json.Unmarshal([]byte(out), &l); err != nil {
		t.Fatalf("ledger --json: %v\n%s", err, out)
	}
	if l.PendingFen != 5000 || l.LoadedFen != 0 || len(l.Credits) != 1 || l.Credits[0].ID != id || l.Card.InitialBalanceFen != 10000 {
		t.Fatalf("ledger --json: %+v", l)
	}

	wantCode(t, 0, "deny", "add", "--dir", dir, "--card", number, "--reason", "lost")
	out, _ = wantCode(t, 0, "ledger", "--dir", dir, "--card", number)
	if !strings.Contains(out, "DENIED: lost") {
		t.Fatalf("ledger of a denied card:\n%s", out)
	}
	wantCode(t, 0, "deny", "remove", "--dir", dir, "--card", number)
	wantCode(t, 1, "deny", "remove", "--dir", dir, "--card", number)
	// A T-Union card's 19-digit number, issued elsewhere, on and off the list.
	wantCode(t, 0, "deny", "add", "--dir", dir, "--card", "3104990600000000006", "--reason", "stolen")
	wantCode(t, 0, "deny", "remove", "--dir", dir, "--card", "3104990600000000006")

	wantCode(t, 0, "credit", "cancel", "--dir", dir, "--id", id)
	wantCode(t, 1, "credit", "cancel", "--dir", dir, "--id", id)
	out, _ = wantCode(t, 0, "terminal", "list", "--dir", dir)
	if !strings.Contains(out, "000000000001") {
		t.Fatalf("terminal list:\n%s", out)
	}
}

func TestExitCodes(t *testing.T) { eachStore(t, testExitCodes) }

func testExitCodes(t *testing.T) {
	dir, secretFile, cardFile := setup(t)
	empty := t.TempDir()
	for _, c := range []struct {
		code int
		args []string
		want string // in stderr
	}{
		{2, nil, "usage"},
		{2, []string{"frobnicate"}, "unknown command"},
		{2, []string{"credit"}, "unknown command"},
		{2, []string{"credit", "add", "--card", number, "--amount", "1"}, "--dir is required"},
		{2, []string{"credit", "add", "--dir", empty, "--card", number, "--amount", "1"}, "--dir = "},
		{2, []string{"credit", "add", "--dir", dir, "--card", "1234", "--amount", "1"}, `--card = "1234"`},
		{2, []string{"credit", "add", "--dir", dir, "--card", number, "--amount", "1.234"}, `--amount = "1.234"`},
		{2, []string{"credit", "add", "--dir", dir, "--card", number, "--amount", "-1"}, `--amount = "-1"`},
		{2, []string{"credit", "add", "--dir", dir, "--card", number}, "--amount is required"},
		{2, []string{"credit", "add", "--dir", dir, "--card", number, "--amount", "1", "extra"}, "unexpected argument"},
		{2, []string{"credit", "add", "--dir", dir, "--bogus"}, "bogus"},
		{1, []string{"credit", "add", "--dir", dir, "--card", "3101000000999999", "--amount", "1"}, "no such card"},
		{1, []string{"ledger", "--dir", dir, "--card", "3101000000999999"}, "no such card"},
		// Card numbers of 8 to 20 digits as written; anything else named with its reason.
		{1, []string{"credit", "add", "--dir", dir, "--card", "3104990600000000006", "--amount", "1"}, "no such card"},
		{1, []string{"ledger", "--dir", dir, "--card", "12345678901234567890"}, "no such card"},
		{2, []string{"credit", "add", "--dir", dir, "--card", "3104990", "--amount", "1"}, `--card = "3104990": 7 digits; want 8 to 20`},
		{2, []string{"ledger", "--dir", dir, "--card", "310499060000000000061"}, `--card = "310499060000000000061": 21 digits; want 8 to 20`},
		{2, []string{"deny", "add", "--dir", dir, "--card", " 3104990600000000006"}, `' ' at byte 0 is not a decimal digit`},
		{2, []string{"deny", "add", "--dir", dir, "--card", "+3104990600000000006"}, `'+' at byte 0 is not a decimal digit`},
		{2, []string{"deny", "add", "--dir", dir, "--card", "٣١٠٤٩٩٠٦٠٠٠٠٠٠٠٠٠٠٠٦"}, `"\u0663\u0661`},
		{2, []string{"card", "issue", "--dir", dir, "--number", "3104990", "--out", filepath.Join(empty, "c.json")}, `--number = "3104990": 7 digits`},
		{2, []string{"card", "issue", "--dir", dir, "--number", "310499060000000000061", "--out", filepath.Join(empty, "c.json")}, "21 digits"},
		{2, []string{"init", "--dir", dir}, "refusing to overwrite"},
		{2, []string{"terminal", "add", "--dir", dir, "--id", "12345", "--secret-out", filepath.Join(empty, "s")}, `--id = "12345"`},
		{2, []string{"terminal", "add", "--dir", dir, "--id", "000000000002", "--secret-out", secretFile}, "--secret-out"},
		{2, []string{"terminal", "add", "--dir", dir, "--id", "000000000001", "--secret-out", filepath.Join(empty, "s2")}, "registered already"},
		{2, []string{"card", "issue", "--dir", dir, "--number", number, "--out", filepath.Join(empty, "c.json")}, "--number"},
		{2, []string{"card", "issue", "--dir", dir, "--number", "3101000000000002", "--out", cardFile}, "--out"},
		{2, []string{"card", "issue", "--dir", dir, "--number", "3101000000000002", "--start", "2026-02-30", "--out", filepath.Join(empty, "c.json")}, "--start"},
		{2, []string{"serve", "--dir", dir, "--listen", "nonsense"}, "--listen"},
		{2, []string{"serve", "--dir", dir, "--balance-cap", "0"}, "--balance-cap"},
		{2, []string{"serve", "--dir", dir, "--tls-cert", cardFile}, `--tls-cert = "` + cardFile + `": needs --tls-key`},
		{2, []string{"serve", "--dir", dir, "--tls-key", cardFile}, `--tls-key = "` + cardFile + `": needs --tls-cert`},
		{2, []string{"serve", "--dir", dir, "--tls-cert", cardFile, "--tls-key", cardFile}, `--tls-cert = "` + cardFile + `", --tls-key = "` + cardFile + `"`},
		{2, []string{"serve", "--dir", dir, "--topup-provider", "wechat"}, `--topup-provider = "wechat"`},
		{2, []string{"serve", "--dir", dir, "--topup-timeout", "1s"}, `--topup-timeout = "1s"`},
		{2, []string{"serve", "--dir", dir, "--topup-timeout", "5"}, `--topup-timeout = "5"`},
		{2, []string{"serve", "--dir", dir, "--topup-public-url", "ftp://x"}, `--topup-public-url = "ftp://x"`},
		{2, []string{"serve", "--dir", dir, "--topup-public-url", "http://x/pay?a=1"}, `--topup-public-url = "http://x/pay?a=1"`},
		{2, []string{"serve", "--dir", dir, "--topup-provider", "sim", "--topup-sim-secret", filepath.Join(empty, "none")}, `--topup-sim-secret = "`},
		{2, []string{"serve", "--dir", dir, "--topup-provider", "sim", "--listen", "0.0.0.0:8710"}, `--listen = "0.0.0.0:8710" with --topup-provider sim: give --topup-public-url`},
		{2, []string{"serve", "--dir", dir, "--topup-provider", "sim", "--listen", ":8710"}, `--topup-public-url`},
		{2, []string{"topup", "list", "--dir", dir, "--state", "gone"}, `--state = "gone"`},
		{2, []string{"topup", "list", "--dir", dir, "--limit", "0"}, `--limit = 0`},
		{2, []string{"topup", "show", "--dir", dir}, "--id is required"},
		{1, []string{"topup", "show", "--dir", dir, "--id", "tp-1"}, `--id = "tp-1": no such order`},
		{2, []string{"topup", "pay", "--dir", dir, "--id", "tp-1", "--delay", "1h"}, `--delay = "1h"`},
		{2, []string{"topup", "pay", "--dir", dir, "--id", "tp-1", "--no-notify", "--twice"}, "--no-notify"},
		{1, []string{"topup", "pay", "--dir", dir, "--id", "tp-1"}, `--id = "tp-1": no such order`},
	} {
		code, _, errOut := cli(t, c.args...)
		if code != c.code || !strings.Contains(errOut, c.want) {
			t.Errorf("cardhost %s: exit %d, stderr %q; want exit %d with %q", strings.Join(c.args, " "), code, errOut, c.code, c.want)
		}
		if code != 0 && c.args != nil && strings.Count(strings.TrimSpace(errOut), "\n") > 0 && c.want != "unknown command" {
			t.Errorf("cardhost %s: more than one line on stderr: %q", strings.Join(c.args, " "), errOut)
		}
	}
	// Refused secret and card files were not left behind.
	if _, err := os.Stat(filepath.Join(empty, "s2")); err == nil {
		t.Error("a refused terminal add left its secret file")
	}
	if _, err := os.Stat(filepath.Join(empty, "c.json")); err == nil {
		t.Error("a refused card issue left its card file")
	}
	// A key file others can read is a configuration error.
	os.Chmod(filepath.Join(dir, host.MastersFile), 0o644)
	code, _, errOut := cli(t, "card", "issue", "--dir", dir, "--number", "3101000000000003", "--out", filepath.Join(empty, "c3.json"))
	if code != 2 || !strings.Contains(errOut, "chmod 600") {
		t.Fatalf("readable master keys: exit %d, %q", code, errOut)
	}
	wantCode(t, 0, "--help")
}

func TestServe(t *testing.T) { eachStore(t, testServe) }

func testServe(t *testing.T) {
	dir, secretFile, _ := setup(t)
	secret, err := config.ReadSecretFile(secretFile)
	if err != nil {
		t.Fatal(err)
	}
	url, _, stop := serveInProcess(t, "--dir", dir)

	body, _ := json.Marshal(hostapi.HeartbeatRequest{Version: "test"})
	req, _ := http.NewRequest(http.MethodPost, url+hostapi.PathHeartbeat, bytes.NewReader(body))
	hostapi.Sign(req, "000000000001", secret, body, time.Now(), "00112233445566778899aabbccddeeff")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("heartbeat with the secret file's key: %d", res.StatusCode)
	}
	// Headers are bounded before anything is authenticated; so is the body.
	req, _ = http.NewRequest(http.MethodPost, url+hostapi.PathHeartbeat, bytes.NewReader(body))
	req.Header.Set("X-Padding", strings.Repeat("x", 32<<10))
	if res, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("32 KiB of headers: %d, want 431", res.StatusCode)
	}
	big := bytes.Repeat([]byte(" "), host.MaxBodyBytes+1)
	if res, err = http.DefaultClient.Post(url+hostapi.PathJournal, "application/json", bytes.NewReader(big)); err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("a body over the limit: %d, want 413", res.StatusCode)
	}

	stop()
}

// TestServeTLS serves with --tls-cert and --tls-key: a client that trusts
// the CA gets its answer over TLS 1.2 or later, one that does not is
// refused in the handshake, and TLS 1.1 is refused.
func TestServeTLS(t *testing.T) { eachStore(t, testServeTLS) }

func testServeTLS(t *testing.T) {
	dir, secretFile, _ := setup(t)
	secret, err := config.ReadSecretFile(secretFile)
	if err != nil {
		t.Fatal(err)
	}
	files, err := tlsgen.Write(t.TempDir(), []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	url, _, stop := serveInProcess(t, "--dir", dir, "--tls-cert", files.Cert, "--tls-key", files.Key, "--topup-provider", "sim")
	if !strings.HasPrefix(url, "https://") {
		t.Fatalf("serving on %s, want https://", url)
	}
	pemCA, err := os.ReadFile(files.CA)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pemCA)
	post := func(cfg *tls.Config, path string, v, answer any) (*http.Response, error) {
		body, _ := json.Marshal(v)
		req, _ := http.NewRequest(http.MethodPost, url+path, bytes.NewReader(body))
		var nonce [16]byte
		rand.Read(nonce[:])
		hostapi.Sign(req, "000000000001", secret, body, time.Now(), hex.EncodeToString(nonce[:]))
		hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
		res, err := hc.Do(req)
		if err == nil {
			if answer != nil {
				json.NewDecoder(res.Body).Decode(answer)
			}
			res.Body.Close()
		}
		return res, err
	}
	heartbeat := func(cfg *tls.Config) (*http.Response, error) {
		return post(cfg, hostapi.PathHeartbeat, hostapi.HeartbeatRequest{Version: "test"}, nil)
	}
	res, err := heartbeat(&tls.Config{RootCAs: roots})
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("heartbeat over TLS with the CA trusted: %v %v", res, err)
	}
	if res.TLS == nil || res.TLS.Version < tls.VersionTLS12 {
		t.Fatalf("answer's TLS state %+v", res.TLS)
	}
	if _, err := heartbeat(&tls.Config{}); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("a client without the CA: %v, want a certificate error", err)
	}
	if _, err := heartbeat(&tls.Config{RootCAs: roots, MaxVersion: tls.VersionTLS11}); err == nil {
		t.Fatal("a TLS 1.1 client was served")
	}
	// The sim provider's pay links default to the address served: https.
	var o hostapi.TopupOrder
	if res, err := post(&tls.Config{RootCAs: roots}, hostapi.PathTopupOrder, hostapi.TopupOrderRequest{Card: number, AmountFen: 100, Key: "k1"}, &o); err != nil ||
		res.StatusCode != http.StatusOK || !strings.HasPrefix(o.QR, url+"/pay/sim/") {
		t.Fatalf("top-up order over TLS: %v %v, QR %q, want it under %s", res, err, o.QR, url)
	}
	stop()
}

// serveInProcess runs 'cardhost serve' with args on a free loopback port
// and returns its URL, its stderr so far, and stop, which stops it and
// wants exit 0.
func serveInProcess(t *testing.T, args ...string) (string, func() string, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	pr, pw := io.Pipe()
	stderr := new(lockedBuffer)
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, append([]string{"serve", "--listen", "127.0.0.1:0"}, args...), pw, stderr)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("no serving line: %v; stderr: %s", err, stderr.String())
	}
	go io.Copy(io.Discard, pr)
	i := strings.Index(line, "http://")
	if i < 0 {
		i = strings.Index(line, "https://")
	}
	if i < 0 {
		t.Fatalf("serving line %q", line)
	}
	stop := func() {
		t.Helper()
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Fatalf("serve exited %d: %s", code, stderr.String())
			}
		case <-time.After(15 * time.Second):
			t.Fatal("serve did not stop")
		}
	}
	return strings.Fields(line[i:])[0], stderr.String, stop
}

// lockedBuffer is a bytes.Buffer that serve's logger and the test share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestM1WalletCommands(t *testing.T) { eachStore(t, testM1WalletCommands) }

func testM1WalletCommands(t *testing.T) {
	dir, _, _ := setup(t)
	out, _ := wantCode(t, 0, "card", "m1", "--dir", dir, "--uid", "04a1b2c3", "--holder", "李四")
	if !strings.Contains(out, "uid:04A1B2C3") {
		t.Fatalf("card m1 printed %q: want the card id uid:04A1B2C3", out)
	}
	wantCode(t, 2, "card", "m1", "--dir", dir, "--uid", "04A1B2C3") // registered already
	wantCode(t, 2, "card", "m1", "--dir", dir, "--uid", "04A1B2")   // 3 bytes
	id, _ := wantCode(t, 0, "credit", "add", "--dir", dir, "--card", "uid:04a1b2c3", "--amount", "20.00")
	list, _ := wantCode(t, 0, "credit", "list", "--dir", dir, "--card", "uid:04A1B2C3")
	if !strings.Contains(list, strings.TrimSpace(id)) || !strings.Contains(list, "20.00") {
		t.Fatalf("credit list:\n%s\nwant credit %s", list, id)
	}
	wantCode(t, 1, "credit", "add", "--dir", dir, "--card", "uid:0A0B0C0D", "--amount", "1.00") // not registered
	wantCode(t, 2, "credit", "settle-m1", "--dir", dir, "--id", strings.TrimSpace(id), "--applied", "maybe")
	if _, errOut := wantCode(t, 1, "credit", "settle-m1", "--dir", dir, "--id", strings.TrimSpace(id), "--applied", "no"); !strings.Contains(errOut, "no open M1 authorization") {
		t.Fatalf("settle-m1 with nothing open: %s", errOut)
	}
	wantCode(t, 2, "deny", "add", "--dir", dir, "--card", "uid:XYZ")
	out, _ = wantCode(t, 0, "deny", "add", "--dir", dir, "--card", "uid:0a0b0c0d", "--reason", "lost")
	if !strings.Contains(out, "uid:0A0B0C0D denied") {
		t.Fatalf("deny add printed %q", out)
	}
	wantCode(t, 0, "deny", "remove", "--dir", dir, "--card", "uid:0A0B0C0D")
	if out, _ := wantCode(t, 0, "ledger", "--dir", dir, "--card", "uid:04A1B2C3"); !strings.HasPrefix(out, "M1 wallet uid:04A1B2C3  holder 李四") {
		t.Fatalf("ledger of an M1 wallet:\n%s", out)
	}
}

// TestBadDBNeverShowsThePassword: a store URL with a mistyped scheme, from
// $CARDHOST_DB or --db, is refused without printing its password.
func TestBadDBNeverShowsThePassword(t *testing.T) {
	dir := t.TempDir()
	const bad = "postgress://cardhost:s3cret@db.example/cardhost?password=s3cret"
	t.Setenv(DBEnv, bad)
	_, errOut := wantCode(t, 2, "terminal", "list", "--dir", dir)
	if strings.Contains(errOut, "s3cret") {
		t.Errorf("$%s refused with its password shown: %s", DBEnv, errOut)
	}
	if !strings.Contains(errOut, "postgress://cardhost:") {
		t.Errorf("the refusal does not show which URL: %s", errOut)
	}
	t.Setenv(DBEnv, "")
	if _, errOut := wantCode(t, 2, "terminal", "list", "--dir", dir, "--db", bad); strings.Contains(errOut, "s3cret") {
		t.Errorf("--db refused with its password shown: %s", errOut)
	}
}

// TestDBSecretOnCommandLineWarns: a --db that carries a secret (the
// password, or sslpassword, the client key's passphrase) is warned of,
// since the process list shows it to every local user.
func TestDBSecretOnCommandLineWarns(t *testing.T) {
	dir, _, _ := setup(t)
	for _, db := range []string{
		"postgres://cardhost:s3cret@127.0.0.1:1/cardhost?connect_timeout=1",
		"postgres://cardhost@127.0.0.1:1/cardhost?connect_timeout=1&sslpassword=s3cret",
	} {
		_, _, errOut := cli(t, "terminal", "list", "--dir", dir, "--db", db)
		if !strings.Contains(errOut, "warning: --db carries a password") {
			t.Errorf("--db %s: no warning: %s", db, errOut)
		}
		if strings.Contains(errOut, "s3cret") {
			t.Errorf("--db %s: the secret shows: %s", db, errOut)
		}
	}
}
