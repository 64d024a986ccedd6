package integration

import (
	"context"
	"strings"
	"testing"

	epursesim "github.com/cardd/cardd/apdu/epurse/sim"
	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/reader/vpcd"
	hostsync "github.com/cardd/cardd/sync"
	"github.com/cardd/cardd/tap"
)

// wrongMAC2Card debits like any card but answers DEBIT FOR PURCHASE with a
// MAC2 one bit off: a card that does not hold the issuer's purchase key.
type wrongMAC2Card struct{ vpcd.Card }

func (c wrongMAC2Card) Transmit(cmd []byte) ([]byte, error) {
	resp, err := c.Card.Transmit(cmd)
	if len(cmd) > 1 && cmd[1] == 0x54 && len(resp) == 10 {
		resp[7] ^= 0x01 // TAC(4) MAC2(4) SW(2)
	}
	return resp, err
}

// TestPOSWrongMAC2IsAnAlarm: through pcscd, with the simulated PSAM in slot
// 1, a card whose MAC2 the PSAM refuses has paid (it debited, once), the tap
// ends mac2_alarm, the row is done with the TAC and flagged ALARM:, and
// once uploaded the host's ledger for the card holds the alarm.
func TestPOSWrongMAC2IsAnAlarm(t *testing.T) {
	requirePCSC(t)
	w := newHostWorld(t)
	insertPSAM(t, w.hostDir)
	store, till, results := startPOSRunner(t, -1)
	const number = "3101000000800009"
	path := w.issue(t, number, 50000)
	if _, err := till.Arm(1250, ""); err != nil {
		t.Fatal(err)
	}
	f, err := epursesim.LoadCardFile(path)
	if err != nil {
		t.Fatal(err)
	}
	in := insertSim(t, wrongMAC2Card{epursesim.NewSimCard(f, path)}, 0, vpcd.Options{})
	res := waitResult(t, results)
	in.remove(t)
	if res.Outcome() != tap.OutcomeMAC2Alarm || res.Purchase == nil || !res.Purchase.Paid {
		t.Fatalf("tap with a wrong MAC2: %s (%v) %+v, want mac2_alarm and paid", res.Outcome(), res.Err, res.Purchase)
	}
	if f, err := epursesim.LoadCardFile(path); err != nil || f.EPBalance != 50000-1250 {
		t.Fatalf("card balance %v (%v), want debited once", f.EPBalance, err)
	}
	row, err := store.Get(context.Background(), res.Purchase.JournalID)
	if err != nil {
		t.Fatal(err)
	}
	if row.State != "done" || row.TAC == "" || !strings.HasPrefix(row.Detail, tap.MAC2Alarm+": ") {
		t.Fatalf("journal row %+v, want done with the TAC and the MAC2 alarm", row)
	}
	client := &hostsync.Client{BaseURL: w.srv.URL, TerminalID: termID, Secret: []byte(w.secret)}
	up, err := client.UploadJournal(context.Background(), []hostapi.JournalRow{row.HostRow()})
	if err != nil || len(up.Acked) != 1 {
		t.Fatalf("upload: %+v %v", up, err)
	}
	l, err := w.host.Ledger(context.Background(), number)
	if err != nil || l.Alarms != 1 {
		t.Fatalf("host ledger for the card: %d alarms (%v), want 1", l.Alarms, err)
	}
}
