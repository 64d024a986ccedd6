package epursesim

import (
	"errors"
	"testing"
	"time"

	"github.com/cardd/cardd/apdu"
	"github.com/cardd/cardd/apdu/epurse"
)

// blockCard runs GET CHALLENGE then APPLICATION BLOCK with the MAC the
// issuer computes from the card's DAMK.
func blockCard(t *testing.T, c apdu.Transmitter, keys epurse.CardKeys, mode epurse.BlockMode) error {
	t.Helper()
	ch, err := epurse.GetChallenge(c)
	if err != nil {
		t.Fatalf("GetChallenge: %v", err)
	}
	return epurse.ApplicationBlock(c, mode, epurse.BlockMAC(keys.DAMK, ch, mode))
}

func TestApplicationBlock(t *testing.T) {
	c, path := newTestCard(t, 8320)
	keys := selected(t, c)
	if keys.DAMK == (epurse.Key16{}) {
		t.Fatal("the card has no DAMK diversified from the master")
	}
	load(t, c, keys, epurse.PurseEP, 100, time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC))
	if err := blockCard(t, c, keys, epurse.BlockTemporary); err != nil {
		t.Fatalf("block: %v", err)
	}
	saved, err := LoadCardFile(path)
	if err != nil || !saved.Blocked || saved.BlockedPermanently {
		t.Fatalf("the block was not saved: %+v, %v", saved, err)
	}
	c.Reset()
	fci, err := epurse.Select(c)
	if !errors.Is(err, epurse.ErrApplicationBlocked) || !errors.Is(err, apdu.ErrFileInvalidated) || fci.Info == nil || fci.Info.CardNumber != testNumber {
		t.Fatalf("Select after the block = %+v, %v; want the FCI and 6283", fci, err)
	}
	if _, err := epurse.GetBalance(c, epurse.PurseEP); !errors.Is(err, apdu.ErrNotSupported) {
		t.Errorf("GET BALANCE of a blocked card: %v, want 6A81", err)
	}
	if _, err := epurse.InitPurchase(c, epurse.PurseEP, 1, 100, testTerm); !errors.Is(err, apdu.ErrNotSupported) {
		t.Errorf("INITIALIZE FOR PURCHASE of a blocked card: %v, want 6A81", err)
	}
	if _, err := epurse.InitLoad(c, epurse.PurseEP, 1, 100, testTerm); !errors.Is(err, apdu.ErrNotSupported) {
		t.Errorf("INITIALIZE FOR LOAD of a blocked card: %v, want 6A81", err)
	}
	if f := c.File(); f.EPBalance != 8420 {
		t.Errorf("balance %d after the block, want 8420 kept", f.EPBalance)
	}
	// The issuer's desk lifts a temporary block.
	ch, err := epurse.GetChallenge(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := epurse.ApplicationUnblock(c, epurse.UnblockMAC(keys.DAMK, ch)); err != nil {
		t.Fatalf("unblock: %v", err)
	}
	c.Reset()
	selected(t, c)
	if b, err := epurse.GetBalance(c, epurse.PurseEP); err != nil || b != 8420 {
		t.Errorf("after unblock: balance %d, %v", b, err)
	}
}

