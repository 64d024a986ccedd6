package epurse

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// Numbering is how a family of cards forms the number people know a card
// by, the one printed on it. docs/cards.md gives the source of each.
type Numbering string

// Numberings.
const (
	// NumberBCD is the packed BCD digits of EF 0x15 bytes 12-19, F-padded:
	// our own cards and the city cards that number in BCD.
	NumberBCD Numbering = "bcd"
	// NumberTUnion is the 20 hex digits of EF 0x15 bytes 10-19 without the
	// first: the 19 digits printed on a T-Union (JT/T 978) card.
	NumberTUnion Numbering = "tunion"
	// NumberBE32 is the big-endian integer of EF 0x15 bytes 16-19 in
	// decimal: Shanghai public transport cards.
	NumberBE32 Numbering = "be32"
	// NumberLE32 is the little-endian integer of EF 0x15 bytes 16-19 in
	// decimal: City Union cards whose serial is not BCD.
	NumberLE32 Numbering = "le32"
	// NumberLE32Check is NumberLE32 followed by a check digit that makes
	// the digit sum a multiple of 10: Shenzhen Tong, printed "sn(d)".
	NumberLE32Check Numbering = "le32-check"
	// NumberFileHex is the hex digits of bytes of another file
	// (Profile.NumberFile): Beijing (EF 4) and Wuhan Tong (EF 0x0A).
	NumberFileHex Numbering = "file-hex"
	// NumberSerialHex is the hex of the whole application serial, for a
	// card of an issuer cardd does not know. It is shown, flagged, but it is
	// not a number any issuer printed, so no money moves on it.
	NumberSerialHex Numbering = "serial-hex"
)

// FileRange is a span of bytes of a transparent file of the application,
// read by short file id.
type FileRange struct {
	SFI    byte
	Offset int
	Len    int
}

// Profile is what cardd knows about one family of e-purse cards: how it is
// recognised, how its number is formed, how its balance is read. Profiles
// are data; Profiles lists them in the order Identify tries them.
type Profile struct {
	// Name is the family's name in config, JSON and logs: "tunion".
	Name string
	// Title is the family's own name, as on the card: "交通联合".
	Title string
	// TitleEN is its English name: "T-Union".
	TitleEN string
	// AIDs are the DF names that select its application, tried in order
	// by Select before the file id 1001. A card selected by one of them
	// belongs to the family unless City or FCILen says otherwise.
	AIDs [][]byte
	// City, when not zero, is the city code (EF 0x15 bytes 2-3) a card
	// must have: Shanghai's cards are City Union cards of city 2000.
	City uint16
	// FCILen, when not zero, recognises a card selected by file id (no
	// DF name) by the length of its FCI's copy of EF 0x15: 32 bytes on
	// Shenzhen Tong.
	FCILen int
	// Probe, when its SFI is set, recognises a card selected by file id
	// that no other profile claims: the file starts with ProbePrefix
	// (Beijing's EF 4 starts 10 00, as NFSee recognises it).
	Probe       FileRange
	ProbePrefix []byte
	// Numbering forms the card number; NumberBCD falls back to Fallback
	// when bytes 12-19 are not BCD.
	Numbering Numbering
	// Fallback is the numbering of a card whose EF 0x15 does not hold its
	// number in the family's usual way; "" means none.
	Fallback Numbering
	// NumberFile is where NumberFileHex reads.
	NumberFile FileRange
	// ValiditySFI, when set, is the file holding the start and expiry
	// dates (BCD YYYYMMDD at StartAt and EndAt) instead of EF 0x15 bytes
	// 20-27.
	ValiditySFI    byte
	StartAt, EndAt int
	// Balance says how to read GET BALANCE's 32 bits.
	Balance BalanceRule
	// SecondPurse: the card answers GET BALANCE with P1 01 with a second
	// purse, which the shown balance accounts for (Shown).
	SecondPurse bool
	// Sources says where the facts come from, for docs/cards.md.
	Sources string
}

// BalanceRule is how a family's GET BALANCE answer becomes fen.
type BalanceRule int

