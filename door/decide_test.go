package door

import (
	"bytes"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

var allDays = []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}

// Cards of the fixture.
const (
	cardResident  = "3101000000000001"     // residents, 2026-09-01 .. 2027-07-31
	cardStaff     = "3101000000000002"     // day-staff
	cardNight     = "3101000000000003"     // night (fri and sat 22:00-06:00)
	cardElsewhere = "3101000000000004"     // other-block only: not admitted here
	cardTwo       = "3101000000000005"     // day-staff and other-block
	cardLost      = "3101000000000006"     // residents, but on the deny list
	cardBoth      = "3101000000000007"     // listed by number (residents) and by its UID (day-staff)
	cardShort     = "31010001"             // the shortest number, 8 digits, that the card pads with F
	cardTUnion    = "3104990600000000006"  // a T-Union card's 19 digits: residents
	cardLong      = "31049906000000000060" // 20 digits, cardTUnion and a 0: day-staff
	uidGuest      = "04A1B2C3D4E5F6"       // a UID-only card: guests
	uidBoth       = "DEADBEEF"             // cardBoth's UID
	uidLost       = "0A0B0C0D"             // a UID on the deny list
)

func fixture() *List {
	return &List{
		Version: "42",
		Groups: []Group{
			{Name: "residents", Windows: []Window{{Days: allDays, From: "00:00", Until: "24:00"}}},
			{Name: "day-staff", Windows: []Window{
				{Days: []string{"mon", "tue", "wed", "thu", "fri"}, From: "08:00", Until: "18:00"}}},
			{Name: "night", Windows: []Window{{Days: []string{"fri", "sat"}, From: "22:00", Until: "06:00"}}},
			{Name: "other-block", Windows: []Window{{Days: allDays, From: "00:00", Until: "24:00"}}},
			{Name: "guests", Windows: []Window{
				{Days: []string{"sat", "sun"}, From: "10:00", Until: "12:00"},
				{Days: []string{"sat", "sun"}, From: "14:00", Until: "16:00"}}},
		},
		Entries: []Entry{
			{Card: cardResident, Groups: []string{"residents"}, ValidFrom: "2026-09-01", ValidUntil: "2027-07-31"},
			{Card: cardStaff, Groups: []string{"day-staff"}},
			{Card: cardNight, Groups: []string{"night"}},
			{Card: cardElsewhere, Groups: []string{"other-block"}},
			{Card: cardTwo, Groups: []string{"other-block", "day-staff"}},
			{Card: cardLost, Groups: []string{"residents"}},
			{Card: cardBoth, Groups: []string{"residents"}},
			{UID: uidBoth, Groups: []string{"day-staff"}},
			{Card: cardShort, Groups: []string{"residents"}},
			{UID: strings.ToLower(uidGuest), Groups: []string{"guests"}},
			{Card: cardTUnion, Groups: []string{"residents"}},
			{Card: cardLong, Groups: []string{"day-staff"}},
		},
	}
}

// admitted is this door's door.groups in the fixture: not other-block.
var admitted = []string{"residents", "day-staff", "night", "guests"}

func denyList(cards ...string) DenyFunc {
	m := map[string]string{}
	for _, c := range cards {
		m[c] = "lost"
	}
	return func(card string) (bool, string) {
		why, ok := m[card]
		return ok, why
	}
}

func mustIndex(t testing.TB, l *List, admit []string) *Index {
	t.Helper()
	ix, err := NewIndex(l, admit)
	if err != nil {
		t.Fatal(err)
	}
	return ix
}

// at is a moment in the week of Friday 2026-11-20 (Mon 2026-11-23 follows),
// on the wall clock of loc.
func at(loc *time.Location, day, hhmm string) time.Time {
	dates := map[string]int{"fri": 20, "sat": 21, "sun": 22, "mon": 23, "tue": 24, "wed": 25, "thu": 26}
	t, err := time.ParseInLocation("2006-01-02 15:04", fmt.Sprintf("2026-11-%02d %s", dates[day], hhmm), loc)
	if err != nil {
		panic(err)
	}
	return t
}

var shanghai = time.FixedZone("CST", 8*3600)

