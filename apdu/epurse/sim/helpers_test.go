package epursesim

import (
	"encoding/hex"
	"testing"

	"github.com/cardd/cardd/apdu/epurse"
	"github.com/cardd/cardd/internal/apdutest"
)

// unhex is apdutest.Unhex: hex with spaces, as the spec writes it.
func unhex(t testing.TB, s string) []byte { return apdutest.Unhex(t, s) }

func hexOf(b []byte) string { return hex.EncodeToString(b) }

func key16(t testing.TB, s string) epurse.Key16 {
	var k epurse.Key16
	if n := copy(k[:], unhex(t, s)); n != 16 {
		t.Fatalf("key %q is %d bytes", s, n)
	}
	return k
}

func b4(t testing.TB, s string) [4]byte {
	var a [4]byte
	if n := copy(a[:], unhex(t, s)); n != 4 {
		t.Fatalf("%q is %d bytes, want 4", s, n)
	}
	return a
}

func b6(t testing.TB, s string) [6]byte {
	var a [6]byte
	if n := copy(a[:], unhex(t, s)); n != 6 {
		t.Fatalf("%q is %d bytes, want 6", s, n)
	}
	return a
}
