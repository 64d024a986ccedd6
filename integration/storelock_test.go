package integration

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cardd/cardd/reader/vpcd"
)

// TestSecondDaemonOnOneStore: while `cardd run` is in the middle of a load
// (its journal row in intent, the card's answer held back), a second
// `cardd run` on the same store.path exits 2 naming the store and the first
// one's pid, and changes nothing: the row in flight is not settled as
// interrupted, the first daemon's .api file is the same file with the same
// content, and the first daemon serves on and completes its load.
func TestSecondDaemonOnOneStore(t *testing.T) {
	requirePCSC(t)
	w := newHostWorld(t)
	dir := t.TempDir()
	secretFile := w.secretFile(t, dir)
	storePath := filepath.Join(dir, "cardd.db")
	env := []string{
		"CARDD_HOST_URL=" + w.srv.URL, "CARDD_HOST_SECRET_FILE=" + secretFile,
		"CARDD_STORE_PATH=" + storePath, "CARDD_TERMINAL_ID=" + termID,
		// Long enough for the second daemon to start and end while the
		// first waits for the card's answer.
		"CARDD_TAP_TIMEOUT=30s",
	}
	const number = "3101000000920001"
	path := w.issue(t, number, 10000)
	w.credit(t, number, 5000)

	waitEmpty(t, 0)
	d1 := startDaemon(t, env...)
	d1.apiAddr(t)
	d1.waitLine(t, "reader added", 10*time.Second, func(m map[string]any) bool { return m["reader"] == slot0Reader })
	db := sqlOpen(t, storePath)

	// The card holds back its answer to the first command it gets once the
	// load's row is written ahead: CREDIT FOR LOAD.
	held, release := make(chan struct{}), make(chan struct{})
	var releaseOnce sync.Once
	free := func() { releaseOnce.Do(func() { close(release) }) }
	defer free()
	var holding bool
	in := insert(t, path, 0, vpcd.Options{OnAPDU: func(int) {
		if holding {
			return
		}
		var n int
		if err := db.QueryRow(`SELECT count(*) FROM journal WHERE kind = 'load' AND state = 'intent'`).Scan(&n); err != nil || n == 0 {
			return
		}
		holding = true
		close(held)
		<-release
	}})
	select {
	case <-held:
	case <-time.After(20 * time.Second):
		t.Fatalf("no load in flight within 20 s; %s", in.status())
	}

	rows := journalRows(t, db)
	apiFile := storePath + ".api"
	apiBefore, err := os.ReadFile(apiFile)
	if err != nil {
		t.Fatalf("the first daemon's .api file: %v", err)
	}
	stBefore, err := os.Stat(apiFile)
	if err != nil {
		t.Fatal(err)
	}

	// The second daemon, configured like the first.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary(t, "cardd"), "run", "--log-format", "json")
	cmd.Env = append(append(os.Environ(), "CARDD_READER_CARD_PATTERN=^Virtual PCD 00 00$", "CARDD_CONFIG=", "CARDD_API_LISTEN=127.0.0.1:0"), env...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 {
		t.Errorf("second daemon: %v, want exit status 2 at once\n%s", err, out)
	}
	want := "store " + storePath + " is in use by cardd pid " + strconv.Itoa(d1.cmd.Process.Pid)
	if !strings.Contains(string(out), want) {
		t.Errorf("second daemon said %q, want %q", out, want)
	}

	if got := journalRows(t, db); got != rows {
		t.Errorf("the journal changed under the first daemon:\nbefore %s\nafter  %s", rows, got)
	}
	apiAfter, err := os.ReadFile(apiFile)
	if err != nil {
		t.Fatalf("the first daemon's .api file is gone: %v", err)
	}
	stAfter, _ := os.Stat(apiFile)
	if string(apiAfter) != string(apiBefore) || !os.SameFile(stBefore, stAfter) || !stAfter.ModTime().Equal(stBefore.ModTime()) {
		t.Errorf(".api file rewritten: %s (%v) became %s (%v)", apiBefore, stBefore.ModTime(), apiAfter, stAfter.ModTime())
	}

	// The first daemon still serves, found through its .api file as
	// cardd pos finds it, and completes the load once the card answers.
	var rt struct {
		URL string `json:"url"`
	}
	if err := json.Unmarshal(apiAfter, &rt); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(rt.URL + "/v1/status")
	if err != nil {
		t.Fatalf("the first daemon's API: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/v1/status: %s", resp.Status)
	}
	free()
	d1.waitLine(t, "tap", 35*time.Second, isTap("ok"))
	in.remove(t)
	var state string
	if err := db.QueryRow(`SELECT state FROM journal WHERE kind = 'load'`).Scan(&state); err != nil || state != "done" {
		t.Errorf("the load's row: %q, %v; want done", state, err)
	}
	_ = d1.cmd.Process.Signal(syscall.SIGTERM)
	if err := <-d1.exit; err != nil {
		t.Fatalf("first daemon exited with %v after SIGTERM", err)
	}
	if _, err := os.Stat(apiFile); !os.IsNotExist(err) {
		t.Errorf("the first daemon left its .api file: %v", err)
	}
}

// journalRows is the journal as the daemon keeps it (not the upload
// bookkeeping, which the first daemon's uploader may move on).
func journalRows(t *testing.T, db *sql.DB) string {
	t.Helper()
	var s sql.NullString
	if err := db.QueryRow(`SELECT group_concat(seq || ' ' || kind || ' ' || state || ' ' || rev || ' ' || updated || ' ' || detail, '; ')
		FROM (SELECT * FROM journal ORDER BY seq)`).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s.String
}
