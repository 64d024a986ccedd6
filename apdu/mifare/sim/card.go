package mifaresim

import (
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"math"
	"sync"

	"github.com/cardd/cardd/apdu"
	"github.com/cardd/cardd/apdu/mifare"
	"github.com/cardd/cardd/reader/vpcd"
)

// ErrTorn is returned by SimCard.Transmit when a write was torn (see
// SimCard.TearNextWriteAt) and for every command after it until Reset:
// the card has left the field. It wraps vpcd.ErrTorn, the virtual
// reader's "card pulled".
var ErrTorn = fmt.Errorf("mifare: card left the field during a write: %w", vpcd.ErrTorn)

// Status words the simulated card (in the role of its reader) answers: PC/SC
// part 3 gives them for LOAD KEYS and GENERAL AUTHENTICATE; the rest are ISO
// 7816-4's.
const (
	swReaderKey     uint16 = 0x6983 // LOAD KEYS: reader key not supported
	swSecuredKey    uint16 = 0x6985 // LOAD KEYS: secured transmission not supported
	swKeyTypeBad    uint16 = 0x6986 // GENERAL AUTHENTICATE: key type not known
	swKeyNumber     uint16 = 0x6988 // key number not valid
	swKeyLength     uint16 = 0x6989 // LOAD KEYS: key length is not correct
	swWrongLength   uint16 = 0x6700
	swNoATS         uint16 = 0x6A81 // GET DATA of the ATS: a MIFARE Classic has none
	swWrongP1P2     uint16 = 0x6A86
	swINSNotSupport uint16 = 0x6D00
	swCLANotSupport uint16 = 0x6E00
)

// keySlots is how many key slots the simulated reader has (00 to 1F).
const keySlots = 0x20

// ATR is what a PC/SC part 3 reader builds for a MIFARE Classic 1K: 3B 8F 80
// 01, then historical bytes 80 4F 0C and the RID A0 00 00 03 06 of PC/SC,
// standard 03 (ISO 14443 A part 3), card name 00 01 (MIFARE Classic 1K),
// four RFU bytes, and TCK.
var ATR = []byte{0x3B, 0x8F, 0x80, 0x01, 0x80, 0x4F, 0x0C, 0xA0, 0x00, 0x00, 0x03, 0x06,
	0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x6A}

// TearMode is what a torn write leaves in its block.
type TearMode int

// Tear modes. A torn EEPROM write can leave any of these; the wallet's
// write order must survive all three.
const (
	// TearCorrupt leaves the block half written: the first 8 bytes new,
	// the rest old, and never a valid value block.
	TearCorrupt TearMode = iota
	// TearNotWritten leaves the old content: the write never started.
	TearNotWritten
	// TearWritten completes the write: only the answer is lost.
	TearWritten
)

// String names the mode.
func (m TearMode) String() string {
	switch m {
	case TearCorrupt:
		return "corrupt"
	case TearNotWritten:
		return "not written"
	case TearWritten:
		return "written"
	}
	return fmt.Sprintf("tear(%d)", int(m))
}

// SimCard is a simulated MIFARE Classic 1K card together with the storage-
// card side of its reader: through vpcd the FF pseudo-APDUs reach the card,
// so it answers them as a PC/SC reader holding it would (spec "The virtual
// reader"). It keeps the reader's key slots (LOAD KEYS), authenticates
// against the sector trailers, and honours every access condition of the
// datasheet, wallet (08 77 8F) and transport (FF 07 80) ones included. It is
// an apdu.Transmitter and a vpcd.Card. Every write is saved to the card file
// before the card answers. It is safe for concurrent use.
type SimCard struct {
	mu   sync.Mutex
	f    *CardFile
	path string
	// keys are the reader's key slots. A reader keeps them across cards and
	// resets, so Reset does not clear them; they are not saved.
	keys [keySlots]*mifare.Key

	// Power-session state, cleared by Reset.
	authed  bool
	authSec byte
	authKey mifare.KeyType
	gone    bool // a write was torn: out of the field until Reset

	tearIn   int // writes until the torn one; 0 is none
	tearMode TearMode
}

// NewSimCard makes a card of f, which it owns from then on (read it back with
// File). path is where every write is saved; "" keeps the card in memory.
func NewSimCard(f *CardFile, path string) *SimCard {
	return &SimCard{f: f, path: path}
}

// File returns a copy of the card's memory.
func (c *SimCard) File() *CardFile {
	c.mu.Lock()
	defer c.mu.Unlock()
	cp := *c.f
	return &cp
}

// ATR returns ATR.
func (c *SimCard) ATR() []byte { return append([]byte(nil), ATR...) }

// Reset is a power cycle: the authentication is lost, and a card that left
// the field at a torn write is back in it.
func (c *SimCard) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.authed, c.gone = false, false
}

