package redact

import "testing"

func TestCardNumber(t *testing.T) {
	for in, want := range map[string]string{
		"3101234567890001": "3101********0001",
		// T-Union's 19 digits and the longest number, 20.
		"3104990600000000006":  "3104***********0006",
		"31049906000000000060": "3104************0060",
		"123456789":            "1234*6789",
		"12345678":             "******78",
		"12":                   "**",
		"":                     "",
	} {
		if got := CardNumber(in); got != want {
			t.Errorf("CardNumber(%q) = %q, want %q", in, got, want)
		}
	}
}
