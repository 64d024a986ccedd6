package mifare

import (
	"fmt"

	"github.com/cardd/cardd/apdu"
)

// The PC/SC storage-card pseudo-APDUs (PC/SC part 3, and ACS's value
// operations). The reader answers them itself and talks MIFARE to the card;
// through vpcd they reach the simulated card unchanged.
const (
	claReader    = 0xFF
	insLoadKeys  = 0x82
	insAuth      = 0x86
	insRead      = 0xB0
	insWrite     = 0xD6
	insGetData   = 0xCA
	insValueOp   = 0xD7 // ACS: store, increment, decrement, restore
	insReadValue = 0xB1 // ACS: read value
)

// swFailed is the readers' "operation failed" (6300): a failed
// authentication, or an access the card refused.
const swFailed uint16 = 0x6300

// authVersion is the version byte of GENERAL AUTHENTICATE's data.
const authVersion = 0x01

// withSW wraps err, a command's failure, with context; 6300 also wraps
// failed (ErrAuth or ErrOperationFailed), so callers can test it with
// errors.Is and still read the status word with apdu.SW.
func withSW(what string, err error, failed error) error {
	if sw, ok := apdu.SW(err); ok && sw == swFailed {
		return fmt.Errorf("%s: %w (%w)", what, failed, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

func checkBlock(block byte) error {
	if block >= NumBlocks {
		return fmt.Errorf("%w: block %d is beyond a 1K card's %d", ErrBadArgument, block, NumBlocks)
	}
	return nil
}

// noData runs a command that answers only a status word.
func noData(t apdu.Transmitter, c apdu.Command, what string, failed error) error {
	data, err := apdu.Transceive(t, c)
	if err != nil {
		return withSW(what, err, failed)
	}
	if len(data) != 0 {
		return fmt.Errorf("%s: %w", what, wrongLength(what, len(data), "0"))
	}
	return nil
}

// UID reads the card's UID: FF CA 00 00 00 (GET DATA). A MIFARE Classic UID
// is 4 or 7 bytes; 10 is allowed by ISO 14443-3 and accepted.
func UID(t apdu.Transmitter) ([]byte, error) {
	data, err := apdu.Transceive(t, apdu.Command{CLA: claReader, INS: insGetData, Ne: apdu.MaxShortNe})
	if err != nil {
		return nil, withSW("get UID", err, ErrOperationFailed)
	}
	switch len(data) {
	case 4, 7, 10:
		return data, nil
	}
	return nil, wrongLength("GET DATA (UID)", len(data), "4, 7 or 10")
}

// LoadKey stores key in the reader: FF 82 P1 slot 06 key (LOAD KEYS). P1 is
// KeyStructureVolatile or KeyStructureNonVolatile; see KeySlotConvention
// for what readers expect.
func LoadKey(t apdu.Transmitter, p1, slot byte, key Key) error {
	if err := (KeySlotConvention{P1: p1}).Validate(); err != nil {
		return err
	}
	return noData(t, apdu.Command{CLA: claReader, INS: insLoadKeys, P1: p1, P2: slot, Data: key[:]},
		fmt.Sprintf("load key into slot %02X", slot), ErrOperationFailed)
}

// Authenticate authenticates the sector of block with the key in slot, used
// as kt: FF 86 00 00 05 01 00 block kt slot (GENERAL AUTHENTICATE). 6300 is
// ErrAuth: a wrong key, or an empty slot.
func Authenticate(t apdu.Transmitter, block byte, kt KeyType, slot byte) error {
	if err := checkBlock(block); err != nil {
		return err
	}
	if err := kt.check(); err != nil {
		return err
	}
	data := []byte{authVersion, 0x00, block, byte(kt), slot}
	return noData(t, apdu.Command{CLA: claReader, INS: insAuth, Data: data},
		fmt.Sprintf("authenticate sector %d with %v", SectorOf(block), kt), ErrAuth)
}

// ReadBlock reads one block: FF B0 00 block 10 (READ BINARY). A trailer
// reads with key A as zeros, and key B as zeros unless it is readable.
func ReadBlock(t apdu.Transmitter, block byte) ([BlockSize]byte, error) {
	var b [BlockSize]byte
	if err := checkBlock(block); err != nil {
		return b, err
	}
	data, err := apdu.Transceive(t, apdu.Command{CLA: claReader, INS: insRead, P2: block, Ne: BlockSize})
	if err != nil {
		return b, withSW(fmt.Sprintf("read block %d", block), err, ErrOperationFailed)
	}
	if len(data) != BlockSize {
		return b, wrongLength(fmt.Sprintf("read block %d", block), len(data), "16")
	}
	copy(b[:], data)
	return b, nil
}

// WriteBlock writes one data block: FF D6 00 block 10 data (UPDATE BINARY).
// It refuses block 0, the manufacturer block, and sector trailers, which go
// through WriteTrailer so that their access bits are always validated.
func WriteBlock(t apdu.Transmitter, block byte, data [BlockSize]byte) error {
	if err := checkBlock(block); err != nil {
		return err
	}
	if block == 0 {
		return fmt.Errorf("%w: block 0 is the manufacturer block", ErrBadArgument)
	}
	if IsTrailer(block) {
		return fmt.Errorf("%w: block %d is a sector trailer; use WriteTrailer", ErrBadArgument, block)
	}
	return writeBlock(t, block, data)
}

func writeBlock(t apdu.Transmitter, block byte, data [BlockSize]byte) error {
	return noData(t, apdu.Command{CLA: claReader, INS: insWrite, P2: block, Data: data[:]},
		fmt.Sprintf("write block %d", block), ErrOperationFailed)
}

// WriteTrailer writes the trailer of sector, after checking its access bits
// (Trailer.Bytes): malformed ones would lock the sector for ever. The sector
// must be authenticated with a key that may write the trailer. Keep the keys
// you write: a sector whose keys are lost is lost.
func WriteTrailer(t apdu.Transmitter, sector byte, tr Trailer) error {
	if sector >= NumSectors {
		return fmt.Errorf("%w: sector %d is beyond a 1K card's %d", ErrBadArgument, sector, NumSectors)
	}
	b, err := tr.Bytes()
	if err != nil {
		return fmt.Errorf("trailer of sector %d not written: %w", sector, err)
	}
	return writeBlock(t, TrailerOf(sector), b)
}
