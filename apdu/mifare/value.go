package mifare

import (
	"encoding/binary"
	"fmt"
)

// Layout of a MIFARE Classic 1K card: 16 sectors of 4 blocks of 16 bytes.
// The last block of each sector is its trailer (keys and access bits).
const (
	BlockSize       = 16
	BlocksPerSector = 4
	NumSectors      = 16
	NumBlocks       = NumSectors * BlocksPerSector
)

// SectorOf returns the sector that holds block.
func SectorOf(block byte) byte { return block / BlocksPerSector }

// TrailerOf returns the trailer block of sector.
func TrailerOf(sector byte) byte { return sector*BlocksPerSector + BlocksPerSector - 1 }

// IsTrailer reports whether block is a sector trailer.
func IsTrailer(block byte) bool { return block%BlocksPerSector == BlocksPerSector-1 }

// EncodeValue lays out a value block (spec "MIFARE Classic wallet"): the
// value as a little-endian int32, its bitwise inverse, the value again, then
// addr, ~addr, addr, ~addr. The card checks this redundancy in its value
// operations, and DecodeValue checks it on everything read back, so that a
// half-written block is never taken for a balance. By convention addr is the
// number of the block the value is written to.
func EncodeValue(value int32, addr byte) [BlockSize]byte {
	var b [BlockSize]byte
	v := uint32(value)
	binary.LittleEndian.PutUint32(b[0:], v)
	binary.LittleEndian.PutUint32(b[4:], ^v)
	binary.LittleEndian.PutUint32(b[8:], v)
	b[12], b[13], b[14], b[15] = addr, ^addr, addr, ^addr
	return b
}

// DecodeValue reads a value block written for block addr. It fails with
// ErrNotValueBlock unless b is 16 bytes, the three copies of the value agree
// (the middle one inverted), and the four address bytes are addr, ~addr,
// addr, ~addr. A torn write fails here rather than giving a wrong balance.
func DecodeValue(b []byte, addr byte) (int32, error) {
	v, a, err := ParseValue(b)
	if err != nil {
		return 0, err
	}
	if a != addr {
		return 0, fmt.Errorf("%w: address byte %02X, want %02X", ErrNotValueBlock, a, addr)
	}
	return v, nil
}

// ParseValue checks the redundancy of a value block and returns its value
// and address byte, whatever the address. The card side uses it: a value
// restored from another block keeps that block's address byte.
func ParseValue(b []byte) (int32, byte, error) {
	if len(b) != BlockSize {
		return 0, 0, fmt.Errorf("%w: %d bytes, a block is %d", ErrNotValueBlock, len(b), BlockSize)
	}
	v := binary.LittleEndian.Uint32(b[0:])
	if inv := binary.LittleEndian.Uint32(b[4:]); inv != ^v {
		return 0, 0, fmt.Errorf("%w: inverted copy of the value does not match", ErrNotValueBlock)
	}
	if again := binary.LittleEndian.Uint32(b[8:]); again != v {
		return 0, 0, fmt.Errorf("%w: third copy of the value does not match", ErrNotValueBlock)
	}
	a := b[12]
	if b[13] != ^a || b[14] != a || b[15] != ^a {
		return 0, 0, fmt.Errorf("%w: address bytes %02X %02X %02X %02X are not a, ~a, a, ~a", ErrNotValueBlock, b[12], b[13], b[14], b[15])
	}
	return int32(v), a, nil
}
