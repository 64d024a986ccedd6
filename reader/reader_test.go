package reader

import (
	"errors"
	"regexp"
	"slices"
	"testing"

	"github.com/ebfe/scard"
)

func TestWrapClassifies(t *testing.T) {
	for _, tc := range []struct {
		err  scard.Error
		kind error
	}{
		{scard.ErrRemovedCard, ErrCardRemoved},
		{scard.ErrResetCard, ErrCardRemoved},
		{scard.ErrNoSmartcard, ErrCardRemoved},
		{scard.ErrNotTransacted, ErrCardRemoved},
		{scard.ErrUnresponsiveCard, ErrCardRemoved},
		{scard.ErrCommError, ErrCardRemoved}, // on a card call
		{scard.ErrNoService, ErrNoService},
		{scard.ErrServiceStopped, ErrNoService},
		{scard.ErrInvalidHandle, ErrNoService},
		{scard.ErrUnknownReader, ErrReaderGone},
		{scard.ErrReaderUnavailable, ErrReaderGone},
		{scard.ErrSharingViolation, nil},
	} {
		err := wrap("transmit", "R", tc.err)
		if !errors.Is(err, tc.err) {
			t.Errorf("%v: wrapped error lost the scard.Error", tc.err)
		}
		for _, k := range []error{ErrCardRemoved, ErrNoService, ErrReaderGone} {
			if got, want := errors.Is(err, k), k == tc.kind; got != want {
				t.Errorf("%v: errors.Is(%v) = %v, want %v", tc.err, k, got, want)
			}
		}
	}
	if err := wrap("get status change", "", scard.ErrCommError); !errors.Is(err, ErrNoService) {
		t.Errorf("comm error on a context call: %v, want ErrNoService", err)
	}
	if wrap("x", "R", nil) != nil {
		t.Error("wrap(nil) != nil")
	}
}

func TestRoles(t *testing.T) {
	r := Roles{Card: regexp.MustCompile(".*"), SAM: regexp.MustCompile("PCD 00 01$")}
	for name, want := range map[string]Role{
		"Virtual PCD 00 00": RoleCard,
		"Virtual PCD 00 01": RoleSAM, // matches both: SAM wins
		"ACS ACR1281 PICC":  RoleCard,
	} {
		if got := r.Of(name); got != want {
			t.Errorf("Of(%q) = %v, want %v", name, got, want)
		}
	}
	if got := (Roles{}).Of("anything"); got != RoleNone {
		t.Errorf("zero Roles: %v, want none", got)
	}
}

// The empty-answer rule of Session.Transmit needs a real PC/SC card handle;
// the tear tests in ./integration exercise it through pcscd.
func TestClosedSessionRefuses(t *testing.T) {
	s := &Session{reader: "R", closed: true}
	if _, err := s.Transmit([]byte{0, 0xB0, 0, 0, 1}); err == nil {
		t.Fatal("transmit on a closed session succeeded")
	}
}

// TestUpdateCountsEvents replays reader states seen from pcscd: an insertion
// observed in two steps (present first, event count bumped a moment later)
// is one card, while a count up by two between two present states is a swap.
func TestUpdateCountsEvents(t *testing.T) {
	const name = "Virtual PCD 00 01"
	for _, tc := range []struct {
		desc   string
		states []uint32
		want   []EventKind
	}{
		{"insert in two steps, then removal",
			[]uint32{0x01060012, 0x01060022, 0x01070022, 0x01080012},
			[]EventKind{CardInserted, CardRemoved}},
		{"plain insert and removal",
			[]uint32{0x01060012, 0x01070022, 0x01080012},
			[]EventKind{CardInserted, CardRemoved}},
		{"swapped between two waits",
			[]uint32{0x01060012, 0x01070022, 0x01090022},
			[]EventKind{CardInserted, CardRemoved, CardInserted}},
		{"half-seen insert, then a swap",
			[]uint32{0x01060012, 0x01060022, 0x01090022},
			[]EventKind{CardInserted, CardRemoved, CardInserted}},
		{"count wraps at 16 bits",
			[]uint32{0xFFFF0012, 0x00000022, 0x00010012},
			[]EventKind{CardInserted, CardRemoved}},
	} {
		out := make(chan Event, 16)
		w := &watch{m: &Monitor{}, out: out,
			readers: map[string]*readerState{name: {current: scard.StateUnaware}}}
		for _, st := range tc.states {
			w.update(t.Context(), scard.ReaderState{Reader: name, EventState: scard.StateFlag(st)})
		}
		close(out)
		var got []EventKind
		for e := range out {
			got = append(got, e.Kind)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: events %v, want %v", tc.desc, got, tc.want)
		}
	}
}
