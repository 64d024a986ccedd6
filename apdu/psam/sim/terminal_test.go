package psamsim

import (
	"errors"
	"slices"
	"testing"

	"github.com/cardd/cardd/apdu"
	"github.com/cardd/cardd/apdu/epurse"
	"github.com/cardd/cardd/apdu/psam"
)

func TestOpenSendsInOrder(t *testing.T) {
	rec := &recorder{t: newMemSAM(t)}
	info, err := psam.Open(rec)
	if err != nil {
		t.Fatal(err)
	}
	if info.TerminalID != testTerm || info.App.FileID != psam.FileIDApp {
		t.Fatalf("%+v", info)
	}
	want := []string{
		"00A40000023F00", "00C0000012", // MF, its FCI fetched as a T=0 SAM gives it
		"00B0960006",
		"00A40000021001", "00C000000D",
	}
	if !slices.Equal(rec.sent, want) {
		t.Fatalf("sent\n%v\nwant\n%v", rec.sent, want)
	}
}

func TestSelectAppFallback(t *testing.T) {
	sam := newMemSAM(t)
	apps := []psam.App{{AID: []byte{0xA0, 0, 0, 0, 0x99}}, {FileID: 0xDF03}, {FileID: psam.FileIDApp}}
	a, err := psam.SelectApp(sam, apps...)
	if err != nil || a.FileID != psam.FileIDApp {
		t.Fatalf("SelectApp = %v, %v", a, err)
	}
	a, err = psam.SelectApp(sam, psam.App{AID: epurse.AIDCityCard})
	if err != nil || a.String() != "AID A00000000386980701" {
		t.Fatalf("by AID: %v, %v", a, err)
	}
	if _, err := psam.SelectApp(sam, apps[:2]...); !errors.Is(err, apdu.ErrFileNotFound) {
		t.Fatalf("none there: %v", err)
	}
	if _, err := psam.SelectApp(sam, psam.App{}); !errors.Is(err, epurse.ErrBadArgument) {
		t.Fatalf("empty app: %v", err)
	}
	// A refusal other than "not here" stops the search.
	broken := &script{answer: func([]byte, int) []byte { return []byte{0x6E, 0x00} }}
	if _, err := psam.SelectApp(broken, apps...); !errors.Is(err, apdu.ErrCLANotSupported) || len(broken.sent) != 1 {
		t.Fatalf("broken PSAM: %v after %d commands", err, len(broken.sent))
	}
}
