package sync_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/offline"
)

// TestSyncerSendsVoids: voids recorded while no syncer ran (offline) go up
// with the upload loop, each with its sale, which the host had not had:
// one becomes the refund credit of its card, recorded with the credit's id;
// one the host refuses for good (a card it never issued) is kept refused,
// not owed again.
func TestSyncerSendsVoids(t *testing.T) {
	h := newTestHost(t, termA)
	const issued, stranger = "3101000000000042", "3101000000000099"
	h.issue(t, issued, 5000)
	srv := httptest.NewServer(h.handler)
	t.Cleanup(srv.Close)
	tm := newTerminal(t, h, termA, srv.URL)
	ctx := context.Background()
	sale := func(card string, counter uint16) offline.Row {
		r, err := tm.store.Begin(ctx, offline.Row{Kind: offline.KindPurchase, Card: card, Purse: "EP", Counter: counter,
			BalanceFen: 5000, AmountFen: 1250, TermSerial: 9, Time: time.Now().Format(hostapi.TimeLayout)})
		if err != nil {
			t.Fatal(err)
		}
		if err := tm.store.Finish(ctx, r.ID, offline.StateDone, "0A0B0C0D", ""); err != nil {
			t.Fatal(err)
		}
		return r
	}
	good, err := tm.store.RecordVoid(ctx, offline.VoidRequest{SaleID: sale(issued, 3).ID, Window: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	bad, err := tm.store.RecordVoid(ctx, offline.VoidRequest{SaleID: sale(stranger, 4).ID, Window: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	tm.syncer(t, nil)
	waitFor(t, "voids answered", func() bool {
		owed, err := tm.store.OwedVoids(ctx, 10)
		return err == nil && len(owed) == 0
	})
	g, _ := tm.store.GetVoid(ctx, good.ID)
	refunds, err := h.store.Refunds(ctx, issued)
	if err != nil || len(refunds) != 1 || g.State != offline.VoidRefunded || g.CreditID != refunds[0].Credit || refunds[0].SaleID != good.SaleID {
		t.Fatalf("void %+v, host refunds %+v %v; want one refund, its credit recorded", g, refunds, err)
	}
	b, _ := tm.store.GetVoid(ctx, bad.ID)
	if b.State != offline.VoidRefused || !strings.HasPrefix(b.HostReason, hostapi.CodeNotFound) {
		t.Fatalf("void of a card the host never issued: %+v; want refused not_found", b)
	}
	if all, _ := h.store.Refunds(ctx, ""); len(all) != 1 {
		t.Fatalf("host refunds %+v; want 1", all)
	}
}
