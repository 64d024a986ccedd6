package hostapi

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

func TestCheckCardID(t *testing.T) {
	good := []string{"3101000000123456", "3104990600000000006", "12345678", "12345678901234567890",
		"uid:04A1B2C3", "uid:04A1B2C3D4E5F6", "uid:04A1B2C3D4E5F6071829"}
	bad := []string{"", "1234567", "123456789012345678901", "310100000012345X", "uid:", "uid:04a1b2c3",
		"uid:04A1B2", "uid:04A1B2C3D4", "uid:04A1B2C3G0", "UID:04A1B2C3", "uid: 04A1B2C3", "04A1B2C3"}
	for _, id := range good {
		if err := CheckCardID(id); err != nil {
			t.Errorf("CheckCardID(%q) = %v, want nil", id, err)
		}
	}
	for _, id := range bad {
		if err := CheckCardID(id); err == nil {
			t.Errorf("CheckCardID(%q) = nil, want an error", id)
		}
	}
	if got := UIDCard([]byte{0x04, 0xa1, 0xb2, 0xc3}); got != "uid:04A1B2C3" || CheckCardID(got) != nil {
		t.Errorf("UIDCard = %q", got)
	}
}

// TestCheckCardNumberRefuses: a number is 8 to 20 ASCII digits and is
// taken as written. Each near miss an attacker or a sloppy import could
// send (spaces around it, a sign, digits of another script that
// unicode.IsDigit or strconv would accept, a zero-width space) is refused,
// never normalised, with a reason that says what is wrong.
func TestCheckCardNumberRefuses(t *testing.T) {
	const t19 = "3104990600000000006"
	for n, reason := range map[string]string{
		"1234567":               "7 digits; want 8 to 20",
		"123456789012345678901": "21 digits; want 8 to 20",
		"":                      "empty",
		" " + t19:               `' ' at byte 0 is not a decimal digit`,
		t19 + " ":               `' ' at byte 19 is not a decimal digit`,
		t19 + "\n":              `'\n' at byte 19`,
		"+" + t19:               `'+' at byte 0`,
		"-12345678":             `'-' at byte 0`,
		"3104\u06609906":        `'\u0660' at byte 4`, // Arabic-Indic zero
		"\u0663\u0661\u0660\u0664\u0669\u0669\u0660\u0666": `'\u0663' at byte 0`,
		"3104\uff1099060":         `'\uff10' at byte 4`, // full-width zero
		"3104\u200b990600000":     `'\u200b' at byte 4`, // zero-width space
		"3104 9906 0000 0000 006": `' ' at byte 4`,
		"1e10":                    `'e' at byte 1`,
		"0x3104990600":            `'x' at byte 1`,
	} {
		err := CheckCardNumber(n)
		var ce *CardIDError
		if !errors.As(err, &ce) || ce.ID != n || !strings.Contains(ce.Reason, reason) || !strings.Contains(ce.Reason, "want 8 to 20 decimal digits 0-9") {
			t.Errorf("CheckCardNumber(%+q) = %v, want a *CardIDError with %q", n, err, reason)
			continue
		}
		if strings.Contains(ce.Reason, n) && n != "" {
			t.Errorf("reason %q repeats the number: callers mask it themselves", ce.Reason)
		}
		// The id too: it is the check every host endpoint runs.
		if err := CheckCardID(n); err == nil || !strings.Contains(err.Error(), reason) {
			t.Errorf("CheckCardID(%+q) = %v, want the same reason", n, err)
		}
	}
	// The message names the value, escaped so that no byte of it reaches a
	// terminal or a log line raw.
	if err := CheckCardNumber("3104\u0660\n"); err == nil || !strings.Contains(err.Error(), `"3104\u0660\n"`) {
		t.Errorf("error %v does not name the value escaped", err)
	}
	if err := CheckCardNumber("uid:04A1B2C3"); err == nil {
		t.Error("CheckCardNumber takes a UID, want numbers only")
	}
}

// FuzzCheckCardNumber: whatever the input, CheckCardNumber takes exactly
// the strings of 8 to 20 ASCII digits, and names every other with a
// reason; CheckCardID agrees on everything that is not a UID.
func FuzzCheckCardNumber(f *testing.F) {
	for _, s := range []string{"3104990600000000006", "1234567", "123456789012345678901", " 31049906", "+31049906",
		"٣١٠٤٩٩٠٦", "３１０４９９０６", "3104\u200b9906", "\xff\xfe12345678", "uid:04A1B2C3", ""} {
		f.Add(s)
	}
	number := regexp.MustCompile(`^[0-9]{8,20}$`)
	f.Fuzz(func(t *testing.T, s string) {
		err := CheckCardNumber(s)
		var ce *CardIDError
		switch {
		case number.MatchString(s) != (err == nil):
			t.Fatalf("CheckCardNumber(%+q) = %v", s, err)
		case err != nil && (!errors.As(err, &ce) || ce.ID != s || ce.Reason == ""):
			t.Fatalf("CheckCardNumber(%+q) = %#v, want a *CardIDError with a reason", s, err)
		case !strings.HasPrefix(s, UIDCardPrefix) && (CheckCardID(s) == nil) != (err == nil):
			t.Fatalf("CheckCardID(%+q) and CheckCardNumber disagree", s)
		}
	})
}
