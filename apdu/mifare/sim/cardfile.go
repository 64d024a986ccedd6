package mifaresim

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"

	"github.com/cardd/cardd/apdu/mifare"
	"github.com/cardd/cardd/internal/jsonfile"
	"github.com/cardd/cardd/internal/strictjson"
)

// CardFile is the whole memory of a simulated MIFARE Classic 1K card, kept as
// JSON so that a person can read and edit it:
//
//	uid        the 4-byte UID in hex
//	sectors    16 sectors of 4 blocks, each block 32 hex digits; the last
//	           block of a sector is its trailer: key A, access bits, GPB, key B
//
// Block 0 is the manufacturer block: the UID, its BCC (the XOR of the UID
// bytes), SAK 08, ATQA 0004 and manufacturer data. A trailer whose access
// bits are malformed is allowed: that sector is locked, as on a real card.
//
// The trailers hold the keys in clear: Save writes the file with mode 0600,
// and String and LogValue show only the UID.
type CardFile struct {
	UID    [4]byte
	Blocks [mifare.NumBlocks][mifare.BlockSize]byte
}

type cardFileJSON struct {
	UID     string     `json:"uid"`
	Sectors [][]string `json:"sectors"`
}

// MarshalJSON writes the layout described at CardFile.
func (f CardFile) MarshalJSON() ([]byte, error) {
	j := cardFileJSON{UID: upperHex(f.UID[:]), Sectors: make([][]string, mifare.NumSectors)}
	for s := range j.Sectors {
		j.Sectors[s] = make([]string, mifare.BlocksPerSector)
		for i := range mifare.BlocksPerSector {
			j.Sectors[s][i] = upperHex(f.Blocks[s*mifare.BlocksPerSector+i][:])
		}
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads what MarshalJSON writes, refusing any other shape:
// a missing or extra block must not pass silently.
func (f *CardFile) UnmarshalJSON(b []byte) error {
	var j cardFileJSON
	if err := strictjson.Unmarshal(b, &j); err != nil {
		return err
	}
	var v CardFile
	if err := decodeHexInto(v.UID[:], j.UID, "uid"); err != nil {
		return err
	}
	if len(j.Sectors) != mifare.NumSectors {
		return fmt.Errorf("%w: sectors: %d, a 1K card has %d", mifare.ErrBadArgument, len(j.Sectors), mifare.NumSectors)
	}
	for s, blocks := range j.Sectors {
		if len(blocks) != mifare.BlocksPerSector {
			return fmt.Errorf("%w: sector %d has %d blocks, want %d", mifare.ErrBadArgument, s, len(blocks), mifare.BlocksPerSector)
		}
		for i, h := range blocks {
			n := s*mifare.BlocksPerSector + i
			if err := decodeHexInto(v.Blocks[n][:], h, fmt.Sprintf("block %d", n)); err != nil {
				return err
			}
		}
	}
	*f = v
	return nil
}

func upperHex(b []byte) string { return strings.ToUpper(hex.EncodeToString(b)) }

// decodeHexInto fills dst from hex. Its errors do not quote the input: a
// trailer's hex holds keys.
func decodeHexInto(dst []byte, s, field string) error {
	if len(s) != 2*len(dst) {
		return fmt.Errorf("%w: %s must be %d hex digits, got %d characters", mifare.ErrBadArgument, field, 2*len(dst), len(s))
	}
	if _, err := hex.Decode(dst, []byte(s)); err != nil {
		return fmt.Errorf("%w: %s is not hex", mifare.ErrBadArgument, field)
	}
	return nil
}

// manufacturerData fills bytes 8-15 of block 0 of an issued card: it names
// the simulator, as a real card's names its fab.
var manufacturerData = [8]byte{'C', 'A', 'R', 'D', 'D', 'S', 'I', 'M'}

// NewCardFile issues a card: UID uid; every sector in the transport
// configuration (keys FFFFFFFFFFFF, access bits FF 07 80) but the wallet's,
// which gets the wallet's keys, access bits WalletAccess, and balance fen in
// both its value block and its backup.
func NewCardFile(uid [4]byte, w mifare.Wallet, balance int64) (*CardFile, error) {
	if err := w.Validate(); err != nil {
		return nil, err
	}
	if balance < 0 || balance > mifare.MaxBalance {
		return nil, fmt.Errorf("%w: balance %d fen is not in 0..%d", mifare.ErrBadAmount, balance, mifare.MaxBalance)
	}
	f := &CardFile{UID: uid}
	b0 := &f.Blocks[0]
	copy(b0[0:4], uid[:])
	b0[4] = bcc(uid)
	b0[5], b0[6], b0[7] = 0x08, 0x04, 0x00 // SAK 08 and ATQA 0004: MIFARE Classic 1K
	copy(b0[8:], manufacturerData[:])
	for s := range byte(mifare.NumSectors) {
		tr := mifare.Trailer{KeyA: mifare.TransportKey, Access: mifare.TransportAccess, GPB: mifare.DefaultGPB, KeyB: mifare.TransportKey}
		if s == w.Sector {
			tr = mifare.Trailer{KeyA: w.KeyA, Access: mifare.WalletAccess, GPB: mifare.DefaultGPB, KeyB: w.KeyB}
		}
		b, err := tr.Bytes()
		if err != nil {
			return nil, err // the two access settings above always validate
		}
		f.Blocks[mifare.TrailerOf(s)] = b
	}
	// Sequence 0: the wallet has seen no change yet (State.Seq).
	f.Blocks[w.ValueBlock] = mifare.EncodeValue(int32(balance), 0)
	f.Blocks[w.BackupBlock] = mifare.EncodeValue(int32(balance), 0)
	return f, nil
}

// bcc is the block check character of a 4-byte UID: the XOR of its bytes.
func bcc(uid [4]byte) byte { return uid[0] ^ uid[1] ^ uid[2] ^ uid[3] }

// Validate checks that block 0 agrees with the UID.
func (f *CardFile) Validate() error {
	if !bytes.Equal(f.Blocks[0][0:4], f.UID[:]) || f.Blocks[0][4] != bcc(f.UID) {
		return fmt.Errorf("%w: block 0 must start with the uid %X and its BCC %02X", mifare.ErrBadArgument, f.UID, bcc(f.UID))
	}
	return nil
}

// String names the card by its UID, never its keys.
func (f *CardFile) String() string { return fmt.Sprintf("MIFARE Classic 1K card UID %X", f.UID) }

// GoString keeps %#v from printing the trailers, which hold the keys.
func (f *CardFile) GoString() string { return f.String() }

// LogValue keeps slog from marshalling the trailers, which hold the keys.
func (f *CardFile) LogValue() slog.Value {
	return slog.GroupValue(slog.String("uid", upperHex(f.UID[:])))
}

// LoadCardFile reads and validates a card file, strictly (jsonfile.Load):
// an unknown or misspelt field, anything after the JSON value and a card
// that could not exist are refused, naming the file.
func LoadCardFile(path string) (*CardFile, error) {
	return jsonfile.Load(path, fileKind, CardFile{}, jsonfile.Options{})
}

// fileKind names a card file in errors.
const fileKind = "card file"

// Save writes the card file atomically: a temporary file in the same
// directory, fsync, rename over path, fsync of the directory. A crash leaves
// either the old card or the new one, never half of each. The file has mode
// 0600: it holds keys.
func (f *CardFile) Save(path string) error {
	return jsonfile.Save(path, fileKind, f, 0o600)
}
