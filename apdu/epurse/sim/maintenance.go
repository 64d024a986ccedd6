package epursesim

import (
	"crypto/subtle"
	"fmt"
	"io"

	"github.com/cardd/cardd/apdu"
	"github.com/cardd/cardd/apdu/epurse"
)

// blockedSW is what a blocked application answers the purse commands:
// 9303 when it is locked for good, else 6A81 (spec "Status words").
func (c *SimCard) blockedSW() uint16 {
	if c.f.BlockedPermanently {
		return swAppLocked
	}
	return swBlockedApp
}

// getChallenge is GET CHALLENGE, 00 84 00 00 04: a fresh random, kept for
// the very next command only (Transmit drops it after that command).
func (c *SimCard) getChallenge(cm apdu.Command) ([]byte, uint16, error) {
	if cm.P1 != 0x00 || cm.P2 != 0x00 {
		return nil, swWrongP1P2, nil
	}
	if len(cm.Data) != 0 || cm.Ne == 0 {
		return nil, swWrongLength, nil
	}
	var ch [epurse.ChallengeLen]byte
	if _, err := io.ReadFull(c.rand, ch[:]); err != nil {
		return nil, 0, fmt.Errorf("simulated card: random: %w", err)
	}
	c.challenge = &ch
	return ch[:], apdu.SWOK, nil
}

// maintain is APPLICATION BLOCK (84 1E 00 P2 04 MAC, P2 00 temporary, 01
// permanent) and APPLICATION UNBLOCK (84 18 00 00 04 MAC) on the selected
// application, blocked or not (docs/epurse.md, "Blocking a card"). The MAC
// is checked with the card's DAMK over the command header, the challenge of
// the command just before as IV; without that challenge, or with a wrong
// MAC, nothing changes. A permanent block is final: both commands then
// answer 9303.
func (c *SimCard) maintain(cm apdu.Command, ch *[epurse.ChallengeLen]byte) ([]byte, uint16, error) {
	block := cm.INS == insAppBlock
	switch {
	case cm.P1 != 0x00, block && cm.P2 > 0x01, !block && cm.P2 != 0x00:
		return nil, swWrongP1P2, nil
	case len(cm.Data) != 4:
		return nil, swWrongLength, nil
	case c.df != dfADF:
		return nil, swConditions, nil
	case c.f.BlockedPermanently:
		return nil, swAppLocked, nil
	case c.f.Keys.DAMK == (epurse.Key16{}):
		return nil, swNoKey, nil
	case ch == nil:
		return nil, swNoChallenge, nil
	}
	want := epurse.MaintenanceMAC(c.f.Keys.DAMK, *ch, []byte{cm.CLA, cm.INS, cm.P1, cm.P2, byte(len(cm.Data))})
	if subtle.ConstantTimeCompare(want[:], cm.Data) != 1 {
		return nil, swMACInvalid, nil
	}
	err := c.commit(func(f *CardFile) {
		f.Blocked = block
		f.BlockedPermanently = block && cm.P2 == byte(epurse.BlockPermanent)
	})
	if err != nil {
		return nil, 0, err
	}
	return nil, apdu.SWOK, nil
}
