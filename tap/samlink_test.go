package tap

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cardd/cardd/apdu"
	"github.com/cardd/cardd/apdu/epurse"
	epursesim "github.com/cardd/cardd/apdu/epurse/sim"
	"github.com/cardd/cardd/apdu/psam"
	psamsim "github.com/cardd/cardd/apdu/psam/sim"
	"github.com/cardd/cardd/reader"
)

// heldSession is the bench's PSAM session as a *reader.Session is: it
// pauses between taps and resumes, writing both down; resumeErr, when
// set, is what the next Resume answers (a PSAM reset or removed since).
type heldSession struct {
	benchSession
	resumeErr *error
}

func (s heldSession) Pause() error { s.b.log("pause %s", s.name); return nil }

func (s heldSession) Resume(context.Context) error {
	s.b.log("resume %s", s.name)
	err := *s.resumeErr
	*s.resumeErr = nil
	return err
}

// heldBench is a POS bench whose PSAM connection can be kept (heldSession).
type heldBench struct {
	*tapBench
	resumeErr error
}

func newHeldBench(t *testing.T) *heldBench {
	b := &heldBench{tapBench: newTapBench(t)}
	b.r.Roles = reader.Roles{Card: regexp.MustCompile("^card$"), SAM: regexp.MustCompile("^sam$")}
	b.card, b.r.Loader, b.r.Purchaser = newTestCard(t, "王小明", 3, nil), b.loader(nil), b.pos(0, false)
	b.r.Purchaser.DailyLimit = -1 // no log read: the card's floor
	b.r.samReader = "sam"
	return b
}

func (b *heldBench) open(ctx context.Context, name string) (SAMSession, error) {
	s, err := b.tapBench.open(ctx, name)
	if err != nil || name != "sam" {
		return s, err
	}
	return heldSession{benchSession: s.(benchSession), resumeErr: &b.resumeErr}, nil
}

// sale arms amount and taps the card once, returning the tap's result and
// the PSAM commands it sent (their headers), each after the card was reset
// (a new tap of the same card).
func (b *heldBench) sale(amount int64) (Result, []string) {
	b.t.Helper()
	if _, err := b.r.Purchaser.Till.Arm(amount, ""); err != nil {
		b.t.Fatal(err)
	}
	b.trace = nil
	b.card.(*epursesim.SimCard).Reset()
	res := b.r.tap(context.Background(), b.open, reader.Event{Kind: reader.CardInserted, Reader: "card", Time: time.Now()})
	var sam []string
	for _, l := range b.trace {
		if h, ok := strings.CutPrefix(l, "sam> "); ok {
			sam = append(sam, h[:8])
		}
		if strings.HasPrefix(l, "open sam") || strings.HasPrefix(l, "close sam") {
			sam = append(sam, l)
		}
	}
	return res, sam
}

// setUpAPDUs counts the PSAM set-up commands (SELECT, READ BINARY) in sam.
func setUpAPDUs(sam []string) int {
	n := 0
	for _, h := range sam {
		if strings.HasPrefix(h, "00A4") || strings.HasPrefix(h, "00B0") {
			n++
		}
	}
	return n
}

func paid(t *testing.T, res Result, tap string) {
	t.Helper()
	if res.Err != nil || res.Purchase == nil || !res.Purchase.Paid || !res.Purchase.MAC2Verified {
		t.Fatalf("%s: %s", tap, summary(res))
	}
}

// TestPSAMSetUpOncePerSession: the first purchase sets the PSAM up
// (SELECT MF, READ BINARY of the terminal id, SELECT of the application);
// the second, on the same PSAM connection, sends the PSAM only INIT SAM
// FOR PURCHASE (with its GET RESPONSE) and CREDIT SAM FOR PURCHASE, and
// connects to it no more.
func TestPSAMSetUpOncePerSession(t *testing.T) {
	b := newHeldBench(t)
	res, first := b.sale(1250)
	paid(t, res, "first tap")
	if setUpAPDUs(first) == 0 || first[0] != "open sam" {
		t.Fatalf("first tap's PSAM: %v; want it connected and set up", first)
	}
	res, second := b.sale(700)
	paid(t, res, "second tap")
	want := []string{"80700000", "00C00000", "80720000"}
	if strings.Join(second, " ") != strings.Join(want, " ") {
		t.Errorf("second tap's PSAM: %v, want %v", second, want)
	}
}