// TearNextWriteAt arms a tear: the nth block write from now (1 is the very
// next; FF D6 and every FF D7 count) leaves its block as mode says and the
// card leaves the field: that Transmit and every one after it return an
// error wrapping ErrTorn until Reset. The torn block is saved like any
// write. n 0 disarms. The plan survives Reset.
func (c *SimCard) TearNextWriteAt(n int, mode TearMode) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tearIn, c.tearMode = max(n, 0), mode
}

// Transmit executes one command APDU and returns the response APDU. An error
// is returned for a torn write (ErrTorn), while the card is out of the field
// after one, and when a write could not be saved (the write is then undone).
func (c *SimCard) Transmit(cmd []byte) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gone {
		return nil, fmt.Errorf("%w; Reset puts it back", ErrTorn)
	}
	cm, err := apdu.ParseCommand(cmd)
	if err != nil {
		return swOnly(swWrongLength), nil
	}
	data, sw, err := c.dispatch(cm)
	if err != nil {
		return nil, err
	}
	return apdu.Response{Data: data, SW: sw}.Bytes(), nil
}

func swOnly(sw uint16) []byte { return []byte{byte(sw >> 8), byte(sw)} }

func (c *SimCard) dispatch(cm apdu.Command) ([]byte, uint16, error) {
	if cm.CLA != claReader {
		return nil, swCLANotSupport, nil
	}
	switch cm.INS {
	case insGetData:
		data, sw := c.getData(cm)
		return data, sw, nil
	case insLoadKeys:
		return nil, c.loadKeys(cm), nil
	case insAuth:
		return nil, c.authenticate(cm), nil
	case insRead:
		data, sw := c.read(cm)
		return data, sw, nil
	case insWrite:
		return c.write(cm)
	case insValueOp:
		return c.valueOp(cm)
	case insReadValue:
		data, sw := c.readValue(cm)
		return data, sw, nil
	}
	return nil, swINSNotSupport, nil
}

// getData is GET DATA: P1 00 the UID. P1 01, the ATS, exists only on ISO
// 14443-4 cards.
func (c *SimCard) getData(cm apdu.Command) ([]byte, uint16) {
	switch {
	case cm.P2 != 0x00 || cm.P1 > 0x01:
		return nil, swWrongP1P2
	case cm.P1 == 0x01:
		return nil, swNoATS
	case cm.Ne == 0:
		return nil, swWrongLength
	case cm.Ne != apdu.MaxShortNe && cm.Ne != len(c.f.UID):
		return nil, 0x6C00 | uint16(len(c.f.UID))
	}
	return append([]byte(nil), c.f.UID[:]...), apdu.SWOK
}

// loadKeys is LOAD KEYS into the reader: P1 the key structure (00 volatile,
// 20 non-volatile; both kept the same here), P2 the slot.
func (c *SimCard) loadKeys(cm apdu.Command) uint16 {
	switch {
	case cm.P1&0x80 != 0:
		return swReaderKey
	case cm.P1&0x40 != 0:
		return swSecuredKey
	case cm.P1&^mifare.KeyStructureNonVolatile != 0:
		return swWrongP1P2
	case cm.P2 >= keySlots:
		return swKeyNumber
	case len(cm.Data) != len(mifare.Key{}):
		return swKeyLength
	}
	k := mifare.Key(cm.Data)
	c.keys[cm.P2] = &k
	return apdu.SWOK
}

// authenticate is GENERAL AUTHENTICATE: data 01, block MSB, block LSB, key
// type, slot. A failure drops any earlier authentication, as the card halts.
func (c *SimCard) authenticate(cm apdu.Command) uint16 {
	switch {
	case cm.P1 != 0 || cm.P2 != 0:
		return swWrongP1P2
	case len(cm.Data) != 5:
		return swWrongLength
	case cm.Data[0] != authVersion:
		return swWrongP1P2
	}
	block, kt, slot := cm.Data[2], mifare.KeyType(cm.Data[3]), cm.Data[4]
	switch {
	case kt != mifare.KeyTypeA && kt != mifare.KeyTypeB:
		return swKeyTypeBad
	case slot >= keySlots:
		return swKeyNumber
	}
	c.authed = false
	if cm.Data[1] != 0 || block >= mifare.NumBlocks || c.keys[slot] == nil {
		return swFailed
	}
	tr := c.f.Blocks[mifare.TrailerOf(mifare.SectorOf(block))]
	want := tr[0:6]
	if kt == mifare.KeyTypeB {
		want = tr[10:16]
	}
	if subtle.ConstantTimeCompare(want, c.keys[slot][:]) != 1 {
		return swFailed
	}
	c.authed, c.authSec, c.authKey = true, mifare.SectorOf(block), kt
	return apdu.SWOK
}

