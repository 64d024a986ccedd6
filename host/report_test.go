package host

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/cardd/cardd/hostapi"
)

const testTermC = "000000000003"

// uploadAs uploads rows as terminal term, which must take them all.
func (e *env) uploadAs(term, secret string, rows ...hostapi.JournalRow) {
	e.t.Helper()
	status, b := e.send(e.signed(hostapi.PathJournal, hostapi.JournalRequest{Rows: rows}, term, secret, time.Now()))
	if status != http.StatusOK {
		e.t.Fatalf("upload as %s: %d %s", term, status, b)
	}
}

// dayOfMixedRows is a day of loads and purchases at three terminals: a
// load at B (through the host's rules, then its journal row), two sales at
// A, one at C, and a sale of the day before at A. It returns the day and
// C's secret.
func (e *env) dayOfMixedRows() (day, secretC string) {
	e.t.Helper()
	secretB := e.addTerminalB()
	var err error
	if secretC, err = NewTerminalSecret(); err != nil {
		e.t.Fatal(err)
	}
	if err := e.st.AddTerminal(e.t.Context(), testTermC, secretC, time.Now()); err != nil {
		e.t.Fatal(err)
	}
	id := e.addCredit(1000)
	li, auth := e.authorize(id, 1000)
	tac := e.credit(auth)
	e.mustCall(hostapi.PathLoadComplete, tacRequest(id, li.OnlineCounter, tac), nil)
	first := e.sale("1", 0, 1, 11000, 300, 1)
	day = first.Time[:10]
	load := hostapi.JournalRow{ID: testTermB + "-1", Kind: "load", State: "done", Card: testNumber, Purse: "EP",
		Counter: li.OnlineCounter, BalanceFen: li.OldBalance, AmountFen: 1000, CreditID: id, TAC: fmt.Sprintf("%X", tac),
		Time: first.Time[:17] + "00Z"}
	e.uploadAs(testTermB, secretB, load)
	before := e.sale("0", 9, 100, 50000, 700, 0)
	t, _ := time.Parse(time.RFC3339, before.Time)
	before.Time = t.AddDate(0, 0, -1).Format(time.RFC3339)
	e.upload(first, e.sale("2", 1, 2, 10700, 200, 2), before)
	sale := e.sale("3", 2, 3, 10500, 150, 3)
	sale.ID = testTermC + "-1"
	e.uploadAs(testTermC, secretC, sale)
	return day, secretC
}

// TestDailyReport: a day of mixed loads and purchases across three
// terminals settles per terminal with no difference, the ledger's loads
// equal to the journal's, the day before left out; a purchase with a
// forged TAC that day is a difference of its amount at its terminal.
func TestDailyReport(t *testing.T) { eachStore(t, testDailyReport) }

func testDailyReport(t *testing.T) {
	e := newEnv(t, Options{})
	day, secretC := e.dayOfMixedRows()
	rep, err := e.st.Daily(t.Context(), day)
	if err != nil {
		t.Fatal(err)
	}
	want := []DailyTerminal{
		{Terminal: testTerm, Purchases: 2, PurchaseFen: 500, VerifiedFen: 500},
		{Terminal: testTermB, Loads: 1, LoadFen: 1000, LedgerLoadFen: 1000},
		{Terminal: testTermC, Purchases: 1, PurchaseFen: 150, VerifiedFen: 150},
	}
	total := DailyTerminal{Terminal: "TOTAL", Loads: 1, LoadFen: 1000, LedgerLoadFen: 1000, Purchases: 3, PurchaseFen: 650, VerifiedFen: 650}
	if fmt.Sprint(rep.Terminals) != fmt.Sprint(want) || rep.Total != total {
		t.Fatalf("day %s:\n%+v\n%+v\nwant\n%+v\n%+v", day, rep.Terminals, rep.Total, want, total)
	}
	forged := e.sale("4", 3, 4, 10350, 99, 4)
	forged.ID, forged.TAC = testTermC+"-2", flip(forged.TAC)
	e.uploadAs(testTermC, secretC, forged)
	if rep, err = e.st.Daily(t.Context(), day); err != nil {
		t.Fatal(err)
	}
	if c := rep.Terminals[2]; c.Purchases != 2 || c.PurchaseFen != 249 || c.FailedTACFen != 99 || c.DiffFen != 99 || rep.Total.DiffFen != 99 {
		t.Fatalf("after a forged sale at C: %+v, total %+v", c, rep.Total)
	}
	if _, err := e.st.Daily(t.Context(), "2026-13-01"); err == nil {
		t.Fatal("a bad date was taken")
	}
}
