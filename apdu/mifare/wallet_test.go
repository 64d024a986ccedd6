package mifare

import (
	"errors"
	"testing"
)

func TestWalletValidate(t *testing.T) {
	for name, mod := range map[string]func(*Wallet){
		"sector 0":              func(w *Wallet) { w.Sector, w.ValueBlock, w.BackupBlock = 0, 1, 2 },
		"sector 16":             func(w *Wallet) { w.Sector = 16 },
		"block in other sector": func(w *Wallet) { w.BackupBlock = 8 },
		"trailer as block":      func(w *Wallet) { w.BackupBlock = 7 },
		"same blocks":           func(w *Wallet) { w.BackupBlock = 4 },
		"bad slots":             func(w *Wallet) { w.Slots.P1 = 0x10 },
	} {
		w := testWallet()
		mod(&w)
		if err := w.Validate(); !errors.Is(err, ErrBadArgument) {
			t.Errorf("%s: %v", name, err)
		}
		if _, _, err := w.Read(newScript(t)); !errors.Is(err, ErrBadArgument) {
			t.Errorf("%s: Read sent something: %v", name, err)
		}
	}
	if err := testWallet().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestHappened(t *testing.T) {
	c := Change{Old: 1000, New: 700, Seq: 255}
	if h, err := c.Happened(State{Balance: 700, Seq: 0}); !h || err != nil {
		t.Error("new balance at the next sequence (wrapped)")
	}
	if h, err := c.Happened(State{Balance: 1000, Seq: 255}); h || err != nil {
		t.Error("old balance at the same sequence")
	}
	for _, st := range []State{
		{Balance: 400, Seq: 255}, // impossible, but not ours
		{Balance: 1000, Seq: 1},  // A-B-A: changed twice since, back to the old balance
		{Balance: 700, Seq: 1},   // the new balance, but by two changes elsewhere
		{Balance: 1000, Seq: 0},  // the old balance one change later: not ours
	} {
		if _, err := c.Happened(st); !errors.Is(err, ErrBalanceMoved) {
			t.Errorf("Happened(%+v): %v, want ErrBalanceMoved", st, err)
		}
	}
}
