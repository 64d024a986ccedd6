package tap

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/cardd/cardd/apdu"
	"github.com/cardd/cardd/apdu/epurse"
)

// mfCard is a Beijing card as NFCard reads one: selected by the name PBOC,
// its EF 4 (which names it) in the MF, GET BALANCE answered only in the
// application. mfSW is its answer to SELECT MF, which selects the MF
// whatever it answers.
type mfCard struct {
	mfSW []byte
	// reselectSW, when set, answers SELECT of the application from the
	// MF, which then stays selected.
	reselectSW []byte
	inMF       bool
	balances   int // GET BALANCE sent while the MF was selected
}

func (c *mfCard) Transmit(cmd []byte) ([]byte, error) {
	ok := []byte{0x90, 0x00}
	switch {
	case len(cmd) >= 5 && cmd[1] == 0xA4 && cmd[2] == 0x04:
		if !bytes.Equal(cmd[5:5+int(cmd[4])], epurse.AIDBeijingPBOC) {
			return []byte{0x6A, 0x82}, nil
		}
		if c.inMF && c.reselectSW != nil {
			return bytes.Clone(c.reselectSW), nil
		}
		c.inMF = false
		ef15, _ := hex.DecodeString("123400000000000002011000000000001234567820200101203012310000")
		fci := apdu.AppendTLV(nil, 0x6F, append(apdu.AppendTLV(nil, 0x84, epurse.AIDBeijingPBOC),
			apdu.AppendTLV(nil, 0xA5, apdu.AppendTLV(nil, 0x9F0C, ef15))...))
		return append(fci, ok...), nil
	case len(cmd) >= 7 && cmd[1] == 0xA4 && cmd[5] == 0x3F && cmd[6] == 0x00:
		c.inMF = true
		return bytes.Clone(c.mfSW), nil
	case cmd[1] == 0xB0 && cmd[2] == 0x84:
		if !c.inMF {
			return []byte{0x6A, 0x82}, nil
		}
		ef4 := make([]byte, 32)
		copy(ef4, []byte{0x10, 0x00, 0x75, 0x10, 0x00, 0x12, 0x34, 0x56})
		copy(ef4[0x18:], []byte{0x20, 0x20, 0x01, 0x01, 0x20, 0x30, 0x12, 0x31})
		return append(ef4, ok...), nil
	case cmd[1] == 0x5C:
		if c.inMF {
			c.balances++
			return []byte{0x69, 0x85}, nil
		}
		return []byte{0x00, 0x00, 0x16, 0x4E, 0x90, 0x00}, nil
	case cmd[1] == 0xB2:
		return []byte{0x6A, 0x83}, nil
	}
	return []byte{0x6A, 0x82}, nil
}

// TestMFDetourReadsTheFileThere: a Beijing card keeps its EF 4, which
// names it and holds its validity, in the MF. The read selects the MF,
// takes EF 4 from there, selects the application again, then reads the
// balance: number, dates and balance all read.
func TestMFDetourReadsTheFileThere(t *testing.T) {
	checkMFDetour(t, []byte{0x90, 0x00})
}

// TestMFDetourWithAWarning: a card whose MF answers SELECT with a warning
// (6283, selected but invalidated; 63xx) has the MF selected all the same
// (ISO 7816-4: 62xx and 63xx are warnings, the command was done). The read
// must take its EF 4 there and select the application again before GET
// BALANCE, never ask the MF for a balance.
func TestMFDetourWithAWarning(t *testing.T) {
	checkMFDetour(t, []byte{0x62, 0x83})
	checkMFDetour(t, []byte{0x63, 0x00})
}

func checkMFDetour(t *testing.T, sw []byte) {
	t.Helper()
	c := &mfCard{mfSW: sw}
	cr, err := ReadPurse(c, ReadOptions{}, nil)
	if c.balances != 0 {
		t.Errorf("MF answering %X: GET BALANCE sent to the MF %d times", sw, c.balances)
	}
	if err != nil {
		t.Fatalf("MF answering %X: %v", sw, err)
	}
	if cr.Profile != epurse.ProfileBeijing || cr.Info.CardNumber != "1000751000123456" || cr.Balance != 5710 ||
		cr.Info.ExpiryDate.String() != "2030-12-31" || cr.Transactable() != nil {
		t.Errorf("MF answering %X: %s, number %q, balance %d, expiry %s, notes %q", sw, cr.Profile.Name, cr.Info.CardNumber,
			cr.Balance, cr.Info.ExpiryDate, cr.Notes)
	}
}

// TestMFDetourReselectRefused: a card that will not select its application
// again after the MF ends the read with an error; GET BALANCE is never sent
// to the MF, whose answer could be anything.
func TestMFDetourReselectRefused(t *testing.T) {
	c := &mfCard{mfSW: []byte{0x90, 0x00}, reselectSW: []byte{0x6A, 0x82}}
	if _, err := ReadPurse(c, ReadOptions{}, nil); err == nil || !strings.Contains(err.Error(), "select the e-purse again") {
		t.Fatalf("err = %v, want the failed reselect", err)
	}
	if c.balances != 0 {
		t.Fatalf("GET BALANCE sent to the MF %d times", c.balances)
	}
}
