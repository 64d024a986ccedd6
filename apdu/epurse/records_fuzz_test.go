package epurse

import (
	"bytes"
	"errors"
	"testing"

	"github.com/cardd/cardd/apdu"
)

// The parsers read what a card sends, and a card can send anything: they
// must never panic, must fail with ErrMalformed or ErrBadRecord, and what
// they accept must encode back. Seeds beyond the ones below live in
// testdata/fuzz/<FuzzName>/.

// parseError reports whether err is one of the errors a parser may return.
func parseError(err error) bool {
	return errors.Is(err, apdu.ErrMalformed) || errors.Is(err, ErrBadRecord)
}

func FuzzParseIssuerInfo(f *testing.F) {
	f.Add(unhex(f, ef15))
	f.Add(make([]byte, IssuerInfoLen))
	f.Fuzz(func(t *testing.T, b []byte) {
		i, err := ParseIssuerInfo(b)
		if err != nil {
			if !parseError(err) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		// Every byte of EF 0x15 is kept, so the encoding is exact.
		if got := i.Bytes(); !bytes.Equal(got, b) {
			t.Fatalf("Bytes = %X, want %X", got, b)
		}
	})
}

func FuzzParseHolder(f *testing.F) {
	f.Add(bytes.Repeat([]byte{0xFF}, HolderLen))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHolder(b)
		if err != nil {
			if !parseError(err) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		// Padding is not kept (cards use 00, 20 or FF), so compare what it
		// means: encoding and parsing again gives the same holder.
		enc, err := h.Bytes()
		if err != nil {
			t.Fatalf("parsed %+v but cannot encode it: %v", h, err)
		}
		again, err := ParseHolder(enc)
		if err != nil || again != h {
			t.Fatalf("round trip: %+v, %v; want %+v", again, err, h)
		}
	})
}

func FuzzParseLogRecord(f *testing.F) {
	f.Add(unhex(f, logRec))
	f.Add(make([]byte, LogRecordLen))
	// Records that do not parse: a 13th month, one cut short.
	f.Add(unhex(f, "0005 000000 00000100 06 001122334455 20121399 090000"))
	f.Add(unhex(f, logRec)[:LogRecordLen-1])
	f.Fuzz(func(t *testing.T, b []byte) {
		r, empty, err := ParseLogRecord(b)
		if err != nil {
			if !parseError(err) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if empty != allZero(b) {
			t.Fatalf("empty = %v for %X", empty, b)
		}
		got, err := r.Bytes()
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("Bytes = %X, %v; want %X", got, err, b)
		}
	})
}

func FuzzParseFCI(f *testing.F) {
	info := unhex(f, ef15)
	f.Add(FCI{AID: AIDCityCard, Info: &IssuerInfo{}}.Bytes())
	f.Add(apdu.AppendTLV(nil, 0x6F, append(apdu.AppendTLV(nil, 0x84, AIDTUnion), apdu.AppendTLV(nil, 0xA5, apdu.AppendTLV(nil, 0x9F0C, info))...)))
	f.Fuzz(func(t *testing.T, b []byte) {
		fci, err := ParseFCI(b)
		if err != nil {
			if !parseError(err) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		// Other tags are not kept, so compare what the FCI means.
		again, err := ParseFCI(fci.Bytes())
		if err != nil {
			t.Fatalf("ParseFCI(Bytes()) of %+v: %v", fci, err)
		}
		if !bytes.Equal(again.AID, fci.AID) || (again.AID == nil) != (fci.AID == nil) {
			t.Fatalf("AID %X became %X", fci.AID, again.AID)
		}
		if (again.Info == nil) != (fci.Info == nil) || (fci.Info != nil && *again.Info != *fci.Info) {
			t.Fatalf("Info %+v became %+v", fci.Info, again.Info)
		}
	})
}
