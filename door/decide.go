package door

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/redact"
)

// Reason is why a door decided as it did, for machines: the journal, the
// local API, the screen's choice of message. Stable; do not rename.
type Reason string

// Reasons, in the order Decide checks them: the first that applies wins.
const (
	ReasonDenyListed      Reason = "deny_listed"       // on the deny list (lost, stolen, blocked)
	ReasonUnknownCard     Reason = "unknown_card"      // not on the access list (or no list yet)
	ReasonNotYetValid     Reason = "not_yet_valid"     // before the entry's valid_from
	ReasonExpired         Reason = "expired"           // after the entry's valid_until
	ReasonGroupNotAllowed Reason = "group_not_allowed" // none of the card's groups is admitted at this door
	ReasonOutsideHours    Reason = "outside_hours"     // admitted here, but not at this time of the week
	ReasonAllowed         Reason = "allowed"           // open the door
)

// Identity is what the reader learnt of a tapped card.
type Identity struct {
	// Number is the e-purse card number (EF 0x15), "" for a card without
	// the e-purse application.
	Number string
	// UID is the ISO 14443 UID in hex, either case; "" if unknown.
	UID string
}

// key is the identity a decision is recorded under: the card number when
// the card has one, else the UID in upper-case hex.
func (id Identity) key() string {
	if id.Number != "" {
		return id.Number
	}
	return strings.ToUpper(id.UID)
}

// DenyFunc looks a card up in the deny list: card is a card id (a card
// number, or hostapi.UIDCardPrefix and the UID in upper-case hex, as the host
// lists it). It reports whether the card is denied and why
// ("lost", "stolen", …). A lookup that can fail (a database) should report
// the card denied when it fails, so that a broken store keeps a lost card
// out rather than letting it in.
type DenyFunc func(card string) (denied bool, reason string)

// Decision is the outcome of one tap at the door.
type Decision struct {
	// Allowed says whether to open the door.
	Allowed bool
	// Reason is why, for machines.
	Reason Reason
	// Text is why, for people: one line in English naming the dates, hours
	// or groups involved, never the card number.
	Text string
	// Card is the identity decided on: the card number, or the UID in
	// upper-case hex when the card has no number or was listed by UID. It
	// is what the journal records; it must not reach logs in full (see
	// LogValue).
	Card string
	// Group is the group whose hours admitted the card, when Allowed.
	Group string
}

// LogValue logs a decision with the card number masked.
func (d Decision) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Bool("allowed", d.Allowed),
		slog.String("reason", string(d.Reason)),
		slog.String("card", redact.CardNumber(d.Card)),
		slog.String("group", d.Group),
		slog.String("text", d.Text),
	)
}

// week is one bit per minute of a week, bit 0 being Sunday 00:00 (Go's
// weekdays start on Sunday): a group's hours, so that "is this minute
// inside" is one load and a mask however many windows the group has.
type week [(minutesPerWeek + 63) / 64]uint64

func (w *week) set(m int)      { m %= minutesPerWeek; w[m/64] |= 1 << (m % 64) }
func (w *week) has(m int) bool { return w[m/64]&(1<<(m%64)) != 0 }

// minuteOfWeek is t's minute of the week on t's own wall clock: the
// location t carries is the terminal's, and so are the windows.
func minuteOfWeek(t time.Time) int {
	h, m, _ := t.Clock()
	return int(t.Weekday())*minutesPerDay + h*60 + m
}

// compileWeek marks the minutes of the windows (already validated). A
// window crossing midnight runs on into the next day, and Saturday's into
// Sunday at the start of the week.
func compileWeek(ws []Window) *week {
	w := new(week)
	for _, win := range ws {
		from, _ := parseClock(win.From, false)
		until, _ := parseClock(win.Until, true)
		if until < from {
			until += minutesPerDay
		}
		for _, d := range win.Days {
			start := int(weekdays[d]) * minutesPerDay
			for m := start + from; m < start+until; m++ {
				w.set(m)
			}
		}
	}
	return w
}

// Index is a validated list compiled for one door: hash maps from card
// number (8 bytes) and UID (11 bytes) to a 12-byte entry, the entries'
// group sets shared, and a minute-of-the-week bitmap for each group the
// door admits. A decision costs one or two map lookups whatever the size
// of the list. An Index is read-only: safe for concurrent use; replace it
// whole when a new list arrives.
type Index struct {
	version string
	names   []string // group names, by index in the list
	hours   []*week  // nil for a group this door does not admit
	sets    []groupSet
	entries []indexEntry
	cards   map[cardNumberKey]uint32
	uids    map[uidKey]uint32
	missing []string
}

// indexEntry is one entry: its validity as YYYYMMDD numbers and its set of
// groups (an index into Index.sets, since most cards share a few sets).
type indexEntry struct {
	from, until int32
	set         uint32
}

// groupSet is the groups of some entries, and those of them the door admits.
type groupSet struct {
	groups   []uint16
	admitted []uint16
}

