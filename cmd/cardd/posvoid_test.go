package main

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cardd/cardd/config"
	"github.com/cardd/cardd/daemon"
	"github.com/cardd/cardd/localapi"
)

// TestVoidRequest: the sale is optional, one at most; --amount must be
// one, else a usage error (exit 2) before anything is voided.
func TestVoidRequest(t *testing.T) {
	if req, err := voidRequest(nil, "", "c07"); err != nil || req != (localapi.VoidRequest{Cashier: "c07"}) {
		t.Fatalf("last sale: %+v %v", req, err)
	}
	if req, err := voidRequest([]string{"000000000001-7"}, "2.5", ""); err != nil || req.Sale != "000000000001-7" || req.Amount != "2.50" {
		t.Fatalf("named sale, 2.50: %+v %v", req, err)
	}
	for _, tc := range []struct {
		args   []string
		amount string
	}{{[]string{"a", "b"}, ""}, {nil, "abc"}, {nil, "-1"}, {nil, "0"}} {
		_, err := voidRequest(tc.args, tc.amount, "")
		var ee *exitError
		if !errors.As(err, &ee) || ee.code != 2 {
			t.Errorf("%v --amount %q: %v; want exit 2", tc.args, tc.amount, err)
		}
	}
}

// TestPosVoid: a void the daemon refuses exits 2 with its reason; one
// refunded says where the refund went; one the host refused exits 1.
func TestPosVoid(t *testing.T) {
	var status int
	var body string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/purchase/void" || r.Header.Get("Authorization") != "Bearer tok" {
			http.Error(w, "wrong call", http.StatusTeapot)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write([]byte(body))
	}))
	defer srv.Close()
	rt := daemon.RuntimeAPI{URL: srv.URL, Token: "tok"}
	for _, tc := range []struct {
		status   int
		body     string
		code     int // exit code, 0 for none
		out, err string
	}{
		{409, `{"error":"sale already voided: sale 000000000001-7 was voided by 000000000001-V1"}`, 2, "", "sale already voided"},
		{409, `{"error":"sale outside the void window: sale 000000000001-7 was made 6m0s ago"}`, 2, "", "outside the void window"},
		{200, `{"void":"000000000001-V1","sale":"000000000001-7","card":"3101********0042","amount":"12.50","state":"refunded","credit":"rf-1","loaded":true,"balance_fen":5000}`, 0, "refunded onto the card: balance 50.00", ""},
		{200, `{"void":"000000000001-V1","sale":"000000000001-7","amount":"12.50","state":"refunded","credit":"rf-1","loaded":false}`, 0, "loads at the card's next tap, at any terminal", ""},
		{200, `{"void":"000000000001-V1","sale":"000000000001-7","amount":"12.50","state":"owed"}`, 0, "the host has not answered", ""},
		{200, `{"void":"000000000001-V1","sale":"000000000001-7","amount":"12.50","state":"refused","host_reason":"sale_voided: no"}`, 1, "the host refused its refund: sale_voided: no", "refused by the host"},
	} {
		status, body = tc.status, tc.body
		var out strings.Builder
		err := posVoid(context.Background(), rt, localapi.VoidRequest{}, 5*time.Second, &out)
		var ee *exitError
		switch {
		case tc.code == 0 && err != nil:
			t.Errorf("%s: %v", tc.body, err)
		case tc.code != 0 && (!errors.As(err, &ee) || ee.code != tc.code || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: %v; want exit %d with %q", tc.body, err, tc.code, tc.err)
		case !strings.Contains(out.String(), tc.out):
			t.Errorf("%s: printed %q; want %q", tc.body, out.String(), tc.out)
		}
	}
}

// TestVoidWaitOutlastsTheDaemon: `cardd pos void` waits longer than the
// daemon may take for a void (the host, then a tap of the card present,
// both growing with tap.timeout), so it never reports a failure for a
// void the daemon then completes. A fixed 60 s did not, from a
// tap.timeout of about 18 s up.
func TestVoidWaitOutlastsTheDaemon(t *testing.T) {
	for _, tapTimeout := range []time.Duration{time.Second, 20 * time.Second, 2 * time.Minute} {
		cfg := config.Default()
		cfg.Tap.Timeout = tapTimeout
		if cli, d := voidWaitFor(&cfg), daemon.VoidWait(&cfg); cli <= d {
			t.Errorf("tap.timeout %s: cardd pos void waits %s, the daemon may take %s", tapTimeout, cli, d)
		}
	}
}
