package tap

import (
	"context"
	"encoding/hex"
	"github.com/cardd/cardd/apdu"
	"testing"
)

// lastCommand remembers the last command sent through it.
type lastCommand struct {
	t    apdu.Transmitter
	last []byte
}

func (c *lastCommand) Transmit(cmd []byte) ([]byte, error) {
	c.last = append(c.last[:0], cmd...)
	return c.t.Transmit(cmd)
}

// The work a load leaves for after the card (its row's last commit, an
// fsync) is done before the purchase's INITIALIZE FOR PURCHASE, not
// between it and DEBIT, where it would hold the card's purchase session.
func TestPurchaseFlushesLoadBeforeInit(t *testing.T) {
	w := newPOSWorld(t, 0)
	if _, err := w.till.Arm(1250, ""); err != nil {
		t.Fatal(err)
	}
	w.card.Reset()
	card := &lastCommand{t: w.card}
	cr, err := ReadPurse(card, ReadOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var atFlush string
	after := &afterCard{}
	after.add(func() error { atFlush = hex.EncodeToString(card.last); return nil })
	var rep PurchaseReport
	err = w.p.charge(context.Background(), card, cr, cr.Balance, func() (SAMSession, error) { return samSession{w.sam}, nil }, &rep, after)
	if err != nil || !rep.Paid {
		t.Fatalf("charge: %+v %v", rep, err)
	}
	if len(atFlush) >= 4 && atFlush[:4] == "8050" {
		t.Fatalf("the load's commit ran after INITIALIZE FOR PURCHASE (%s), inside the card's purchase session", atFlush)
	}
	if atFlush == "" {
		t.Fatal("the load's commit did not run before the purchase")
	}
}
