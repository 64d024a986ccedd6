package reader

import (
	"errors"
	"regexp"
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
