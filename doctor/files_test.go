package doctor

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/cardd/cardd/config"
	"github.com/cardd/cardd/offline"
)

// newStore creates a real journal at cfg.Store.Path, as cardd run would.
func newStore(t *testing.T, path string) {
	t.Helper()
	s, err := offline.Open(path, "000000000001")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestStoreFileModes(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Windows guards files with ACLs, not mode bits: this asserts Unix modes (docs/windows.md)")
	}
	for _, tc := range []struct {
		dir, file os.FileMode
		status    Status
		subs      []string
	}{
		{0o700, 0o600, Pass, []string{" 0700", "cardd.db 0600"}},
		{0o750, 0o600, Pass, []string{" 0750"}},
		{0o700, 0o400, Pass, []string{"cardd.db 0400"}},
		{0o700, 0o640, Warn, []string{"cardd.db 0640 (its group can read it)", "fix:chmod 600 ", "fix:card numbers"}},
		{0o700, 0o644, Fail, []string{"cardd.db 0644 (others can read it)", "fix:chmod 600 "}},
		{0o700, 0o660, Fail, []string{"its group can write it"}},
		{0o755, 0o600, Fail, []string{" 0755 (others can read and enter it)", "fix:chmod 700 "}},
		{0o770, 0o600, Fail, []string{"its group can replace files"}},
		{0o777, 0o666, Fail, []string{"fix:chmod 700 ", "fix: && chmod 600 "}},
	} {
		t.Run(fmt.Sprintf("%04o-%04o", tc.dir, tc.file), func(t *testing.T) {
			cfg := testConfig(t)
			cfg.Host.URL, cfg.Host.SecretFile = "http://127.0.0.1:1", "/nonexistent"
			dir := filepath.Dir(cfg.Store.Path)
			writeFile(t, cfg.Store.Path, "", tc.file)
			if err := os.Chmod(dir, tc.dir); err != nil {
				t.Fatal(err)
			}
			r := &run{cfg: cfg}
			res := r.checkStoreFiles(context.Background())
			want(t, "store files", res, tc.status, tc.subs...)
			if tc.status != Pass && !strings.Contains(res.Fix, cfg.Store.Path) && tc.file&0o077 != 0 {
				t.Errorf("fix %q does not name the file", res.Fix)
			}
		})
	}
}

// TestStoreWALFilesJudgedToo: the -wal and -shm siblings hold rows too.
func TestStoreWALFilesJudgedToo(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Windows guards files with ACLs, not mode bits: this asserts Unix modes (docs/windows.md)")
	}
	cfg := testConfig(t)
	cfg.Printer.Enabled, cfg.Printer.Port = true, "/dev/null"
	writeFile(t, cfg.Store.Path, "", 0o600)
	writeFile(t, cfg.Store.Path+"-wal", "", 0o644)
	r := &run{cfg: cfg}
	want(t, "store files", r.checkStoreFiles(context.Background()), Fail, "cardd.db-wal 0644", "fix:chmod 600 "+cfg.Store.Path+"-wal")
}

func TestStoreMissing(t *testing.T) {
	cfg := testConfig(t)
	r := &run{cfg: cfg}
	want(t, "offline terminal", r.checkStore(context.Background()), Skip, "no journal")
	cfg.Host.URL, cfg.Host.SecretFile = "http://127.0.0.1:1", "/nonexistent"
	want(t, "with a host", r.checkStore(context.Background()), Warn, "does not exist yet", "fix:creates it")
	want(t, "with a host, files", r.checkStoreFiles(context.Background()), Warn, "does not exist yet")
	if _, err := os.Stat(cfg.Store.Path); !os.IsNotExist(err) {
		t.Errorf("the check created the store (%v)", err)
	}
}

// A POS or a door keeps a journal with neither a host nor a printer, so
// a missing one is a warning there (its unsent rows are money), not "no
// journal".
func TestStoreMissingInPOSAndDoor(t *testing.T) {
	for _, mode := range []string{config.ModePOS, config.ModeDoor} {
		cfg := testConfig(t)
		cfg.Mode = mode
		r := &run{cfg: cfg}
		want(t, mode, r.checkStore(context.Background()), Warn, "does not exist yet", "fix:creates it")
		want(t, mode+", files", r.checkStoreFiles(context.Background()), Warn, "does not exist yet")
	}
}

func TestStoreOpensAndChecks(t *testing.T) {
	cfg := testConfig(t)
	cfg.Printer.Enabled, cfg.Printer.Port = true, "/dev/null"
	newStore(t, cfg.Store.Path)
	r := &run{cfg: cfg}
	want(t, "store", r.checkStore(context.Background()), Pass,
		fmt.Sprintf("schema version %d", offline.SchemaVersion()), "quick_check ok", "0 receipt(s) waiting")
}