// NewIndex validates l and compiles it for a door admitting the groups
// named in admit (door.groups); "*" admits every group of the list. A
// group in admit that the list does not define admits nobody: it is not
// an error, since the host may retire a group before the door's
// configuration follows, but MissingGroups reports it so the daemon can
// warn.
func NewIndex(l *List, admit []string) (*Index, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	ix := &Index{
		version: l.Version,
		names:   make([]string, len(l.Groups)),
		hours:   make([]*week, len(l.Groups)),
		entries: make([]indexEntry, len(l.Entries)),
		cards:   make(map[cardNumberKey]uint32),
		uids:    make(map[uidKey]uint32),
	}
	all := slices.Contains(admit, "*")
	byName := make(map[string]uint16, len(l.Groups))
	for i, g := range l.Groups {
		ix.names[i] = g.Name
		byName[g.Name] = uint16(i) // MaxGroups < 65536
		if all || slices.Contains(admit, g.Name) {
			ix.hours[i] = compileWeek(g.Windows)
		}
	}
	for _, name := range admit {
		if _, ok := byName[name]; !ok && name != "*" && !slices.Contains(ix.missing, name) {
			ix.missing = append(ix.missing, name)
		}
	}

	setOf := make(map[string]uint32)
	var key []byte
	for i, e := range l.Entries {
		key = key[:0]
		for _, name := range e.Groups {
			g := byName[name]
			key = append(key, byte(g>>8), byte(g))
		}
		set, ok := setOf[string(key)]
		if !ok {
			var gs groupSet
			for _, name := range e.Groups {
				g := byName[name]
				gs.groups = append(gs.groups, g)
				if ix.hours[g] != nil {
					gs.admitted = append(gs.admitted, g)
				}
			}
			set = uint32(len(ix.sets))
			ix.sets = append(ix.sets, gs)
			setOf[string(key)] = set
		}
		from, _ := parseDate(e.ValidFrom)
		until, _ := parseDate(e.ValidUntil)
		if e.ValidUntil == "" {
			until = 1<<31 - 1
		}
		ix.entries[i] = indexEntry{from: from, until: until, set: set}
		if e.Card != "" {
			k, _ := cardKey(e.Card)
			ix.cards[k] = uint32(i)
		} else {
			k, _ := parseUID(e.UID)
			ix.uids[k] = uint32(i)
		}
	}
	return ix, nil
}

// Version is the list's version.
func (ix *Index) Version() string { return ix.version }

// Len is the number of entries.
func (ix *Index) Len() int { return len(ix.entries) }

// MissingGroups lists the groups the door admits that the list does not
// define, in the order of door.groups.
func (ix *Index) MissingGroups() []string { return slices.Clone(ix.missing) }

// lookup finds the card: by number when the card has one on the list,
// else by UID, so a card can be listed either way and its number wins
// when it is listed both ways.
func (ix *Index) lookup(id Identity) (indexEntry, string, bool) {
	// Most door cards have no number: not an error to build on each tap.
	if id.Number != "" {
		if k, err := cardKey(id.Number); err == nil {
			if i, ok := ix.cards[k]; ok {
				return ix.entries[i], id.Number, true
			}
		}
	}
	if k, ok := parseUID(id.UID); ok {
		if i, ok := ix.uids[k]; ok {
			return ix.entries[i], strings.ToUpper(id.UID), true
		}
	}
	return indexEntry{}, id.key(), false
}

// Decide decides whether the card id may pass at now, in now's location
// (the terminal's local time). The deny list wins over everything; it is
// asked about the card number and about the UID, either of which the host
// may have blocked. Then the card must be on the list, valid on now's date,
// in a group the door admits, and inside one of those groups' windows.
// A nil deny is an empty deny list; a nil ix (no list pulled yet) knows no
// card.
func Decide(ix *Index, deny DenyFunc, id Identity, now time.Time) Decision {
	if deny != nil {
		uid := strings.ToUpper(id.UID)
		for _, card := range [2]string{id.Number, uid} {
			if card == "" {
				continue
			}
			key := card
			if card == uid {
				// The host's deny list names a UID as a card id does.
				key = hostapi.UIDCardPrefix + uid
			}
			if denied, why := deny(key); denied {
				text := "card is on the deny list"
				if why != "" {
					text += ": " + why
				}
				return Decision{Reason: ReasonDenyListed, Text: text, Card: card}
			}
		}
	}
	if ix == nil {
		return Decision{Reason: ReasonUnknownCard, Text: "no access list yet", Card: id.key()}
	}
	e, card, ok := ix.lookup(id)
	if !ok {
		text := "card is not on the access list"
		if id.Number == "" && id.UID == "" {
			text = "card has neither a number nor a UID"
		}
		return Decision{Reason: ReasonUnknownCard, Text: text, Card: card}
	}
	y, m, d := now.Date()
	today := int64(y)*10000 + int64(m)*100 + int64(d)
	switch {
	case today < int64(e.from):
		return Decision{Reason: ReasonNotYetValid, Text: "card is valid from " + formatDate(e.from), Card: card}
	case today > int64(e.until):
		return Decision{Reason: ReasonExpired, Text: "card was valid until " + formatDate(e.until), Card: card}
	}
	set := &ix.sets[e.set]
	if len(set.admitted) == 0 {
		return Decision{Reason: ReasonGroupNotAllowed, Card: card,
			Text: fmt.Sprintf("this door admits none of the card's groups (%s)", ix.groupNames(set.groups))}
	}
	mw := minuteOfWeek(now)
	for _, g := range set.admitted {
		if ix.hours[g].has(mw) {
			return Decision{Allowed: true, Reason: ReasonAllowed, Card: card, Group: ix.names[g],
				Text: "allowed as " + ix.names[g]}
		}
	}
	return Decision{Reason: ReasonOutsideHours, Card: card,
		Text: fmt.Sprintf("%s %s is outside the hours of %s", dayNames[now.Weekday()], now.Format("15:04"), ix.groupNames(set.admitted))}
}

func (ix *Index) groupNames(gs []uint16) string {
	names := make([]string, len(gs))
	for i, g := range gs {
		names[i] = ix.names[g]
	}
	return strings.Join(names, ", ")
}

// formatDate writes a YYYYMMDD number as YYYY-MM-DD.
func formatDate(n int32) string {
	return fmt.Sprintf("%04d-%02d-%02d", n/10000, n/100%100, n%100)
}