func TestDecide(t *testing.T) {
	ix := mustIndex(t, fixture(), admitted)
	deny := denyList(cardLost, "uid:"+uidLost)
	byNumber := func(n string) Identity { return Identity{Number: n, UID: "11223344"} }
	tests := []struct {
		name  string
		id    Identity
		now   time.Time
		want  Reason
		card  string // Decision.Card
		group string // Decision.Group
	}{
		{"resident at night", byNumber(cardResident), at(shanghai, "sun", "03:00"), ReasonAllowed, cardResident, "residents"},
		{"resident, number only", Identity{Number: cardResident}, at(shanghai, "mon", "12:00"), ReasonAllowed, cardResident, "residents"},
		{"unknown number", byNumber("3101999999999999"), at(shanghai, "mon", "12:00"), ReasonUnknownCard, "3101999999999999", ""},
		{"unknown UID-only card", Identity{UID: "01020304"}, at(shanghai, "mon", "12:00"), ReasonUnknownCard, "01020304", ""},
		{"no identity", Identity{}, at(shanghai, "mon", "12:00"), ReasonUnknownCard, "", ""},
		{"deny list on a listed card", byNumber(cardLost), at(shanghai, "mon", "12:00"), ReasonDenyListed, cardLost, ""},
		{"deny list by UID on an unlisted card", Identity{Number: "3101999999999998", UID: uidLost}, at(shanghai, "mon", "12:00"), ReasonDenyListed, uidLost, ""},
		{"deny list by UID wins over the number", Identity{Number: cardResident, UID: strings.ToLower(uidLost)}, at(shanghai, "mon", "12:00"), ReasonDenyListed, uidLost, ""},
		{"deny list wins over expiry", Identity{Number: cardResident, UID: uidLost}, time.Date(2030, 1, 1, 12, 0, 0, 0, shanghai), ReasonDenyListed, uidLost, ""},
		{"not yet valid", byNumber(cardResident), time.Date(2026, 8, 31, 23, 59, 0, 0, shanghai), ReasonNotYetValid, cardResident, ""},
		{"first valid day", byNumber(cardResident), time.Date(2026, 9, 1, 0, 0, 0, 0, shanghai), ReasonAllowed, cardResident, "residents"},
		{"last valid day", byNumber(cardResident), time.Date(2027, 7, 31, 23, 59, 59, 0, shanghai), ReasonAllowed, cardResident, "residents"},
		{"expired", byNumber(cardResident), time.Date(2027, 8, 1, 0, 0, 0, 0, shanghai), ReasonExpired, cardResident, ""},
		{"group not admitted here", byNumber(cardElsewhere), at(shanghai, "mon", "12:00"), ReasonGroupNotAllowed, cardElsewhere, ""},
		{"one of two groups admitted", byNumber(cardTwo), at(shanghai, "mon", "12:00"), ReasonAllowed, cardTwo, "day-staff"},
		{"one of two groups admitted, outside its hours", byNumber(cardTwo), at(shanghai, "sat", "12:00"), ReasonOutsideHours, cardTwo, ""},

		// Weekday boundaries: day-staff is mon-fri 08:00-18:00.
		{"staff mon 07:59", byNumber(cardStaff), at(shanghai, "mon", "07:59"), ReasonOutsideHours, cardStaff, ""},
		{"staff mon 08:00", byNumber(cardStaff), at(shanghai, "mon", "08:00"), ReasonAllowed, cardStaff, "day-staff"},
		{"staff fri 17:59", byNumber(cardStaff), at(shanghai, "fri", "17:59"), ReasonAllowed, cardStaff, "day-staff"},
		{"staff fri 18:00", byNumber(cardStaff), at(shanghai, "fri", "18:00"), ReasonOutsideHours, cardStaff, ""},
		{"staff sat 08:00", byNumber(cardStaff), at(shanghai, "sat", "08:00"), ReasonOutsideHours, cardStaff, ""},
		{"staff sun 12:00", byNumber(cardStaff), at(shanghai, "sun", "12:00"), ReasonOutsideHours, cardStaff, ""},

		// Midnight: night is fri and sat 22:00-06:00.
		{"night fri 21:59", byNumber(cardNight), at(shanghai, "fri", "21:59"), ReasonOutsideHours, cardNight, ""},
		{"night fri 22:00", byNumber(cardNight), at(shanghai, "fri", "22:00"), ReasonAllowed, cardNight, "night"},
		{"night fri 23:59", byNumber(cardNight), at(shanghai, "fri", "23:59"), ReasonAllowed, cardNight, "night"},
		{"night sat 00:00, from friday", byNumber(cardNight), at(shanghai, "sat", "00:00"), ReasonAllowed, cardNight, "night"},
		{"night sat 05:59, from friday", byNumber(cardNight), at(shanghai, "sat", "05:59"), ReasonAllowed, cardNight, "night"},
		{"night sat 06:00", byNumber(cardNight), at(shanghai, "sat", "06:00"), ReasonOutsideHours, cardNight, ""},
		{"night sat 23:00", byNumber(cardNight), at(shanghai, "sat", "23:00"), ReasonAllowed, cardNight, "night"},
		{"night sun 03:00, from saturday across the week's start", byNumber(cardNight), at(shanghai, "sun", "03:00"), ReasonAllowed, cardNight, "night"},
		{"night sun 06:00", byNumber(cardNight), at(shanghai, "sun", "06:00"), ReasonOutsideHours, cardNight, ""},
		{"night sun 23:00, sunday not listed", byNumber(cardNight), at(shanghai, "sun", "23:00"), ReasonOutsideHours, cardNight, ""},
		{"night fri 03:00, thursday not listed", byNumber(cardNight), at(shanghai, "fri", "03:00"), ReasonOutsideHours, cardNight, ""},
		{"night thu 23:00", byNumber(cardNight), at(shanghai, "thu", "23:00"), ReasonOutsideHours, cardNight, ""},

		// Two windows in one group.
		{"guest sat 11:00", Identity{UID: uidGuest}, at(shanghai, "sat", "11:00"), ReasonAllowed, uidGuest, "guests"},
		{"guest sat 13:00, between windows", Identity{UID: uidGuest}, at(shanghai, "sat", "13:00"), ReasonOutsideHours, uidGuest, ""},
		{"guest sun 15:59", Identity{UID: strings.ToLower(uidGuest)}, at(shanghai, "sun", "15:59"), ReasonAllowed, uidGuest, "guests"},

		// Identity: the number wins when listed, the UID is the fallback.
		{"number listed and UID listed: the number's entry", Identity{Number: cardBoth, UID: uidBoth}, at(shanghai, "sat", "12:00"), ReasonAllowed, cardBoth, "residents"},
		{"number not listed: the UID's entry", Identity{Number: "3101999999999997", UID: uidBoth}, at(shanghai, "sat", "12:00"), ReasonOutsideHours, uidBoth, ""},
		{"number not listed: the UID's entry, inside", Identity{Number: "3101999999999997", UID: uidBoth}, at(shanghai, "mon", "12:00"), ReasonAllowed, uidBoth, "day-staff"},
		{"short number", Identity{Number: cardShort}, at(shanghai, "mon", "12:00"), ReasonAllowed, cardShort, "residents"},
		{"short number is not its zero-padded form", Identity{Number: "3101000100000000"}, at(shanghai, "mon", "12:00"), ReasonUnknownCard, "3101000100000000", ""},
		{"19-digit number", Identity{Number: cardTUnion, UID: uidGuest}, at(shanghai, "sat", "03:00"), ReasonAllowed, cardTUnion, "residents"},
		{"20-digit number, its own entry", Identity{Number: cardLong}, at(shanghai, "sat", "03:00"), ReasonOutsideHours, cardLong, ""},
		{"19-digit number cut to 16", Identity{Number: cardTUnion[:16]}, at(shanghai, "mon", "12:00"), ReasonUnknownCard, cardTUnion[:16], ""},
		{"malformed number, UID listed", Identity{Number: "31x1", UID: uidGuest}, at(shanghai, "sat", "11:00"), ReasonAllowed, uidGuest, "guests"},
		// A listed number dressed up is not that number: not normalised.
		{"7 digits of a listed number", Identity{Number: cardShort[:7]}, at(shanghai, "mon", "12:00"), ReasonUnknownCard, cardShort[:7], ""},
		{"21 digits", Identity{Number: cardLong + "1"}, at(shanghai, "mon", "12:00"), ReasonUnknownCard, cardLong + "1", ""},
		{"leading space", Identity{Number: " " + cardTUnion}, at(shanghai, "mon", "12:00"), ReasonUnknownCard, " " + cardTUnion, ""},
		{"trailing space", Identity{Number: cardTUnion + " "}, at(shanghai, "mon", "12:00"), ReasonUnknownCard, cardTUnion + " ", ""},
		{"plus sign", Identity{Number: "+" + cardTUnion}, at(shanghai, "mon", "12:00"), ReasonUnknownCard, "+" + cardTUnion, ""},
		{"Arabic-Indic digits", Identity{Number: "٣١٠١٠٠٠١"}, at(shanghai, "mon", "12:00"), ReasonUnknownCard, "٣١٠١٠٠٠١", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := Decide(ix, deny, tc.id, tc.now)
			if d.Reason != tc.want || d.Allowed != (tc.want == ReasonAllowed) {
				t.Fatalf("Decide = %+v, want %s", d, tc.want)
			}
			if d.Card != tc.card {
				t.Errorf("Card = %q, want %q", d.Card, tc.card)
			}
			if d.Group != tc.group {
				t.Errorf("Group = %q, want %q", d.Group, tc.group)
			}
			if d.Text == "" {
				t.Error("empty Text")
			}
			if d.Card != "" && strings.Contains(d.Text, d.Card) {
				t.Errorf("Text %q shows the card", d.Text)
			}
		})
	}
}

