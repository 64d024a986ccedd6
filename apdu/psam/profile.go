package psam

import (
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/cardd/cardd/apdu/epurse"
)

// Diversification is how the PSAM derives a card's purchase key from the
// master it holds, and so what INIT SAM FOR PURCHASE must carry
// (docs/psam.md, "Diversification").
type Diversification int

// Diversifications. The zero value is one level, what cardd always did.
const (
	// DiversifyOnce: the card's key is Diversify(master, serial); INIT SAM
	// FOR PURCHASE carries the card serial only (Lc 1C).
	DiversifyOnce Diversification = iota
	// DiversifyIssuer: two levels, the second factor being EF 0x15 bytes
	// 0-7 (the issuer code), as transport-ministry (T-Union) PSAMs want;
	// Lc 24.
	DiversifyIssuer
	// DiversifyCity: two levels, the second factor being the city code
	// (EF 0x15 bytes 2-3) followed by FF 00 00 00 00 00, as CJ/T 166 city
	// card PSAMs want; Lc 24.
	DiversifyCity
)

var diversificationNames = []string{"one", "issuer", "city"}

// String is "one", "issuer" or "city", the words of the profile syntax.
func (d Diversification) String() string {
	if d < 0 || int(d) >= len(diversificationNames) {
		return fmt.Sprintf("Diversification(%d)", int(d))
	}
	return diversificationNames[d]
}

// ParseDiversification reads "one", "issuer" or "city".
func ParseDiversification(s string) (Diversification, error) {
	if i := slices.Index(diversificationNames, s); i >= 0 {
		return Diversification(i), nil
	}
	return 0, fmt.Errorf("%w: diversification %q: want one, issuer or city", ErrBadProfile, s)
}

// cityFiller follows the 2-byte city code in the city layout's second
// factor (CardMethods.initSamForPurchase of the Pos80 transit POS).
var cityFiller = [6]byte{0xFF, 0x00, 0x00, 0x00, 0x00, 0x00}

// SecondFactor is the 8-byte second diversification factor of a card whose
// EF 0x15 begins with issuerID (bytes 0-7), or nil for one level.
func (d Diversification) SecondFactor(issuerID [8]byte) []byte {
	switch d {
	case DiversifyIssuer:
		return issuerID[:]
	case DiversifyCity:
		return append([]byte{issuerID[2], issuerID[3]}, cityFiller[:]...)
	}
	return nil
}

// CardKey is the purchase key a card of this diversification holds: the
// master diversified with the second factor first, then with the card's
// serial (its rightmost 8 bytes), each step the spec's Diversify. A PSAM
// keyed this way computes MAC1 with it; an issuer personalises it. For
// DiversifyOnce it is epurse.DiversifyKey(master, serial).
func (d Diversification) CardKey(master epurse.Key16, issuerID [8]byte, serial []byte) epurse.Key16 {
	if f := d.SecondFactor(issuerID); f != nil {
		master = epurse.DiversifyKey(master, f)
	}
	return epurse.DiversifyKey(master, serial)
}

// ErrBadProfile is a PSAM profile that cannot be used: a wrong word in its
// text, a key index of 0.
var ErrBadProfile = errors.New("bad PSAM profile")

// Profile is how cardd talks to one kind of PSAM: where its purchase
// application lives, which purchase key index the card is told, how the
// card's key is diversified, and whether the card's security code goes to
// the PSAM first. The zero value is what cardd did before profiles: the
// configured applications (else file 1001), key index 1, one level, no
// security code.
type Profile struct {
	// Name is the built-in profile this one started from ("" is "cardd").
	Name string
	// Apps are the purchase applications tried, in order; nil means the
	// terminal's configured list (pos.sam_apps), else DefaultApps.
	Apps []App
	// KeyIndex is the purchase key index sent to the card in INITIALIZE
	// FOR PURCHASE; 0 means 1. Ignored when KeyIndexFromPSAM.
	KeyIndex byte
	// KeyIndexFromPSAM reads the key index from the PSAM's EF 0x17
	// (ReadKeyIndex) after its application is selected.
	KeyIndexFromPSAM bool
	// Diversification is the number of levels and the second factor.
	Diversification Diversification
	// SecurityCode reads the card's security code (80 CA 00 00 09) and
	// gives it to the PSAM before INIT SAM FOR PURCHASE.
	SecurityCode bool
}

// BuiltinProfiles are the profiles a configuration names by word. Their
// facts come from public terminal code (docs/psam.md):
//
//	cardd      file 1001, key index 1, one level, no security code
//	cityunion  file 1001 (housing ministry, 住建部), key index from EF 0x17,
//	           two levels in the city layout, security code
//	tunion     file 8011 (transport ministry, 交通部), then the AID
//	           BD A8 C9 E8 B2 BF; key index from EF 0x17, two levels in the
//	           issuer layout, no security code
var BuiltinProfiles = map[string]Profile{
	"cardd":     {Name: "cardd"},
	"cityunion": {Name: "cityunion", Apps: []App{{FileID: FileIDApp}}, KeyIndexFromPSAM: true, Diversification: DiversifyCity, SecurityCode: true},
	"tunion":    {Name: "tunion", Apps: []App{{FileID: FileIDTUnionApp}, {AID: AIDTUnionPSAM}}, KeyIndexFromPSAM: true, Diversification: DiversifyIssuer},
}

// FileIDTUnionApp is the file id of the purchase DF of transport-ministry
// PSAMs (PSAM_SELECT_DIR in the Pos80 transit POS).
const FileIDTUnionApp uint16 = 0x8011

