package localapi

import (
	"strings"
	"testing"
)

// TestArmSplit: POST /v1/purchase/arm with "split" arms a split sale (and
// its cap), shown in the answer and the status; a bad split field gets a
// 400 with its reason and arms nothing.
func TestArmSplit(t *testing.T) {
	s, srv, _ := newServer(t)
	auth := "Bearer " + token
	for _, tc := range []struct{ body, in string }{
		{`{"amount":"30.00","cap":"10.00"}`, `cap "10.00" is for a split sale`},
		{`{"amount":"30.00","split":true,"cap":"abc"}`, `cap "abc": want yuan above 0`},
		{`{"amount":"30.00","split":true,"cap":"0"}`, `cap "0": want yuan above 0`},
		{`{"amount":"30.00","split":true,"cap":"30.01"}`, "at most the sale's 30.00"},
		{`{"amount":"30.00","split":"yes"}`, "split"},
		{`{"amount":"30.00","split":true,"cap":10}`, "cap"},
	} {
		code, m := call(t, srv, "POST", "/v1/purchase/arm", auth, tc.body)
		msg, _ := m["error"].(string)
		if code != 400 || !strings.Contains(msg, tc.in) {
			t.Errorf("%s: %d %q, want 400 with %q", tc.body, code, msg, tc.in)
		}
		if _, ok := s.Till.Armed(); ok {
			t.Fatalf("%s: a sale is armed", tc.body)
		}
	}
	code, m := call(t, srv, "POST", "/v1/purchase/arm", auth, `{"amount":"30.00","split":true,"cap":"20.00"}`)
	sale, _ := m["sale"].(map[string]any)
	if code != 200 || sale["split"] != true || sale["cap_fen"] != float64(2000) || sale["amount_fen"] != float64(3000) {
		t.Fatalf("split arm: %d %v", code, m)
	}
	if a, ok := s.Till.Armed(); !ok || !a.Split || a.CapFen != 2000 {
		t.Fatalf("till %+v %v", a, ok)
	}
	code, m = call(t, srv, "POST", "/v1/purchase/arm", auth, `{"amount":"30.00","split":true}`)
	if sale, _ := m["sale"].(map[string]any); code != 200 || sale["split"] != true || sale["cap_fen"] != nil {
		t.Fatalf("split arm without cap: %d %v", code, m)
	}
}