// TestDecideTexts: the human text names what a person at the door needs.
func TestDecideTexts(t *testing.T) {
	ix := mustIndex(t, fixture(), admitted)
	for _, tc := range []struct {
		id   Identity
		now  time.Time
		want string
	}{
		{Identity{Number: cardLost}, at(shanghai, "mon", "12:00"), "card is on the deny list: lost"},
		{Identity{Number: cardResident}, time.Date(2027, 8, 1, 0, 0, 0, 0, shanghai), "card was valid until 2027-07-31"},
		{Identity{Number: cardResident}, time.Date(2026, 8, 1, 0, 0, 0, 0, shanghai), "card is valid from 2026-09-01"},
		{Identity{Number: cardElsewhere}, at(shanghai, "mon", "12:00"), "this door admits none of the card's groups (other-block)"},
		{Identity{Number: cardTwo}, at(shanghai, "sat", "12:15"), "sat 12:15 is outside the hours of day-staff"},
		{Identity{Number: cardStaff}, at(shanghai, "mon", "12:00"), "allowed as day-staff"},
		{Identity{Number: "3101999999999999"}, at(shanghai, "mon", "12:00"), "card is not on the access list"},
	} {
		if d := Decide(ix, denyList(cardLost), tc.id, tc.now); d.Text != tc.want {
			t.Errorf("%+v at %v: Text %q, want %q", tc.id, tc.now, d.Text, tc.want)
		}
	}
	if d := Decide(nil, nil, Identity{Number: cardResident}, time.Now()); d.Reason != ReasonUnknownCard || d.Text != "no access list yet" {
		t.Errorf("no index: %+v", d)
	}
}

