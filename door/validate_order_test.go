package door

import (
	"errors"
	"strings"
	"testing"
)

// TestValidateDocumentOrder pins the whole message of a list with several
// bad fields in each group and entry: every bad field, in document order
// (a group's name, then its windows' days, from and until; an entry's
// identity, groups and dates), and a group whose name is refused is not
// one entries can name.
func TestValidateDocumentOrder(t *testing.T) {
	l := &List{
		Version: "7",
		Groups: []Group{
			{Name: " a", Windows: []Window{{Days: []string{"mon", "Tue", "mon"}, From: "25:00", Until: "24:30"}, {From: "10:00", Until: "10:00"}}},
			{Name: "b"},
			{Name: "b", Windows: []Window{{Days: []string{"sun"}, From: "00:00", Until: "24:00"}}},
		},
		Entries: []Entry{
			{Card: "3101000000000001", UID: "01020304", Groups: []string{" a", "b", "b"}, ValidFrom: "2026-02-30", ValidUntil: "2026-1-1"},
			{Card: "3101x", ValidFrom: "2026-09-01", ValidUntil: "2026-08-31"},
			{},
			{UID: "0102030405", Groups: []string{"b"}},
			{UID: "01020304", Groups: []string{"b"}},
			{UID: "01020304", Groups: []string{"b"}},
			{Card: "3101000000000002", Groups: []string{"b"}},
			{Card: "3101000000000002", Groups: []string{"b"}},
		},
	}
	want := []string{
		`groups[0].name = " a": must not begin or end with spaces`,
		`groups[0].windows[0].days[1] = "Tue": not a day: one of mon, tue, wed, thu, fri, sat, sun`,
		`groups[0].windows[0].days[2] = "mon": repeats groups[0].windows[0].days[0]`,
		`groups[0].windows[0].from = "25:00": not a clock time (HH:MM from 00:00 to 23:59)`,
		`groups[0].windows[0].until = "24:30": not a clock time (HH:MM from 00:00 to 24:00)`,
		`groups[0].windows[1].days = "": must list at least one day (mon, tue, wed, thu, fri, sat, sun)`,
		`groups[0].windows[1].until = "10:00": equals from: for the whole day write from 00:00 until 24:00`,
		`groups[1].windows = "": must list at least one window (for any time: every day from 00:00 until 24:00)`,
		`groups[2].name = "b": repeats groups[1].name`,
		`entries[0].uid = "******04": an entry is either a card number or a UID, not both: make two entries`,
		`entries[0].groups[0] = " a": no such group in groups`,
		`entries[0].groups[2] = "b": repeats entries[0].groups[1]`,
		`entries[0].valid_from = "2026-02-30": not a date (YYYY-MM-DD)`,
		`entries[0].valid_until = "2026-1-1": not a date (YYYY-MM-DD)`,
		`entries[1].card = "***1x": not a card number: 'x' at byte 4 is not a decimal digit 0-9; want 8 to 20 decimal digits 0-9`,
		`entries[1].groups = "": must name at least one group`,
		`entries[1].valid_until = "2026-08-31": is before valid_from 2026-09-01`,
		`entries[2] = "": needs a card number (card) or a UID (uid)`,
		`entries[2].groups = "": must name at least one group`,
		`entries[3].uid = "0102**0405": not a UID (4, 7 or 10 bytes in hex)`,
		`and 2 more bad fields`,
	}
	err := l.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	if got := err.Error(); got != `door list "7": `+strings.Join(want, "\n") {
		t.Errorf("error:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
	// Past the first 20, the rest are counted: entries[5].uid and
	// entries[7].card repeat earlier ones.
	l.Groups = l.Groups[1:]
	l.Groups[0].Windows = l.Groups[1].Windows
	l.Entries = l.Entries[3:]
	var fe *FieldError
	if err := l.Validate(); !errors.As(err, &fe) || err.Error() != `door list "7": groups[1].name = "b": repeats groups[0].name
entries[0].uid = "0102**0405": not a UID (4, 7 or 10 bytes in hex)
entries[2].uid = "******04": repeats entries[1].uid
entries[4].card = "3101********0002": repeats entries[3].card` {
		t.Errorf("error:\n%v", err)
	}
}
