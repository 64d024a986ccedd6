package mifare

import (
	"fmt"
	"log/slog"
)

// AccessCond is the access condition of one block of a sector: its bits C1
// C2 C3 read as a 3-bit number, C1 the most significant. It means one thing
// for a data block and another for the trailer (NXP MF1S50 datasheet, tables
// 7 and 8).
type AccessCond byte

// Access conditions used here. For data blocks: CondTransport lets either
// key do anything; CondValue lets either key read and decrement and only key
// B write and increment. For trailers: CondTrailerTransport lets key A
// rewrite the whole trailer (and leaves key B readable, so it is no key);
// CondTrailerWallet keeps key B secret and lets only key B change keys and
// access bits.
const (
	CondTransport        AccessCond = 0b000
	CondValue            AccessCond = 0b110
	CondTrailerTransport AccessCond = 0b001
	CondTrailerWallet    AccessCond = 0b011
)

// String is the condition as its bits C1C2C3, "110".
func (c AccessCond) String() string { return fmt.Sprintf("%03b", byte(c)&7) }

// AccessBits are bytes 6 to 8 of a sector trailer: the access conditions of
// the sector's four blocks, each bit stored once plain and once inverted.
type AccessBits [3]byte

// The two sector configurations of a wallet card (spec "MIFARE Classic
// wallet"): WalletAccess is value blocks 0-2 (110) with trailer 011,
// TransportAccess what a blank card ships with (000 and 001).
var (
	WalletAccess    = AccessBits{0x08, 0x77, 0x8F}
	TransportAccess = AccessBits{0xFF, 0x07, 0x80}
)

// Conds decodes the access conditions of blocks 0 to 3 (3 is the trailer).
// It fails with ErrBadAccessBits when an inverted copy does not match: a
// card treats such a sector as locked for ever.
func (a AccessBits) Conds() ([BlocksPerSector]AccessCond, error) {
	var c [BlocksPerSector]AccessCond
	// Byte 6: ~C2 in the high nibble, ~C1 in the low. Byte 7: C1 high, ~C3
	// low. Byte 8: C3 high, C2 low. Bit i of each nibble is block i.
	c1, c2, c3 := a[1]>>4, a[2]&0x0F, a[2]>>4
	if ^a[0]&0x0F != c1 || ^a[0]>>4 != c2 || ^a[1]&0x0F != c3 {
		return c, fmt.Errorf("%w: % X (an inverted copy does not match)", ErrBadAccessBits, a[:])
	}
	for i := range c {
		c[i] = AccessCond((c1>>i&1)<<2 | (c2>>i&1)<<1 | c3>>i&1)
	}
	return c, nil
}

// Validate returns nil when the access bits are well formed.
func (a AccessBits) Validate() error {
	_, err := a.Conds()
	return err
}

// EncodeAccessBits builds the access bytes for the conditions of blocks 0 to
// 3 (3 is the trailer). Its result always validates.
func EncodeAccessBits(c [BlocksPerSector]AccessCond) AccessBits {
	var c1, c2, c3 byte
	for i, v := range c {
		c1 |= byte(v>>2&1) << i
		c2 |= byte(v>>1&1) << i
		c3 |= byte(v&1) << i
	}
	return AccessBits{
		(^c2&0x0F)<<4 | ^c1&0x0F,
		c1<<4 | ^c3&0x0F,
		c3<<4 | c2,
	}
}

// String is the access bytes in hex, "08 77 8F".
func (a AccessBits) String() string { return fmt.Sprintf("% X", a[:]) }

// Trailer is a sector trailer: key A (6 bytes), the access bits (3), the
// general purpose byte (1) and key B (6). Read from a card, key A is always
// zeros and key B is zeros unless the access conditions let it be read.
type Trailer struct {
	KeyA   Key
	Access AccessBits
	GPB    byte
	KeyB   Key
}

// LogValue shows the access bits and the GPB, never the keys.
func (t Trailer) LogValue() slog.Value {
	return slog.GroupValue(slog.String("access", t.Access.String()), slog.Int("gpb", int(t.GPB)))
}

// DefaultGPB is the general purpose byte of a blank card, which the
// simulated card and its issuing keep; it means nothing to the chip.
const DefaultGPB = 0x69

// Bytes encodes the trailer for a write. It refuses access bits that do not
// validate, since a card that received them would lock the sector for ever:
// every trailer this package writes goes through here.
func (t Trailer) Bytes() ([BlockSize]byte, error) {
	var b [BlockSize]byte
	if err := t.Access.Validate(); err != nil {
		return b, err
	}
	copy(b[0:6], t.KeyA[:])
	copy(b[6:9], t.Access[:])
	b[9] = t.GPB
	copy(b[10:16], t.KeyB[:])
	return b, nil
}

// ParseTrailer splits a trailer block into its parts. It does not validate
// the access bits: what a card holds is what it holds; check Access.
func ParseTrailer(b []byte) (Trailer, error) {
	var t Trailer
	if len(b) != BlockSize {
		return t, wrongLength("trailer", len(b), "16")
	}
	copy(t.KeyA[:], b[0:6])
	copy(t.Access[:], b[6:9])
	t.GPB = b[9]
	copy(t.KeyB[:], b[10:16])
	return t, nil
}

// isWallet checks that the conditions protect a wallet whose value and backup
// sit at indexes main and backup of the sector: both blocks value blocks
// (110: key A reads and decrements, only key B writes and increments), and the
// trailer 011 (key B secret; only key B changes keys and access bits).
func isWallet(c [BlocksPerSector]AccessCond, main, backup byte) error {
	if c[main] != CondValue || c[backup] != CondValue || c[BlocksPerSector-1] != CondTrailerWallet {
		return fmt.Errorf("%w: blocks %d and %d are %v and %v, trailer %v; a wallet needs %v, %v and %v",
			ErrNotWallet, main, backup, c[main], c[backup], c[BlocksPerSector-1], CondValue, CondValue, CondTrailerWallet)
	}
	return nil
}