// AIDTUnionPSAM is the AID some PSAMs give their purchase application
// (issue 11, item 9).
var AIDTUnionPSAM = []byte{0xBD, 0xA8, 0xC9, 0xE8, 0xB2, 0xBF}

// keyIndex is the index to use when it is not read from the PSAM.
func (p Profile) keyIndex() byte {
	if p.KeyIndex == 0 {
		return 1
	}
	return p.KeyIndex
}

// String is the profile in the syntax ParseProfile reads, every setting
// spelt out, so a log line says exactly what the terminal does.
func (p Profile) String() string {
	name := p.Name
	if name == "" {
		name = "cardd"
	}
	var b strings.Builder
	b.WriteString(name)
	if p.Apps != nil {
		apps := make([]string, len(p.Apps))
		for i, a := range p.Apps {
			apps[i] = appWord(a)
		}
		b.WriteString(" apps=" + strings.Join(apps, ","))
	}
	if p.KeyIndexFromPSAM {
		b.WriteString(" key_index=psam")
	} else {
		b.WriteString(" key_index=" + strconv.Itoa(int(p.keyIndex())))
	}
	b.WriteString(" diversification=" + p.Diversification.String())
	if p.SecurityCode {
		b.WriteString(" security_code=on")
	} else {
		b.WriteString(" security_code=off")
	}
	return b.String()
}

func appWord(a App) string {
	if len(a.AID) > 0 {
		return strings.ToUpper(hex.EncodeToString(a.AID))
	}
	return fmt.Sprintf("%04X", a.FileID)
}

// ParseProfile reads a profile as configured: a built-in name
// (BuiltinProfiles), then any settings that change it, separated by
// spaces; with no name first the settings change "cardd":
//
//	tunion
//	cityunion key_index=3
//	apps=DF01,1001 key_index=psam diversification=issuer security_code=off
//
// apps lists file ids (4 hex digits) and AIDs (5 to 16 bytes in hex),
// tried in order; key_index is 1..255 or psam (read from EF 0x17);
// diversification is one, issuer or city; security_code is on or off. A
// setting given twice, an unknown word or a bad value is an ErrBadProfile
// naming it. The empty text is the zero Profile.
func ParseProfile(s string) (Profile, error) {
	words := strings.Fields(s)
	var p Profile
	if len(words) > 0 && !strings.Contains(words[0], "=") {
		b, ok := BuiltinProfiles[words[0]]
		if !ok {
			return Profile{}, fmt.Errorf("%w: %q is not a built-in profile (%s) nor a setting like key_index=3", ErrBadProfile, words[0], builtinNames())
		}
		p, words = b, words[1:]
		p.Apps = slices.Clone(b.Apps)
	}
	seen := map[string]bool{}
	for _, w := range words {
		key, val, ok := strings.Cut(w, "=")
		if !ok || key == "" || val == "" {
			return Profile{}, fmt.Errorf("%w: %q: want setting=value (apps, key_index, diversification, security_code)", ErrBadProfile, w)
		}
		if seen[key] {
			return Profile{}, fmt.Errorf("%w: %s is given twice", ErrBadProfile, key)
		}
		seen[key] = true
		if err := p.set(key, val); err != nil {
			return Profile{}, err
		}
	}
	return p, nil
}

func (p *Profile) set(key, val string) error {
	switch key {
	case "apps":
		apps, err := parseApps(val)
		if err != nil {
			return err
		}
		p.Apps = apps
	case "key_index":
		if val == "psam" {
			p.KeyIndexFromPSAM, p.KeyIndex = true, 0
			return nil
		}
		n, err := strconv.ParseUint(val, 10, 8)
		if err != nil || n == 0 {
			return fmt.Errorf("%w: key_index=%s: want 1 to 255, or psam to read it from the PSAM's EF 0x17", ErrBadProfile, val)
		}
		p.KeyIndexFromPSAM, p.KeyIndex = false, byte(n)
	case "diversification":
		d, err := ParseDiversification(val)
		if err != nil {
			return err
		}
		p.Diversification = d
	case "security_code":
		switch val {
		case "on":
			p.SecurityCode = true
		case "off":
			p.SecurityCode = false
		default:
			return fmt.Errorf("%w: security_code=%s: want on or off", ErrBadProfile, val)
		}
	default:
		return fmt.Errorf("%w: unknown setting %q (apps, key_index, diversification, security_code)", ErrBadProfile, key)
	}
	return nil
}

// parseApps reads "8011,1001,BDA8C9E8B2BF".
func parseApps(val string) ([]App, error) {
	var apps []App
	for _, a := range strings.Split(val, ",") {
		b, err := hex.DecodeString(a)
		switch {
		case err != nil:
			return nil, fmt.Errorf("%w: apps entry %q is not hex", ErrBadProfile, a)
		case len(b) == 2 && (b[0] != 0 || b[1] != 0):
			apps = append(apps, App{FileID: uint16(b[0])<<8 | uint16(b[1])})
		case len(b) >= 5 && len(b) <= 16:
			apps = append(apps, App{AID: b})
		default:
			return nil, fmt.Errorf("%w: apps entry %q: want a file id of 4 hex digits (not 0000) or an AID of 5 to 16 bytes", ErrBadProfile, a)
		}
	}
	return apps, nil
}

func builtinNames() string {
	names := make([]string, 0, len(BuiltinProfiles))
	for n := range BuiltinProfiles {
		names = append(names, n)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// Profiles chooses the profile of a purchase by the card's family: the
// family's own when it has one, else Default.
type Profiles struct {
	Default  Profile
	Families map[string]Profile
}

// For returns the profile for a card of family ("" when unknown).
func (ps Profiles) For(family string) Profile {
	if p, ok := ps.Families[family]; ok {
		return p
	}
	return ps.Default
}
