package epurse

import (
	"encoding/hex"
	"fmt"
	"log/slog"
)

// Key16 is a double-length (16-byte) 3DES key, K1 ‖ K2, used as K1 K2 K1.
//
// Its value never prints: String, every fmt verb and slog show "[redacted]",
// so a key that slips into a log line does not leak. MarshalText is still
// hex, because key files and card files must hold the value.
type Key16 [16]byte

const redacted = "[redacted]"

// String returns "[redacted]".
func (Key16) String() string { return redacted }

// GoString returns "[redacted]", so %#v does not print the bytes either.
func (Key16) GoString() string { return redacted }

// Format prints "[redacted]" for every verb, %x and %d included.
func (Key16) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redacted)) }

// LogValue keeps slog, whose JSON handler would otherwise use MarshalText,
// from writing the key.
func (Key16) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalText encodes the key as 32 upper-case hex digits, for key files.
func (k Key16) MarshalText() ([]byte, error) {
	out := make([]byte, hex.EncodedLen(len(k)))
	hex.Encode(out, k[:])
	for i, c := range out {
		if c >= 'a' {
			out[i] = c - 'a' + 'A'
		}
	}
	return out, nil
}

// UnmarshalText reads 32 hex digits. Its errors never quote the input, which
// is a key.
func (k *Key16) UnmarshalText(b []byte) error {
	var v Key16
	if hex.DecodedLen(len(b)) != len(v) || len(b)%2 != 0 {
		return fmt.Errorf("%w: a key is 32 hex digits, got %d characters", ErrBadArgument, len(b))
	}
	if _, err := hex.Decode(v[:], b); err != nil {
		return fmt.Errorf("%w: a key is 32 hex digits, found a character that is not one", ErrBadArgument)
	}
	*k = v
	return nil
}

// MasterKeys are the issuer master keys from which every card's keys are
// diversified. They live at the host (an HSM in production) or, for purchase,
// in the PSAM; never on a terminal or a card (DESIGN.md, money rule 6).
type MasterKeys struct {
	DLK Key16 `json:"dlk"` // load
	DPK Key16 `json:"dpk"` // purchase
	DTK Key16 `json:"dtk"` // TAC
	// DAMK is the application maintenance master key, which MACs APPLICATION
	// BLOCK and UNBLOCK (docs/epurse.md, "Blocking a card"). Optional: a key
	// file written before it existed has none, and its cards cannot be
	// blocked on the chip (the host refuses to MAC the command).
	DAMK Key16 `json:"damk,omitzero"`
}

// CardKeys are one card's keys, diversified from MasterKeys with the card's
// application serial. A card (or its simulation) holds only these.
type CardKeys struct {
	DLK Key16 `json:"dlk"` // load
	DPK Key16 `json:"dpk"` // purchase
	DTK Key16 `json:"dtk"` // TAC
	// DAMK is the card's application maintenance key; zero on a card
	// issued from masters without one, which then refuses APPLICATION BLOCK.
	DAMK Key16 `json:"damk,omitzero"`
}

// Diversify derives the keys of the card with the given 10-byte application
// serial (spec "Keys and MACs").
func (m MasterKeys) Diversify(appSerial []byte) CardKeys {
	k := CardKeys{
		DLK: DiversifyKey(m.DLK, appSerial),
		DPK: DiversifyKey(m.DPK, appSerial),
		DTK: DiversifyKey(m.DTK, appSerial),
	}
	if m.DAMK != (Key16{}) {
		k.DAMK = DiversifyKey(m.DAMK, appSerial)
	}
	return k
}

// LogValue keeps slog's JSON handler from marshalling the keys as hex.
func (MasterKeys) LogValue() slog.Value { return slog.StringValue(redacted) }

// LogValue keeps slog's JSON handler from marshalling the keys as hex.
func (CardKeys) LogValue() slog.Value { return slog.StringValue(redacted) }
