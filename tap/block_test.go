package tap

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cardd/cardd/apdu/epurse"
	epursesim "github.com/cardd/cardd/apdu/epurse/sim"
	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/offline"
	hostsync "github.com/cardd/cardd/sync"
)

// testDAMK is the maintenance master the block tests' issuer holds.
var testDAMK = epurse.Key16{0x07, 0xDB, 0xBE, 0x1E, 0x85, 0xDC, 0x56, 0x2C, 0x94, 0x83, 0x4B, 0x17, 0x14, 0x3A, 0x14, 0xDC}

// withDAMK gives a test card its maintenance key, diversified from testDAMK.
func withDAMK(f *epursesim.CardFile) {
	f.Keys.DAMK = epurse.DiversifyKey(testDAMK, f.Info.AppSerial[:])
}

// fakeBlockHost MACs the block as the host does, for the cards it holds
// denied; err, when set, is its only answer.
type fakeBlockHost struct {
	serial [10]byte // of the one card it issued
	denied map[string]bool
	err    error
	asked  int
}

func (h *fakeBlockHost) CardBlock(_ context.Context, req hostapi.CardBlockRequest) (hostapi.CardBlockResponse, error) {
	h.asked++
	if h.err != nil {
		return hostapi.CardBlockResponse{}, h.err
	}
	if !h.denied[req.Card] {
		return hostapi.CardBlockResponse{}, &hostsync.HostError{Status: 409, Code: hostapi.CodeCardNotDenied, Reason: "not denied"}
	}
	var ch [epurse.ChallengeLen]byte
	b, err := hex.DecodeString(req.Challenge)
	if err != nil || copy(ch[:], b) != len(ch) {
		return hostapi.CardBlockResponse{}, fmt.Errorf("challenge %q", req.Challenge)
	}
	mac := epurse.BlockMAC(epurse.DiversifyKey(testDAMK, h.serial[:]), ch, epurse.BlockTemporary)
	return hostapi.CardBlockResponse{Mode: hostapi.BlockTemporary, MAC: hex.EncodeToString(mac[:]), Reason: "lost"}, nil
}

// blockBench is a kiosk bench (a Loader with no credits host) whose journal
// has the card denied, and a block host.
func blockBench(t *testing.T, denied bool, host *fakeBlockHost) (*tapBench, *epursesim.SimCard) {
	t.Helper()
	b := newTapBench(t)
	card := newTestCard(t, "王小明", 0, withDAMK)
	b.card = card
	b.r.Loader = b.loader(nil)
	if host != nil {
		host.serial = card.File().Info.AppSerial
		b.r.Loader.BlockHost = host
	}
	if denied {
		if err := b.store.ApplyPull(context.Background(), nil, nil, []offline.DenyChange{{Card: testNumber, Denied: true, Reason: "lost"}}, "c1"); err != nil {
			t.Fatal(err)
		}
	}
	return b, card
}

// TestBlockDeniedCard: a card on the deny list is blocked on the chip on
// its tap; tapped again at a terminal with no deny list and no host, it is
// refused as blocked.
func TestBlockDeniedCard(t *testing.T) {
	host := &fakeBlockHost{denied: map[string]bool{testNumber: true}}
	b, card := blockBench(t, true, host)
	before := card.File().EPBalance
	res := b.tap()
	if res.Outcome() != OutcomeBlocked || !errors.Is(res.Err, ErrCardBlocked) || !errors.Is(res.Err, ErrCardDenied) {
		t.Fatalf("outcome %s, err %v; want application_blocked", res.Outcome(), res.Err)
	}
	if res.Block == nil || !res.Block.Blocked || res.Block.Mode != hostapi.BlockTemporary {
		t.Fatalf("block report %+v", res.Block)
	}
	if f := card.File(); !f.Blocked || f.EPBalance != before {
		t.Fatalf("card blocked %v, balance %d -> %d", f.Blocked, before, f.EPBalance)
	}

	// Terminal B: never pulled the list, no host at all.
	other, _ := blockBench(t, false, nil)
	other.card = card
	card.Reset()
	res = other.tap()
	if res.Outcome() != OutcomeBlocked || !errors.Is(res.Err, epurse.ErrApplicationBlocked) {
		t.Fatalf("at terminal B: outcome %s, err %v; want application_blocked", res.Outcome(), res.Err)
	}
	if !strings.Contains(res.Err.Error(), "blocked") {
		t.Errorf("the reason does not say blocked: %v", res.Err)
	}
}

// TestBlockNotDone: an unreachable host, a host that refuses, a card not
// denied: the card is left as it was; the denied one is still refused.
func TestBlockNotDone(t *testing.T) {
	for _, c := range []struct {
		name    string
		denied  bool
		host    *fakeBlockHost
		outcome Outcome
		asked   int
	}{
		{"host unreachable", true, &fakeBlockHost{err: fmt.Errorf("%w: dial: refused", hostsync.ErrUnreachable)}, OutcomeDenied, 1},
		{"host refuses", true, &fakeBlockHost{}, OutcomeDenied, 1},
		{"no block host", true, nil, OutcomeDenied, 0},
		{"not denied", false, &fakeBlockHost{denied: map[string]bool{testNumber: true}}, OutcomeOK, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			b, card := blockBench(t, c.denied, c.host)
			res := b.tap()
			if res.Outcome() != c.outcome {
				t.Fatalf("outcome %s (%v), want %s", res.Outcome(), res.Err, c.outcome)
			}
			if card.File().Blocked {
				t.Fatal("the card was blocked")
			}
			if c.host != nil && c.host.asked != c.asked {
				t.Errorf("host asked %d times, want %d", c.host.asked, c.asked)
			}
			if c.asked > 0 && (res.Block == nil || res.Block.Blocked || res.Block.NotBlocked == "") {
				t.Errorf("block report %+v, want why not", res.Block)
			}
		})
	}
}

// TestBlockDeniedCardAtPOS: at a POS with a sale armed, a denied card pays
// nothing, its balance is still read (the deferred read), and only then is
// it blocked, in the same session.
func TestBlockDeniedCardAtPOS(t *testing.T) {
	host := &fakeBlockHost{denied: map[string]bool{testNumber: true}}
	b, card := blockBench(t, true, host)
	b.r.Purchaser = b.pos(1250, false)
	before := card.File().EPBalance
	res := b.tap()
	if res.Outcome() != OutcomeBlocked {
		t.Fatalf("outcome %s (%v), want application_blocked", res.Outcome(), res.Err)
	}
	if res.Purchase != nil && res.Purchase.Paid {
		t.Fatal("a denied card paid the sale")
	}
	if res.Read == nil || res.Read.Balance != before {
		t.Fatalf("balance shown %v, want %d", res.Read, before)
	}
	if f := card.File(); !f.Blocked || f.EPBalance != before {
		t.Fatalf("card blocked %v, balance %d -> %d", f.Blocked, before, f.EPBalance)
	}
}
