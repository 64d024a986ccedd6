package localapi

import (
	"context"
	"net/http"
	"testing"

	"github.com/cardd/cardd/offline"
)

// storeShifts is the daemon's shifts without a receipt or voids.
type storeShifts struct{ *offline.Store }

func (s storeShifts) CloseShift(ctx context.Context) (offline.ShiftSummary, error) {
	return s.Store.CloseShift(ctx, offline.CloseOptions{})
}

// A shift opens once, shows in the status and GET /v1/shift, closes once
// with the journal's totals; a second open, a close with none open, a bad
// cashier and the page's credential are refused with their reasons.
func TestShiftRoutes(t *testing.T) {
	s, srv, store := newServer(t)
	if code, body := call(t, srv, "POST", "/v1/shift/close", "Bearer "+token, ""); code != http.StatusConflict {
		t.Errorf("close without shifts: %d %v, want 409", code, body)
	}
	s.Shifts = storeShifts{store}
	if code, body := call(t, srv, "GET", "/v1/shift", "Bearer "+token, ""); code != http.StatusNotFound {
		t.Errorf("GET with none open: %d %v, want 404", code, body)
	}
	if code, body := call(t, srv, "POST", "/v1/shift/close", "Bearer "+token, ""); code != http.StatusConflict || body["error"] == nil {
		t.Errorf("close with none open: %d %v, want 409 with a reason", code, body)
	}
	for _, bad := range []string{`{"cashier":""}`, `{"cashier":" C1"}`, `{}`, `{"cashier":"C1","x":1}`} {
		if code, body := call(t, srv, "POST", "/v1/shift", "Bearer "+token, bad); code != http.StatusBadRequest {
			t.Errorf("open %s: %d %v, want 400", bad, code, body)
		}
	}
	if code, _ := call(t, srv, "POST", "/v1/shift", "Bearer "+pageToken, `{"cashier":"C1"}`); code != http.StatusForbidden {
		t.Errorf("the page's credential opened a shift: %d", code)
	}
	code, body := call(t, srv, "POST", "/v1/shift", "Bearer "+token, `{"cashier":"C007"}`)
	if code != http.StatusCreated {
		t.Fatalf("open: %d %v", code, body)
	}
	if code, body := call(t, srv, "POST", "/v1/shift", "Bearer "+token, `{"cashier":"C008"}`); code != http.StatusConflict {
		t.Errorf("second open: %d %v, want 409", code, body)
	}
	_, st := call(t, srv, "GET", "/v1/status", "", "")
	if sh, _ := st["shift"].(map[string]any); sh == nil || sh["cashier"] != "C007" {
		t.Errorf("status shift %v, want C007's", st["shift"])
	}
	r, err := store.Begin(context.Background(), offline.Row{Kind: offline.KindPurchase, Card: "3101234567890001", Purse: "EP",
		AmountFen: 650, Time: "20261204120000", Sale: offline.SaleFacts{Period: "lunch", Class: "student"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Finish(context.Background(), r.ID, offline.StateDone, "01020304", ""); err != nil {
		t.Fatal(err)
	}
	// The journal shows what the row records for the close-out.
	_, page := call(t, srv, "GET", "/v1/journal", "", "")
	if rows, _ := page["rows"].([]any); len(rows) != 1 || rows[0].(map[string]any)["period"] != "lunch" ||
		rows[0].(map[string]any)["class"] != "student" || rows[0].(map[string]any)["shift"] != 1.0 {
		t.Errorf("journal %v, want the lunch/student row of shift 1", page)
	}
	code, body = call(t, srv, "POST", "/v1/shift/close", "Bearer "+token, "")
	sum, _ := body["summary"].(map[string]any)
	if code != http.StatusOK || sum == nil || sum["count"] != 1.0 || sum["sum_fen"] != 650.0 || sum["sum"] != "6.50" || sum["cashier"] != "C007" {
		t.Fatalf("close: %d %v, want 1 sale of 6.50", code, body)
	}
	if g, _ := sum["groups"].([]any); len(g) != 1 || g[0].(map[string]any)["period"] != "lunch" {
		t.Errorf("groups %v, want lunch/student", sum["groups"])
	}
	if _, st := call(t, srv, "GET", "/v1/status", "", ""); st["shift"] != nil {
		t.Errorf("status after the close: shift %v", st["shift"])
	}
	if code, _ := call(t, srv, "POST", "/v1/shift/close", "Bearer "+token, ""); code != http.StatusConflict {
		t.Errorf("second close: %d, want 409", code)
	}
}
