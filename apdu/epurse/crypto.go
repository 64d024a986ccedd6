package epurse

import (
	"crypto/cipher"
	"crypto/des"
	"encoding/binary"
)

// tripleDES returns the 3DES-EDE2 cipher K1 K2 K1 of a double-length key.
func tripleDES(k Key16) cipher.Block {
	var k24 [24]byte
	copy(k24[:], k[:])
	copy(k24[16:], k[:8])
	c, err := des.NewTripleDESCipher(k24[:])
	if err != nil {
		panic("epurse: 3DES with a 24-byte key: " + err.Error()) // cannot happen: the size is fixed
	}
	return c
}

func encrypt3DES(k Key16, in [8]byte) [8]byte {
	var out [8]byte
	tripleDES(k).Encrypt(out[:], in[:])
	return out
}

// DiversifyKey derives a card key from an issuer master key (spec "Keys and
// MACs"): F is the rightmost 8 bytes of the application serial, and the card
// key is 3DES_MK(F) ‖ 3DES_MK(NOT F). A serial shorter than 8 bytes is
// left-padded with zeros, which is what "rightmost 8 bytes" of the number
// padded to the field gives.
func DiversifyKey(master Key16, appSerial []byte) Key16 {
	var f, notF [8]byte
	if len(appSerial) >= 8 {
		copy(f[:], appSerial[len(appSerial)-8:])
	} else {
		copy(f[8-len(appSerial):], appSerial)
	}
	for i := range f {
		notF[i] = ^f[i]
	}
	left, right := encrypt3DES(master, f), encrypt3DES(master, notF)
	var k Key16
	copy(k[:8], left[:])
	copy(k[8:], right[:])
	return k
}

// SessionKeyLoad derives the load session key SESLK =
// 3DES_DLK(random ‖ onlineCtr ‖ 8000) (spec "Keys and MACs").
func SessionKeyLoad(dlk Key16, random [4]byte, onlineCtr uint16) [8]byte {
	var in [8]byte
	copy(in[:4], random[:])
	binary.BigEndian.PutUint16(in[4:], onlineCtr)
	in[6], in[7] = 0x80, 0x00
	return encrypt3DES(dlk, in)
}

// SessionKeyPurchase derives the purchase session key SESPK =
// 3DES_DPK(random ‖ offlineCtr ‖ last 2 bytes of the terminal transaction
// serial) (spec "Keys and MACs").
func SessionKeyPurchase(dpk Key16, random [4]byte, offlineCtr uint16, termSerial uint32) [8]byte {
	var in [8]byte
	copy(in[:4], random[:])
	binary.BigEndian.PutUint16(in[4:], offlineCtr)
	binary.BigEndian.PutUint16(in[6:], uint16(termSerial))
	return encrypt3DES(dpk, in)
}

// TACKey derives the single-DES TAC key from the DTK: the left 8 bytes XOR
// the right 8 bytes (spec "Keys and MACs").
func TACKey(dtk Key16) [8]byte {
	var k [8]byte
	for i := range k {
		k[i] = dtk[i] ^ dtk[8+i]
	}
	return k
}

// MAC is the e-purse MAC (spec "Keys and MACs"): single-DES CBC-MAC with IV
// 00×8 over data padded with ISO 9797-1 method 2, which is always applied
// (a whole 80 00…00 block when data is already a multiple of 8), keeping the
// first 4 bytes of the last block.
func MAC(key [8]byte, data []byte) [4]byte {
	c, err := des.NewCipher(key[:])
	if err != nil {
		panic("epurse: DES with an 8-byte key: " + err.Error()) // cannot happen: the size is fixed
	}
	var chain, block [8]byte
	n := len(data)/8 + 1 // padding always adds at least the 80 byte
	for i := 0; i < n; i++ {
		block = [8]byte{}
		rest := data[min(8*i, len(data)):]
		m := copy(block[:], rest)
		if m < 8 {
			block[m] = 0x80
		}
		for j := range chain {
			chain[j] ^= block[j]
		}
		c.Encrypt(chain[:], chain[:])
	}
	var out [4]byte
	copy(out[:], chain[:4])
	return out
}