// TestPSAMResetBetweenTaps: a PSAM whose set-up was lost between taps is
// set up again on the next tap, which pays all the same.
func TestPSAMResetBetweenTaps(t *testing.T) {
	for _, tc := range []struct {
		name  string
		reset func(b *heldBench)
	}{
		// Reset by a power cycle nobody reported: the PSAM, back in its
		// MF, refuses INIT SAM FOR PURCHASE (6985) and is set up again in
		// the same tap.
		{"silent power cycle", func(b *heldBench) { b.sam.(*psamsim.SimPSAM).Reset() }},
		// Reset by another application: Resume answers SCARD_W_RESET_CARD.
		{"SCARD_W_RESET_CARD", func(b *heldBench) {
			b.sam.(*psamsim.SimPSAM).Reset()
			b.resumeErr = &reader.Error{Op: "resume", Reader: "sam", Kind: reader.ErrCardRemoved, Err: errors.New("card reset")}
		}},
		// Pulled and put back: the monitor's events.
		{"removed and inserted", func(b *heldBench) {
			b.sam.(*psamsim.SimPSAM).Reset()
			b.r.event(reader.Event{Kind: reader.CardRemoved, Reader: "sam"})
			b.r.event(reader.Event{Kind: reader.CardInserted, Reader: "sam"})
		}},
		// pcscd restarted: every connection is gone.
		{"pcscd lost", func(b *heldBench) {
			b.sam.(*psamsim.SimPSAM).Reset()
			b.r.event(reader.Event{Kind: reader.ServiceLost})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newHeldBench(t)
			res, _ := b.sale(1250)
			paid(t, res, "first tap")
			start := b.card.(*epursesim.SimCard).File().EPBalance
			tc.reset(b)
			res, sam := b.sale(700)
			paid(t, res, "tap after the reset")
			if setUpAPDUs(sam) == 0 {
				t.Errorf("tap after the reset: PSAM %v, no set-up", sam)
			}
			if got := b.card.(*epursesim.SimCard).File().EPBalance; got != start-700 {
				t.Errorf("card holds %d, want %d", got, start-700)
			}
			res, sam = b.sale(100)
			paid(t, res, "third tap")
			if n := setUpAPDUs(sam); n != 0 {
				t.Errorf("third tap: %d set-up APDUs, want none: %v", n, sam)
			}
		})
	}
}

// TestPSAMSetUpPerApplication: two PSAM profiles whose applications differ
// share one PSAM; the set-up of one selects its application, so the
// other's, learnt before, no longer holds: its next purchase selects its
// application again rather than computing MAC1 under the other's keys.
func TestPSAMSetUpPerApplication(t *testing.T) {
	l := &samLink{}
	st := &samTap{l: l}
	a := psam.Info{App: psam.App{FileID: 0x1001}, KeyIndex: 1}
	b := psam.Info{App: psam.App{FileID: 0x8011}, KeyIndex: 2}
	st.remember("a", a)
	if got, ok := st.setupFor("a"); !ok || got.KeyIndex != a.KeyIndex || got.App.String() != a.App.String() {
		t.Fatalf("setupFor(a) = %v %v, want a", got, ok)
	}
	st.remember("b", b)
	if _, ok := st.setupFor("a"); ok {
		t.Error("a's set-up held after b's selected another application")
	}
	if _, ok := st.setupFor("b"); !ok {
		t.Error("b's set-up did not hold")
	}
	st.remember("a", a)
	if _, ok := st.setupFor("b"); ok {
		t.Error("b's set-up held after a's selected its application again")
	}
	st.drop()
	if _, ok := st.setupFor("a"); ok {
		t.Error("a set-up held after drop")
	}
}

// switchSAM is a PSAM slot whose card can be swapped under a kept
// connection, as no real reader allows unnoticed: the worst case of a
// set-up gone stale.
type switchSAM struct{ t apdu.Transmitter }

func (s *switchSAM) Transmit(cmd []byte) ([]byte, error) { return s.t.Transmit(cmd) }

