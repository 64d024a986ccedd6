package mifare

import (
	"fmt"
	"log/slog"
	"math"

	"github.com/cardd/cardd/apdu"
)

// MaxBalance is the largest balance a value block holds, in fen: a value is
// a signed 32-bit number, and a wallet's is never negative.
const MaxBalance = math.MaxInt32

// Wallet is a balance in fen kept in a value block of a MIFARE Classic
// sector, with a backup value block in the same sector from which a torn
// write is repaired (spec "MIFARE Classic wallet"). It is configuration
// only: every method talks to the card through the Transmitter it is given.
//
// The sector must be set up as a wallet (access bits 08 77 8F or others
// giving the same rights to the two blocks and the trailer): Read
// authenticates with key A, Decrement, Increment and every repair with key
// B, because they write the blocks with plain UPDATE BINARY, the path every
// PC/SC reader has, and only key B may write a value block there.
type Wallet struct {
	// Sector is the wallet's sector, 1 to 15 (sector 0 holds the
	// manufacturer block and, on many cards, the MIFARE application
	// directory).
	Sector byte
	// ValueBlock and BackupBlock are absolute block numbers (sector*4 + 0,
	// 1 or 2), different, both in Sector. Both hold the same value block:
	// the balance, and in its address byte the wallet's transaction
	// sequence (State.Seq).
	ValueBlock, BackupBlock byte
	// KeyA and KeyB are the sector's keys.
	KeyA, KeyB Key
	// Slots is how this reader loads and names keys.
	Slots KeySlotConvention
}

// Validate checks the configuration without talking to a card.
func (w Wallet) Validate() error {
	if w.Sector == 0 || w.Sector >= NumSectors {
		return fmt.Errorf("%w: wallet sector %d is not in 1..%d", ErrBadArgument, w.Sector, NumSectors-1)
	}
	for _, b := range []struct {
		name  string
		block byte
	}{{"value block", w.ValueBlock}, {"backup block", w.BackupBlock}} {
		if SectorOf(b.block) != w.Sector || IsTrailer(b.block) {
			return fmt.Errorf("%w: %s %d is not a data block of sector %d (blocks %d to %d)",
				ErrBadArgument, b.name, b.block, w.Sector, w.Sector*BlocksPerSector, TrailerOf(w.Sector)-1)
		}
	}
	if w.ValueBlock == w.BackupBlock {
		return fmt.Errorf("%w: value block and backup block are both %d", ErrBadArgument, w.ValueBlock)
	}
	if err := w.Slots.Validate(); err != nil {
		return fmt.Errorf("wallet key slots: %w", err)
	}
	return nil
}

// String names the wallet's blocks, never its keys.
func (w Wallet) String() string {
	return fmt.Sprintf("wallet in sector %d (value block %d, backup %d)", w.Sector, w.ValueBlock, w.BackupBlock)
}

// LogValue keeps slog from writing the keys.
func (w Wallet) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Int("sector", int(w.Sector)),
		slog.Int("value_block", int(w.ValueBlock)),
		slog.Int("backup_block", int(w.BackupBlock)),
	)
}

// Repair says what a read did to bring the value block and its backup back
// to the same balance.
type Repair int

// Repairs, by the rule of the package doc: a valid value block is the truth.
const (
	// RepairNone: both blocks held the same balance.
	RepairNone Repair = iota
	// RepairBackup: the backup was invalid or held another balance (a
	// change torn after the value block was written); it was rewritten
	// from the value block.
	RepairBackup
	// RepairMain: the value block was invalid (a write torn while writing
	// it); it was restored from the backup.
	RepairMain
)

// String describes the repair.
func (r Repair) String() string {
	switch r {
	case RepairNone:
		return "none"
	case RepairBackup:
		return "backup rewritten from value block"
	case RepairMain:
		return "value block restored from backup"
	}
	return fmt.Sprintf("repair(%d)", int(r))
}

// LoadKeys stores key A and key B in the reader's slots, once, when a
// terminal whose convention has Preloaded is set up. Without Preloaded the
// wallet loads its key before every authentication and this is not needed.
func (w Wallet) LoadKeys(t apdu.Transmitter) error {
	if err := w.Validate(); err != nil {
		return err
	}
	if err := LoadKey(t, w.Slots.P1, w.Slots.SlotA, w.KeyA); err != nil {
		return err
	}
	return LoadKey(t, w.Slots.P1, w.Slots.SlotB, w.KeyB)
}

// State is what a read of the wallet found.
type State struct {
	// Balance is the balance in fen.
	Balance int64
	// Seq is the wallet's transaction sequence, kept in the address byte
	// of its value block: every change writes the new balance with Seq+1
	// (mod 256) in the same block write, so balance and sequence change
	// together or not at all. A balance alone cannot tell a change that
	// did not happen from one undone by a later change elsewhere (A-B-A);
	// the sequence can.
	Seq byte
	// Repair is what the read did to bring the two blocks together.
	Repair Repair
}

