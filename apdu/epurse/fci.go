package epurse

import (
	"bytes"
	"fmt"

	"github.com/cardd/cardd/apdu"
)

// FCI tags (spec "Selecting"; ISO 7816-4 §5.3.3, EMV Book 1 §11.3.4).
const (
	tagFCI         = 0x6F
	tagDFName      = 0x84
	tagProprietary = 0xA5
	tagIssuerInfo  = 0x9F0C
	tagSFI         = 0x88
)

// FCI is the answer to SELECT of the e-purse application: 6F with the DF name
// (84) and a proprietary template (A5) whose 9F0C is a copy of EF 0x15, so a
// terminal learns the card number without a READ BINARY.
type FCI struct {
	// AID is the DF name (tag 84); nil when the card left it out.
	AID []byte
	// Info is the 9F0C copy of EF 0x15; nil when the card sends none.
	Info *IssuerInfo
}

// ParseFCI decodes a select answer. It needs the 6F template. A 9F0C of a
// length other than 30 bytes is some other issuer data, not a copy of EF
// 0x15, and leaves Info nil so the caller reads EF 0x15; a 30-byte 9F0C that
// does not parse is an error.
func ParseFCI(b []byte) (FCI, error) {
	ts, err := apdu.ParseTLV(b)
	if err != nil {
		return FCI{}, fmt.Errorf("FCI: %w", err)
	}
	fci, ok := child(ts, tagFCI)
	if !ok {
		return FCI{}, fmt.Errorf("%w: FCI has no 6F template", apdu.ErrMalformed)
	}
	var f FCI
	if name, ok := child(fci.Children, tagDFName); ok {
		f.AID = bytes.Clone(name.Value)
	}
	prop, ok := child(fci.Children, tagProprietary)
	if !ok {
		return f, nil
	}
	// Some cards nest 9F0C one level deeper (in BF0C), hence the deep search.
	if raw, ok := apdu.FindTLV(prop.Children, tagIssuerInfo); ok && len(raw.Value) == IssuerInfoLen {
		info, err := ParseIssuerInfo(raw.Value)
		if err != nil {
			return FCI{}, fmt.Errorf("FCI 9F0C: %w", err)
		}
		f.Info = &info
	}
	return f, nil
}

// Bytes encodes f as 6F{84 AID, A5{9F0C EF 0x15}}, leaving out what is nil.
// The simulated card answers SELECT with it.
func (f FCI) Bytes() []byte {
	var inner []byte
	if f.AID != nil {
		inner = apdu.AppendTLV(inner, tagDFName, f.AID)
	}
	if f.Info != nil {
		inner = apdu.AppendTLV(inner, tagProprietary, apdu.AppendTLV(nil, tagIssuerInfo, f.Info.Bytes()))
	}
	return apdu.AppendTLV(nil, tagFCI, inner)
}

// child returns the first object with the tag among ts, without descending:
// an FCI's 84 is a direct child of 6F, and a nested 84 means something else.
func child(ts []apdu.TLV, tag uint32) (apdu.TLV, bool) {
	for _, t := range ts {
		if t.Tag == tag {
			return t, true
		}
	}
	return apdu.TLV{}, false
}
