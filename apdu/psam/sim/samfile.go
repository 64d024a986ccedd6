package psamsim

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/cardd/cardd/apdu/epurse"
	"github.com/cardd/cardd/apdu/psam"
	"github.com/cardd/cardd/internal/jsonfile"
	"github.com/cardd/cardd/internal/strictjson"
)

// SAMFile is the whole state of a simulated PSAM, kept as JSON so that a
// person can read it. The field names, as written by Save:
//
//	terminal_id   EF 0x16 of the MF: the 6-byte terminal id in hex
//	aid           the purchase application's AID in hex, which selects it
//	              beside the file id 1001; empty means epurse.AIDCityCard
//	dpk           the issuer's purchase MASTER key in hex (the key the
//	              host's master key file calls "dpk"); cards' keys are
//	              diversified from it inside the PSAM
//	key_version   the key version of that key; an INIT SAM FOR PURCHASE
//	              for another version is refused with 9403; default 01
//	serial        the last terminal transaction serial given out; the next
//	              purchase gets serial+1, and it is saved before MAC1 is
//	              answered, so a serial is never given twice
//	app_file      the purchase application's file id in hex; default 1001
//	              (8011 plays a transport-ministry PSAM)
//	key_index     the purchase key index in the application's EF 0x17;
//	              default 01
//	diversification  one (default), issuer or city: how many levels, and
//	              which second factor, the purchase key is diversified with;
//	              keyed two levels, the PSAM refuses Lc 1C with 6700
//	security_code  true: INIT SAM FOR PURCHASE needs the card's security
//	              code (80 CA 00 00 09 <code>) just before it, else 6985
//
// A SAMFile holds a master key: Save writes it with mode 0600,
// LoadSAMFile refuses a file that group or others may read, and its
// String and LogValue do not show the key.
type SAMFile struct {
	TerminalID [6]byte
	AID        []byte
	DPK        epurse.Key16
	KeyVersion byte
	Serial     uint32
	// AppFileID is the purchase DF's file id; 0 means FileIDApp.
	AppFileID       uint16
	KeyIndex        byte // 0 means 1
	Diversification psam.Diversification
	SecurityCode    bool
}

// DefaultKeyVersion is the key version of a new SAMFile: the version that
// epurse.NewCardFile gives new cards.
const DefaultKeyVersion = 0x01

// NewSAMFile builds a PSAM for terminal termID holding the purchase master
// key of masters, the issuer master keys of the reference host. Only DPK is
// kept: a PSAM holds no load or TAC key (DESIGN.md, money rule 6).
func NewSAMFile(termID [6]byte, masters epurse.MasterKeys) (*SAMFile, error) {
	f := &SAMFile{TerminalID: termID, DPK: masters.DPK, KeyVersion: DefaultKeyVersion}
	if err := f.Validate(); err != nil {
		return nil, err
	}
	return f, nil
}

// NewSAMFileFromKeyFile builds a PSAM from the reference host's master key
// file (host.MastersFile in a cardhost directory), read with
// epurse.ReadMasterKeyFile: mode 0600, no unknown fields.
func NewSAMFileFromKeyFile(keyFile string, termID [6]byte) (*SAMFile, error) {
	m, err := epurse.ReadMasterKeyFile(keyFile)
	if err != nil {
		return nil, err
	}
	f, err := NewSAMFile(termID, m)
	if err != nil {
		return nil, fmt.Errorf("master key file %s: %w", keyFile, err)
	}
	return f, nil
}

// Validate checks that the PSAM could exist.
func (f *SAMFile) Validate() error {
	var errs []error
	if f.DPK == (epurse.Key16{}) {
		errs = append(errs, fmt.Errorf("%w: dpk is missing or all zero", epurse.ErrBadArgument))
	}
	if f.AppFileID == psam.FileIDMF {
		errs = append(errs, fmt.Errorf("%w: app_file 3F00 is the MF", epurse.ErrBadArgument))
	}
	if f.Diversification < psam.DiversifyOnce || f.Diversification > psam.DiversifyCity {
		errs = append(errs, fmt.Errorf("%w: diversification %d", epurse.ErrBadArgument, int(f.Diversification)))
	}
	if n := len(f.AID); n != 0 && (n < 5 || n > 16) {
		errs = append(errs, fmt.Errorf("%w: aid must be 5 to 16 bytes, got %d", epurse.ErrBadArgument, n))
	}
	return errors.Join(errs...)
}

// aid is the purchase application's AID.
func (f *SAMFile) aid() []byte {
	if len(f.AID) > 0 {
		return f.AID
	}
	return epurse.AIDCityCard
}

// appFileID is the purchase application's file id.
func (f *SAMFile) appFileID() uint16 {
	if f.AppFileID != 0 {
		return f.AppFileID
	}
	return psam.FileIDApp
}

// keyIndex is the content of EF 0x17.
func (f *SAMFile) keyIndex() byte {
	if f.KeyIndex != 0 {
		return f.KeyIndex
	}
	return 1
}

