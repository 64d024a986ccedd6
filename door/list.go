package door

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/redact"
)

// List is an access list as the host publishes it and the terminal stores
// it: JSON, with the field names below. Build an [Index] from it to decide.
type List struct {
	// Version identifies this edition of the list (the host's cursor or
	// revision), so logs and the heartbeat can say which list a door runs.
	// Free text; may be empty for a list written by hand.
	Version string `json:"version"`
	// Groups are the named sets of opening hours entries refer to.
	Groups []Group `json:"groups"`
	// Entries are the cards, one entry per card.
	Entries []Entry `json:"entries"`
}

// Group is a set of people who may pass at the same hours, such as the
// residents of one building or the cleaning staff.
type Group struct {
	// Name is how entries and door.groups refer to the group: not empty,
	// unique in the list, no leading or trailing spaces, and not "*" (which
	// door.groups uses for "every group").
	Name string `json:"name"`
	// Windows are the hours the group may pass; at least one. A moment
	// inside any of them is inside the group's hours.
	Windows []Window `json:"windows"`
}

// Window is a weekly time window in the terminal's local time.
//
// A window runs from From (inclusive) to Until (exclusive) on each of Days.
// When Until is before From the window crosses midnight and ends on the next
// day: {"days": ["fri"], "from": "22:00", "until": "06:00"} admits Friday
// 22:00 to Saturday 06:00, and Saturday 03:00 is inside it even though
// Saturday is not listed. A whole day is "00:00" to "24:00".
type Window struct {
	// Days are the days the window starts on: "mon", "tue", "wed", "thu",
	// "fri", "sat", "sun"; at least one, each once.
	Days []string `json:"days"`
	// From is the start, "HH:MM" from "00:00" to "23:59".
	From string `json:"from"`
	// Until is the end, "HH:MM" from "00:00" to "24:00", not equal to From
	// (an empty or a 24-hour window would be ambiguous; write 00:00-24:00).
	Until string `json:"until"`
}

// Entry is one card on the list. Exactly one of Card and UID is set.
type Entry struct {
	// Card is the card number as printed on the card:
	// hostapi.MinCardDigits to hostapi.MaxCardDigits decimal digits (16 on
	// a campus card, 19 on a T-Union card), as hostapi.CheckCardNumber
	// takes it.
	Card string `json:"card,omitempty"`
	// UID is the card's ISO 14443 UID in hex (4, 7 or 10 bytes; either
	// case), for cards with no e-purse application.
	UID string `json:"uid,omitempty"`
	// Groups are the names of the groups the card belongs to; at least one,
	// each defined in List.Groups and named once.
	Groups []string `json:"groups"`
	// ValidFrom and ValidUntil bound the days the card may pass, both
	// inclusive, as "YYYY-MM-DD" in the terminal's local calendar. Empty
	// leaves that side open.
	ValidFrom  string `json:"valid_from,omitempty"`
	ValidUntil string `json:"valid_until,omitempty"`
}

// MaxGroups bounds the groups of a list. Each group a door admits costs the
// index 1.3 KB (a bit per minute of the week), so this keeps a list that
// names a group per room from costing a terminal more than a few MB.
const MaxGroups = 4096

// maxListErrors is how many bad fields Validate reports one by one; a list
// broken everywhere (a wrong file, a host bug) says how many more.
const maxListErrors = 20

// FieldError is one bad field of a list. Its message is one line:
//
//	groups[2].windows[0].from = "25:00": not a clock time (HH:MM from 00:00 to 23:59)
//
// Field is the path in the JSON document, Value the offending value (card
// numbers and UIDs masked with redact.CardNumber, since these errors reach
// logs), Reason what is wrong with it.
type FieldError struct {
	Field  string
	Value  string
	Reason string
}

// Error returns the single-line message.
func (e *FieldError) Error() string {
	return fmt.Sprintf("%s = %q: %s", e.Field, e.Value, e.Reason)
}

// ParseList decodes a list from JSON and validates it. Fields it does not
// know are ignored, so a host may add some before terminals understand them.
func ParseList(data []byte) (*List, error) {
	if string(bytes.TrimSpace(data)) == "null" {
		// json.Unmarshal takes null for "no change" and would leave an
		// empty list, which refuses everyone: a host's bug, not a list.
		return nil, errors.New("door list: decoding JSON: the document is null, not a list")
	}
	var l List
	if err := json.Unmarshal(data, &l); err != nil {
		return nil, fmt.Errorf("door list: decoding JSON: %w", err)
	}
	if err := l.Validate(); err != nil {
		return nil, err
	}
	return &l, nil
}

