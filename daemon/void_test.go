package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/cardd/cardd/apdu/epurse"
	"github.com/cardd/cardd/host"
	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/localapi"
	"github.com/cardd/cardd/offline"
	hostsync "github.com/cardd/cardd/sync"
	"github.com/cardd/cardd/tap"
)

const voidTerm, voidCard = "000000000001", "3101000000000042"

// voidBench is a POS's store with one sale of 12.50 done on voidCard, and
// a reference host that issued the card and knows the terminal.
func voidBench(t *testing.T) (*offline.Store, *host.Store, *hostsync.Client, offline.Row) {
	t.Helper()
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "host")
	if err := host.InitDir(dir, ""); err != nil {
		t.Fatal(err)
	}
	hs, err := host.OpenDir(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hs.Close() })
	keys, err := host.LoadDirKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	secret, _ := host.NewTerminalSecret()
	if err := hs.AddTerminal(ctx, voidTerm, secret, time.Now()); err != nil {
		t.Fatal(err)
	}
	card, err := hs.IssueCard(ctx, keys, host.IssueRequest{Number: voidCard, Holder: "测试", BalanceFen: 5000,
		Start: epurse.Date{Year: 2025, Month: 1, Day: 1}, Expiry: epurse.Date{Year: 2035, Month: 1, Day: 1}},
		filepath.Join(t.TempDir(), "card.json"), "test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(host.NewHandler(hs, keys, host.Options{}))
	t.Cleanup(srv.Close)
	st, err := offline.Open(filepath.Join(t.TempDir(), "cardd.db"), voidTerm)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	// The card's own TAC for the sale (its DTK), which the host verifies.
	when := time.Now().Truncate(time.Second)
	psamTerm := [6]byte{0, 0, 0, 0, 0x20, 0x02}
	tac, err := epurse.PurchaseTAC(card.Keys.DTK, 1250, epurse.TxEPPurchase, psamTerm, 3, when)
	if err != nil {
		t.Fatal(err)
	}
	sale, err := st.Begin(ctx, offline.Row{Kind: offline.KindPurchase, Card: voidCard, Purse: "EP", Counter: 5, BalanceFen: 5000,
		AmountFen: 1250, TermSerial: 3, PSAMTerminal: "000000002002", Time: when.Format(hostapi.TimeLayout)})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Finish(ctx, sale.ID, offline.StateDone, fmt.Sprintf("%X", tac), ""); err != nil {
		t.Fatal(err)
	}
	return st, hs, &hostsync.Client{BaseURL: srv.URL, TerminalID: voidTerm, Secret: []byte(secret)}, sale
}

// A void with the host reachable and the card on the reader is refunded
// and loaded by the refund's tap, once; a second void is refused and asks
// no tap; the host holds one refund.
func TestVoidRefundsTheCardPresent(t *testing.T) {
	st, hs, client, sale := voidBench(t)
	var taps []string
	v := &voider{store: st, client: client, window: time.Minute, tapWait: time.Second, log: slog.New(slog.DiscardHandler),
		refundNow: func(_ context.Context, card string) (tap.Result, error) {
			taps = append(taps, card)
			refunds, _ := hs.Refunds(context.Background(), card)
			return tap.Result{Load: &tap.LoadReport{Balance: 5000, Loads: []tap.LoadResult{{CreditID: refunds[0].Credit, Applied: true}}}}, nil
		}}
	out, err := v.Void(context.Background(), localapi.VoidRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if out.Sale != sale.ID || out.State != offline.VoidRefunded || out.Credit == "" || !out.Loaded || out.BalanceFen == nil || *out.BalanceFen != 5000 {
		t.Fatalf("void %+v; want sale %s refunded and loaded", out, sale.ID)
	}
	if len(taps) != 1 || taps[0] != voidCard {
		t.Fatalf("refund taps %v; want one of the card", taps)
	}
	if _, err := v.Void(context.Background(), localapi.VoidRequest{Sale: sale.ID}); !errors.Is(err, offline.ErrVoided) {
		t.Fatalf("second void: %v; want ErrVoided", err)
	}
	if refunds, err := hs.Refunds(context.Background(), ""); err != nil || len(refunds) != 1 || refunds[0].Credit != out.Credit {
		t.Fatalf("host refunds %+v %v; want the one", refunds, err)
	}
	if len(taps) != 1 {
		t.Fatal("a refused void tapped the card")
	}
}

// With the card gone the refund waits for its next tap; with the host
// unreachable the void stays owed, journaled, and no tap is asked.
func TestVoidCardGoneOrHostDown(t *testing.T) {
	st, _, client, _ := voidBench(t)
	v := &voider{store: st, client: client, window: time.Minute, tapWait: time.Second, log: slog.New(slog.DiscardHandler),
		refundNow: func(context.Context, string) (tap.Result, error) { return tap.Result{Err: tap.ErrNoCard}, nil }}
	out, err := v.Void(context.Background(), localapi.VoidRequest{})
	if err != nil || out.State != offline.VoidRefunded || out.Loaded {
		t.Fatalf("card gone: %+v %v; want refunded, not loaded", out, err)
	}

	st2, _, _, sale2 := voidBench(t)
	down := &hostsync.Client{BaseURL: "http://127.0.0.1:1", TerminalID: voidTerm, Secret: []byte("x")}
	v2 := &voider{store: st2, client: down, window: time.Minute, tapWait: time.Second, log: slog.New(slog.DiscardHandler),
		refundNow: func(context.Context, string) (tap.Result, error) {
			t.Fatal("a tap for an unanswered void")
			return tap.Result{}, nil
		}}
	out, err = v2.Void(context.Background(), localapi.VoidRequest{Sale: sale2.ID})
	if err != nil || out.State != offline.VoidOwed || out.Loaded {
		t.Fatalf("host down: %+v %v; want owed", out, err)
	}
	if owed, _ := st2.OwedVoids(context.Background(), 10); len(owed) != 1 || owed[0].ID != out.Void {
		t.Fatalf("owed voids %+v; want the void", owed)
	}
}
