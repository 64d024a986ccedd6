package mifare

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestKeyNeverPrints(t *testing.T) {
	k := Key{0xAB, 0xCD, 0xEF, 0x12, 0x34, 0x56}
	w := testWallet()
	w.KeyA, w.KeyB = k, k
	var out []string
	for _, f := range []string{"%v", "%s", "%x", "%X", "%d", "%#v", "%+v", "% x"} {
		out = append(out, fmt.Sprintf(f, k), fmt.Sprintf(f, w), fmt.Sprintf(f, &w))
	}
	out = append(out, k.String(), w.String())
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	log.Info("x", "key", k, "wallet", w, "trailer", Trailer{KeyA: k, KeyB: k})
	out = append(out, buf.String())
	for _, s := range out {
		for _, leak := range []string{"abcdef", "ABCDEF", "171 205", "[171"} {
			if strings.Contains(s, leak) {
				t.Errorf("key leaked: %q", s)
			}
		}
	}
	if k.String() != "[redacted]" {
		t.Errorf("String = %q", k.String())
	}
}

func TestKeyText(t *testing.T) {
	k := Key{0xAB, 0xCD, 0xEF, 0x12, 0x34, 0x56}
	b, err := k.MarshalText()
	if err != nil || string(b) != "ABCDEF123456" {
		t.Fatalf("MarshalText = %q, %v", b, err)
	}
	var back Key
	if err := json.Unmarshal([]byte(`"abcdef123456"`), &back); err != nil || back != k {
		t.Fatalf("UnmarshalText: %v", err)
	}
	for _, bad := range []string{`"ABCDEF12345"`, `"ABCDEF1234567"`, `"ABCDEF12345G"`} {
		err := json.Unmarshal([]byte(bad), &back)
		if !errors.Is(err, ErrBadArgument) || strings.Contains(err.Error(), "ABCDEF") {
			t.Errorf("%s: %v", bad, err)
		}
	}
}

func TestKeySlotConventionValidate(t *testing.T) {
	for _, c := range []KeySlotConvention{{}, KeySlotsACS, KeySlotsNonVolatile, {P1: 0x20}, {P1: 0x00, SlotA: 1, SlotB: 1}} {
		if err := c.Validate(); err != nil {
			t.Errorf("%+v: %v", c, err)
		}
	}
	for _, c := range []KeySlotConvention{
		{P1: 0x80},                            // reader key
		{P1: 0x40},                            // secured transmission
		{P1: 0x01},                            // RFU bits
		{P1: 0x00, Preloaded: true, SlotB: 1}, // volatile keys lost at reader restart
		{P1: 0x20, Preloaded: true},           // both keys in one slot
	} {
		if err := c.Validate(); !errors.Is(err, ErrBadArgument) {
			t.Errorf("%+v: %v, want ErrBadArgument", c, err)
		}
	}
	if KeySlotsACS.Slot(KeyTypeA) != 0 || KeySlotsACS.Slot(KeyTypeB) != 1 {
		t.Error("ACS slots")
	}
}
