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
	// tagIssuerInfoSZT holds the EF 0x15 image on Shenzhen Tong cards that
	// send no 9F0C (Metrodroid, NewShenzhenTransitData.getTagInfo).
	tagIssuerInfoSZT = 0x8C
)

// FCI is the answer to SELECT of the e-purse application: 6F with the DF name
// (84) and a proprietary template (A5) whose 9F0C is a copy of EF 0x15, so a
// terminal learns the card number without a READ BINARY.
type FCI struct {
	// AID is the DF name (tag 84); nil when the card left it out.
	AID []byte
	// Info is the copy of EF 0x15 decoded with DecodeIssuerInfo; nil when
	// the card sends none, or one too short to hold the validity dates.
	Info *IssuerInfo
	// InfoRaw is the copy of EF 0x15 as the card sent it, of whatever
	// length: 30 bytes on most cards, 32 on Shenzhen Tong. Profiles tell
	// families apart by it.
	InfoRaw []byte
	// InfoProblems are the fields of Info DecodeIssuerInfo could not read.
	InfoProblems []error
	// Unreadable is set by Select when the card selected the application
	// (9000) but answered with data that is not an FCI cardd can parse: the
	// application is selected all the same, and the caller reads EF 0x15.
	Unreadable error
}

// ParseFCI decodes a select answer. It needs the 6F template. The copy of
// EF 0x15 is 9F0C in the proprietary template A5 (or, on some Shenzhen Tong
// cards, 8C); one of 28 bytes or more is decoded leniently into Info, since
// issuers differ in its length (30 or 32 bytes) and in how they number the
// card. A shorter one is some other issuer data and leaves Info nil, so the
// caller reads EF 0x15 itself.
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
	raw, ok := apdu.FindTLV(prop.Children, tagIssuerInfo)
	if !ok {
		raw, ok = apdu.FindTLV(prop.Children, tagIssuerInfoSZT)
	}
	if !ok {
		return f, nil
	}
	f.InfoRaw = bytes.Clone(raw.Value)
	if info, problems, err := DecodeIssuerInfo(raw.Value); err == nil {
		f.Info, f.InfoProblems = &info, problems
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
