package tap

import (
	"context"
	"testing"
	"time"

	"github.com/cardd/cardd/reader"
)

// OnLeave's Result is the tap as of the leave point, the hook's to keep:
// the tap writes its own reports after (the PSAM's MAC2 check sets
// MAC2Verified once the card has left), never the snapshot's. Run with
// -race: a shared report is a data race on MAC2Verified.
func TestLeaveSnapshotIsNotWrittenAfter(t *testing.T) {
	b := newTapBench(t)
	b.card = newTestCard(t, "王小明", 3, nil)
	b.r.Loader, b.r.Purchaser = b.loader(nil), b.pos(1250, false)
	b.r.samReader = "sam"
	seen := make(chan Result, 1)
	b.r.OnLeave = func(res Result) { seen <- res }
	final := b.r.tap(context.Background(), b.open, reader.Event{Kind: reader.CardInserted, Reader: "card", Time: time.Now()})
	if final.Purchase == nil || !final.Purchase.MAC2Verified {
		t.Fatalf("the tap's own result: %+v; want the MAC2 verified", final.Purchase)
	}
	left := <-seen
	if left.Purchase == nil || !left.Purchase.Paid {
		t.Fatalf("OnLeave: %+v; want the sale paid", left.Purchase)
	}
	if left.Purchase.MAC2Verified {
		t.Fatal("OnLeave's result changed after the hook returned: MAC2Verified is set on it")
	}
}
