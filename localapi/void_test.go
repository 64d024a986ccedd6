package localapi

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/cardd/cardd/offline"
)

// fakeVoider answers each void with err, or an outcome, and keeps what it
// was asked.
type fakeVoider struct {
	err   error
	asked []VoidRequest
}

func (f *fakeVoider) Void(_ context.Context, req VoidRequest) (VoidOutcome, error) {
	f.asked = append(f.asked, req)
	if f.err != nil {
		return VoidOutcome{}, f.err
	}
	return VoidOutcome{Void: "000000000001-V1", Sale: "000000000001-7", AmountFen: req.AmountFen, State: offline.VoidRefunded, Loaded: true}, nil
}

// POST /v1/purchase/void: each of the store's refusals is its status with
// the reason; a malformed body reaches no void; a void done answers the
// outcome.
func TestVoidRoute(t *testing.T) {
	s, srv, _ := newServer(t)
	auth := []string{"Authorization", "Bearer " + token, "Content-Type", "application/json"}
	if code, _, body := send(t, srv, "POST", "/v1/purchase/void", `{}`, auth...); code != http.StatusConflict || !strings.Contains(body, "mode pos") {
		t.Fatalf("without voids: %d %s; want 409", code, body)
	}
	f := &fakeVoider{}
	s.Voids = f
	for _, tc := range []struct {
		err  error
		want int
	}{
		{fmt.Errorf("offline: record void: %w: sale 000000000001-7 was voided by 000000000001-V1", offline.ErrVoided), http.StatusConflict},
		{fmt.Errorf("%w: sale made 6m0s ago", offline.ErrVoidWindow), http.StatusConflict},
		{fmt.Errorf("%w: sale is unknown", offline.ErrNotVoidable), http.StatusConflict},
		{fmt.Errorf("%w: 13.00 is above 12.50", offline.ErrVoidAmount), http.StatusBadRequest},
		{fmt.Errorf("%w: no journal row", offline.ErrNotFound), http.StatusNotFound},
	} {
		f.err = tc.err
		code, _, body := send(t, srv, "POST", "/v1/purchase/void", `{"sale":"000000000001-7"}`, auth...)
		if code != tc.want || !strings.Contains(body, tc.err.Error()) {
			t.Errorf("%v: %d %s; want %d with the reason", tc.err, code, body, tc.want)
		}
	}
	n := len(f.asked)
	for _, body := range []string{`{"amount":"-1"}`, `{"amount":"1.234"}`, `{"cashier":"` + strings.Repeat("x", 65) + `"}`, `{"sael":"x"}`} {
		if code, _, _ := send(t, srv, "POST", "/v1/purchase/void", body, auth...); code != http.StatusBadRequest {
			t.Errorf("%s: %d; want 400", body, code)
		}
	}
	if len(f.asked) != n {
		t.Fatalf("a malformed void reached the voider: %+v", f.asked[n:])
	}
	f.err = nil
	code, _, body := send(t, srv, "POST", "/v1/purchase/void", `{"amount":"2.50","cashier":"c07"}`, auth...)
	if code != http.StatusOK || !strings.Contains(body, `"state":"refunded"`) || !strings.Contains(body, `"loaded":true`) {
		t.Fatalf("void: %d %s", code, body)
	}
	if last := f.asked[len(f.asked)-1]; last.AmountFen != 250 || last.Cashier != "c07" || last.Sale != "" {
		t.Fatalf("asked %+v; want the last sale, 2.50, cashier c07", last)
	}
	// The page's credential never voids.
	if code, _, _ := send(t, srv, "POST", "/v1/purchase/void", `{}`, "Authorization", "Bearer "+pageToken, "Content-Type", "application/json"); code != http.StatusForbidden {
		t.Fatalf("page credential: %d; want 403", code)
	}
}