// TestStoreHeldByDaemon: the store's lock held (the daemon runs) is said
// with the holder's pid, and is no failure.
func TestStoreHeldByDaemon(t *testing.T) {
	cfg := testConfig(t)
	cfg.Printer.Enabled, cfg.Printer.Port = true, "/dev/null"
	newStore(t, cfg.Store.Path)
	l, err := offline.Lock(cfg.Store.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	r := &run{cfg: cfg}
	want(t, "store", r.checkStore(context.Background()), Pass, "quick_check ok", fmt.Sprintf("in use by the running cardd (pid %d)", os.Getpid()))
	l.Release()
	if res := r.checkStore(context.Background()); strings.Contains(res.Detail, "in use") {
		t.Errorf("released, the store is still said in use: %s", res.Detail)
	}
}

func TestStoreMigratesAnEmptyFile(t *testing.T) {
	cfg := testConfig(t)
	cfg.Printer.Enabled, cfg.Printer.Port = true, "/dev/null"
	writeFile(t, cfg.Store.Path, "", 0o600)
	r := &run{cfg: cfg}
	want(t, "store", r.checkStore(context.Background()), Pass, "migrated from version 0")
}

func TestStoreNewerSchemaRefused(t *testing.T) {
	cfg := testConfig(t)
	cfg.Printer.Enabled, cfg.Printer.Port = true, "/dev/null"
	newStore(t, cfg.Store.Path)
	db, err := sql.Open("sqlite3", cfg.Store.Path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("PRAGMA user_version = 99"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	r := &run{cfg: cfg}
	want(t, "store", r.checkStore(context.Background()), Fail, "schema version 99", "newer", "fix:older cardd")
}

func TestStoreDamaged(t *testing.T) {
	cfg := testConfig(t)
	cfg.Printer.Enabled, cfg.Printer.Port = true, "/dev/null"
	writeFile(t, cfg.Store.Path, strings.Repeat("not a database ", 1000), 0o600)
	r := &run{cfg: cfg}
	want(t, "store", r.checkStore(context.Background()), Fail, "cannot open", "fix:keep a copy")
}

// TestStoreModeJudgedBeforeOpening: opening the journal sets it to 0600, so
// Run judges the modes first, and the report says what the operator had.
func TestStoreModeJudgedBeforeOpening(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Windows guards files with ACLs, not mode bits: this asserts Unix modes (docs/windows.md)")
	}
	cfg := testConfig(t)
	cfg.Printer.Enabled, cfg.Printer.Port = true, filepath.Join(t.TempDir(), "no-printer")
	newStore(t, cfg.Store.Path)
	os.Chmod(cfg.Store.Path, 0o644)
	res := Run(context.Background(), cfg, Options{DialPCSC: dialer(slot0)})
	want(t, "store files", find(t, res, CheckStoreFiles), Fail, "cardd.db 0644")
	want(t, "store", find(t, res, CheckStore), Pass)
}

func TestSecretFiles(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Windows guards files with ACLs, not mode bits: this asserts Unix modes (docs/windows.md)")
	}
	me := os.Geteuid()
	for _, tc := range []struct {
		name    string
		content string
		perm    os.FileMode
		missing bool
		euid    int
		status  Status
		subs    []string
	}{
		{name: "0600 mine", content: "s3cret\n", perm: 0o600, euid: me, status: Pass, subs: []string{"mode 0600", fmt.Sprintf("uid %d", me)}},
		{name: "0400 mine", content: "s3cret", perm: 0o400, euid: me, status: Pass, subs: []string{"mode 0400"}},
		{name: "world readable", content: "s3cret", perm: 0o644, euid: me, status: Fail, subs: []string{"mode 0644", "fix:chmod 600 "}},
		{name: "group readable", content: "s3cret", perm: 0o640, euid: me, status: Fail, subs: []string{"mode 0640", "fix:chmod 600 "}},
		{name: "someone else's", content: "s3cret", perm: 0o600, euid: me + 4242, status: Fail,
			subs: []string{"is owned by", fmt.Sprintf("uid %d", me+4242), "fix:chown ", "fix:sudo -u"}},
		{name: "empty", content: "\n", perm: 0o600, euid: me, status: Fail, subs: []string{"is empty"}},
		{name: "missing", missing: true, euid: me, status: Fail, subs: []string{"does not exist"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "secret")
			if !tc.missing {
				writeFile(t, path, tc.content, tc.perm)
			}
			cfg := testConfig(t)
			cfg.Host.URL, cfg.Host.SecretFile = "http://127.0.0.1:1", path
			cfg.API.TokenFile = path
			r := &run{cfg: cfg, opts: Options{Euid: func() int { return tc.euid }}}
			res := r.checkHostSecret(context.Background())
			want(t, "host secret", res, tc.status, tc.subs...)
			usable := tc.status == Pass || tc.euid != me // someone else's file still reads
			if (r.secret != nil) != usable {
				t.Errorf("secret kept: %v, with status %s", r.secret != nil, tc.status)
			}
			if r.secret == nil {
				want(t, "host", r.checkHost(context.Background()), Fail, "host.secret_file cannot be used", "fix:host-secret")
			}
			want(t, "api token", r.checkAPIToken(context.Background()), tc.status, tc.subs...)
		})
	}
}

func TestSecretFixSaysHowToMakeOne(t *testing.T) {
	cfg := testConfig(t)
	cfg.Host.URL, cfg.Host.SecretFile = "http://127.0.0.1:1", filepath.Join(t.TempDir(), "host.secret")
	cfg.API.TokenFile = filepath.Join(t.TempDir(), "api.token")
	r := &run{cfg: cfg}
	want(t, "host secret", r.checkHostSecret(context.Background()), Fail, "fix:cardhost terminal add --id 000000000001")
	want(t, "api token", r.checkAPIToken(context.Background()), Fail, "fix:/dev/urandom")
	cfg.API.TokenFile = ""
	want(t, "no token", r.checkAPIToken(context.Background()), Skip, "127.0.0.1:8711")
}