// cond returns the access condition of block under the current
// authentication, and false when the block may not be touched at all: its
// sector is not the authenticated one, its access bits are malformed (the
// sector is locked for ever), or the authentication used a key B that is
// readable and so no key.
func (c *SimCard) cond(block byte) (mifare.AccessCond, bool) {
	if !c.authed || block >= mifare.NumBlocks || mifare.SectorOf(block) != c.authSec {
		return 0, false
	}
	tr := c.f.Blocks[mifare.TrailerOf(c.authSec)]
	conds, err := mifare.AccessBits(tr[6:9]).Conds()
	if err != nil {
		return 0, false
	}
	if c.authKey == mifare.KeyTypeB && keyBReadable(conds[mifare.BlocksPerSector-1]) {
		return 0, false
	}
	return conds[block%mifare.BlocksPerSector], true
}

// mayData reports whether the current authentication may do op on data
// block block.
func (c *SimCard) mayData(block byte, op dataOp) bool {
	cond, ok := c.cond(block)
	return ok && !mifare.IsTrailer(block) && dataAccess[cond][op].has(c.authKey)
}

// address checks P1 P2 as a block address: P1 is its high byte, 0 on 1K.
func address(cm apdu.Command) (byte, bool) {
	return cm.P2, cm.P1 == 0 && cm.P2 < mifare.NumBlocks
}

// read is READ BINARY of one block. A trailer reads with key A as zeros and
// every other part as zeros unless its access condition lets it be read.
func (c *SimCard) read(cm apdu.Command) ([]byte, uint16) {
	block, ok := address(cm)
	switch {
	case !ok:
		return nil, swFailed
	case cm.Ne == 0:
		return nil, swWrongLength
	case cm.Ne != mifare.BlockSize && cm.Ne != apdu.MaxShortNe:
		return nil, 0x6C00 | mifare.BlockSize
	}
	if !mifare.IsTrailer(block) {
		if !c.mayData(block, opRead) {
			return nil, swFailed
		}
		b := c.f.Blocks[block]
		return b[:], apdu.SWOK
	}
	cond, ok := c.cond(block)
	if !ok {
		return nil, swFailed
	}
	r, tr := trailerAccess[cond], c.f.Blocks[block]
	out := make([]byte, mifare.BlockSize)
	if r.readAccess.has(c.authKey) {
		copy(out[6:10], tr[6:10]) // the GPB goes with the access bits
	}
	if r.readKeyB.has(c.authKey) {
		copy(out[10:16], tr[10:16])
	}
	if !r.readAccess.has(c.authKey) && !r.readKeyB.has(c.authKey) {
		return nil, swFailed
	}
	return out, apdu.SWOK
}

// write is UPDATE BINARY of one block. Block 0 is read-only. A trailer takes
// only the parts its access condition lets this key write and keeps the
// others; malformed access bits are written as given and lock the sector for
// ever, as on a real card (which is why the terminal never sends them).
func (c *SimCard) write(cm apdu.Command) ([]byte, uint16, error) {
	block, ok := address(cm)
	switch {
	case !ok || block == 0:
		return nil, swFailed, nil
	case len(cm.Data) != mifare.BlockSize:
		return nil, swWrongLength, nil
	}
	data := [mifare.BlockSize]byte(cm.Data)
	if !mifare.IsTrailer(block) {
		if !c.mayData(block, opWrite) {
			return nil, swFailed, nil
		}
		return c.store(block, data)
	}
	cond, ok := c.cond(block)
	if !ok {
		return nil, swFailed, nil
	}
	r, next := trailerAccess[cond], c.f.Blocks[block]
	wrote := false
	for _, part := range []struct {
		who      keySet
		from, to int
	}{{r.writeKeyA, 0, 6}, {r.writeAccess, 6, 10}, {r.writeKeyB, 10, 16}} {
		if part.who.has(c.authKey) {
			copy(next[part.from:part.to], data[part.from:part.to])
			wrote = true
		}
	}
	if !wrote {
		return nil, swFailed, nil
	}
	return c.store(block, next)
}

// Value operations of FF D7 (ACS), the first data byte.
const (
	vbStore     = 0x00
	vbIncrement = 0x01
	vbDecrement = 0x02
	vbRestore   = 0x03
)