// TestPSAMChangedWithinTheTap: a sale on a kept set-up whose PSAM turns
// out, when set up again in the tap, to have another terminal id than the
// card's INITIALIZE carried is refused before the debit (psam_refused):
// no DEBIT, no purchase row, the card unchanged, the sale still armed. The
// next tap, on the new PSAM's set-up, pays.
func TestPSAMChangedWithinTheTap(t *testing.T) {
	b := newHeldBench(t)
	slot := &switchSAM{t: b.sam}
	b.sam = slot
	res, _ := b.sale(1250)
	paid(t, res, "first tap")
	f, err := psamsim.NewSAMFile([6]byte{0x00, 0x00, 0x00, 0x00, 0x20, 0x99}, testMasters)
	if err != nil {
		t.Fatal(err)
	}
	slot.t = psamsim.NewSimPSAM(f, "")
	card := b.card.(*epursesim.SimCard)
	before := card.File()
	res, _ = b.sale(700)
	if res.Outcome() != OutcomePSAMRefused || !errors.Is(res.Err, ErrPSAMChanged) {
		t.Fatalf("tap on a swapped PSAM: %s", summary(res))
	}
	for _, l := range cardCommands(b.trace) {
		if l == "80540100" {
			t.Fatal("DEBIT FOR PURCHASE sent with a MAC1 of another PSAM")
		}
	}
	if after := card.File(); after.EPBalance != before.EPBalance || after.EPOfflineCounter != before.EPOfflineCounter {
		t.Errorf("card %d at counter %d, was %d at %d", after.EPBalance, after.EPOfflineCounter, before.EPBalance, before.EPOfflineCounter)
	}
	rows, err := b.store.PurchasesOn(context.Background(), testNumber, benchNow.Format("20060102"))
	if err != nil || len(rows) != 1 {
		t.Fatalf("purchase rows %+v %v, want the first tap's only", rows, err)
	}
	if _, armed := b.r.Purchaser.Till.Armed(); !armed {
		t.Fatal("the refused sale left the till")
	}
	b.trace = nil
	card.Reset()
	res = b.r.tap(context.Background(), b.open, reader.Event{Kind: reader.CardInserted, Reader: "card", Time: time.Now()})
	paid(t, res, "the tap after")
}

// appSwitchSAM is a shared PSAM whose selected application another
// program changed between taps (other): it answers from other until the
// next SELECT, which puts it back in the purchase application (own).
type appSwitchSAM struct {
	own, other apdu.Transmitter
	onOther    bool
}

func (s *appSwitchSAM) Transmit(cmd []byte) ([]byte, error) {
	if len(cmd) >= 2 && cmd[0] == 0x00 && cmd[1] == 0xA4 {
		s.onOther = false
	}
	if s.onOther {
		return s.other.Transmit(cmd)
	}
	return s.own.Transmit(cmd)
}

// TestPSAMSetUpDroppedAfterMAC1Refused: a kept set-up under which the PSAM
// answers INIT SAM FOR PURCHASE, but from another application (selected
// by another program sharing the PSAM), gives a MAC1 the card refuses
// (9302). The debit did not happen; the set-up is not trusted again: the
// next tap sets the PSAM up and pays, rather than every sale failing, each
// one counting a wrong MAC on a cardholder's card, until the PSAM is
// pulled.
func TestPSAMSetUpDroppedAfterMAC1Refused(t *testing.T) {
	b := newHeldBench(t)
	other := epurse.MasterKeys{DLK: testMasters.DLK, DTK: testMasters.DTK, DPK: epurse.Key16{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}}
	f, err := psamsim.NewSAMFile(samTermID, other)
	if err != nil {
		t.Fatal(err)
	}
	otherApp := psamsim.NewSimPSAM(f, "")
	if _, err := psam.OpenProfile(otherApp, psam.Profile{}); err != nil {
		t.Fatal(err)
	}
	slot := &appSwitchSAM{own: b.sam, other: otherApp}
	b.sam = slot
	res, _ := b.sale(1250)
	paid(t, res, "first tap")
	slot.onOther = true
	card := b.card.(*epursesim.SimCard)
	before := card.File().EPBalance
	res, _ = b.sale(700)
	if res.Purchase != nil && res.Purchase.Paid {
		t.Fatalf("tap under the other application paid: %s", summary(res))
	}
	if got := card.File().EPBalance; got != before {
		t.Fatalf("card holds %d, want %d unchanged", got, before)
	}
	b.r.Purchaser.Till.Disarm()
	res, sam := b.sale(700)
	paid(t, res, "the tap after the card refused MAC1")
	if setUpAPDUs(sam) == 0 {
		t.Errorf("the tap after: PSAM %v, not set up again", sam)
	}
	if got := card.File().EPBalance; got != before-700 {
		t.Errorf("card holds %d, want %d", got, before-700)
	}
}
