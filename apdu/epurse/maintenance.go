package epurse

import (
	"crypto/des"
	"errors"
	"fmt"

	"github.com/cardd/cardd/apdu"
)

// The maintenance commands below are not in /work/shared/spec/epurse.md;
// docs/epurse.md, "Blocking a card", says what cardd relies on and where it
// comes from (PBOC 2.0 part 2 / JR/T 0025 e-purse command set).

// Instruction bytes of the maintenance commands.
const (
	insGetChallenge = 0x84
	insAppBlock     = 0x1E
	insAppUnblock   = 0x18
	// claSecure is the class of a command that carries a MAC (secure
	// messaging, PBOC "84").
	claSecure = 0x84
)

// ChallengeLen is the length of the challenge GET CHALLENGE asks for, the
// one that keys an APPLICATION BLOCK MAC.
const ChallengeLen = 4

// BlockMode is the P2 of APPLICATION BLOCK.
type BlockMode byte

// Block modes (docs/epurse.md, "Blocking a card").
const (
	// BlockTemporary (P2 00) can be lifted by APPLICATION UNBLOCK with the
	// same maintenance key: an issuer's desk can give the card back.
	BlockTemporary BlockMode = 0x00
	// BlockPermanent (P2 01) cannot be lifted.
	BlockPermanent BlockMode = 0x01
)

// String is "temporary" or "permanent".
func (m BlockMode) String() string {
	switch m {
	case BlockTemporary:
		return "temporary"
	case BlockPermanent:
		return "permanent"
	}
	return fmt.Sprintf("block mode %#02x", byte(m))
}

// ErrApplicationBlocked is wrapped by the error of a command refused because
// the e-purse application is blocked: a SELECT answered 6283 (Select), or a
// command answered 9303 (permanently locked). errors.Is also finds the apdu
// status error inside (apdu.ErrFileInvalidated, apdu.ErrAppLocked).
var ErrApplicationBlocked = errors.New("epurse: application blocked")

// blockedErr wraps err with ErrApplicationBlocked when its status says the
// application is blocked; other errors come back as they were.
func blockedErr(err error) error {
	if errors.Is(err, apdu.ErrFileInvalidated) || errors.Is(err, apdu.ErrAppLocked) {
		return fmt.Errorf("%w: %w", ErrApplicationBlocked, err)
	}
	return err
}

// GetChallenge asks the card for a 4-byte challenge: 00 84 00 00 04 (ISO
// 7816-4 GET CHALLENGE). The challenge is the IV of the next maintenance
// command's MAC, and a card keeps it for that next command only.
func GetChallenge(t apdu.Transmitter) ([ChallengeLen]byte, error) {
	var ch [ChallengeLen]byte
	resp, err := apdu.Transceive(t, apdu.Command{CLA: claISO, INS: insGetChallenge, P1: 0x00, P2: 0x00, Ne: ChallengeLen})
	if err != nil {
		return ch, fmt.Errorf("get challenge: %w", err)
	}
	if len(resp) != ChallengeLen {
		return ch, wrongLength("GET CHALLENGE", len(resp), ChallengeLen)
	}
	copy(ch[:], resp)
	return ch, nil
}

// ApplicationBlock blocks the selected application: 84 1E 00 P2 04 MAC,
// the MAC from BlockMAC over the challenge the card gave just before. A
// wrong MAC is apdu.ErrMACInvalid (9302) and changes nothing on the card.
func ApplicationBlock(t apdu.Transmitter, mode BlockMode, mac [4]byte) error {
	if mode != BlockTemporary && mode != BlockPermanent {
		return fmt.Errorf("%w: %v", ErrBadArgument, mode)
	}
	return maintenance(t, "application block", insAppBlock, byte(mode), mac)
}

// ApplicationUnblock lifts a temporary block: 84 18 00 00 04 MAC, the MAC
// from UnblockMAC. The application must be selected first; a blocked one
// answers that SELECT 6283, which Select reports as an error while still
// selecting it.
func ApplicationUnblock(t apdu.Transmitter, mac [4]byte) error {
	return maintenance(t, "application unblock", insAppUnblock, 0x00, mac)
}

func maintenance(t apdu.Transmitter, what string, ins, p2 byte, mac [4]byte) error {
	resp, err := apdu.Transceive(t, apdu.Command{CLA: claSecure, INS: ins, P1: 0x00, P2: p2, Data: mac[:]})
	if err != nil {
		return fmt.Errorf("%s: %w", what, blockedErr(err))
	}
	if len(resp) != 0 {
		return wrongLength(what, len(resp), 0)
	}
	return nil
}

// BlockMAC is the MAC of APPLICATION BLOCK in mode, keyed with the card's
// maintenance key DAMK: MaintenanceMAC over the command header 84 1E 00 P2
// 04 with the card's challenge as IV.
func BlockMAC(damk Key16, challenge [ChallengeLen]byte, mode BlockMode) [4]byte {
	return MaintenanceMAC(damk, challenge, []byte{claSecure, insAppBlock, 0x00, byte(mode), 0x04})
}

// UnblockMAC is the MAC of APPLICATION UNBLOCK: MaintenanceMAC over 84 18
// 00 00 04.
func UnblockMAC(damk Key16, challenge [ChallengeLen]byte) [4]byte {
	return MaintenanceMAC(damk, challenge, []byte{claSecure, insAppUnblock, 0x00, 0x00, 0x04})
}

// MaintenanceMAC is the PBOC secure-messaging MAC of a command (docs/epurse.md,
// "Blocking a card"): the IV is the card's challenge followed by 00 00 00
// 00; the data, padded ISO 9797-1 method 2 (80 then 00s, always), is
// chained with single DES under the key's left half, and the last block is
// enciphered with the whole key (DES_KL, DES⁻¹_KR, DES_KL: ISO 9797-1 MAC
// algorithm 3); the MAC is the first 4 bytes. It differs from MAC, the
// transaction MAC of session keys, by its double-length key and its IV.
func MaintenanceMAC(key Key16, challenge [ChallengeLen]byte, data []byte) [4]byte {
	left, err := des.NewCipher(key[:8])
	if err != nil {
		panic("epurse: DES with an 8-byte key: " + err.Error()) // cannot happen: the size is fixed
	}
	right, err := des.NewCipher(key[8:])
	if err != nil {
		panic("epurse: DES with an 8-byte key: " + err.Error())
	}
	var chain [8]byte
	copy(chain[:], challenge[:])
	padded := append(append([]byte(nil), data...), 0x80)
	for len(padded)%8 != 0 {
		padded = append(padded, 0x00)
	}
	for i := 0; i < len(padded); i += 8 {
		for j := range chain {
			chain[j] ^= padded[i+j]
		}
		left.Encrypt(chain[:], chain[:])
	}
	right.Decrypt(chain[:], chain[:])
	left.Encrypt(chain[:], chain[:])
	var out [4]byte
	copy(out[:], chain[:4])
	return out
}
