package door

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"
)

// Seed corpora live in testdata/fuzz/<FuzzName>/.

// FuzzParseList: decoding and validating any bytes never panics; a list
// that validates encodes and decodes to itself, compiles for any door, and
// decides for each of its entries, at any time, as a direct reading of the
// list does (never unknown_card: the entry is on the list).
func FuzzParseList(f *testing.F) {
	times := []time.Time{
		at(shanghai, "sat", "23:45"), at(shanghai, "sun", "00:00"), at(shanghai, "mon", "07:59"),
		at(time.UTC, "wed", "12:00"), at(time.UTC, "fri", "22:00"), at(time.FixedZone("", -10*3600), "tue", "05:30"),
		time.Date(2026, 9, 1, 0, 0, 0, 0, shanghai), time.Date(2027, 7, 31, 23, 59, 0, 0, shanghai),
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := ParseList(data)
		if err != nil {
			if l != nil || err.Error() == "" {
				t.Fatalf("ParseList = %v, %q", l, err)
			}
			var fe *FieldError
			if errors.As(err, &fe) && fe.Field == "" {
				t.Fatalf("a FieldError without a field: %v", err)
			}
			return
		}
		out, err := json.Marshal(l)
		if err != nil {
			t.Fatalf("Marshal of a valid list: %v", err)
		}
		back, err := ParseList(out)
		if err != nil {
			t.Fatalf("a valid list encoded does not parse: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(back, l) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", back, l)
		}

		doors := [][]string{{"*"}, nil}
		if len(l.Groups) > 0 {
			doors = append(doors, []string{l.Groups[len(l.Groups)-1].Name, "not-in-the-list"})
		}
		for _, admit := range doors {
			ix, err := NewIndex(l, admit)
			if err != nil {
				t.Fatalf("NewIndex(%q) of a valid list: %v", admit, err)
			}
			for i, e := range l.Entries[:min(len(l.Entries), 64)] {
				id := Identity{Number: e.Card, UID: e.UID}
				moments := times
				if e.ValidFrom != "" || e.ValidUntil != "" {
					moments = slices.Clone(times)
					for _, s := range []string{e.ValidFrom, e.ValidUntil} {
						if d, err := time.ParseInLocation(time.DateOnly, s, shanghai); err == nil {
							moments = append(moments, d, d.Add(24*time.Hour-time.Minute), d.Add(-time.Minute))
						}
					}
				}
				for _, now := range moments {
					d := Decide(ix, nil, id, now)
					want := referenceDecide(l, admit, e, now)
					if d.Reason != want || d.Allowed != (d.Reason == ReasonAllowed) || d.Text == "" ||
						d.Allowed != (d.Group != "") {
						t.Fatalf("entries[%d] %+v at %v, door %q: %+v, want %s", i, e, now, admit, d, want)
					}
					if denied := Decide(ix, func(string) (bool, string) { return true, "" }, id, now); denied.Reason != ReasonDenyListed {
						t.Fatalf("entries[%d] denied: %+v", i, denied)
					}
				}
			}
		}
	})
}

// referenceDecide reads the list directly for entry e: dates as strings
// (YYYY-MM-DD orders as text), groups by name, windows through inside.
func referenceDecide(l *List, admit []string, e Entry, now time.Time) Reason {
	today := now.Format(time.DateOnly)
	switch {
	case e.ValidFrom != "" && today < e.ValidFrom:
		return ReasonNotYetValid
	case e.ValidUntil != "" && today > e.ValidUntil:
		return ReasonExpired
	}
	admitted := false
	for _, name := range e.Groups {
		if !slices.Contains(admit, "*") && !slices.Contains(admit, name) {
			continue
		}
		admitted = true
		for _, g := range l.Groups {
			if g.Name == name && inside(g.Windows, now) {
				return ReasonAllowed
			}
		}
	}
	if !admitted {
		return ReasonGroupNotAllowed
	}
	return ReasonOutsideHours
}
