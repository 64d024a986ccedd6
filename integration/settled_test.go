package integration

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/reader/vpcd"
)

// startServe runs `cardhost serve` on the host directory dir, on a free
// loopback port, with more flags if given, and returns its base URL;
// SIGTERM stops it at the end.
func startServe(t *testing.T, dir string, flags ...string) string {
	t.Helper()
	cmd := exec.Command(binary(t, "cardhost"), append([]string{"serve", "--dir", dir, "--listen", "127.0.0.1:0"}, flags...)...)
	cmd.Stderr = testWriter{t}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("cardhost serve exited with %v after SIGTERM", err)
			}
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			t.Error("cardhost serve did not stop within 15 s of SIGTERM")
		}
	})
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default:
			}
		}
	}()
	select {
	case line := <-lines:
		i := strings.Index(line, "http://")
		if j := strings.Index(line, "https://"); j >= 0 {
			i = j // served with --tls-cert
		}
		if i < 0 {
			t.Fatalf("cardhost serve printed %q, want its address", line)
		}
		return strings.Fields(line[i:])[0]
	case <-time.After(15 * time.Second):
		t.Fatal("cardhost serve did not say where it listens within 15 s")
	}
	return ""
}

// postSigned sends body to the host as terminal term, signed with its
// secret as the terminal's sync client does, and returns status and body.
func postSigned(t *testing.T, base, path, term, secret string, body any) (int, []byte) {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, base+path, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	var nonce [16]byte
	rand.Read(nonce[:])
	hostapi.Sign(req, term, []byte(secret), b, time.Now(), hex.EncodeToString(nonce[:]))
	client := &http.Client{Timeout: 10 * time.Second}
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	out, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, out
}

// hostJournalRow reads a journal row of terminal termID from the host's
// database, in its upload form; ok is false while there is none.
func hostJournalRow(t *testing.T, db *sql.DB, where string, args ...any) (hostapi.JournalRow, bool) {
	t.Helper()
	var r hostapi.JournalRow
	var counter, serial int64
	err := db.QueryRow(`SELECT id, kind, state, card, purse, counter, balance_fen, amount_fen, credit_id, tac, detail, time, term_serial
		FROM journal WHERE terminal = ? AND `+where, append([]any{termID}, args...)...).Scan(&r.ID, &r.Kind, &r.State, &r.Card, &r.Purse, &counter,
		&r.BalanceFen, &r.AmountFen, &r.CreditID, &r.TAC, &r.Detail, &r.Time, &serial)
	if err == sql.ErrNoRows {
		return r, false
	}
	if err != nil {
		t.Fatal(err)
	}
	r.Counter, r.TermSerial = uint16(counter), uint32(serial)
	return r, true
}

// TestSettledRowRefusedThroughServe: `cardd run` loads a credit onto a card
// and uploads its done load row, with the card's TAC, to `cardhost serve`.
// The same row id then sent again, signed with the terminal's secret, as a
// 0.01 load with TAC 00000000, and as failed, is refused 409 row_settled,
// one alarm lands in the card's ledger, and the host keeps the original;
// the identical copy is still acked.
func TestSettledRowRefusedThroughServe(t *testing.T) {
	requirePCSC(t)
	w := newHostWorld(t) // the host directory, terminal termID, and the test's own handle on it
	const number = "3101000000950001"
	path := w.issue(t, number, 10000)
	creditID := w.credit(t, number, 1250)
	base := startServe(t, w.hostDir)

	dir := t.TempDir()
	secretFile := w.secretFile(t, dir)
	waitEmpty(t, 0)
	d := startDaemon(t, "CARDD_HOST_URL="+base, "CARDD_HOST_SECRET_FILE="+secretFile,
		"CARDD_STORE_PATH="+filepath.Join(dir, "cardd.db"), "CARDD_TERMINAL_ID="+termID)
	d.waitLine(t, "reader added", 10*time.Second, func(m map[string]any) bool { return m["reader"] == slot0Reader })
	in := insert(t, path, 0, vpcd.Options{})
	d.waitLine(t, "tap with the load", 15*time.Second, isTap("ok"))
	in.remove(t)

	db := sqlOpen(t, filepath.Join(w.hostDir, "host.db"))
	var orig hostapi.JournalRow
	deadline := time.Now().Add(30 * time.Second)
	for {
		var ok bool
		if orig, ok = hostJournalRow(t, db, `kind = 'load' AND credit_id = ?`, creditID); ok && orig.State == "done" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the done load row did not reach the host within 30 s (have %+v)", orig)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if orig.AmountFen != 1250 || len(orig.TAC) != 8 {
		t.Fatalf("uploaded load row %+v, want 12.50 with the card's TAC", orig)
	}

	forged := orig
	forged.AmountFen, forged.TAC = 1, "00000000"
	failed := orig
	failed.State, failed.TAC = "failed", ""
	for _, c := range []struct {
		name string
		row  hostapi.JournalRow
	}{{"0.01 with TAC 00000000", forged}, {"failed", failed}} {
		status, b := postSigned(t, base, hostapi.PathJournal, termID, w.secret, hostapi.JournalRequest{Rows: []hostapi.JournalRow{c.row}})
		var resp hostapi.JournalResponse
		if status != http.StatusOK || json.Unmarshal(b, &resp) != nil {
			t.Fatalf("%s: %d %s", c.name, status, b)
		}
		if len(resp.Acked) != 0 || len(resp.Refused) != 1 || resp.Refused[0].ID != orig.ID ||
			resp.Refused[0].Status != http.StatusConflict || resp.Refused[0].Code != hostapi.CodeRowSettled {
			t.Fatalf("%s: answer %s, want the row refused 409 row_settled", c.name, b)
		}
		if got, _ := hostJournalRow(t, db, `id = ?`, orig.ID); got != orig {
			t.Fatalf("%s: the host holds %+v, want the original %+v", c.name, got, orig)
		}
	}
	var alarms int
	if err := db.QueryRow(`SELECT count(*) FROM ledger WHERE card = ? AND event = 'alarm'`, number).Scan(&alarms); err != nil || alarms != 1 {
		t.Fatalf("%d alarms in the card's ledger (%v), want 1", alarms, err)
	}
	status, b := postSigned(t, base, hostapi.PathJournal, termID, w.secret, hostapi.JournalRequest{Rows: []hostapi.JournalRow{orig}})
	var resp hostapi.JournalResponse
	if status != http.StatusOK || json.Unmarshal(b, &resp) != nil || len(resp.Acked) != 1 || resp.Acked[0] != orig.ID {
		t.Fatalf("the identical copy: %d %s, want it acked", status, b)
	}
	// The money itself is untouched: the credit consumed once, on the TAC.
	var state, tac string
	if err := db.QueryRow(`SELECT state, consumed_tac FROM credits WHERE id = ?`, creditID).Scan(&state, &tac); err != nil ||
		state != hostapi.CreditConsumed || tac != orig.TAC {
		t.Fatalf("credit %s, TAC %q (%v); want consumed on %s", state, tac, err, orig.TAC)
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	if err := <-d.exit; err != nil {
		t.Errorf("cardd exited with %v after SIGTERM", err)
	}
}
