package door

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
)

// TestListJSONRoundTrip: a list survives encoding and decoding unchanged,
// with the field names of the documented shape.
func TestListJSONRoundTrip(t *testing.T) {
	l := fixture()
	data, err := json.Marshal(l)
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{`"version":"42"`, `"groups":[`, `"name":"night"`, `"windows":[`, `"days":["fri","sat"]`,
		`"from":"22:00"`, `"until":"06:00"`, `"entries":[`, `"card":"3101000000000001"`, `"uid":"04a1b2c3d4e5f6"`,
		`"valid_from":"2026-09-01"`, `"valid_until":"2027-07-31"`} {
		if !strings.Contains(string(data), field) {
			t.Errorf("JSON lacks %s:\n%s", field, data)
		}
	}
	if strings.Contains(string(data), `"uid":""`) || strings.Contains(string(data), `"valid_from":""`) {
		t.Errorf("empty optional fields are written:\n%s", data)
	}
	back, err := ParseList(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, l) {
		t.Errorf("round trip:\n got %+v\nwant %+v", back, l)
	}
}

// TestParseListDocumented: the example in the package documentation and
// the report parses and decides.
func TestParseListDocumented(t *testing.T) {
	data, err := os.ReadFile("testdata/list.json")
	if err != nil {
		t.Fatal(err)
	}
	l, err := ParseList(data)
	if err != nil {
		t.Fatal(err)
	}
	ix := mustIndex(t, l, []string{"cleaners"})
	// Sunday 22:00-06:00: Monday 05:00 is inside, Monday 06:00 is not until 07:00.
	if d := Decide(ix, nil, Identity{UID: "04a1b2c3d4e5f6"}, at(shanghai, "mon", "05:00")); !d.Allowed {
		t.Errorf("cleaner Monday 05:00: %+v", d)
	}
	if d := Decide(ix, nil, Identity{UID: "04A1B2C3D4E5F6"}, at(shanghai, "mon", "06:30")); d.Reason != ReasonOutsideHours {
		t.Errorf("cleaner Monday 06:30: %+v", d)
	}
	if d := Decide(ix, nil, Identity{Number: "3101000000800000"}, at(shanghai, "mon", "12:00")); d.Reason != ReasonGroupNotAllowed {
		t.Errorf("resident at the cleaners' door: %+v", d)
	}
}

func TestParseListBadJSON(t *testing.T) {
	for _, in := range []string{``, `[]`, `{"groups": {}}`, `{"entries": [{"card": 3101}]}`, `{"version": "1"`} {
		if _, err := ParseList([]byte(in)); err == nil || !strings.HasPrefix(err.Error(), "door list: decoding JSON: ") {
			t.Errorf("ParseList(%s) = %v", in, err)
		}
	}
	// Fields a newer host adds are ignored.
	if _, err := ParseList([]byte(`{"version": "1", "signature": "x", "groups": [], "entries": []}`)); err != nil {
		t.Errorf("unknown field: %v", err)
	}
}

