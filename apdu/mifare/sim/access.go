package mifaresim

import "github.com/cardd/cardd/apdu/mifare"

// keySet says which keys may do something: keyA, keyB, both or none.
type keySet byte

const (
	never keySet = 0
	keyA  keySet = 1
	keyB  keySet = 2
	keyAB keySet = keyA | keyB
)

// has reports whether kt is in s.
func (s keySet) has(kt mifare.KeyType) bool {
	switch kt {
	case mifare.KeyTypeA:
		return s&keyA != 0
	case mifare.KeyTypeB:
		return s&keyB != 0
	}
	return false
}

// Operations on a data block, in the order of the datasheet's table 8.
type dataOp int

const (
	opRead      dataOp = iota
	opWrite            // also the ACS "store" value operation
	opIncrement        // increment
	opDecrement        // decrement, transfer, restore
)

// dataAccess is the datasheet's table 8: who may read, write, increment
// and decrement/transfer/restore a data block, by access condition.
var dataAccess = [8][4]keySet{
	0b000: {keyAB, keyAB, keyAB, keyAB},
	0b010: {keyAB, never, never, never},
	0b100: {keyAB, keyB, never, never},
	0b110: {keyAB, keyB, keyB, keyAB},
	0b001: {keyAB, never, never, keyAB},
	0b011: {keyB, keyB, never, never},
	0b101: {keyB, never, never, never},
	0b111: {never, never, never, never},
}

// trailerRights is one row of the datasheet's table 7.
type trailerRights struct {
	readKeyA, writeKeyA     keySet
	readAccess, writeAccess keySet
	readKeyB, writeKeyB     keySet
}

// trailerAccess is the datasheet's table 7, by the trailer's own condition.
var trailerAccess = [8]trailerRights{
	0b000: {never, keyA, keyA, never, keyA, keyA},
	0b010: {never, never, keyA, never, keyA, never},
	0b100: {never, keyB, keyAB, never, never, keyB},
	0b110: {never, never, keyAB, never, never, never},
	0b001: {never, keyA, keyA, keyA, keyA, keyA},
	0b011: {never, keyB, keyAB, keyB, never, keyB},
	0b101: {never, never, keyAB, keyB, never, never},
	0b111: {never, never, keyAB, never, never, never},
}

// keyBReadable reports whether the trailer condition lets key B be read. Key
// B is then data, not a key: the card refuses every access after an
// authentication with it (datasheet, remark under table 7).
func keyBReadable(trailer mifare.AccessCond) bool { return trailerAccess[trailer&7].readKeyB != never }
