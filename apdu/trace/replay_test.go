package trace

import (
	"bytes"
	"fmt"
	"testing"
)

const replayTrace = `# cardd trace 1
# source: test
atr 3B8A8001
> 00A4040009A0000000038698070100
< 6A82
> 00A4040008A00000063201010500
< 6F0A8408A000000632010105 9000
> 805C000204
< 0000164E 9000
> 00B0950037
< 6C1E
> 00B095001E
< 000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D 9000
> 00B2011C17
< 0102030405060708090A0B0C0D0E0F1011121314151617 9000
> 00B2021C17
< 6A83
> 805C000204
< 0000164F 9000
> 00A40000021001
< 6F0A8408A000000632010105 6283
> 80CA000009
< 112233445566778899 9000
> 00C0000010
< 61 9000
> 00C0000010
< 62 9000
`

func TestCardReplay(t *testing.T) {
	tr, err := Parse(bytes.NewReader([]byte(replayTrace)))
	if err != nil {
		t.Fatal(err)
	}
	var misses []string
	c := NewCard(tr)
	c.OnMiss = func(cmd, answer []byte) { misses = append(misses, hexOf(cmd)+" "+hexOf(answer)) }
	if got := hexOf(c.ATR()); got != "3B8A8001" {
		t.Errorf("ATR %s", got)
	}
	type step struct{ why, cmd, want string }
	steps := []step{
		{"exact", "00A4040009A0000000038698070100", "6A82"},
		{"exact", "00A4040008A00000063201010500", "6F0A8408A0000006320101059000"},
		{"SELECT with no Le", "00A4040008A000000632010105", "6F0A8408A0000006320101059000"},
		{"SELECT with P2 0C: no FCI", "00A4040C08A000000632010105", "9000"},
		{"SELECT by file id with P2 0C keeps its status", "00A4000C021001", "6283"},
		{"recorded twice: the first", "805C000204", "0000164E9000"},
		{"recorded twice: the second", "805C000204", "0000164F9000"},
		{"recorded twice: then the last", "805C000204", "0000164F9000"},
		{"Le 00 for Le 04", "805C000200", "0000164F9000"},
		{"exact, though 6Cxx", "00B0950037", "6C1E"},
		{"READ BINARY Le 00: the data, not the 6C", "00B0950000", "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D9000"},
		{"READ BINARY shorter Le: the first bytes", "00B0950004", "000102039000"},
		{"READ RECORD shorter Le", "00B2011C02", "01029000"},
		{"READ RECORD Le 00", "00B2011C00", "0102030405060708090A0B0C0D0E0F10111213141516179000"},
		{"another command with a short Le: 6Cxx", "80CA000004", "6C09"},
		{"GET RESPONSE recorded twice: in order", "00C0000010", "619000"},
		{"GET RESPONSE recorded twice: in order", "00C0000010", "629000"},
		{"unrecorded SELECT", "00A4040009A0000000038698070200", "6A82"},
		{"unrecorded READ BINARY", "00B0960037", "6A82"},
		{"unrecorded READ RECORD", "00B2011800", "6A83"},
		{"unrecorded other", "8050010B0B0100000001000000000001", "6D00"},
		{"malformed", "00A404", "6700"},
	}
	for _, s := range steps {
		got, err := c.Transmit(mustHex(s.cmd))
		if err != nil || hexOf(got) != s.want {
			t.Errorf("%s: %s answered %s (err %v), want %s", s.why, s.cmd, hexOf(got), err, s.want)
		}
	}
	if len(misses) != 5 || misses[0] != "00A4040009A0000000038698070200 6A82" {
		t.Errorf("OnMiss saw %q", misses)
	}

	// A power cycle plays each command's recordings from the first again.
	c.Reset()
	if got, _ := c.Transmit(mustHex("805C000204")); hexOf(got) != "0000164E9000" {
		t.Errorf("after Reset GET BALANCE answered %s, want the first recording", hexOf(got))
	}
	// The answer is the card's own copy: a caller scribbling on it changes
	// nothing for the next tap.
	got, _ := c.Transmit(mustHex("00B095001E"))
	got[0] = 0xFF
	if again, _ := c.Transmit(mustHex("00B095001E")); again[0] != 0x00 {
		t.Error("the recorded answer changed through a returned slice")
	}
}

func hexOf(b []byte) string { return fmt.Sprintf("%X", b) }
