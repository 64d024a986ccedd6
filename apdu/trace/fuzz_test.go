package trace

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// Seed corpora live in testdata/fuzz/<FuzzName>/.

// FuzzParse: no input panics Parse; whatever it accepts, Write writes and
// Parse reads back the same; a card made of it and blanking it never panic,
// and the card answers every command with a status word.
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, in string) {
		tr, err := Parse(strings.NewReader(in))
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error %v is not a *SyntaxError", err)
			}
			return
		}
		var b bytes.Buffer
		if err := tr.Write(&b); err != nil {
			t.Fatalf("Write of a parsed trace: %v", err)
		}
		back, err := Parse(&b)
		if err != nil {
			t.Fatalf("Parse of the written trace: %v\n%s", err, b.String())
		}
		for _, x := range [][]Exchange{tr.Exchanges, back.Exchanges} {
			for i := range x {
				x[i].Line = 0
			}
		}
		if !reflect.DeepEqual(tr, back) {
			t.Fatalf("round trip:\n%+v\nbecame\n%+v", tr, back)
		}
		c := NewCard(tr)
		for _, e := range tr.Exchanges {
			for _, cmd := range [][]byte{e.Command, e.Command[:4], append(bytes.Clone(e.Command), 0)} {
				if r, err := c.Transmit(cmd); err != nil || len(r) < 2 {
					t.Fatalf("card answered % X with % X, %v", cmd, r, err)
				}
			}
		}
		tr.BlankPersonal()
	})
}

// FuzzCardTransmit: whatever a terminal sends the replayed card, it answers
// a response APDU.
func FuzzCardTransmit(f *testing.F) {
	tr, err := Parse(strings.NewReader(replayTrace))
	if err != nil {
		f.Fatal(err)
	}
	c := NewCard(tr)
	f.Fuzz(func(t *testing.T, cmd []byte) {
		r, err := c.Transmit(cmd)
		if err != nil || len(r) < 2 {
			t.Fatalf("answered % X with % X, %v", cmd, r, err)
		}
	})
}
