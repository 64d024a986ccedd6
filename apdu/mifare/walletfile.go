package mifare

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// WalletFile is a terminal's M1 wallet key file: where the wallet is and its
// sector keys. It holds keys: keep it 0600 (cardd refuses it otherwise).
//
//	{"sector": 1, "value_block": 4, "backup_block": 5,
//	 "key_a": "A0A1A2A3A4A5", "key_b": "B0B1B2B3B4B5"}
type WalletFile struct {
	Sector      byte `json:"sector"`
	ValueBlock  byte `json:"value_block"`
	BackupBlock byte `json:"backup_block"`
	KeyA        Key  `json:"key_a"`
	KeyB        Key  `json:"key_b"`
}

// ParseWalletFile reads a wallet key file's JSON (unknown fields refused, so
// a misspelt one is not silently left at zero) and returns the wallet for a
// reader with slots, validated.
func ParseWalletFile(b []byte, slots KeySlotConvention) (Wallet, error) {
	var f WalletFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return Wallet{}, fmt.Errorf("%w: wallet key file: %v", ErrBadArgument, err)
	}
	w := Wallet{Sector: f.Sector, ValueBlock: f.ValueBlock, BackupBlock: f.BackupBlock, KeyA: f.KeyA, KeyB: f.KeyB, Slots: slots}
	if err := w.Validate(); err != nil {
		return Wallet{}, fmt.Errorf("wallet key file: %w", err)
	}
	return w, nil
}