// TestDecideTimeZones: the same instant decides by the wall clock of the
// location it carries, for hours and for dates.
func TestDecideTimeZones(t *testing.T) {
	ix := mustIndex(t, fixture(), admitted)
	// Monday 09:00 in Shanghai is Monday 01:00 UTC: inside day-staff's
	// hours on the terminal's clock in Shanghai, outside in UTC.
	instant := at(shanghai, "mon", "09:00")
	if d := Decide(ix, nil, Identity{Number: cardStaff}, instant); !d.Allowed {
		t.Errorf("Shanghai Monday 09:00: %+v", d)
	}
	if d := Decide(ix, nil, Identity{Number: cardStaff}, instant.UTC()); d.Reason != ReasonOutsideHours || !strings.HasPrefix(d.Text, "mon 01:00") {
		t.Errorf("UTC Monday 01:00: %+v", d)
	}
	// Saturday 02:00 in Shanghai is Friday 18:00 UTC: the night group's
	// window that began on Friday in Shanghai; before it in UTC.
	instant = at(shanghai, "sat", "02:00")
	if d := Decide(ix, nil, Identity{Number: cardNight}, instant); !d.Allowed {
		t.Errorf("Shanghai Saturday 02:00: %+v", d)
	}
	if d := Decide(ix, nil, Identity{Number: cardNight}, instant.UTC()); d.Reason != ReasonOutsideHours {
		t.Errorf("UTC Friday 18:00: %+v", d)
	}
	// 2027-07-31 16:30 UTC is already 2027-08-01 in Shanghai.
	instant = time.Date(2027, 7, 31, 16, 30, 0, 0, time.UTC)
	if d := Decide(ix, nil, Identity{Number: cardResident}, instant); !d.Allowed {
		t.Errorf("UTC 2027-07-31: %+v", d)
	}
	if d := Decide(ix, nil, Identity{Number: cardResident}, instant.In(shanghai)); d.Reason != ReasonExpired {
		t.Errorf("Shanghai 2027-08-01: %+v", d)
	}
	// A zone with daylight saving: the wall clock counts, so day-staff
	// opens at 08:00 local on either side of the change.
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Logf("no tz database (%v): daylight saving not checked", err)
		return
	}
	for _, day := range []int{27, 30} { // Friday before, Monday after the 2026-10-25 change
		open := time.Date(2026, 10, day, 8, 0, 0, 0, berlin)
		if d := Decide(ix, nil, Identity{Number: cardStaff}, open); !d.Allowed {
			t.Errorf("Berlin %v: %+v", open, d)
		}
		if d := Decide(ix, nil, Identity{Number: cardStaff}, open.Add(-time.Minute)); d.Allowed {
			t.Errorf("Berlin %v: %+v", open.Add(-time.Minute), d)
		}
	}
}