// Read returns the balance in fen and the repair made; see ReadState.
func (w Wallet) Read(t apdu.Transmitter) (int64, Repair, error) {
	st, err := w.ReadState(t)
	return st.Balance, st.Repair, err
}

// ReadState returns the wallet's balance and sequence. It checks that the sector is set up as a
// wallet (ErrNotWallet otherwise), reads the value block and its backup, and
// when they disagree repairs them by the rule of the package doc and says
// which repair it made. When the repair write fails, Read returns the
// balance all the same (by the rule it is what the card holds; the next read
// repairs again) together with the error.
//
// APDUs: load key A (unless preloaded), authenticate, read the trailer, the
// value block and the backup; a repair adds load key B, authenticate and
// one write.
func (w Wallet) ReadState(t apdu.Transmitter) (State, error) {
	if err := w.Validate(); err != nil {
		return State{}, err
	}
	if err := w.auth(t, KeyTypeA); err != nil {
		return State{}, err
	}
	s, err := w.inspect(t)
	st := State{Balance: s.balance, Seq: s.seq, Repair: s.repair}
	if err != nil || s.repair == RepairNone {
		return st, err
	}
	if err := w.auth(t, KeyTypeB); err != nil {
		return st, fmt.Errorf("%v not repaired: %w", s.repair, err)
	}
	if err := w.repair(t, s); err != nil {
		return st, err
	}
	return st, nil
}

// Change is one change of a wallet's balance, in fen.
type Change struct {
	Old, New int64
	// Seq is the wallet's sequence before the change; after it, Seq+1.
	Seq byte
	// Repair is what was done to the blocks before the change.
	Repair Repair
	// BackupStale is set when the value block was written (the change
	// happened) but the backup could not be: the next Read repairs it.
	BackupStale bool
}

// Happened resolves a change whose outcome was unknown (ErrOutcomeUnknown)
// from the state read on the card's next tap: true when the wallet holds
// the new balance at the next sequence, false when it holds the old balance
// at the same sequence, ErrBalanceMoved otherwise (the wallet changed since,
// elsewhere: only the records of every terminal can tell).
func (c Change) Happened(st State) (bool, error) {
	switch {
	case st.Seq == c.Seq+1 && st.Balance == c.New:
		return true, nil
	case st.Seq == c.Seq && st.Balance == c.Old:
		return false, nil
	}
	return false, fmt.Errorf("%w: %d fen at sequence %d; the change was %d to %d from sequence %d",
		ErrBalanceMoved, st.Balance, st.Seq, c.Old, c.New, c.Seq)
}

// WriteAhead is called by Decrement and Increment once the balance before
// and after the change are known, before anything is written to the card:
// the place to commit the journal row (DESIGN.md, money rule 2). When it
// returns an error, nothing is written and the change returns that error.
type WriteAhead func(Change) error

// Decrement takes amount fen from the wallet, as a purchase does. amount
// must be positive; more than the balance is ErrInsufficientBalance and
// nothing is written. ahead, when not nil, runs before the first write.
//
// On ErrOutcomeUnknown the returned Change holds the old and the new
// balance: resolve it with Change.Happened on the next tap. Any other error
// means the balance did not change.
func (w Wallet) Decrement(t apdu.Transmitter, amount int64, ahead WriteAhead) (Change, error) {
	return w.change(t, "decrement", amount, -1, ahead)
}

// Increment adds amount fen to the wallet, as a load does. amount must be
// positive and the balance may not pass MaxBalance (ErrBadAmount, nothing
// written). Otherwise as Decrement.
func (w Wallet) Increment(t apdu.Transmitter, amount int64, ahead WriteAhead) (Change, error) {
	return w.change(t, "increment", amount, +1, ahead)
}

// change is Decrement (sign -1) and Increment (sign +1). The write order:
// first any repair, so that the value block and the backup both hold the old
// balance; then the value block with the new balance; then the backup. A
// tear at any point leaves a card that Read brings back to the old or the
// new balance (see the package doc).
//
// APDUs: load key B (unless preloaded), authenticate, read the trailer, the
// value block and the backup, write the value block, write the backup.
func (w Wallet) change(t apdu.Transmitter, what string, amount int64, sign int64, ahead WriteAhead) (Change, error) {
	if err := w.Validate(); err != nil {
		return Change{}, err
	}
	if amount <= 0 || amount > MaxBalance {
		return Change{}, fmt.Errorf("%w: %s of %d fen; an amount is 1 to %d", ErrBadAmount, what, amount, MaxBalance)
	}
	if err := w.auth(t, KeyTypeB); err != nil {
		return Change{}, err
	}
	s, err := w.inspect(t)
	if err != nil {
		return Change{}, err
	}
	c := Change{Old: s.balance, New: s.balance + sign*amount, Seq: s.seq, Repair: s.repair}
	switch {
	case c.New < 0:
		return Change{}, fmt.Errorf("%s of %d fen from a balance of %d fen: %w", what, amount, c.Old, ErrInsufficientBalance)
	case c.New > MaxBalance:
		return Change{}, fmt.Errorf("%w: %s of %d fen to a balance of %d fen passes the card's most, %d", ErrBadAmount, what, amount, c.Old, MaxBalance)
	}
	if ahead != nil {
		if err := ahead(c); err != nil {
			return Change{}, fmt.Errorf("%s: write-ahead failed, card not written: %w", what, err)
		}
	}
	// A repair writes the balance the card already holds (by the rule), so
	// when it fails the balance is still the old one: not an unknown.
	if err := w.repair(t, s); err != nil {
		return Change{}, fmt.Errorf("%s not made, balance still %d fen: %w", what, c.Old, err)
	}
	if err := writeBlock(t, w.ValueBlock, EncodeValue(int32(c.New), c.Seq+1)); err != nil {
		// Written, not written or torn: only the card can tell.
		return c, fmt.Errorf("%s of %d fen: %w: %w", what, amount, ErrOutcomeUnknown, err)
	}
	// The value block is valid and holds the new balance: by the rule the
	// change has happened, whatever becomes of the backup.
	if err := writeBlock(t, w.BackupBlock, EncodeValue(int32(c.New), c.Seq+1)); err != nil {
		c.BackupStale = true
	}
	return c, nil
}

