package main

import (
	"strings"
	"testing"
)

func TestCreditApprovalCommands(t *testing.T) { eachStore(t, testCreditApprovalCommands) }

// testCreditApprovalCommands: with 'credit threshold --above 2000.00', a
// 2,500.00 credit is listed awaiting approval; its own operator's approve
// is refused with the reason (exit 2), another's goes through; cancel and
// correct take the operator and reason into the ledger; bad flags are
// usage errors.
func testCreditApprovalCommands(t *testing.T) {
	dir, _, _ := setup(t)
	if out, _ := wantCode(t, 0, "credit", "threshold", "--dir", dir); !strings.Contains(out, "no approval threshold") {
		t.Fatalf("threshold before any: %q", out)
	}
	out, _ := wantCode(t, 0, "credit", "threshold", "--dir", dir, "--above", "2000.00", "--operator", "chief")
	if !strings.Contains(out, "credits above 2000.00 wait") || !strings.Contains(out, "set by operator chief") {
		t.Fatalf("threshold set: %q", out)
	}

	out, errOut := wantCode(t, 0, "credit", "add", "--dir", dir, "--card", number, "--amount", "2500.00", "--operator", "alice")
	big := strings.TrimSpace(out)
	if !strings.HasPrefix(big, "cr-") || !strings.Contains(errOut, "approval threshold") {
		t.Fatalf("credit add above the threshold: stdout %q, stderr %q", out, errOut)
	}
	out, errOut = wantCode(t, 0, "credit", "add", "--dir", dir, "--card", number, "--amount", "2000.00", "--operator", "alice")
	small := strings.TrimSpace(out)
	if errOut != "" {
		t.Fatalf("credit add at the threshold warned %q", errOut)
	}
	if out, _ := wantCode(t, 0, "credit", "list", "--dir", dir); !strings.Contains(lineOf(out, big), "awaiting approval") || strings.Contains(lineOf(out, small), "awaiting") {
		t.Fatalf("credit list:\n%s", out)
	}

	// The same operator: refused with the reason, exit 2, nothing changed.
	_, errOut = wantCode(t, 2, "credit", "approve", "--dir", dir, "--id", big, "--operator", "alice")
	if !strings.Contains(errOut, "added by operator alice, who cannot approve it") {
		t.Fatalf("self-approval stderr %q", errOut)
	}
	if out, _ := wantCode(t, 0, "credit", "list", "--dir", dir); !strings.Contains(lineOf(out, big), "awaiting approval") {
		t.Fatalf("after a refused approval:\n%s", out)
	}
	out, _ = wantCode(t, 0, "credit", "approve", "--dir", dir, "--id", big, "--operator", "bob", "--note", "receipt 0042 checked")
	if !strings.Contains(out, "approved by operator bob") {
		t.Fatalf("approve printed %q", out)
	}
	wantCode(t, 1, "credit", "approve", "--dir", dir, "--id", big, "--operator", "carol")
	if out, _ := wantCode(t, 0, "credit", "list", "--dir", dir); !strings.Contains(lineOf(out, big), "pending") {
		t.Fatalf("after the approval:\n%s", out)
	}

	// A cancel with the operator and the reason; a correction of a credit
	// not on the card is refused.
	wantCode(t, 0, "credit", "cancel", "--dir", dir, "--id", small, "--operator", "alice", "--reason", "wrong card")
	_, errOut = wantCode(t, 1, "credit", "correct", "--dir", dir, "--id", small, "--reason", "wrong card")
	if !strings.Contains(errOut, "not on the card") {
		t.Fatalf("correct of a cancelled credit: %q", errOut)
	}
	out, _ = wantCode(t, 0, "ledger", "--dir", dir, "--card", number)
	for _, want := range []string{"awaiting", "approved", "by operator bob; added by operator alice; receipt 0042 checked", "cancelled", "by operator alice; wrong card"} {
		if !strings.Contains(out, want) {
			t.Fatalf("ledger lacks %q:\n%s", want, out)
		}
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"credit", "approve", "--dir", dir}, "--id is required"},
		{[]string{"credit", "approve", "--dir", dir, "--id", big, "--operator", "bob smith"}, `--operator = "bob smith"`},
		{[]string{"credit", "correct", "--dir", dir, "--id", big}, "--reason is required"},
		{[]string{"credit", "correct", "--dir", dir, "--id", big, "--reason", "x", "--amount", "0"}, `--amount = "0"`},
		{[]string{"credit", "threshold", "--dir", dir, "--above", "0"}, `--above = "0"`},
		{[]string{"credit", "threshold", "--dir", dir, "--above", "1.00", "--off"}, "--above and --off"},
	} {
		if _, errOut := wantCode(t, 2, c.args...); !strings.Contains(errOut, c.want) {
			t.Errorf("cardhost %s: stderr %q, want %q", strings.Join(c.args, " "), errOut, c.want)
		}
	}
	wantCode(t, 1, "credit", "approve", "--dir", dir, "--id", "cr-0000000000000000", "--operator", "bob")
	if out, _ := wantCode(t, 0, "credit", "threshold", "--dir", dir, "--off"); !strings.Contains(out, "no approval threshold") {
		t.Fatalf("threshold --off: %q", out)
	}
}

// lineOf is the line of out that mentions s.
func lineOf(out, s string) string {
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, s) {
			return line
		}
	}
	return ""
}