// TestValidate: each broken field is named, with its value and the reason.
func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(l *List)
		want   string
	}{
		{"hour 25", func(l *List) { l.Groups[2].Windows[0].From = "25:00" },
			`groups[2].windows[0].from = "25:00": not a clock time (HH:MM from 00:00 to 23:59)`},
		{"from 24:00", func(l *List) { l.Groups[1].Windows[0].From = "24:00" },
			`groups[1].windows[0].from = "24:00": not a clock time`},
		{"minute 60", func(l *List) { l.Groups[1].Windows[0].Until = "17:60" },
			`groups[1].windows[0].until = "17:60": not a clock time (HH:MM from 00:00 to 24:00)`},
		{"one-digit hour", func(l *List) { l.Groups[1].Windows[0].From = "8:00" },
			`groups[1].windows[0].from = "8:00": not a clock time`},
		{"until 24:30", func(l *List) { l.Groups[1].Windows[0].Until = "24:30" },
			`groups[1].windows[0].until = "24:30": not a clock time`},
		{"empty window", func(l *List) { l.Groups[1].Windows[0].Until = "08:00" },
			`groups[1].windows[0].until = "08:00": equals from`},
		{"bad day", func(l *List) { l.Groups[4].Windows[1].Days = []string{"sat", "Sun"} },
			`groups[4].windows[1].days[1] = "Sun": not a day: one of mon, tue, wed, thu, fri, sat, sun`},
		{"repeated day", func(l *List) { l.Groups[2].Windows[0].Days = []string{"fri", "sat", "fri"} },
			`groups[2].windows[0].days[2] = "fri": repeats groups[2].windows[0].days[0]`},
		{"no days", func(l *List) { l.Groups[2].Windows[0].Days = nil },
			`groups[2].windows[0].days = "": must list at least one day`},
		{"no windows", func(l *List) { l.Groups[3].Windows = nil },
			`groups[3].windows = "": must list at least one window`},
		{"no group name", func(l *List) { l.Groups[3].Name = "" }, `groups[3].name = "": must not be empty`},
		{"group *", func(l *List) { l.Groups[3].Name = "*" }, `groups[3].name = "*": "*" is reserved`},
		{"group name spaces", func(l *List) { l.Groups[3].Name = "block b " }, `groups[3].name = "block b ": must not begin or end with spaces`},
		{"repeated group", func(l *List) { l.Groups[3].Name = "night" }, `groups[3].name = "night": repeats groups[2].name`},
		{"unknown group", func(l *List) { l.Entries[1].Groups = []string{"day-staf"} },
			`entries[1].groups[0] = "day-staf": no such group in groups`},
		{"repeated group in entry", func(l *List) { l.Entries[1].Groups = []string{"night", "day-staff", "night"} },
			`entries[1].groups[2] = "night": repeats entries[1].groups[0]`},
		{"no groups", func(l *List) { l.Entries[1].Groups = nil }, `entries[1].groups = "": must name at least one group`},
		{"no identity", func(l *List) { l.Entries[2].Card = "" }, `entries[2] = "": needs a card number (card) or a UID (uid)`},
		{"both identities", func(l *List) { l.Entries[2].UID = "01020304" },
			`entries[2].uid = "******04": an entry is either a card number or a UID, not both`},
		{"card not digits", func(l *List) { l.Entries[2].Card = "31010000000000AB" },
			`entries[2].card = "3101********00AB": not a card number: 'A' at byte 14 is not a decimal digit 0-9; want 8 to 20 decimal digits 0-9`},
		{"card 7 digits", func(l *List) { l.Entries[2].Card = "3101000" },
			`entries[2].card = "*****00": not a card number: 7 digits; want 8 to 20 decimal digits 0-9`},
		{"card 21 digits", func(l *List) { l.Entries[2].Card = "310499060000000000061" },
			`entries[2].card = "3104*************0061": not a card number: 21 digits; want 8 to 20`},
		{"card with a leading space", func(l *List) { l.Entries[2].Card = " 3104990600000000006" },
			`entries[2].card = " 310************0006": not a card number: ' ' at byte 0 is not a decimal digit`},
		{"card with a trailing space", func(l *List) { l.Entries[2].Card = "3104990600000000006 " },
			`not a card number: ' ' at byte 19 is not a decimal digit`},
		{"card with a sign", func(l *List) { l.Entries[2].Card = "+3104990600000000006" },
			`not a card number: '+' at byte 0 is not a decimal digit`},
		{"card in Arabic-Indic digits", func(l *List) { l.Entries[2].Card = "٣١٠١٠٠٠١" },
			`not a card number: '\u0663' at byte 0 is not a decimal digit`},
		{"card 19 digits and its 20-digit zero-padded form, both listed", func(l *List) {
			l.Entries[2].Card, l.Entries[3].Card = "3104990600000000006", "31049906000000000060"
			l.Entries[4].Card = "3104990600000000006"
		}, `entries[4].card = "3104***********0006": repeats entries[2].card`},
		{"repeated card", func(l *List) { l.Entries[2].Card = cardResident },
			`entries[2].card = "3101********0001": repeats entries[0].card`},
		{"UID odd length", func(l *List) { l.Entries[7].UID = "DEADBEE" }, `entries[7].uid = "*****EE": not a UID (4, 7 or 10 bytes in hex)`},
		{"UID 5 bytes", func(l *List) { l.Entries[7].UID = "DEADBEEF00" }, `entries[7].uid = "DEAD**EF00": not a UID`},
		{"UID not hex", func(l *List) { l.Entries[7].UID = "DEADBEEG" }, `entries[7].uid = "******EG": not a UID`},
		{"repeated UID, other case", func(l *List) { l.Entries[7].UID = "04a1b2c3d4e5f6"; l.Entries[9].UID = "04A1B2C3D4E5F6" },
			`entries[9].uid = "04A1******E5F6": repeats entries[7].uid`},
		{"bad from date", func(l *List) { l.Entries[0].ValidFrom = "2026-9-1" }, `entries[0].valid_from = "2026-9-1": not a date (YYYY-MM-DD)`},
		{"bad until date", func(l *List) { l.Entries[0].ValidUntil = "2027-02-30" }, `entries[0].valid_until = "2027-02-30": not a date`},
		{"until before from", func(l *List) { l.Entries[0].ValidUntil = "2026-08-31" },
			`entries[0].valid_until = "2026-08-31": is before valid_from 2026-09-01`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := fixture()
			tc.mutate(l)
			err := l.Validate()
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error:\n%v\nwant it to contain:\n%s", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), `door list "42": `) {
				t.Errorf("error %q does not name the list", err)
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Errorf("no *FieldError in %v", err)
			}
			if strings.Contains(err.Error(), cardResident) {
				t.Errorf("error shows a full card number: %v", err)
			}
		})
	}
	if err := fixture().Validate(); err != nil {
		t.Errorf("fixture: %v", err)
	}
	if err := (&List{}).Validate(); err != nil {
		t.Errorf("empty list: %v", err)
	}
}

// TestValidateMany: a list broken everywhere lists the first 20 fields and
// counts the others.
func TestValidateMany(t *testing.T) {
	l := fixture()
	for i := range 30 {
		l.Entries = append(l.Entries, Entry{Card: fmt.Sprintf("x%d", i), Groups: []string{"residents"}})
	}
	err := l.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	if n := strings.Count(err.Error(), "not a card number"); n != 20 {
		t.Errorf("%d fields listed, want 20:\n%v", n, err)
	}
	if !strings.HasSuffix(err.Error(), "and 10 more bad fields") {
		t.Errorf("error does not count the rest:\n%v", err)
	}
}

func TestValidateTooManyGroups(t *testing.T) {
	l := &List{}
	for i := range MaxGroups + 1 {
		l.Groups = append(l.Groups, Group{Name: fmt.Sprint(i), Windows: []Window{{Days: allDays, From: "00:00", Until: "24:00"}}})
	}
	if err := l.Validate(); err == nil || !strings.Contains(err.Error(), `groups = "4097 groups": at most 4096`) {
		t.Errorf("error %v", err)
	}
}