// Validate checks every field and returns nil or the bad fields as
// [*FieldError]s joined with errors.Join, in document order, prefixed with
// the list's version. At most 20 are listed; the rest are counted.
func (l *List) Validate() error {
	var f fieldErrors
	if len(l.Groups) > MaxGroups {
		f.bad("groups", fmt.Sprintf("%d groups", len(l.Groups)), "at most %d", MaxGroups)
	}
	groups := make(map[string]int, len(l.Groups))
	for i, g := range l.Groups {
		validateGroup(f.bad, i, g, groups)
	}
	ids := entryIDs{cards: make(map[cardNumberKey]int, len(l.Entries)), uids: make(map[uidKey]int)}
	for i, e := range l.Entries {
		at := fmt.Sprintf("entries[%d]", i)
		ids.validate(f.bad, at, i, e)
		validateEntryGroups(f.bad, at, e.Groups, groups)
		validateEntryDates(f.bad, at, e)
	}
	return f.join(l.Version)
}

// fieldErrors collects a list's bad fields: the first maxListErrors of
// them, and how many in all.
type fieldErrors struct {
	errs []error
	n    int
}

// badField records one bad field of a list: its path, its value and why,
// reason being a format for args.
type badField func(field, value, reason string, args ...any)

// bad is fieldErrors' badField.
func (f *fieldErrors) bad(field, value, reason string, args ...any) {
	f.n++
	if len(f.errs) < maxListErrors {
		f.errs = append(f.errs, &FieldError{Field: field, Value: value, Reason: fmt.Sprintf(reason, args...)})
	}
}

// join is Validate's error for the list of that version: nil when no field
// is bad.
func (f *fieldErrors) join(version string) error {
	if f.n == 0 {
		return nil
	}
	errs := f.errs
	if f.n > len(errs) {
		errs = append(errs, fmt.Errorf("and %d more bad fields", f.n-len(errs)))
	}
	return fmt.Errorf("door list %q: %w", version, errors.Join(errs...))
}

// validateGroup checks group g, the i-th of the list, and adds its name to
// groups (name to index) when the name is one entries may refer to.
func validateGroup(bad badField, i int, g Group, groups map[string]int) {
	at := fmt.Sprintf("groups[%d]", i)
	switch first, dup := groups[g.Name]; {
	case g.Name == "":
		bad(at+".name", g.Name, "must not be empty")
	case g.Name == "*":
		bad(at+".name", g.Name, "\"*\" is reserved: door.groups uses it for every group")
	case strings.TrimSpace(g.Name) != g.Name:
		bad(at+".name", g.Name, "must not begin or end with spaces")
	case dup:
		bad(at+".name", g.Name, "repeats groups[%d].name", first)
	default:
		groups[g.Name] = i
	}
	if len(g.Windows) == 0 {
		bad(at+".windows", "", "must list at least one window (for any time: every day from 00:00 until 24:00)")
	}
	for j, w := range g.Windows {
		validateWindow(bad, fmt.Sprintf("%s.windows[%d]", at, j), w)
	}
}

// entryIDs are the card numbers and UIDs of the entries checked so far,
// each with the index of the entry that has it, to find one listed twice.
type entryIDs struct {
	cards map[cardNumberKey]int
	uids  map[uidKey]int
}

// validate checks that entry e, the i-th at path at, has exactly one of a
// card number and a UID, valid and not another entry's, and records it.
func (ids entryIDs) validate(bad badField, at string, i int, e Entry) {
	switch {
	case e.Card == "" && e.UID == "":
		bad(at, "", "needs a card number (card) or a UID (uid)")
	case e.Card != "" && e.UID != "":
		bad(at+".uid", redact.CardNumber(e.UID), "an entry is either a card number or a UID, not both: make two entries")
	case e.Card != "":
		k, err := cardKey(e.Card)
		var notNumber *hostapi.CardIDError
		if errors.As(err, &notNumber) {
			bad(at+".card", redact.CardNumber(e.Card), "not a card number: %s", notNumber.Reason)
		} else if first, dup := ids.cards[k]; dup {
			bad(at+".card", redact.CardNumber(e.Card), "repeats entries[%d].card", first)
		} else {
			ids.cards[k] = i
		}
	default:
		k, ok := parseUID(e.UID)
		if !ok {
			bad(at+".uid", redact.CardNumber(e.UID), "not a UID (4, 7 or 10 bytes in hex)")
		} else if first, dup := ids.uids[k]; dup {
			bad(at+".uid", redact.CardNumber(e.UID), "repeats entries[%d].uid", first)
		} else {
			ids.uids[k] = i
		}
	}
}

// validateEntryGroups checks an entry's group names: at least one, each
// one of groups, each once.
func validateEntryGroups(bad badField, at string, names []string, groups map[string]int) {
	if len(names) == 0 {
		bad(at+".groups", "", "must name at least one group")
	}
	for j, name := range names {
		if _, ok := groups[name]; !ok {
			bad(fmt.Sprintf("%s.groups[%d]", at, j), name, "no such group in groups")
		} else if k := indexOf(names[:j], name); k >= 0 {
			bad(fmt.Sprintf("%s.groups[%d]", at, j), name, "repeats %s.groups[%d]", at, k)
		}
	}
}