func (f *SAMFile) clone() *SAMFile {
	c := *f
	c.AID = bytes.Clone(f.AID)
	return &c
}

// String names the PSAM by its terminal id and serial, never its key.
func (f *SAMFile) String() string {
	return fmt.Sprintf("PSAM of terminal %X (serial %d)", f.TerminalID, f.Serial)
}

// GoString keeps %#v to String.
func (f *SAMFile) GoString() string { return f.String() }

// LogValue keeps slog, whose JSON handler would otherwise call MarshalJSON,
// from writing the key.
func (f *SAMFile) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("terminal_id", strings.ToUpper(hex.EncodeToString(f.TerminalID[:]))),
		slog.Uint64("serial", uint64(f.Serial)),
	)
}

type samFileJSON struct {
	TerminalID string       `json:"terminal_id"`
	AID        string       `json:"aid,omitempty"`
	DPK        epurse.Key16 `json:"dpk"`
	KeyVersion byte         `json:"key_version"`
	Serial     uint32       `json:"serial"`

	AppFile         string `json:"app_file,omitempty"`
	KeyIndex        byte   `json:"key_index,omitempty"`
	Diversification string `json:"diversification,omitempty"`
	SecurityCode    bool   `json:"security_code,omitempty"`
}

// MarshalJSON writes the fields listed on SAMFile, bytes in upper-case hex.
func (f SAMFile) MarshalJSON() ([]byte, error) {
	return json.Marshal(samFileJSON{
		TerminalID: strings.ToUpper(hex.EncodeToString(f.TerminalID[:])),
		AID:        strings.ToUpper(hex.EncodeToString(f.AID)),
		DPK:        f.DPK,
		KeyVersion: f.KeyVersion,
		Serial:     f.Serial,

		AppFile:         appFileWord(f.AppFileID),
		KeyIndex:        f.KeyIndex,
		Diversification: divWord(f.Diversification),
		SecurityCode:    f.SecurityCode,
	})
}

// UnmarshalJSON reads what MarshalJSON writes, strictly (no unknown,
// case-folded or repeated key: a misspelt "dpk" must not leave no key).
// key_version defaults to 01.
func (f *SAMFile) UnmarshalJSON(b []byte) error {
	j := samFileJSON{KeyVersion: DefaultKeyVersion}
	if err := strictjson.Unmarshal(b, &j); err != nil {
		return err
	}
	return f.fromJSON(j)
}

func (f *SAMFile) fromJSON(j samFileJSON) error {
	v := SAMFile{DPK: j.DPK, KeyVersion: j.KeyVersion, Serial: j.Serial, KeyIndex: j.KeyIndex, SecurityCode: j.SecurityCode}
	if j.AppFile != "" {
		b, err := hex.DecodeString(j.AppFile)
		if err != nil || len(b) != 2 || (b[0] == 0 && b[1] == 0) {
			return fmt.Errorf("%w: app_file must be a file id of 4 hex digits", epurse.ErrBadArgument)
		}
		v.AppFileID = uint16(b[0])<<8 | uint16(b[1])
	}
	if j.Diversification != "" {
		d, err := psam.ParseDiversification(j.Diversification)
		if err != nil {
			return fmt.Errorf("%w: diversification must be one, issuer or city", epurse.ErrBadArgument)
		}
		v.Diversification = d
	}
	id, err := hex.DecodeString(j.TerminalID)
	if err != nil || len(id) != len(v.TerminalID) {
		return fmt.Errorf("%w: terminal_id must be 6 bytes in hex", epurse.ErrBadArgument)
	}
	copy(v.TerminalID[:], id)
	if j.AID != "" {
		if v.AID, err = hex.DecodeString(j.AID); err != nil {
			return fmt.Errorf("%w: aid must be hex", epurse.ErrBadArgument)
		}
	}
	*f = v
	return nil
}

// LoadSAMFile reads and validates a PSAM file, strictly (jsonfile.Load):
// an unknown or misspelt field (a misspelt "dpk" would otherwise leave no
// key), anything after the JSON value and a PSAM that could not exist are
// refused, naming the file. So is a file that group or others may read: it
// holds a master key. Its errors never quote the key.
func LoadSAMFile(path string) (*SAMFile, error) {
	return jsonfile.Load(path, fileKind, SAMFile{}, jsonfile.Options{Private: true})
}

// fileKind names a PSAM file in errors.
const fileKind = "PSAM file"

// Save writes the PSAM file atomically: a temporary file in the same
// directory, fsync, rename over path, fsync of the directory. A crash leaves
// either the old state or the new one, so a serial once answered is on disk.
// The file has mode 0600: it holds a master key.
func (f *SAMFile) Save(path string) error {
	return jsonfile.Save(path, fileKind, f, 0o600)
}

func appFileWord(id uint16) string {
	if id == 0 {
		return ""
	}
	return fmt.Sprintf("%04X", id)
}

func divWord(d psam.Diversification) string {
	if d == psam.DiversifyOnce {
		return ""
	}
	return d.String()
}