// auth loads the key of type kt (unless preloaded) and authenticates the
// wallet's sector with it.
func (w Wallet) auth(t apdu.Transmitter, kt KeyType) error {
	slot, key := w.Slots.SlotA, w.KeyA
	if kt == KeyTypeB {
		slot, key = w.Slots.SlotB, w.KeyB
	}
	if !w.Slots.Preloaded {
		if err := LoadKey(t, w.Slots.P1, slot, key); err != nil {
			return err
		}
	}
	return Authenticate(t, w.ValueBlock, kt, slot)
}

// snapshot is what inspect found: the balance and sequence by the rule,
// and the repair that makes both blocks hold them.
type snapshot struct {
	balance int64
	seq     byte
	repair  Repair
}

// inspect checks the sector's access bits and reads both blocks. The sector
// must be authenticated.
func (w Wallet) inspect(t apdu.Transmitter) (snapshot, error) {
	tb, err := ReadBlock(t, TrailerOf(w.Sector))
	if err != nil {
		return snapshot{}, err
	}
	tr, _ := ParseTrailer(tb[:]) // cannot fail: 16 bytes
	conds, err := tr.Access.Conds()
	if err != nil {
		return snapshot{}, fmt.Errorf("%w: sector %d: %w", ErrNotWallet, w.Sector, err)
	}
	if err := isWallet(conds, w.ValueBlock%BlocksPerSector, w.BackupBlock%BlocksPerSector); err != nil {
		return snapshot{}, fmt.Errorf("sector %d (access bits %v): %w", w.Sector, tr.Access, err)
	}
	m, err := ReadBlock(t, w.ValueBlock)
	if err != nil {
		return snapshot{}, err
	}
	b, err := ReadBlock(t, w.BackupBlock)
	if err != nil {
		return snapshot{}, err
	}
	return w.decide(m, b)
}

// decide applies the repair rule to the two blocks: a valid value block is
// the balance and sequence, and the backup is brought to it; an invalid
// value block is restored from a valid backup; neither valid is ErrCorrupt.
// A negative value is no balance: it is refused, never repaired over.
func (w Wallet) decide(m, b [BlockSize]byte) (snapshot, error) {
	mv, ma, merr := ParseValue(m[:])
	bv, ba, berr := ParseValue(b[:])
	switch {
	case merr == nil && mv < 0:
		return snapshot{}, fmt.Errorf("%w: value block %d holds %d", ErrCorrupt, w.ValueBlock, mv)
	case merr == nil && berr == nil && bv == mv && ba == ma:
		return snapshot{balance: int64(mv), seq: ma}, nil
	case merr == nil:
		return snapshot{balance: int64(mv), seq: ma, repair: RepairBackup}, nil
	case berr == nil && bv >= 0:
		return snapshot{balance: int64(bv), seq: ba, repair: RepairMain}, nil
	case berr == nil:
		return snapshot{}, fmt.Errorf("%w: value block %d: %v; backup %d holds %d", ErrCorrupt, w.ValueBlock, merr, w.BackupBlock, bv)
	}
	return snapshot{}, fmt.Errorf("%w: value block %d: %v; backup %d: %v", ErrCorrupt, w.ValueBlock, merr, w.BackupBlock, berr)
}

// repair writes the block that s says is wrong. The sector must be
// authenticated with key B.
func (w Wallet) repair(t apdu.Transmitter, s snapshot) error {
	var err error
	switch s.repair {
	case RepairBackup:
		err = writeBlock(t, w.BackupBlock, EncodeValue(int32(s.balance), s.seq))
	case RepairMain:
		err = writeBlock(t, w.ValueBlock, EncodeValue(int32(s.balance), s.seq))
	}
	if err != nil {
		return fmt.Errorf("%v: %w", s.repair, err)
	}
	return nil
}
