package sync_test

import (
	"strings"
	"testing"
)

// TestM1LoadTerminalBalanceCap: a credit that would take an M1 wallet over
// the terminal's load.balance_cap waits, though the host (cap 1000.00)
// would authorize it; one landing exactly on the cap is loaded.
func TestM1LoadTerminalBalanceCap(t *testing.T) {
	w := newM1World(t, 1000)
	w.l.BalanceCap = 6000
	over := w.h.credit(t, w.id, 5001, "wechat")
	on := w.h.credit(t, w.id, 5000, "wechat")
	rep, err := w.tap(t)
	if err != nil || len(rep.Loads) != 2 {
		t.Fatalf("ApplyM1 = %+v, %v", rep, err)
	}
	if l := rep.Loads[0]; l.CreditID != over.ID || l.Applied || !strings.Contains(l.Refused, "balance cap") {
		t.Fatalf("credit over the cap: %+v, want it waiting for the cap", l)
	}
	if l := rep.Loads[1]; l.CreditID != on.ID || !l.Applied {
		t.Fatalf("credit landing on the cap: %+v, want it loaded", l)
	}
	if b := w.balance(t); b != 6000 || rep.Balance != 6000 {
		t.Fatalf("wallet holds %d (report %d), want 6000", b, rep.Balance)
	}
	if s := w.creditState(t, over.ID); s != "pending" {
		t.Fatalf("credit over the cap is %s at the host, want pending", s)
	}
}
