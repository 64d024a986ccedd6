package printer

import (
	"strings"
	"testing"
)

// TestDiscountLines: a purchase discounted for the card's class shows the
// price armed and the percent above the amount paid, on both widths; a
// purchase without one shows neither.
func TestDiscountLines(t *testing.T) {
	r := sample(KindPurchase)
	for _, cols := range []int{Layout58.Cols, Layout80.Cols} {
		if text := strings.Join(Text(r, cols), "\n"); strings.Contains(text, LabelList) || strings.Contains(text, LabelDiscount) {
			t.Fatalf("no discount, yet:\n%s", text)
		}
	}
	r.List, r.DiscountPercent, r.Amount = 999, 80, 799
	for _, cols := range []int{Layout58.Cols, Layout80.Cols} {
		lines := Text(r, cols)
		text := strings.Join(lines, "\n")
		list, disc, paid := -1, -1, -1
		for i, l := range lines {
			switch {
			case strings.HasPrefix(l, LabelList) && strings.HasSuffix(l, " 9.99"):
				list = i
			case strings.HasPrefix(l, LabelDiscount) && strings.HasSuffix(l, " 80%"):
				disc = i
			case strings.HasPrefix(l, LabelPurchase) && strings.HasSuffix(l, " 7.99"):
				paid = i
			}
			if Width(l) > cols {
				t.Fatalf("line %q is wider than %d", l, cols)
			}
		}
		if list < 0 || disc != list+1 || paid != disc+1 {
			t.Fatalf("%d columns: list, discount and amount paid not in order:\n%s", cols, text)
		}
	}
}