const (
	// BalanceAll32 reads all 32 bits unsigned: our own cards.
	BalanceAll32 BalanceRule = iota
	// BalanceLow31Signed keeps the low 31 bits as a signed number: the top
	// bit is an issuer flag (Shenzhen Tong answers 80 00 16 4E for 57.10),
	// and a balance below zero is a card in overdraft.
	BalanceLow31Signed
	// BalanceLow31 keeps the low 31 bits unsigned (T-Union).
	BalanceLow31
)

// Decode applies the rule to the 4 bytes of GET BALANCE.
func (r BalanceRule) Decode(w uint32) int64 {
	switch r {
	case BalanceLow31Signed:
		v := int64(w & 0x7FFFFFFF)
		if v&0x40000000 != 0 {
			v -= 1 << 31
		}
		return v
	case BalanceLow31:
		return int64(w & 0x7FFFFFFF)
	}
	return int64(w)
}

// AIDs of the families other than the city card and T-Union, which have
// their own names (Metrodroid's ChinaCardTransitFactory appNames).
var (
	AIDShenzhenTong = []byte("PAY.SZT")
	AIDWuhanTong    = []byte("AP1.WHCTC")
	AIDBeijingOC    = []byte("OC")
	AIDBeijingPBOC  = []byte("PBOC")
	AIDSuzhou       = []byte("SUXIN.DDF01")
)

const metrodroid = "Metrodroid (github.com/metrodroid/metrodroid) src/commonMain/kotlin/au/id/micolous/metrodroid/transit/china/"

// Built-in profiles. Campus is our own cards; the others are the families
// of Chinese e-purse cards public readers support.
var (
	ProfileCampus = &Profile{
		Name: "campus", Title: "校园卡", TitleEN: "campus card",
		AIDs:      [][]byte{AIDCityCard, AIDTUnion},
		Numbering: NumberBCD,
		Balance:   BalanceAll32,
		Sources:   "this repository: docs/cards.md, our own cards",
	}
	ProfileTUnion = &Profile{
		Name: "tunion", Title: "交通联合", TitleEN: "T-Union",
		AIDs:        [][]byte{AIDTUnion},
		Numbering:   NumberTUnion,
		Fallback:    NumberSerialHex,
		Balance:     BalanceLow31,
		SecondPurse: true,
		Sources:     metrodroid + "TUnionTransitData.kt",
	}
	ProfileShanghai = &Profile{
		Name: "shanghai", Title: "上海公共交通卡", TitleEN: "Shanghai Public Transportation Card",
		AIDs:      [][]byte{AIDCityCard},
		City:      0x2000,
		Numbering: NumberBE32,
		Balance:   BalanceLow31Signed,
		Sources:   metrodroid + "CityUnionTransitData.kt",
	}
	ProfileCityUnion = &Profile{
		Name: "cityunion", Title: "城市一卡通", TitleEN: "City Union",
		AIDs:      [][]byte{AIDCityCard},
		Numbering: NumberBCD,
		Fallback:  NumberLE32,
		Balance:   BalanceLow31Signed,
		Sources:   metrodroid + "CityUnionTransitData.kt",
	}
	ProfileShenzhen = &Profile{
		Name: "shenzhen", Title: "深圳通", TitleEN: "Shenzhen Tong",
		AIDs:      [][]byte{AIDShenzhenTong},
		FCILen:    32,
		Numbering: NumberLE32Check,
		Balance:   BalanceLow31Signed,
		Sources:   metrodroid + "NewShenzhenTransitData.kt",
	}
	ProfileBeijing = &Profile{
		Name: "beijing", Title: "北京市政交通一卡通", TitleEN: "Beijing Municipal Administration & Communications Card",
		AIDs:        [][]byte{AIDBeijingOC, AIDBeijingPBOC},
		Probe:       FileRange{SFI: 0x04, Len: 2},
		ProbePrefix: []byte{0x10, 0x00},
		Numbering:   NumberFileHex,
		NumberFile:  FileRange{SFI: 0x04, Offset: 0, Len: 8},
		ValiditySFI: 0x04,
		StartAt:     0x18, EndAt: 0x1C,
		Balance: BalanceLow31Signed,
		Sources: metrodroid + "BeijingTransitData.kt",
	}
	ProfileWuhan = &Profile{
		Name: "wuhan", Title: "武汉通", TitleEN: "Wuhan Tong",
		AIDs:        [][]byte{AIDWuhanTong},
		Numbering:   NumberFileHex,
		NumberFile:  FileRange{SFI: 0x0A, Offset: 0, Len: 5},
		ValiditySFI: 0x05,
		StartAt:     20, EndAt: 16,
		Balance: BalanceLow31Signed,
		Sources: metrodroid + "WuhanTongTransitData.kt",
	}
	ProfileSuzhou = &Profile{
		Name: "suzhou", Title: "苏州市民卡", TitleEN: "Suzhou citizen card",
		AIDs:      [][]byte{AIDSuzhou},
		Numbering: NumberBCD,
		Fallback:  NumberSerialHex,
		Balance:   BalanceLow31Signed,
		Sources:   "issue 11 (SUXIN.DDF01 is the only name the card answers); numbering unverified, BCD when it is BCD",
	}
	ProfileGeneric = &Profile{
		Name: "generic", Title: "", TitleEN: "card of an unknown issuer",
		Numbering: NumberSerialHex,
		Balance:   BalanceLow31Signed,
		Sources:   "cardd's fallback",
	}
)

