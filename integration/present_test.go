package integration

import (
	"testing"

	"github.com/ebfe/scard"
)

// cardPresent asks pcscd, without waiting, whether a card is in the reader.
func cardPresent(t testing.TB, name string) bool {
	t.Helper()
	ctx, err := scard.EstablishContext()
	if err != nil {
		t.Fatalf("pcscd: %v", err)
	}
	defer ctx.Release()
	rs := []scard.ReaderState{{Reader: name, CurrentState: scard.StateUnaware}}
	if err := ctx.GetStatusChange(rs, 0); err != nil {
		t.Fatalf("SCardGetStatusChange(%q): %v", name, err)
	}
	return rs[0].EventState&scard.StatePresent != 0
}