// TestDecideEveryMinute checks the compiled week of every fixture group,
// for every minute of a week, against a direct reading of its windows.
func TestDecideEveryMinute(t *testing.T) {
	l := fixture()
	ix := mustIndex(t, l, []string{"*"})
	start := at(time.UTC, "sun", "00:00")
	for i, g := range l.Groups {
		for m := range minutesPerWeek {
			now := start.Add(time.Duration(m) * time.Minute)
			if got, want := ix.hours[i].has(minuteOfWeek(now)), inside(g.Windows, now); got != want {
				t.Fatalf("group %s at %s: inside = %v, want %v", g.Name, now.Format("Mon 15:04"), got, want)
			}
		}
	}
}

// inside is the reference reading of windows: now is inside a window when
// it is on a listed day between from and until, or, for a window crossing
// midnight, on the day after a listed day before until.
func inside(ws []Window, now time.Time) bool {
	h, mi, _ := now.Clock()
	m := h*60 + mi
	today := dayNames[now.Weekday()]
	yesterday := dayNames[(now.Weekday()+6)%7]
	for _, w := range ws {
		from, _ := parseClock(w.From, false)
		until, _ := parseClock(w.Until, true)
		for _, d := range w.Days {
			if until > from && d == today && from <= m && m < until {
				return true
			}
			if until < from && (d == today && m >= from || d == yesterday && m < until) {
				return true
			}
		}
	}
	return false
}

func TestNewIndex(t *testing.T) {
	ix := mustIndex(t, fixture(), []string{"residents", "gone", "night", "gone", "*x"})
	if got := ix.MissingGroups(); fmt.Sprint(got) != "[gone *x]" {
		t.Errorf("MissingGroups = %q", got)
	}
	if ix.Version() != "42" || ix.Len() != len(fixture().Entries) {
		t.Errorf("Version %q Len %d", ix.Version(), ix.Len())
	}
	if d := Decide(ix, nil, Identity{Number: cardStaff}, at(shanghai, "mon", "12:00")); d.Reason != ReasonGroupNotAllowed {
		t.Errorf("day-staff at a door for residents and night: %+v", d)
	}
	all := mustIndex(t, fixture(), []string{"*"})
	if d := Decide(all, nil, Identity{Number: cardElsewhere}, at(shanghai, "mon", "12:00")); !d.Allowed {
		t.Errorf("other-block at a door for every group: %+v", d)
	}
	none := mustIndex(t, fixture(), nil)
	if d := Decide(none, nil, Identity{Number: cardResident}, at(shanghai, "mon", "12:00")); d.Reason != ReasonGroupNotAllowed {
		t.Errorf("a door admitting no group: %+v", d)
	}
	bad := fixture()
	bad.Groups[0].Windows[0].From = "25:00"
	if _, err := NewIndex(bad, admitted); err == nil || !strings.Contains(err.Error(), `groups[0].windows[0].from = "25:00"`) {
		t.Errorf("NewIndex of an invalid list: %v", err)
	}
}

