package localapi

import (
	"testing"

	"github.com/cardd/cardd/tap"
)

// TestTapViewNamesASubsidy: the tap event tells a delivered subsidy from a
// top-up, in its kind and in the words the cardholder is shown.
func TestTapViewNamesASubsidy(t *testing.T) {
	v := tapView(tap.Result{Load: &tap.LoadReport{Loads: []tap.LoadResult{
		{CreditID: "cr-1", AmountFen: 1200, Subsidy: true, Purse: "ED", Applied: true, NewBalance: 1200},
		{CreditID: "cr-2", AmountFen: 5000, Purse: "EP", Applied: true},
		{CreditID: "cr-3", AmountFen: 800, Subsidy: true, Purse: "EP", Refused: "subsidy b expired at 2026-12-01 00:00"},
	}}})
	want := []LoadView{
		{CreditID: "cr-1", AmountFen: 1200, Amount: "12.00", Applied: true, Kind: "subsidy", Purse: "ED", Message: "补助 12.00 元已到账"},
		{CreditID: "cr-2", AmountFen: 5000, Amount: "50.00", Applied: true, Purse: "EP", Message: "充值 50.00 元已到账"},
		{CreditID: "cr-3", AmountFen: 800, Amount: "8.00", Kind: "subsidy", Purse: "EP", Refused: "subsidy b expired at 2026-12-01 00:00"},
	}
	if len(v.Loads) != len(want) {
		t.Fatalf("loads %+v", v.Loads)
	}
	for i := range want {
		if v.Loads[i] != want[i] {
			t.Errorf("load %d: %+v, want %+v", i, v.Loads[i], want[i])
		}
	}
}