// valueOp is ACS's value block operation: FF D7 00 block 05 op value(4, MSB
// first) with op store, increment or decrement (each followed by a transfer
// into the same block), or FF D7 00 src 02 03 dst, restore src into dst.
// Increment and decrement refuse a negative operand (a decrement by a
// negative amount would let key A raise the balance) and a result beyond
// int32; the address byte of the block is kept. A restore copies the source
// block whole, its address byte included, within the authenticated sector.
func (c *SimCard) valueOp(cm apdu.Command) ([]byte, uint16, error) {
	block, ok := address(cm)
	if !ok || block == 0 || mifare.IsTrailer(block) {
		return nil, swFailed, nil
	}
	switch {
	case len(cm.Data) == 2 && cm.Data[0] == vbRestore:
		dst := cm.Data[1]
		if dst == 0 || dst >= mifare.NumBlocks || mifare.IsTrailer(dst) || !c.mayData(block, opDecrement) || !c.mayData(dst, opDecrement) {
			return nil, swFailed, nil
		}
		if _, _, err := mifare.ParseValue(c.f.Blocks[block][:]); err != nil {
			return nil, swFailed, nil
		}
		return c.store(dst, c.f.Blocks[block])
	case len(cm.Data) != 5:
		return nil, swWrongLength, nil
	}
	operand := int32(binary.BigEndian.Uint32(cm.Data[1:]))
	switch op := cm.Data[0]; op {
	case vbStore:
		if !c.mayData(block, opWrite) {
			return nil, swFailed, nil
		}
		return c.store(block, mifare.EncodeValue(operand, block))
	case vbIncrement, vbDecrement:
		// Increment needs the increment right and the transfer back into the
		// block; decrement's right covers its transfer.
		if operand < 0 || !c.mayData(block, opDecrement) || op == vbIncrement && !c.mayData(block, opIncrement) {
			return nil, swFailed, nil
		}
		v, addr, err := mifare.ParseValue(c.f.Blocks[block][:])
		if err != nil {
			return nil, swFailed, nil
		}
		next := int64(v) + int64(operand)
		if op == vbDecrement {
			next = int64(v) - int64(operand)
		}
		if next < math.MinInt32 || next > math.MaxInt32 {
			return nil, swFailed, nil
		}
		return c.store(block, mifare.EncodeValue(int32(next), addr))
	}
	return nil, swFailed, nil
}

// readValue is ACS's READ VALUE BLOCK: FF B1 00 block 04, the value MSB
// first. The block must be a value block (any address byte).
func (c *SimCard) readValue(cm apdu.Command) ([]byte, uint16) {
	block, ok := address(cm)
	switch {
	case !ok || !c.mayData(block, opRead):
		return nil, swFailed
	case cm.Ne == 0:
		return nil, swWrongLength
	case cm.Ne != 4 && cm.Ne != apdu.MaxShortNe:
		return nil, 0x6C04
	}
	v, _, err := mifare.ParseValue(c.f.Blocks[block][:])
	if err != nil {
		return nil, swFailed
	}
	return binary.BigEndian.AppendUint32(nil, uint32(v)), apdu.SWOK
}

// store writes one block, or tears the write when it is the armed one.
func (c *SimCard) store(block byte, data [mifare.BlockSize]byte) ([]byte, uint16, error) {
	if c.tearIn > 0 {
		c.tearIn--
		if c.tearIn == 0 {
			return nil, 0, c.tear(block, data)
		}
	}
	if err := c.commit(block, data); err != nil {
		return nil, 0, err
	}
	return nil, apdu.SWOK, nil
}

// tear leaves block as the tear mode says and takes the card out of the
// field.
func (c *SimCard) tear(block byte, data [mifare.BlockSize]byte) error {
	left := data
	switch c.tearMode {
	case TearNotWritten:
		left = c.f.Blocks[block]
	case TearWritten:
	default:
		left = torn(c.f.Blocks[block], data)
	}
	c.gone, c.authed = true, false
	if err := c.commit(block, left); err != nil {
		return fmt.Errorf("block %d: %w; and the torn block was not saved: %w", block, ErrTorn, err)
	}
	return fmt.Errorf("block %d (%v): %w", block, c.tearMode, ErrTorn)
}

// torn is a half-written block: the first 8 bytes of next, the rest of old.
// When that happens to be a value block (next and old held the same value)
// one byte of the inverted copy is broken, so the tear always shows.
func torn(old, next [mifare.BlockSize]byte) [mifare.BlockSize]byte {
	var b [mifare.BlockSize]byte
	copy(b[:8], next[:8])
	copy(b[8:], old[8:])
	if _, _, err := mifare.ParseValue(b[:]); err == nil {
		b[4] ^= 0xFF
	}
	return b
}

// commit writes block and saves the card file; when the save fails the
// write is undone and the error returned, so memory never runs ahead of what
// the card would remember after a power loss.
func (c *SimCard) commit(block byte, data [mifare.BlockSize]byte) error {
	before := c.f.Blocks[block]
	c.f.Blocks[block] = data
	if c.path == "" {
		return nil
	}
	if err := c.f.Save(c.path); err != nil {
		c.f.Blocks[block] = before
		return fmt.Errorf("simulated card: write of block %d not saved, so not made: %w", block, err)
	}
	return nil
}
