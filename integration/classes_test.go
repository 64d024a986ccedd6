package integration

import (
	"fmt"
	"os/exec"
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

// TestPOSHostClassAndDiscount: `cardhost card class` gives card A (type
// byte 01, student) the class staff and card C (type 02, staff) a class
// this terminal does not name; `cardhost serve` serves the pull to `cardd
// run --mode pos`. After the pull, in a fixed lunch of 12.00 (staff
// 15.00), A pays the staff price (the host's record wins over its type
// byte) and C the set price (a class unknown here is no class, not its
// type byte's). Restarted with a keyed period discounting students to
// 80%, `cardd pos charge 9.99` on card B (type 01, no record) debits 7.99
// and says the list price and the discount; on A (staff by the host) it
// debits 9.99. The journal holds each amount once, the discounted row
// with its terms, and the cards their balances less exactly that.
func TestPOSHostClassAndDiscount(t *testing.T) {
	requirePCSC(t)
	w := newHostWorld(t)
	insertPSAM(t, w.hostDir)
	dir := t.TempDir()
	secretFile := w.secretFile(t, dir)
	store := filepath.Join(dir, "cardd.db")
	const numberA, numberB, numberC = "3101000000820001", "3101000000820002", "3101000000820003"
	typed := func(number string, cardType uint16) string {
		path := w.issue(t, number, 10000)
		f, err := epursesim.LoadCardFile(path)
		if err != nil {
			t.Fatal(err)
		}
		f.Info.CardType = cardType
		if err := f.Save(path); err != nil {
			t.Fatal(err)
		}
		return path
	}
	pathA, pathB, pathC := typed(numberA, 0x0100), typed(numberB, 0x0100), typed(numberC, 0x0200)
	for card, class := range map[string]string{numberA: "staff", numberC: "guest"} {
		out, err := exec.Command(binary(t, "cardhost"), "card", "class", "--dir", w.hostDir, "--card", card, "--class", class).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "class "+class) {
			t.Fatalf("cardhost card class %s: %v\n%s", class, err, out)
		}
	}
	base := startServe(t, w.hostDir)
	balance := func(path string) int64 {
		f, err := epursesim.LoadCardFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return f.EPBalance
	}
	around, _ := periodsAround(t)
	lunch := strings.Replace(around, `max_count: 1}`, `max_count: 1, class_prices: {staff: "15.00"}}`, 1)
	keyed := strings.Replace(around, `mode: fixed, price: "12.00", max_count: 1}`, `mode: keyed, discounts: {student: 80}}`, 1)
	env := func(periods string) []string {
		return []string{"CARDD_MODE=pos", "CARDD_READER_SAM_PATTERN=^" + regexp.QuoteMeta(slot1Reader) + "$",
			"CARDD_HOST_URL=" + base, "CARDD_HOST_SECRET_FILE=" + secretFile,
			"CARDD_STORE_PATH=" + store, "CARDD_TERMINAL_ID=" + termID, "CARDD_POS_PERIODS=" + periods,
			`CARDD_POS_CLASSES={student: ["01"], staff: ["02"]}`}
	}

	// The lunch: the pull's classes first, then the taps.
	waitEmpty(t, 0)
	d := startDaemon(t, env(lunch)...)
	var sam, pulled bool // in either order
	d.waitLine(t, "the PSAM and the pull of the classes", 20*time.Second, func(m map[string]any) bool {
		sam = sam || m["reader"] == slot1Reader && m["role"] == "sam"
		pulled = pulled || m["msg"] == "identity classes updated" && m["changes"] == float64(2)
		return sam && pulled
	})
	for _, c := range []struct {
		path, class string
		price       int64
	}{{pathA, "staff", 1500}, {pathC, "", 1200}} {
		in := insert(t, c.path, 0, vpcd.Options{})
		if c.path == pathC {
			d.waitLine(t, "the unknown class said", 20*time.Second, func(m map[string]any) bool {
				return m["class"] == "guest" && strings.Contains(fmt.Sprint(m["msg"]), "pos.classes does not name")
			})
		}
		m := d.waitLine(t, "the tap", 20*time.Second, func(m map[string]any) bool { return m["msg"] == "tap" })
		if err := in.remove(t); err != nil {
			t.Fatal(err)
		}
		class, _ := m["class"].(string)
		if m["outcome"] != "ok" || m["paid"] != true || class != c.class || m["sale_amount"] != money.Format(c.price) {
			t.Fatalf("lunch tap of %s: %v; want %s paid, class %q", c.path, m, money.Format(c.price), c.class)
		}
	}
	d.stop(t, 10*time.Second)

	// The keyed period: a student discounted, staff by the host's record not.
	waitEmpty(t, 0)
	e := env(keyed)
	d = startDaemon(t, e...)
	d.waitLine(t, "reader added", 10*time.Second, func(m map[string]any) bool { return m["reader"] == slot1Reader && m["role"] == "sam" })
	for _, c := range []struct {
		path, out string
	}{
		{pathB, "paid 7.99 (lunch) (list 9.99 less 2.00: student pays 80%)"},
		{pathA, "paid 9.99 (lunch): balance 75.01"},
	} {
		wait := posCharge(t, e, "", "9.99", "--wait", "20s")
		in := insert(t, c.path, 0, vpcd.Options{})
		out, err := wait()
		in.remove(t)
		if err != nil || !strings.Contains(out, c.out) {
			t.Fatalf("cardd pos charge 9.99 on %s: %v\n%s\nwant %q", c.path, err, out, c.out)
		}
	}
	d.stop(t, 10*time.Second)

	for _, c := range []struct {
		number, path string
		amounts      []int64
	}{{numberA, pathA, []int64{1500, 999}}, {numberB, pathB, []int64{799}}, {numberC, pathC, []int64{1200}}} {
		rows := purchaseRows(t, store, c.number)
		var sum int64
		for i, r := range rows {
			if i >= len(c.amounts) || r.AmountFen != c.amounts[i] || r.State != "done" {
				t.Fatalf("card %s: purchase rows %+v, want amounts %v", c.number, rows, c.amounts)
			}
			sum += r.AmountFen
		}
		if len(rows) != len(c.amounts) || balance(c.path) != 10000-sum {
			t.Fatalf("card %s: %d rows, balance %d, want %d", c.number, len(rows), balance(c.path), 10000-sum)
		}
	}
	if rows := purchaseRows(t, store, numberB); !strings.Contains(rows[0].Detail, "discount: list_fen=999 percent=80 class=student") {
		t.Fatalf("the discounted row's detail %q", rows[0].Detail)
	}
}
