package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/cardd/cardd/redact"
)

func TestCardCloseCommands(t *testing.T) { eachStore(t, testCardCloseCommands) }

// testCardCloseCommands: card close asks to close a named card, once; an
// anonymous card, a card never issued and a close without a reason are
// usage errors that change nothing; card closes lists the pending close,
// masked, and refunds due nothing yet.
func testCardCloseCommands(t *testing.T) {
	dir, _, _ := setup(t)
	const anon = "3101000000654339"
	wantCode(t, 0, "card", "issue", "--dir", dir, "--number", anon, "--out", filepath.Join(t.TempDir(), "a.json"))
	if _, errOut := wantCode(t, 2, "card", "close", "--dir", dir, "--card", anon, "--reason", "left"); !strings.Contains(errOut, "anonymous card") {
		t.Fatalf("closing an anonymous card printed %q", errOut)
	}
	wantCode(t, 2, "card", "close", "--dir", dir, "--card", number)
	wantCode(t, 2, "card", "close", "--dir", dir, "--card", "3101000000999999", "--reason", "left")
	if out, _ := wantCode(t, 0, "card", "closes", "--dir", dir); strings.Contains(out, "pending") {
		t.Fatalf("closes after the refusals: %q", out)
	}
	out, _ := wantCode(t, 0, "card", "close", "--dir", dir, "--card", number, "--reason", "graduated", "--operator", "alice")
	if !strings.Contains(out, "will close") {
		t.Fatalf("card close printed %q", out)
	}
	if out, _ = wantCode(t, 0, "card", "close", "--dir", dir, "--card", number, "--reason", "graduated"); !strings.Contains(out, "already") {
		t.Fatalf("the close again printed %q", out)
	}
	out, _ = wantCode(t, 0, "card", "closes", "--dir", dir, "--state", "pending")
	if !strings.Contains(out, redact.CardNumber(number)) || strings.Contains(out, number) || !strings.Contains(out, "operator alice") || !strings.Contains(out, "张三") {
		t.Fatalf("card closes printed %q; want the card masked, its holder and operator", out)
	}
	wantCode(t, 2, "card", "closes", "--dir", dir, "--state", "gone")
	if out, _ = wantCode(t, 0, "refunds", "due", "--dir", dir, "--json"); strings.TrimSpace(out) != "[]" {
		t.Fatalf("refunds due before any close printed %q", out)
	}
}
