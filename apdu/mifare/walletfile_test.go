package mifare

import (
	"errors"
	"strings"
	"testing"
)

func TestParseWalletFile(t *testing.T) {
	w, err := ParseWalletFile([]byte(`{"sector":1,"value_block":4,"backup_block":5,"key_a":"A0A1A2A3A4A5","key_b":"b0b1b2b3b4b5"}`), KeySlotsACS)
	if err != nil {
		t.Fatal(err)
	}
	if w.Sector != 1 || w.ValueBlock != 4 || w.BackupBlock != 5 || w.KeyA != (Key{0xA0, 0xA1, 0xA2, 0xA3, 0xA4, 0xA5}) || w.KeyB[0] != 0xB0 {
		t.Fatalf("wallet %+v", w)
	}
	for _, bad := range []string{
		`{"sector":1,"value_block":4,"backup_block":5,"key_a":"A0A1A2A3A4","key_b":"B0B1B2B3B4B5"}`,   // short key
		`{"sector":1,"value_block":4,"backup_block":4,"key_a":"A0A1A2A3A4A5","key_b":"B0B1B2B3B4B5"}`, // same block
		`{"sector":0,"value_block":1,"backup_block":2,"key_a":"A0A1A2A3A4A5","key_b":"B0B1B2B3B4B5"}`, // sector 0
		`{"sector":1,"value_block":4,"backup_block":5,"key_a":"A0A1A2A3A4A5","keyb":"B0B1B2B3B4B5"}`,  // misspelt
		`not json`,
	} {
		_, err := ParseWalletFile([]byte(bad), KeySlotsACS)
		if !errors.Is(err, ErrBadArgument) {
			t.Errorf("%s: err %v, want ErrBadArgument", bad, err)
		}
		if err != nil && strings.Contains(err.Error(), "A0A1A2") {
			t.Errorf("%s: the error shows a key: %v", bad, err)
		}
	}
}
