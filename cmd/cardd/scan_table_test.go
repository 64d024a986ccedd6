package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/cardd/cardd/apdu/epurse"
	"github.com/cardd/cardd/tap"
)

// TestScanTableShowsNoCardControlCharacters: a card's cardholder name is
// the card's to write, and GBK passes ESC and CR through. Written raw to the
// operator's terminal, "\x1b[2A\x1b[K" moves the cursor up and clears the
// balance line for text the card chose. The table shows such characters as
// '?'.
func TestScanTableShowsNoCardControlCharacters(t *testing.T) {
	cr := &tap.CardRead{Profile: epurse.ProfileCampus, Purse: epurse.PurseEP, Balance: 100,
		Holder: &epurse.Holder{Name: "\x1b[2A\x1b[KBalance 9\r"}}
	cr.Info.CardNumber = "3101000087653456"
	var b bytes.Buffer
	if err := writeScanTable(&b, toScanOutput(tap.Result{Read: cr}, false)); err != nil {
		t.Fatal(err)
	}
	if i := bytes.IndexFunc(b.Bytes(), func(r rune) bool { return r < 0x20 && r != '\n' || r == 0x7F }); i >= 0 {
		t.Fatalf("control character %q in the table:\n%q", b.Bytes()[i], b.String())
	}
	if !strings.Contains(b.String(), "?[2A?[KBalance 9?") {
		t.Errorf("holder line not shown with '?':\n%s", b.String())
	}
}
