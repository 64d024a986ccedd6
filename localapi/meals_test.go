package localapi

import (
	"strings"
	"testing"
	"time"

	"github.com/cardd/cardd/tap"
)

// TestArmWithMealPeriods: the status shows the period now, with a menu's
// prices; the arm takes a menu price, refuses another (400) and anything
// outside every period (409), each with the reason.
func TestArmWithMealPeriods(t *testing.T) {
	s, srv, _ := newServer(t)
	now := time.Date(2026, 12, 3, 7, 30, 0, 0, time.Local)
	s.Till.Meals = &tap.Meals{Now: func() time.Time { return now }, Periods: []tap.Period{
		{Name: "breakfast", Start: 7 * time.Hour, End: 9 * time.Hour, Mode: tap.PeriodMenu, Prices: []int64{300, 550}, MaxCount: 2},
		{Name: "lunch", Start: 11 * time.Hour, End: 13 * time.Hour, Mode: tap.PeriodFixed, Price: 1200, MaxCount: 1,
			ClassPrices: map[string]int64{"staff": 1500}},
	}}
	auth := "Bearer " + token
	code, st := call(t, srv, "GET", "/v1/status", "", "")
	mp, _ := st["meal_period"].(map[string]any)
	if code != 200 || mp["name"] != "breakfast" || mp["mode"] != "menu" || mp["start"] != "07:00" || mp["end"] != "09:00" ||
		len(mp["prices"].([]any)) != 2 || mp["prices"].([]any)[1] != "5.50" || mp["max_count"] != 2.0 || st["outside_meal_periods"] != nil {
		t.Fatalf("status at 07:30: %d %v", code, st)
	}
	if code, body := call(t, srv, "POST", "/v1/purchase/arm", auth, `{"amount":"5.50"}`); code != 200 {
		t.Fatalf("arm a menu price: %d %v", code, body)
	}
	if code, body := call(t, srv, "POST", "/v1/purchase/arm", auth, `{"amount":"5.00"}`); code != 400 || !strings.Contains(body["error"].(string), "breakfast sells 3.00, 5.50, not 5.00") {
		t.Fatalf("arm off the menu: %d %v", code, body)
	}
	now = now.Add(2 * time.Hour) // 09:30
	code, st = call(t, srv, "GET", "/v1/status", "", "")
	if code != 200 || st["meal_period"] != nil || st["outside_meal_periods"] != true {
		t.Fatalf("status at 09:30: %d %v", code, st)
	}
	if code, body := call(t, srv, "POST", "/v1/purchase/arm", auth, `{"amount":"5.50"}`); code != 409 || !strings.Contains(body["error"].(string), "outside every meal period") {
		t.Fatalf("arm at 09:30: %d %v", code, body)
	}
	now = now.Add(3 * time.Hour) // 12:30
	if _, st = call(t, srv, "GET", "/v1/status", "", ""); st["meal_period"].(map[string]any)["price"] != "12.00" ||
		st["meal_period"].(map[string]any)["class_prices"].(map[string]any)["staff"] != "15.00" {
		t.Fatalf("status at 12:30: %v", st)
	}
}

// TestDiscountViews: a tap's purchase shows the list price armed and the
// discount of the card's class beside the amount paid; the status shows a
// keyed period's discounts per class.
func TestDiscountViews(t *testing.T) {
	v := tapView(tap.Result{Purchase: &tap.PurchaseReport{Class: "student", Sale: tap.Sale{ID: "s1", AmountFen: 799}, Paid: true,
		Discount: &tap.Discount{Class: "student", Percent: 80, ListFen: 999, AmountFen: 799}}})
	p := v.Purchase
	if p == nil || p.AmountFen != 799 || p.Amount != "7.99" || p.Discount == nil ||
		*p.Discount != (DiscountView{Class: "student", Percent: 80, ListFen: 999, List: "9.99", DiscountFen: 200, Discount: "2.00"}) {
		t.Fatalf("purchase view %+v (discount %+v)", p, p.Discount)
	}
	if v = tapView(tap.Result{Purchase: &tap.PurchaseReport{Sale: tap.Sale{ID: "s2", AmountFen: 999}}}); v.Purchase.Discount != nil {
		t.Fatalf("a sale not discounted shows %+v", v.Purchase.Discount)
	}
	now := time.Date(2026, 12, 3, 18, 0, 0, 0, time.Local)
	till := &tap.Till{Meals: &tap.Meals{Now: func() time.Time { return now }, Periods: []tap.Period{
		{Name: "dinner", Start: 17 * time.Hour, End: 19 * time.Hour, Mode: tap.PeriodKeyed, Discounts: map[string]int{"student": 80}}}}}
	if mp, _ := mealStatus(till); mp == nil || mp.Discounts["student"] != 80 {
		t.Fatalf("status %+v", mp)
	}
}
