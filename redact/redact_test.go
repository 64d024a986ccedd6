package redact

import "testing"

func TestCardNumber(t *testing.T) {
	for in, want := range map[string]string{
		"3101234567890001": "3101********0001",
		"123456789":        "1234*6789",
		"12345678":         "******78",
		"12":               "**",
		"":                 "",
	} {
		if got := CardNumber(in); got != want {
			t.Errorf("CardNumber(%q) = %q, want %q", in, got, want)
		}
	}
}
