package main

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cardd/cardd/daemon"
	"github.com/cardd/cardd/localapi"
	"github.com/cardd/cardd/offline"
)

type storeShifts struct{ *offline.Store }

func (s storeShifts) CloseShift(ctx context.Context) (offline.ShiftSummary, error) {
	return s.Store.CloseShift(ctx, offline.CloseOptions{})
}

// cardd pos shift opens a shift at the daemon, refuses a second one and a
// close with none open (exit 2 with the daemon's reason), and prints the
// close's totals.
func TestPOSShiftCommands(t *testing.T) {
	t.Setenv("CARDD_CONFIG", "")
	dir := t.TempDir()
	path := filepath.Join(dir, "cardd.db")
	t.Setenv("CARDD_STORE_PATH", path)
	store, err := offline.Open(filepath.Join(dir, "daemon.db"), "000000000001")
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	api := &localapi.Server{Token: "tok", Base: localapi.Status{Mode: "pos"}, Shifts: storeShifts{store}}
	defer api.Close()
	srv := httptest.NewUnstartedServer(api)
	if api.AllowedHosts, err = localapi.AllowedHosts("127.0.0.1:0", srv.Listener.Addr(), nil); err != nil {
		t.Fatal(err)
	}
	srv.Start()
	defer srv.Close()
	b, _ := json.Marshal(daemon.RuntimeAPI{URL: srv.URL, Token: "tok"})
	if err := os.WriteFile(path+".api", b, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"pos", "shift", "open"}, {"pos", "shift", "open", "--cashier", ""}, {"pos", "shift", "frob"}, {"pos", "shift", "close", "extra"}} {
		if code, _, stderr := run(t, args...); code != 2 {
			t.Errorf("cardd %q: exit %d (%s), want 2", args, code, stderr)
		}
	}
	if code, _, stderr := run(t, "pos", "shift", "close"); code != 2 || !strings.Contains(stderr, "no shift is open") {
		t.Errorf("close with none open: exit %d, %q; want 2 and the reason", code, stderr)
	}
	code, out, stderr := run(t, "pos", "shift", "open", "--cashier", "C007")
	if code != 0 || !strings.Contains(out, "shift 1 of cashier C007 opened") {
		t.Fatalf("open: exit %d, %q %q", code, out, stderr)
	}
	if code, _, stderr := run(t, "pos", "shift", "open", "--cashier", "C008"); code != 2 || !strings.Contains(stderr, "already open") {
		t.Errorf("second open: exit %d, %q; want 2 and the reason", code, stderr)
	}
	if code, out, _ := run(t, "pos", "shift"); code != 0 || !strings.Contains(out, "cashier C007 open since") {
		t.Errorf("show: exit %d, %q", code, out)
	}
	r, err := store.Begin(context.Background(), offline.Row{Kind: offline.KindPurchase, Card: "3101234567890001", Purse: "EP",
		AmountFen: 1840, Time: "20261204120000", Sale: offline.SaleFacts{Period: "dinner", Class: "staff", CollectFen: 1160}})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Finish(context.Background(), r.ID, offline.StateDone, "01020304", ""); err != nil {
		t.Fatal(err)
	}
	code, out, stderr = run(t, "pos", "shift", "close")
	if code != 0 {
		t.Fatalf("close: exit %d, %q %q", code, out, stderr)
	}
	for _, want := range []string{"shift 1 of cashier C007 closed", "dinner", "staff", "18.40", "collected otherwise 11.60"} {
		if !strings.Contains(out, want) {
			t.Errorf("close printed %q, lacks %q", out, want)
		}
	}
}
