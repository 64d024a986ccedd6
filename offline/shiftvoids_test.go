package offline

import (
	"context"
	"testing"
	"time"
)

// TestCloseShiftVoidWhileClosing: a void the cashier makes as the close
// runs, while the shift is still open, is either counted in its
// close-out or waits for the close (it is then in no shift, made with
// none open): never recorded within the shift and left out of it.
func TestCloseShiftVoidWhileClosing(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	if _, err := s.OpenShift(ctx, "c7"); err != nil {
		t.Fatal(err)
	}
	doneSale(t, s, 1250)
	recorded := false
	sum, err := s.CloseShift(ctx, CloseOptions{Voids: func(ctx context.Context, from, to time.Time) (int, int64, error) {
		// Bounded: a close that holds the writer makes the void wait.
		vctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		if _, err := s.RecordVoid(vctx, VoidRequest{Window: time.Minute, Cashier: "c7"}); err == nil {
			recorded = true
		}
		return s.VoidsBetween(ctx, from, to)
	}})
	if err != nil {
		t.Fatal(err)
	}
	if recorded && sum.VoidCount != 1 {
		t.Fatalf("a void recorded before the close committed is in no close-out: %+v", sum)
	}
}