// Profiles are the built-in profiles in the order Identify tries them.
var Profiles = []*Profile{ProfileCampus, ProfileTUnion, ProfileShanghai, ProfileCityUnion,
	ProfileShenzhen, ProfileBeijing, ProfileWuhan, ProfileSuzhou, ProfileGeneric}

// ProfileNamed returns the built-in profile of that name, or nil.
func ProfileNamed(name string) *Profile {
	for _, p := range Profiles {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// ProfileNames are the built-in profiles' names, in order.
func ProfileNames() []string {
	out := make([]string, len(Profiles))
	for i, p := range Profiles {
		out[i] = p.Name
	}
	return out
}

// DefaultAIDs are the DF names Select tries when told none: every family's,
// our own cards' first, each once.
func DefaultAIDs() [][]byte {
	var out [][]byte
	for _, p := range Profiles {
		for _, aid := range p.AIDs {
			seen := false
			for _, o := range out {
				seen = seen || bytes.Equal(o, aid)
			}
			if !seen {
				out = append(out, aid)
			}
		}
	}
	return out
}

// DefaultIssuerID is the issuer id of our own cards when none is configured
// (Identify) and the one the simulator issues them with (epursesim): issuer
// 0001, city 0000, industry 0000. Its city code is the prefix of the
// application serial.
var DefaultIssuerID = [8]byte{0x00, 0x01}

// Identify picks the profile of a selected card from the DF name it was
// selected by (nil for file id 1001), its FCI's copy of EF 0x15 (raw, of
// any length; nil when there was none) and its EF 0x15. ownIssuers are the
// issuer ids (EF 0x15 bytes 0-7) of our own cards; nil means
// DefaultIssuerID. It never fails: a card no profile claims is
// ProfileGeneric.
func Identify(name []byte, fciInfo []byte, info IssuerInfo, ownIssuers [][8]byte) *Profile {
	if ownIssuers == nil {
		ownIssuers = [][8]byte{DefaultIssuerID}
	}
	for _, id := range ownIssuers {
		// Our own cards number in BCD and are selected by the city-card or
		// T-Union AID, by 1001, or by a name of the operator's own in
		// epurse.aids that no family claims, as they always were; a card
		// of our issuer id under another family's name is not one we
		// issued.
		if info.IssuerID == id && info.CardNumber != "" && (name == nil || ProfileCampus.selects(name) || !claimed(name)) {
			return ProfileCampus
		}
	}
	for _, p := range Profiles[1:] {
		if p == ProfileGeneric {
			break
		}
		switch {
		case name != nil && !p.selects(name):
			continue
		case name == nil && (p.FCILen == 0 || len(fciInfo) != p.FCILen):
			continue
		case p.City != 0 && info.CityCode() != p.City:
			continue
		}
		return p
	}
	return ProfileGeneric
}

// claimed reports whether a built-in profile's family is selected by name.
func claimed(name []byte) bool {
	for _, p := range Profiles {
		if p.selects(name) {
			return true
		}
	}
	return false
}

// selects reports whether name, the DF name in the card's FCI (or the one
// it was selected by), is one of the family's. A registered AID of 5 bytes
// or more also matches a longer DF name it begins: ISO 7816-4 selection by a
// partial name answers the full one (A0 00 00 00 03 86 98 07 01 may come
// back with a proprietary extension).
func (p *Profile) selects(name []byte) bool {
	for _, aid := range p.AIDs {
		if bytes.Equal(aid, name) || len(aid) >= 5 && bytes.HasPrefix(name, aid) {
			return true
		}
	}
	return false
}

// Probes are the profiles recognised by a file's content (Profile.Probe),
// tried in order when Identify gives ProfileGeneric to a card selected by
// file id.
func Probes() []*Profile {
	var out []*Profile
	for _, p := range Profiles {
		if p.Probe.SFI != 0 {
			out = append(out, p)
		}
	}
	return out
}

// Probed reports whether b, the content of p.Probe's file, is the family's.
func (p *Profile) Probed(b []byte) bool {
	return p.Probe.SFI != 0 && len(b) >= len(p.ProbePrefix) && bytes.HasPrefix(b, p.ProbePrefix)
}

// NeedsFiles lists the files, other than EF 0x15, the profile reads its
// number and validity from, by short file id.
func (p *Profile) NeedsFiles() []byte {
	var out []byte
	if p.Numbering == NumberFileHex && p.NumberFile.SFI != 0 {
		out = append(out, p.NumberFile.SFI)
	}
	if v := p.ValiditySFI; v != 0 && !bytes.Contains(out, []byte{v}) {
		out = append(out, v)
	}
	return out
}

// Number forms the card number from EF 0x15 (raw, at least 20 bytes) and,
// for NumberFileHex, the file the profile names (files, by SFI). It returns
// the number and the numbering that formed it: the profile's own, or its
// Fallback when the card does not hold its number the usual way.
func (p *Profile) Number(ef15 []byte, files map[byte][]byte) (string, Numbering, error) {
	n, err := p.Numbering.number(ef15, p.NumberFile, files)
	if err == nil || p.Fallback == "" {
		return n, p.Numbering, err
	}
	n2, err2 := p.Fallback.number(ef15, p.NumberFile, files)
	if err2 != nil {
		return "", p.Numbering, err
	}
	return n2, p.Fallback, nil
}

func (nb Numbering) number(ef15 []byte, fr FileRange, files map[byte][]byte) (string, error) {
	if nb != NumberFileHex && len(ef15) < 20 {
		return "", fmt.Errorf("%w: EF 0x15 of %d bytes holds no serial", ErrBadRecord, len(ef15))
	}
	switch nb {
	case NumberBCD:
		n, err := decodeDigits(ef15[12:20])
		if err == nil && n == "" {
			err = fmt.Errorf("%w: EF 0x15 bytes 12-19 hold no digits", ErrBadRecord)
		}
		return n, err
	case NumberTUnion:
		h := strings.ToUpper(hex.EncodeToString(ef15[10:20]))[1:]
		if !isDigits(h) {
			return "", fmt.Errorf("%w: T-Union serial %s is not decimal", ErrBadRecord, h)
		}
		return h, nil
	case NumberBE32:
		return strconv.FormatUint(uint64(binary.BigEndian.Uint32(ef15[16:20])), 10), nil
	case NumberLE32:
		return strconv.FormatUint(uint64(binary.LittleEndian.Uint32(ef15[16:20])), 10), nil
	case NumberLE32Check:
		sn := strconv.FormatUint(uint64(binary.LittleEndian.Uint32(ef15[16:20])), 10)
		return sn + strconv.Itoa(CheckDigitSZT(sn)), nil
	case NumberFileHex:
		b := files[fr.SFI]
		if len(b) < fr.Offset+fr.Len {
			return "", fmt.Errorf("%w: EF %#02x of %d bytes holds no number at %d..%d", ErrBadRecord, fr.SFI, len(b), fr.Offset, fr.Offset+fr.Len-1)
		}
		return strings.ToUpper(hex.EncodeToString(b[fr.Offset : fr.Offset+fr.Len])), nil
	case NumberSerialHex:
		return strings.ToUpper(hex.EncodeToString(ef15[10:20])), nil
	}
	return "", fmt.Errorf("%w: numbering %q", ErrBadArgument, nb)
}

// CheckDigitSZT is Shenzhen Tong's check digit of a serial: the digit that
// makes the digit sum a multiple of 10 (Metrodroid,
// NewShenzhenTransitData.formatSerial).
func CheckDigitSZT(sn string) int {
	sum := 0
	for i := 0; i < len(sn); i++ {
		sum += int(sn[i] - '0')
	}
	return (10 - sum%10) % 10
}

// PrintedNumber is the number as the card shows it: a Shenzhen Tong
// serial with its check digit in brackets; a Shanghai card's "U" number
// (its serial's Luhn check digit, then the serial's ten digits in pairs,
// the least significant pair first, as a Shanghai POS app prints it:
// docs/cards.md); others as they are.
func PrintedNumber(number string, nb Numbering) string {
	switch {
	case nb == NumberLE32Check && len(number) > 1:
		return number[:len(number)-1] + "(" + number[len(number)-1:] + ")"
	case nb == NumberBE32 && len(number) <= 10 && isDigits(number) && number != "":
		d := strings.Repeat("0", 10-len(number)) + number
		out := []byte{'U', byte('0' + luhnCheckDigit(d))}
		for i := len(d); i > 0; i -= 2 {
			out = append(out, d[i-2:i]...)
		}
		return string(out)
	}
	return number
}

// luhnCheckDigit is the Luhn (ISO/IEC 7812-1) check digit of digits.
func luhnCheckDigit(digits string) int {
	sum := 0
	for i := 0; i < len(digits); i++ {
		d := int(digits[len(digits)-1-i] - '0')
		if i%2 == 0 {
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return (10 - sum%10) % 10
}

// ValidityFrom reads the start and expiry dates the profile keeps in a file of
// their own; ok is false when the file is missing or too short, and err
// describes a date that is not one.
func (p *Profile) ValidityFrom(files map[byte][]byte) (start, expiry Date, ok bool, err error) {
	sfi := p.ValiditySFI
	b := files[sfi]
	if sfi == 0 || len(b) < p.StartAt+4 || len(b) < p.EndAt+4 {
		return Date{}, Date{}, false, nil
	}
	if start, err = ParseDate(b[p.StartAt : p.StartAt+4]); err != nil {
		return Date{}, Date{}, true, fmt.Errorf("EF %#02x start date: %w", sfi, err)
	}
	if expiry, err = ParseDate(b[p.EndAt : p.EndAt+4]); err != nil {
		return start, Date{}, true, fmt.Errorf("EF %#02x expiry date: %w", sfi, err)
	}
	return start, expiry, true, nil
}

// Shown is the balance to show for a card whose purse holds main and whose
// second purse (SecondPurse; nil when not read) holds second: the purse
// less the second purse. Public readers disagree on T-Union's second purse
// (Metrodroid subtracts it only from a purse spent to zero, NFCard reads it
// as an overdraft limit), but a real card with 8.00 in each purse spends
// nothing and swift-nfc's recording of it asserts 0 (docs/cards.md). So the
// shown balance is never more than main: a second purse is never shown as
// money the card would spend.
func (p *Profile) Shown(main int64, second *int64) int64 {
	if p.SecondPurse && second != nil && *second > 0 {
		return main - *second
	}
	return main
}

// AppSerial builds the 10-byte application serial that carries number in
// this numbering, for issuing a simulated card: NumberBCD with prefix as
// bytes 10-11 (AppSerialFor), NumberTUnion as a 0 nibble and the 19 digits.
// Other numberings are read-only here.
func (nb Numbering) AppSerial(prefix [2]byte, number string) ([10]byte, error) {
	switch nb {
	case "", NumberBCD:
		return AppSerialFor(prefix, number)
	case NumberTUnion:
		var s [10]byte
		if len(number) != 19 || !isDigits(number) {
			return s, fmt.Errorf("%w: a T-Union card number is 19 digits", ErrBadArgument)
		}
		b, err := hex.DecodeString("0" + number)
		if err != nil {
			return s, fmt.Errorf("%w: T-Union card number: %v", ErrBadArgument, err)
		}
		copy(s[:], b)
		return s, nil
	}
	return [10]byte{}, fmt.Errorf("%w: cards numbered %q cannot be issued here", ErrBadArgument, nb)
}
