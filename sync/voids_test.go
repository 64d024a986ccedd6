package sync_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cardd/cardd/apdu/epurse"
	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/offline"
)

// TestSyncerSendsVoids: voids recorded while no syncer ran (offline) go up
// with the upload loop, each with its sale, which the host had not had:
// one becomes the refund credit of its card, recorded with the credit's id;
// the ones the host refuses for good (a card it never issued, a sale whose
// TAC is not the card's) are kept refused, not owed again.
func TestSyncerSendsVoids(t *testing.T) {
	h := newTestHost(t, termA)
	const issued, stranger = "3101000000000042", "3101000000000099"
	card := h.issue(t, issued, 5000)
	srv := httptest.NewServer(h.handler)
	t.Cleanup(srv.Close)
	tm := newTerminal(t, h, termA, srv.URL)
	ctx := context.Background()
	psamTerm := [6]byte{0, 0, 0, 0, 0x20, 0x02}
	// sale journals a done sale: with the card's own TAC (its DTK) and
	// the PSAM's terminal id unless forged or old.
	sale := func(number string, counter uint16, forged, old bool) offline.Row {
		when := time.Now().Truncate(time.Second)
		row := offline.Row{Kind: offline.KindPurchase, Card: number, Purse: "EP", Counter: counter,
			BalanceFen: 5000, AmountFen: 1250, TermSerial: uint32(counter), Time: when.Format(hostapi.TimeLayout)}
		if !old {
			row.PSAMTerminal = fmt.Sprintf("%X", psamTerm)
		}
		r, err := tm.store.Begin(ctx, row)
		if err != nil {
			t.Fatal(err)
		}
		tac, err := epurse.PurchaseTAC(card.File().Keys.DTK, 1250, epurse.TxEPPurchase, psamTerm, uint32(counter), when)
		if err != nil {
			t.Fatal(err)
		}
		if forged {
			tac[0] ^= 0xFF
		}
		if err := tm.store.Finish(ctx, r.ID, offline.StateDone, fmt.Sprintf("%X", tac), ""); err != nil {
			t.Fatal(err)
		}
		return r
	}
	void := func(sale offline.Row) offline.Void {
		v, err := tm.store.RecordVoid(ctx, offline.VoidRequest{SaleID: sale.ID, Window: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	good := void(sale(issued, 3, false, false))
	bad := void(sale(stranger, 4, false, false))
	forged := void(sale(issued, 5, true, false))
	// A sale journaled without its PSAM's id is refused here already:
	// the host could not check it (TestVoidProof has the host's refusal).
	if _, err := tm.store.RecordVoid(ctx, offline.VoidRequest{SaleID: sale(issued, 6, false, true).ID, Window: time.Minute}); !errors.Is(err, offline.ErrNotVoidable) {
		t.Fatalf("void of a sale without its PSAM's id: %v; want ErrNotVoidable", err)
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
	for _, c := range []struct {
		v    offline.Void
		want string
	}{
		{forged, hostapi.CodeNotVoidable + ": the sale's TAC does not verify"},
	} {
		if v, _ := tm.store.GetVoid(ctx, c.v.ID); v.State != offline.VoidRefused || !strings.HasPrefix(v.HostReason, c.want) {
			t.Errorf("void %+v; want refused %q", v, c.want)
		}
	}
	if all, _ := h.store.Refunds(ctx, ""); len(all) != 1 {
		t.Fatalf("host refunds %+v; want 1", all)
	}
}

// TestVoidToHostWithoutPSAMTerminal: a host older than a journal row's
// psam_terminal refuses a void whose sale carries it (400, unknown field);
// the void goes again without it (it carries the PSAM's id on its own) and
// is refunded, not refused for good.
func TestVoidToHostWithoutPSAMTerminal(t *testing.T) {
	h := newTestHost(t, termA)
	const number = "3101000000000042"
	card := h.issue(t, number, 5000)
	var refused atomic.Int32
	srv := httptest.NewServer(olderHost(h.handler, &refused))
	t.Cleanup(srv.Close)
	tm := newTerminal(t, h, termA, srv.URL)
	ctx := context.Background()
	psamTerm := [6]byte{0, 0, 0, 0, 0x20, 0x02}
	when := time.Now().Truncate(time.Second)
	r, err := tm.store.Begin(ctx, offline.Row{Kind: offline.KindPurchase, Card: number, Purse: "EP", Counter: 3, BalanceFen: 5000,
		AmountFen: 1250, TermSerial: 3, PSAMTerminal: fmt.Sprintf("%X", psamTerm), Time: when.Format(hostapi.TimeLayout)})
	if err != nil {
		t.Fatal(err)
	}
	tac, err := epurse.PurchaseTAC(card.File().Keys.DTK, 1250, epurse.TxEPPurchase, psamTerm, 3, when)
	if err != nil {
		t.Fatal(err)
	}
	if err := tm.store.Finish(ctx, r.ID, offline.StateDone, fmt.Sprintf("%X", tac), ""); err != nil {
		t.Fatal(err)
	}
	v, err := tm.store.RecordVoid(ctx, offline.VoidRequest{SaleID: r.ID, Window: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	tm.syncer(t, nil)
	waitFor(t, "the void answered", func() bool {
		owed, err := tm.store.OwedVoids(ctx, 10)
		return err == nil && len(owed) == 0
	})
	if got, _ := tm.store.GetVoid(ctx, v.ID); got.State != offline.VoidRefunded || refused.Load() == 0 {
		t.Fatalf("void %+v after %d refusals for psam_terminal; want refunded", got, refused.Load())
	}
}
