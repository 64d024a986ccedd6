package tap

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/cardd/cardd/apdu"
	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/offline"
)

// badMAC2 is a card whose answer to DEBIT FOR PURCHASE carries a MAC2 one
// bit off, as a card without the issuer's purchase key would give.
type badMAC2 struct{ t apdu.Transmitter }

func (b badMAC2) Transmit(cmd []byte) ([]byte, error) {
	resp, err := b.t.Transmit(cmd)
	if err == nil && len(cmd) >= 2 && cmd[0] == 0x80 && cmd[1] == insDebit && len(resp) == 10 {
		resp[7] ^= 0x01 // the MAC2's last byte: TAC(4) MAC2(4) SW(2)
	}
	return resp, err
}

// TestPurchaseMAC2RefusedIsAnAlarm: the PSAM refuses the card's MAC2
// after the card debited. The sale is paid once (the card's money moved),
// but the tap ends in the alarm, not ok, and the journal row, done with the
// card's TAC, carries the alarm for the host.
func TestPurchaseMAC2RefusedIsAnAlarm(t *testing.T) {
	w := newPOSWorld(t, 0)
	if _, err := w.till.Arm(1250, ""); err != nil {
		t.Fatal(err)
	}
	rep, err := w.tap(t, badMAC2{w.card})
	if !errors.Is(err, ErrMAC2Refused) || (Result{Err: err}).Outcome() != OutcomeMAC2Alarm {
		t.Fatalf("tap with a wrong MAC2: %v, outcome %s; want the MAC2 alarm", err, (Result{Err: err}).Outcome())
	}
	if !rep.Paid || rep.MAC2Verified || rep.TAC == "" {
		t.Fatalf("report %+v: want paid, with the TAC, MAC2 not verified", rep)
	}
	row, err := w.store.Get(context.Background(), rep.JournalID)
	if err != nil {
		t.Fatal(err)
	}
	if row.State != offline.StateDone || row.TAC != rep.TAC || !strings.HasPrefix(row.Detail, MAC2Alarm+": ") {
		t.Fatalf("journal row %+v: want done with the TAC and the alarm", row)
	}
	if up := row.HostRow(); !strings.HasPrefix(up.Detail, MAC2Alarm) {
		t.Fatalf("the row uploaded to the host %+v does not carry the alarm", up)
	}
	if got := w.card.File().EPBalance; got != 12345-1250 {
		t.Fatalf("card holds %d", got)
	}
	// The sale is not charged again.
	if _, ok := w.till.Armed(); ok {
		t.Fatal("the sale is still armed")
	}
	if rep, err := w.tap(t, w.card); err != nil || rep.Sale.ID != "" || w.card.File().EPBalance != 12345-1250 {
		t.Fatalf("next tap: %+v, %v, card holds %d", rep, err, w.card.File().EPBalance)
	}
}

// TestMAC2AlarmReachesTheHostLedger: the host raises a ledger alarm for a
// row whose detail begins with hostapi.AlarmPrefix; the terminal's MAC2
// alarm must begin so.
func TestMAC2AlarmReachesTheHostLedger(t *testing.T) {
	if !strings.HasPrefix(MAC2Alarm, hostapi.AlarmPrefix) {
		t.Fatalf("MAC2Alarm %q does not begin with hostapi.AlarmPrefix %q", MAC2Alarm, hostapi.AlarmPrefix)
	}
}
