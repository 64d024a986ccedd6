package hostapi

import (
	"testing"
	"time"
)

// TestProductChecks: a product name follows a class name's rules and says
// so of a product; a last valid day is a date or nothing; a product is
// expired from the day after its last.
func TestProductChecks(t *testing.T) {
	if err := CheckProductName("Gift"); err == nil || err.Error() != "a product name is lower case" {
		t.Fatalf("CheckProductName(Gift) = %v", err)
	}
	if err := CheckProductName("gift"); err != nil {
		t.Fatal(err)
	}
	for s, ok := range map[string]bool{"": true, "2027-12-31": true, "2027-02-30": false, "20271231": false} {
		if err := CheckValidUntil(s); (err == nil) != ok {
			t.Errorf("CheckValidUntil(%q) = %v", s, err)
		}
	}
	p := Product{Name: "gift", CapFen: 100, ValidUntil: "2027-12-31"}
	last := time.Date(2027, 12, 31, 23, 59, 59, 0, time.Local)
	if p.Expired(last) || !p.Expired(last.Add(time.Second)) || (Product{}).Expired(last) {
		t.Fatal("a product's validity does not end at the end of its last day")
	}
}
