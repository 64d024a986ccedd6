package integration

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	epursesim "github.com/cardd/cardd/apdu/epurse/sim"
	"github.com/cardd/cardd/money"
	"github.com/cardd/cardd/reader/vpcd"
)

// TestPOSStaffLunchPrice: `cardd run --mode pos` with a fixed lunch of
// 12.00 around now, staff (card type byte 02) paying 15.00. A staff card
// tapped with nothing armed pays 15.00 and the log line names its class; a
// student card (type 01) and a card of a type in no class pay 12.00, the
// latter with no class. The journal holds each amount once and the cards
// their balances less exactly that.
func TestPOSStaffLunchPrice(t *testing.T) {
	requirePCSC(t)
	w := newHostWorld(t)
	insertPSAM(t, w.hostDir)
	around, _ := periodsAround(t)
	around = strings.Replace(around, `max_count: 1}`, `max_count: 1, class_prices: {staff: "15.00"}}`, 1)
	cards := []struct {
		number   string
		cardType uint16
		class    string
		price    int64
	}{
		{"3101000000800024", 0x0200, "staff", 1500},
		{"3101000000800032", 0x0100, "student", 1200},
		{"3101000000800040", 0x0900, "", 1200},
	}
	paths := make([]string, len(cards))
	for i, c := range cards {
		paths[i] = w.issue(t, c.number, 10000)
		f, err := epursesim.LoadCardFile(paths[i])
		if err != nil {
			t.Fatal(err)
		}
		f.Info.CardType = c.cardType
		if err := f.Save(paths[i]); err != nil {
			t.Fatal(err)
		}
	}
	store := filepath.Join(t.TempDir(), "cardd.db")
	waitEmpty(t, 0)
	d := startDaemon(t, "CARDD_MODE=pos", "CARDD_READER_SAM_PATTERN=^"+regexp.QuoteMeta(slot1Reader)+"$",
		"CARDD_STORE_PATH="+store, "CARDD_TERMINAL_ID="+termID, "CARDD_POS_PERIODS="+around,
		`CARDD_POS_CLASSES={student: ["01"], staff: ["02"]}`)
	d.waitLine(t, "reader added", 10*time.Second, func(m map[string]any) bool { return m["reader"] == slot1Reader && m["role"] == "sam" })
	for i, c := range cards {
		in := insert(t, paths[i], 0, vpcd.Options{})
		m := d.waitLine(t, "the tap", 20*time.Second, func(m map[string]any) bool { return m["msg"] == "tap" })
		if err := in.remove(t); err != nil {
			t.Fatal(err)
		}
		class, _ := m["class"].(string)
		if m["outcome"] != "ok" || m["period"] != "lunch" || m["paid"] != true || class != c.class ||
			m["sale_amount"] != money.Format(c.price) {
			t.Fatalf("card type %04X: tap %v; want %s paid, class %q", c.cardType, m, money.Format(c.price), c.class)
		}
		f, err := epursesim.LoadCardFile(paths[i])
		if err != nil {
			t.Fatal(err)
		}
		if f.EPBalance != 10000-c.price {
			t.Fatalf("card type %04X: balance %d, want %d", c.cardType, f.EPBalance, 10000-c.price)
		}
	}
	d.stop(t, 10*time.Second)
	for _, c := range cards {
		rows := purchaseRows(t, store, c.number)
		if len(rows) != 1 || rows[0].AmountFen != c.price || rows[0].State != "done" {
			t.Fatalf("card type %04X: purchase rows %+v", c.cardType, rows)
		}
	}
}