// validateEntryDates checks an entry's validity dates: each a date or
// empty, and not ending before they begin.
func validateEntryDates(bad badField, at string, e Entry) {
	from, okFrom := parseDate(e.ValidFrom)
	if !okFrom {
		bad(at+".valid_from", e.ValidFrom, "not a date (YYYY-MM-DD)")
	}
	until, okUntil := parseDate(e.ValidUntil)
	if !okUntil {
		bad(at+".valid_until", e.ValidUntil, "not a date (YYYY-MM-DD)")
	}
	if okFrom && okUntil && e.ValidFrom != "" && e.ValidUntil != "" && until < from {
		bad(at+".valid_until", e.ValidUntil, "is before valid_from %s", e.ValidFrom)
	}
}

func validateWindow(bad badField, at string, w Window) {
	if len(w.Days) == 0 {
		bad(at+".days", "", "must list at least one day (mon, tue, wed, thu, fri, sat, sun)")
	}
	for k, d := range w.Days {
		if _, ok := weekdays[d]; !ok {
			bad(fmt.Sprintf("%s.days[%d]", at, k), d, "not a day: one of mon, tue, wed, thu, fri, sat, sun")
		} else if first := indexOf(w.Days[:k], d); first >= 0 {
			bad(fmt.Sprintf("%s.days[%d]", at, k), d, "repeats %s.days[%d]", at, first)
		}
	}
	from, okFrom := parseClock(w.From, false)
	if !okFrom {
		bad(at+".from", w.From, "not a clock time (HH:MM from 00:00 to 23:59)")
	}
	until, okUntil := parseClock(w.Until, true)
	if !okUntil {
		bad(at+".until", w.Until, "not a clock time (HH:MM from 00:00 to 24:00)")
	}
	if okFrom && okUntil && from == until {
		bad(at+".until", w.Until, "equals from: for the whole day write from 00:00 until 24:00")
	}
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

// weekdays maps the day names of a window to Go's weekdays.
var weekdays = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

var dayNames = [7]string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

const (
	minutesPerDay  = 24 * 60
	minutesPerWeek = 7 * minutesPerDay
)

// parseClock reads "HH:MM" as minutes after midnight. "24:00" (the end of
// the day, 1440) is accepted only when end is set.
func parseClock(s string, end bool) (int, bool) {
	if len(s) != 5 || s[2] != ':' {
		return 0, false
	}
	for _, i := range []int{0, 1, 3, 4} {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	h := int(s[0]-'0')*10 + int(s[1]-'0')
	m := int(s[3]-'0')*10 + int(s[4]-'0')
	switch {
	case m > 59:
		return 0, false
	case h == 24 && m == 0 && end:
		return minutesPerDay, true
	case h > 23:
		return 0, false
	}
	return h*60 + m, true
}

// parseDate reads "YYYY-MM-DD" as the number YYYYMMDD, which orders as the
// dates do. The empty string is valid and reads as 0.
func parseDate(s string) (int32, bool) {
	if s == "" {
		return 0, true
	}
	t, err := time.Parse(time.DateOnly, s)
	if err != nil || t.Format(time.DateOnly) != s {
		return 0, false
	}
	return dateNumber(t.Date()), true
}

func dateNumber(y int, m time.Month, d int) int32 {
	return int32(y*10000 + int(m)*100 + d)
}

// cardNumberKey is a card number as an index key: its digits as two
// integers, the last 10 and those before, the count of digits in the top
// byte, so that "00012345" and "000123450" stay different numbers and a
// key is 16 bytes with no pointer for the collector to follow.
type cardNumberKey [2]uint64

// cardKey packs a card number that hostapi.CheckCardNumber takes, or
// returns its error.
func cardKey(s string) (cardNumberKey, error) {
	var k cardNumberKey
	if err := hostapi.CheckCardNumber(s); err != nil {
		return k, err
	}
	for i := 0; i < len(s); i++ {
		half := 1 // at most 10 digits each: below 2^34
		if i < len(s)-10 {
			half = 0
		}
		k[half] = k[half]*10 + uint64(s[i]-'0')
	}
	k[0] |= uint64(len(s)) << 56
	return k, nil
}

// uidKey is a UID as an index key: its length and its bytes.
type uidKey struct {
	n byte
	b [10]byte
}

// parseUID reads a UID of 4, 7 or 10 bytes (ISO 14443-3 single, double and
// triple size) in hex of either case, without allocating.
func parseUID(s string) (uidKey, bool) {
	var k uidKey
	n := len(s) / 2
	if len(s)%2 != 0 || n != 4 && n != 7 && n != 10 {
		return k, false
	}
	for i := 0; i < n; i++ {
		hi, ok1 := unhex(s[2*i])
		lo, ok2 := unhex(s[2*i+1])
		if !ok1 || !ok2 {
			return k, false
		}
		k.b[i] = hi<<4 | lo
	}
	k.n = byte(n)
	return k, true
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// String returns the UID in upper-case hex, the form deny-list keys take.
func (k uidKey) String() string { return fmt.Sprintf("%X", k.b[:k.n]) }