func TestApplicationBlockPermanent(t *testing.T) {
	c, _ := newTestCard(t, 100)
	keys := selected(t, c)
	if err := blockCard(t, c, keys, epurse.BlockPermanent); err != nil {
		t.Fatalf("block: %v", err)
	}
	if _, err := epurse.GetBalance(c, epurse.PurseEP); !errors.Is(err, apdu.ErrAppLocked) {
		t.Errorf("GET BALANCE: %v, want 9303", err)
	}
	ch, err := epurse.GetChallenge(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := epurse.ApplicationUnblock(c, epurse.UnblockMAC(keys.DAMK, ch)); !errors.Is(err, epurse.ErrApplicationBlocked) || !errors.Is(err, apdu.ErrAppLocked) {
		t.Errorf("unblock of a permanent block: %v, want 9303", err)
	}
	if f := c.File(); !f.Blocked || !f.BlockedPermanently {
		t.Errorf("the permanent block was lifted: %+v", f)
	}
}

func TestApplicationBlockRefusals(t *testing.T) {
	c, path := newTestCard(t, 100)
	keys := selected(t, c)
	unchanged := func(what string) {
		t.Helper()
		if f, err := LoadCardFile(path); err != nil || f.Blocked || c.File().Blocked {
			t.Errorf("%s blocked the card (%v)", what, err)
		}
	}
	// A wrong MAC: 9302, nothing changes.
	ch, _ := epurse.GetChallenge(c)
	bad := epurse.BlockMAC(keys.DAMK, ch, epurse.BlockTemporary)
	bad[0] ^= 1
	if err := epurse.ApplicationBlock(c, epurse.BlockTemporary, bad); !errors.Is(err, apdu.ErrMACInvalid) {
		t.Errorf("wrong MAC: %v, want 9302", err)
	}
	unchanged("a wrong MAC")
	// A MAC of another key (the master itself, not the card's DAMK).
	ch, _ = epurse.GetChallenge(c)
	if err := epurse.ApplicationBlock(c, epurse.BlockTemporary, epurse.BlockMAC(testMasters.DAMK, ch, epurse.BlockTemporary)); !errors.Is(err, apdu.ErrMACInvalid) {
		t.Errorf("the master's MAC: %v, want 9302", err)
	}
	unchanged("the master's MAC")
	// The challenge is single-use: after a failed try, the right MAC over
	// the same challenge is refused (6984).
	ch, _ = epurse.GetChallenge(c)
	if err := epurse.ApplicationBlock(c, epurse.BlockTemporary, bad); !errors.Is(err, apdu.ErrMACInvalid) {
		t.Errorf("wrong MAC: %v, want 9302", err)
	}
	good := epurse.BlockMAC(keys.DAMK, ch, epurse.BlockTemporary)
	if err := epurse.ApplicationBlock(c, epurse.BlockTemporary, good); !isSW(err, 0x6984) {
		t.Errorf("a challenge used twice: %v, want 6984", err)
	}
	unchanged("a used challenge")
	// Any command between GET CHALLENGE and the block uses it up too.
	ch, _ = epurse.GetChallenge(c)
	if _, err := epurse.GetBalance(c, epurse.PurseEP); err != nil {
		t.Fatal(err)
	}
	if err := epurse.ApplicationBlock(c, epurse.BlockTemporary, epurse.BlockMAC(keys.DAMK, ch, epurse.BlockTemporary)); !isSW(err, 0x6984) {
		t.Errorf("a challenge followed by GET BALANCE: %v, want 6984", err)
	}
	unchanged("a stale challenge")
}

func TestApplicationBlockWithoutDAMK(t *testing.T) {
	m := testMasters
	m.DAMK = epurse.Key16{}
	f, err := NewCardFile(testNumber, "", 100, epurse.Date{Year: 2024, Month: 1, Day: 1}, epurse.Date{Year: 2029, Month: 12, Day: 31}, m)
	if err != nil {
		t.Fatal(err)
	}
	c := NewSimCard(f, "")
	selected(t, c)
	ch, _ := epurse.GetChallenge(c)
	if err := epurse.ApplicationBlock(c, epurse.BlockTemporary, epurse.BlockMAC(epurse.Key16{}, ch, epurse.BlockTemporary)); !isSW(err, 0x6A88) {
		t.Errorf("a card without DAMK: %v, want 6A88", err)
	}
	if c.File().Blocked {
		t.Error("a card without DAMK was blocked")
	}
}

func isSW(err error, want uint16) bool {
	sw, ok := apdu.SW(err)
	return ok && sw == want
}
