package trace

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/cardd/cardd/apdu"
)

func TestRecorder(t *testing.T) {
	gone := errors.New("card removed")
	answers := [][]byte{mustHex("6F009000"), mustHex("0000164E9000"), nil}
	n := 0
	card := apdu.TransmitterFunc(func(cmd []byte) ([]byte, error) {
		a := answers[n]
		n++
		if a == nil {
			return nil, gone
		}
		return a, nil
	})
	rec := &Recorder{T: card}
	cmd := mustHex("00A4040009A0000000038698070100")
	if _, err := rec.Transmit(cmd); err != nil {
		t.Fatal(err)
	}
	cmd[0] = 0xFF // the caller reuses its buffer: the record must not change
	rec.Note = "balance"
	resp, err := apdu.Transceive(rec, apdu.Command{CLA: 0x80, INS: 0x5C, P2: 2, Ne: 4})
	if err != nil || !bytes.Equal(resp, mustHex("0000164E")) {
		t.Fatalf("through the recorder: % X, %v", resp, err)
	}
	if _, err := rec.Transmit(mustHex("00B0960037")); !errors.Is(err, gone) {
		t.Fatalf("a transport error came back as %v", err)
	}
	want := []Exchange{
		{Command: mustHex("00A4040009A0000000038698070100"), Response: mustHex("6F009000")},
		{Command: mustHex("805C000204"), Response: mustHex("0000164E9000"), Note: "balance"},
	}
	if !reflect.DeepEqual(rec.Exchanges(), want) {
		t.Errorf("recorded\n%+v\nwant\n%+v", rec.Exchanges(), want)
	}
	if l := rec.Lost(); len(l) != 1 || !bytes.Equal(l[0].Command, mustHex("00B0960037")) || l[0].Err != gone {
		t.Errorf("lost %+v", l)
	}
	rec.Exchanges()[0].Response[0] = 0xFF
	if rec.Exchanges()[0].Response[0] != 0x6F {
		t.Error("Exchanges handed out the record itself: blanking a trace made of it changed it")
	}
	if rec.Note != "" {
		t.Errorf("the note %q stayed for the next exchange", rec.Note)
	}
}

// TestRecorderShortAnswerIsLostWithAReason: an answer without a status word
// (fewer than 2 bytes) that came with no transport error is lost all the
// same, and says why: `cardd dump` writes each lost command's error in a
// note, and a nil one there would crash the dump.
func TestRecorderShortAnswerIsLostWithAReason(t *testing.T) {
	rec := &Recorder{T: apdu.TransmitterFunc(func([]byte) ([]byte, error) { return []byte{0x90}, nil })}
	_, _ = rec.Transmit(mustHex("00B0950000"))
	if l := rec.Lost(); len(l) != 1 || l[0].Err == nil {
		t.Fatalf("lost %+v: want the command, with an error", l)
	}
	if len(rec.Exchanges()) != 0 {
		t.Fatalf("recorded %+v", rec.Exchanges())
	}
}
