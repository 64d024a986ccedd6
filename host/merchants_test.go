package host

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestDailyReportMerchants: with terminals A and C at one merchant and B at
// another, the day's report sums them per merchant beside per terminal,
// the merchants' sums equal to the total (and to the ledger's loads); a
// terminal without a merchant is summed under none; before any merchant
// there are no merchant sums. Bad names and unknown terminals are refused.
func TestDailyReportMerchants(t *testing.T) { eachStore(t, testDailyReportMerchants) }

func testDailyReportMerchants(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	day, _ := e.dayOfMixedRows()
	if rep, err := e.st.Daily(ctx, day); err != nil || len(rep.Merchants) != 0 {
		t.Fatalf("merchants before any: %+v %v", rep.Merchants, err)
	}
	for term, m := range map[string]string{testTerm: "一食堂", testTermC: "一食堂", testTermB: "Card office"} {
		if err := e.st.SetTerminalMerchant(ctx, term, m, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := e.st.Daily(ctx, day)
	if err != nil {
		t.Fatal(err)
	}
	want := []DailyTerminal{
		{Terminal: "MERCHANT", Merchant: "Card office", Loads: 1, LoadFen: 1000, LedgerLoadFen: 1000},
		{Terminal: "MERCHANT", Merchant: "一食堂", Purchases: 3, PurchaseFen: 650, VerifiedFen: 650},
	}
	if fmt.Sprint(rep.Merchants) != fmt.Sprint(want) || rep.Terminals[0].Merchant != "一食堂" || rep.Terminals[1].Merchant != "Card office" {
		t.Fatalf("merchants %+v, terminals %+v; want %+v", rep.Merchants, rep.Terminals, want)
	}
	var sum DailyTerminal
	for _, m := range rep.Merchants {
		sum.add(m)
	}
	sum.Terminal = "TOTAL"
	if sum != rep.Total {
		t.Fatalf("merchants sum to %+v; the total is %+v", sum, rep.Total)
	}
	l, err := e.st.Ledger(ctx, testNumber)
	if err != nil || rep.Merchants[0].LedgerLoadFen != l.LoadedFen {
		t.Fatalf("merchant loads %d, ledger %+v %v", rep.Merchants[0].LedgerLoadFen, l, err)
	}

	if err := e.st.SetTerminalMerchant(ctx, testTermB, "", time.Now()); err != nil {
		t.Fatal(err)
	}
	rep, _ = e.st.Daily(ctx, day)
	if len(rep.Merchants) != 2 || rep.Merchants[0].Merchant != "" || rep.Merchants[0].Loads != 1 {
		t.Fatalf("merchants with B at none: %+v", rep.Merchants)
	}
	for _, bad := range []string{" padded", "tab\there", strings.Repeat("店", 65)} {
		if err := e.st.SetTerminalMerchant(ctx, testTerm, bad, time.Now()); err == nil {
			t.Errorf("merchant %q accepted", bad)
		}
	}
	if err := e.st.SetTerminalMerchant(ctx, "0000000000FF", "x", time.Now()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown terminal: %v", err)
	}
}
