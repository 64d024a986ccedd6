package mifare

import (
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
)

// Key is a 6-byte MIFARE Classic sector key (key A or key B).
//
// Its value never prints: String, every fmt verb and slog show "[redacted]",
// so a key that slips into a log line does not leak. MarshalText is still
// hex, because configuration and card files must hold the value.
type Key [6]byte

// TransportKey is the key A and key B of every sector of a blank card.
var TransportKey = Key{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}

const redacted = "[redacted]"

// String returns "[redacted]".
func (Key) String() string { return redacted }

// GoString returns "[redacted]", so %#v does not print the bytes either.
func (Key) GoString() string { return redacted }

// Format prints "[redacted]" for every verb, %x and %d included.
func (Key) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redacted)) }

// LogValue keeps slog, whose JSON handler would otherwise use MarshalText,
// from writing the key.
func (Key) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalText encodes the key as 12 upper-case hex digits.
func (k Key) MarshalText() ([]byte, error) {
	return []byte(strings.ToUpper(hex.EncodeToString(k[:]))), nil
}

// UnmarshalText reads 12 hex digits. Its errors never quote the input, which
// is a key.
func (k *Key) UnmarshalText(b []byte) error {
	var v Key
	if len(b) != 2*len(v) {
		return fmt.Errorf("%w: a key is 12 hex digits, got %d characters", ErrBadArgument, len(b))
	}
	if _, err := hex.Decode(v[:], b); err != nil {
		return fmt.Errorf("%w: a key is 12 hex digits, found a character that is not one", ErrBadArgument)
	}
	*k = v
	return nil
}

// KeyType says which of a sector's keys an authentication uses; its value is
// the key type byte of GENERAL AUTHENTICATE (and the MIFARE command).
type KeyType byte

// Key types.
const (
	KeyTypeA KeyType = 0x60
	KeyTypeB KeyType = 0x61
)

// String is "key A" or "key B".
func (kt KeyType) String() string {
	switch kt {
	case KeyTypeA:
		return "key A"
	case KeyTypeB:
		return "key B"
	}
	return fmt.Sprintf("key type %#02x", byte(kt))
}

func (kt KeyType) check() error {
	if kt != KeyTypeA && kt != KeyTypeB {
		return fmt.Errorf("%w: %v is neither key A (60) nor key B (61)", ErrBadArgument, kt)
	}
	return nil
}

// LOAD KEYS key structures (P1, PC/SC part 3): b7 0 a card key, b6 0 plain
// transmission, b5 the memory. Secured transmission and reader keys are not
// supported.
const (
	KeyStructureVolatile    byte = 0x00
	KeyStructureNonVolatile byte = 0x20
)

// KeySlotConvention is how a reader brand wants keys loaded (FF 82 P1 P2)
// and named in GENERAL AUTHENTICATE: P1 is the key structure, the slots are
// P2 of LOAD KEYS and the key number of the authentication. Readers differ:
// ACS (ACR122U, ACR1252U) take P1 00 into volatile slots 00 and 01; some
// Identiv/OMNIKEY readers want P1 20, non-volatile memory. The zero value is
// P1 00 with both keys in slot 00.
type KeySlotConvention struct {
	// P1 is KeyStructureVolatile or KeyStructureNonVolatile.
	P1 byte
	// SlotA and SlotB are the slots key A and key B are loaded into. They
	// may be the same: each authentication loads its key first.
	SlotA, SlotB byte
	// Preloaded says the keys were stored in the reader once, when the
	// terminal was set up (Wallet.LoadKeys), and are not sent again before
	// each authentication. Non-volatile reader memory wears out with writes,
	// so a reader that keeps keys there should be loaded once, not per tap.
	Preloaded bool
}

// Conventions of common readers.
var (
	// KeySlotsACS is ACS's: volatile memory, key A in slot 00, key B in 01.
	KeySlotsACS = KeySlotConvention{P1: KeyStructureVolatile, SlotA: 0x00, SlotB: 0x01}
	// KeySlotsNonVolatile is P1 20 (some Identiv/OMNIKEY readers), keys
	// loaded once at setup into slots 00 and 01.
	KeySlotsNonVolatile = KeySlotConvention{P1: KeyStructureNonVolatile, SlotA: 0x00, SlotB: 0x01, Preloaded: true}
)

// Validate checks that the convention can be sent: P1 is one of the two key
// structures, and preloaded keys sit in non-volatile memory (volatile keys
// are lost when the reader restarts, and every tap would then fail with
// ErrAuth) in two different slots.
func (c KeySlotConvention) Validate() error {
	if c.P1 != KeyStructureVolatile && c.P1 != KeyStructureNonVolatile {
		return fmt.Errorf("%w: LOAD KEYS P1 %02X is neither 00 (volatile) nor 20 (non-volatile)", ErrBadArgument, c.P1)
	}
	if c.Preloaded && c.P1 != KeyStructureNonVolatile {
		return fmt.Errorf("%w: preloaded keys must be in non-volatile memory (P1 20), a reader loses volatile ones when it restarts", ErrBadArgument)
	}
	if c.Preloaded && c.SlotA == c.SlotB {
		return fmt.Errorf("%w: preloaded keys A and B need two slots, both are %02X", ErrBadArgument, c.SlotA)
	}
	return nil
}

// Slot returns the slot of key type kt.
func (c KeySlotConvention) Slot(kt KeyType) byte {
	if kt == KeyTypeB {
		return c.SlotB
	}
	return c.SlotA
}