// TestDecisionLog: a decision logs the card number masked.
func TestDecisionLog(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	d := Decide(mustIndex(t, fixture(), admitted), nil, Identity{Number: cardResident}, at(shanghai, "mon", "12:00"))
	log.Info("door", "decision", d)
	out := buf.String()
	if strings.Contains(out, cardResident) || !strings.Contains(out, "card=3101********0001") || !strings.Contains(out, "reason=allowed") {
		t.Errorf("log line %q", out)
	}
}

// bigList is a list of n entries, a third of them by UID, in 40 groups
// (a campus of 40 blocks), with every fourth entry dated.
func bigList(n int) (*List, []Identity) {
	l := &List{Version: "bench"}
	for g := range 40 {
		l.Groups = append(l.Groups, Group{Name: fmt.Sprintf("block-%02d", g), Windows: []Window{
			{Days: allDays, From: "06:00", Until: "23:30"},
			{Days: []string{"fri", "sat"}, From: "23:30", Until: "02:00"}}})
	}
	ids := make([]Identity, n)
	for i := range n {
		e := Entry{Groups: []string{fmt.Sprintf("block-%02d", i%40)}}
		if i%3 == 0 {
			e.UID = fmt.Sprintf("04%012X", i)
			ids[i] = Identity{UID: e.UID}
		} else {
			e.Card = fmt.Sprintf("3101%012d", i)
			ids[i] = Identity{Number: e.Card, UID: fmt.Sprintf("%08X", i)}
		}
		if i%4 == 0 {
			e.ValidFrom, e.ValidUntil = "2026-09-01", "2027-07-31"
		}
		l.Entries = append(l.Entries, e)
	}
	return l, ids
}

// BenchmarkDecide decides taps of random cards on the list, one in eight
// unknown, with one card in 50 on the deny list, at a door admitting a quarter of
// the groups: the cost per tap beside the card's own 5-30 ms per APDU.
// The two sizes show it does not grow with the list.
func BenchmarkDecide(b *testing.B) {
	for _, n := range []int{500, 50000} {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			l, ids := bigList(n)
			var admit []string
			for g := 0; g < 40; g += 4 {
				admit = append(admit, fmt.Sprintf("block-%02d", g))
			}
			ix := mustIndex(b, l, admit)
			var denied []string
			for i := 1; i < n; i += 50 {
				denied = append(denied, ids[i].Number)
			}
			deny := denyList(denied...)
			r := rand.New(rand.NewPCG(1, 2))
			taps := make([]Identity, 4096)
			for i := range taps {
				if i%8 == 7 {
					taps[i] = Identity{Number: fmt.Sprintf("3109%012d", i)}
				} else {
					taps[i] = ids[r.IntN(n)]
				}
			}
			now := at(shanghai, "sat", "23:45")
			allowed := 0
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if Decide(ix, deny, taps[i%len(taps)], now).Allowed {
					allowed++
				}
			}
			if allowed == 0 {
				b.Fatal("nobody allowed: the benchmark does not reach the windows")
			}
		})
	}
}

// BenchmarkNewIndex compiles a 50,000-entry list: the cost of each pull
// that changes it.
func BenchmarkNewIndex(b *testing.B) {
	l, _ := bigList(50000)
	b.ReportAllocs()
	for b.Loop() {
		mustIndex(b, l, []string{"*"})
	}
}

// TestLookupByUIDAllocatesNothing: a card known by its UID alone, as most
// door cards are, costs the lookup no allocation, number check included.
func TestLookupByUIDAllocatesNothing(t *testing.T) {
	ix := mustIndex(t, fixture(), admitted)
	id := Identity{UID: uidGuest}
	if n := testing.AllocsPerRun(100, func() { ix.lookup(id) }); n != 0 {
		t.Errorf("lookup by UID: %v allocations", n)
	}
}
