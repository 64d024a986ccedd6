package tap

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/cardd/cardd/apdu"
	"github.com/cardd/cardd/apdu/epurse"
	epursesim "github.com/cardd/cardd/apdu/epurse/sim"
	"github.com/cardd/cardd/apdu/psam"
	psamsim "github.com/cardd/cardd/apdu/psam/sim"
	"github.com/cardd/cardd/offline"
	"github.com/cardd/cardd/reader"
)

// newProfiledWorld is a POS whose PSAM and card are keyed as sam and card
// say, the purchaser using profiles.
func newProfiledWorld(t *testing.T, sam func(*psamsim.SAMFile), card psamsim.CardPurchase, profiles psam.Profiles) *posWorld {
	t.Helper()
	w := newPOSWorld(t, 0)
	f := w.sam.File()
	sam(f)
	w.sam = psamsim.NewSimPSAM(f, "")
	w.card = newTestCard(t, "王小明", 0, func(cf *epursesim.CardFile) {
		cf.Info.IssuerID = [8]byte{0x02, 0x13, 0x31, 0x00, 0xFF, 0xFF, 0xFF, 0xFF}
		card.Apply(cf, testMasters.DPK)
	})
	w.p.PSAMProfiles = profiles
	return w
}

// nothingMoved fails t unless the tap that reported rep paid nothing,
// journaled nothing and left the card's balance at 123.45.
func (w *posWorld) nothingMoved(t *testing.T, rep PurchaseReport) {
	t.Helper()
	if rep.Paid || rep.JournalID != "" {
		t.Fatalf("report %+v", rep)
	}
	if got := w.card.File().EPBalance; got != 12345 {
		t.Fatalf("card balance %d after a refused sale", got)
	}
	rows, err := w.store.PurchasesOn(context.Background(), w.card.File().Info.CardNumber, w.now.Format("20060102"))
	if err != nil || len(rows) != 0 {
		t.Fatalf("journal rows %+v, %v", rows, err)
	}
}

func mustProfile(t *testing.T, s string) psam.Profile {
	t.Helper()
	p, err := psam.ParseProfile(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestPurchaseThroughPSAMProfiles: a sale is paid through a PSAM whose
// key index is 3 (read from it), whose key is diversified twice in either
// layout, and one that needs the card's security code.
func TestPurchaseThroughPSAMProfiles(t *testing.T) {
	for _, tc := range []struct {
		name string
		sam  func(*psamsim.SAMFile)
		card psamsim.CardPurchase
		prof string
	}{
		{"key index 3", func(f *psamsim.SAMFile) { f.KeyIndex = 3 }, psamsim.CardPurchase{KeyIndex: 3}, "cardd key_index=psam"},
		{"issuer layout at 8011", func(f *psamsim.SAMFile) { f.AppFileID, f.KeyIndex, f.Diversification = 0x8011, 2, psam.DiversifyIssuer },
			psamsim.CardPurchase{KeyIndex: 2, Diversification: psam.DiversifyIssuer}, "tunion"},
		{"city layout and security code", func(f *psamsim.SAMFile) { f.Diversification, f.SecurityCode = psam.DiversifyCity, true },
			psamsim.CardPurchase{Diversification: psam.DiversifyCity, SecurityCode: true}, "cityunion"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newProfiledWorld(t, tc.sam, tc.card, psam.Profiles{Default: mustProfile(t, tc.prof)})
			if _, err := w.till.Arm(1250, ""); err != nil {
				t.Fatal(err)
			}
			rep, err := w.tap(t, w.card)
			if err != nil || !rep.Paid || !rep.MAC2Verified {
				t.Fatalf("tap: %+v, %v", rep, err)
			}
			if got := w.card.File().EPBalance; got != 12345-1250 {
				t.Fatalf("card balance %d", got)
			}
		})
	}
}

// TestPSAMRefusalMovesNothing: a PSAM keyed twice refuses cardd's one-level
// request (6700); the tap says so, names the profile, and neither the card
// nor the journal changes. The same for a missing security code (6985).
func TestPSAMRefusalMovesNothing(t *testing.T) {
	for _, tc := range []struct {
		name, prof string
		sam        func(*psamsim.SAMFile)
		card       psamsim.CardPurchase
		want       error
		says       string
	}{
		{"one level to a two-level PSAM", "cardd", func(f *psamsim.SAMFile) { f.Diversification = psam.DiversifyCity },
			psamsim.CardPurchase{Diversification: psam.DiversifyCity}, psam.ErrDiversificationMismatch, "Lc 1C, one level"},
		{"no security code", "cardd diversification=city", func(f *psamsim.SAMFile) { f.Diversification, f.SecurityCode = psam.DiversifyCity, true },
			psamsim.CardPurchase{Diversification: psam.DiversifyCity, SecurityCode: true}, apdu.ErrConditionsOfUse, "INIT SAM FOR PURCHASE refused"},
		{"card without the PSAM's key index", "cardd key_index=psam", func(f *psamsim.SAMFile) { f.KeyIndex = 3 },
			psamsim.CardPurchase{}, apdu.ErrKeyIndex, "no purchase key index 3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newProfiledWorld(t, tc.sam, tc.card, psam.Profiles{Default: mustProfile(t, tc.prof)})
			if _, err := w.till.Arm(1250, ""); err != nil {
				t.Fatal(err)
			}
			rep, err := w.tap(t, w.card)
			if !errors.Is(err, ErrPSAMRefused) || !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.says) ||
				!strings.Contains(err.Error(), "PSAM profile "+mustProfile(t, tc.prof).String()) {
				t.Fatalf("tap: %v", err)
			}
			if got := (Result{Err: err}).Outcome(); got != OutcomePSAMRefused {
				t.Errorf("outcome %s", got)
			}
			w.nothingMoved(t, rep)
		})
	}
}

// TestPSAMProfileByFamily: the card's family (epurse.Identify) picks its
// profile; other families take the default. Both cards are keyed for the
// city PSAM: the campus card, paid through the default one-level profile,
// is refused; the City Union card, through psam.families.cityunion, pays.
func TestPSAMProfileByFamily(t *testing.T) {
	profiles := psam.Profiles{Default: mustProfile(t, "cardd"), Families: map[string]psam.Profile{"cityunion": mustProfile(t, "cityunion")}}
	citySAM := func(f *psamsim.SAMFile) { f.Diversification, f.SecurityCode = psam.DiversifyCity, true }
	keyed := psamsim.CardPurchase{Diversification: psam.DiversifyCity, SecurityCode: true}
	w := newProfiledWorld(t, citySAM, keyed, profiles)
	campus := newTestCard(t, "王小明", 0, func(cf *epursesim.CardFile) { keyed.Apply(cf, testMasters.DPK) })
	if _, err := w.till.Arm(100, ""); err != nil {
		t.Fatal(err)
	}
	w.card = campus
	if _, err := w.tap(t, campus); !errors.Is(err, ErrPSAMRefused) || !strings.Contains(err.Error(), "PSAM profile cardd ") {
		t.Fatalf("campus card (default profile) through a city PSAM: %v", err)
	}
	w.card = newTestCard(t, "王小明", 0, func(cf *epursesim.CardFile) {
		cf.Info.IssuerID = [8]byte{0x02, 0x13, 0x31, 0x00, 0xFF, 0xFF, 0xFF, 0xFF}
		keyed.Apply(cf, testMasters.DPK)
	})
	if rep, err := w.tap(t, w.card); err != nil || !rep.Paid {
		t.Fatalf("cityunion card: %+v, %v", rep, err)
	}
}

// TestPurchaseRecoveryWithPSAMKeyIndex: through a PSAM whose key index is
// 3 (and a card that has no key 1), the DEBIT's answer is lost, whether
// the card debited or not. The card's next tap must settle the row from
// the card's counter and pay the sale exactly once: the recovery's
// INITIALIZE probe may not use a key index the card refuses.
func TestPurchaseRecoveryWithPSAMKeyIndex(t *testing.T) {
	world := func() *posWorld {
		return newProfiledWorld(t, func(f *psamsim.SAMFile) { f.KeyIndex = 3 }, psamsim.CardPurchase{KeyIndex: 3},
			psam.Profiles{Default: mustProfile(t, "cardd key_index=psam")})
	}
	probe := world()
	probe.till.Arm(700, "")
	rec := &recorder{t: probe.card}
	if _, err := probe.tap(t, rec); err != nil {
		t.Fatal(err)
	}
	at := slices.IndexFunc(rec.cmds, func(c cmdRec) bool { return c.INS == 0x54 })
	for _, deliver := range []bool{true, false} {
		w := world()
		start := w.card.File().EPBalance
		if _, err := w.till.Arm(700, ""); err != nil {
			t.Fatal(err)
		}
		if _, err := w.tap(t, &cutAfter{t: w.card, n: at, deliver: deliver}); !errors.Is(err, ErrSaleInDoubt) {
			t.Fatalf("delivered %v: DEBIT answer lost: %v", deliver, err)
		}
		rep, err := w.tap(t, w.card)
		if err != nil || !rep.Paid || len(rep.Recovered) != 1 || rep.Recovered[0].Applied != deliver {
			t.Fatalf("delivered %v: tap again: %+v, %v", deliver, rep, err)
		}
		if got := w.card.File().EPBalance; got != start-700 {
			t.Fatalf("delivered %v: card holds %d, want one debit from %d", deliver, got, start)
		}
		rows, err := w.store.PurchasesOn(context.Background(), w.card.File().Info.CardNumber, w.now.Format("20060102"))
		if err != nil {
			t.Fatal(err)
		}
		done := 0
		for _, r := range rows {
			if r.State == offline.StateDone {
				done++
			}
		}
		if done != 1 {
			t.Fatalf("delivered %v: rows %+v", deliver, rows)
		}
	}
	// A restart in between: the new daemon has not read the PSAM's index
	// yet. Its probe is refused (9403), which must not fail the tap: the
	// card's log shows the debit done.
	w := world()
	start := w.card.File().EPBalance
	w.till.Arm(700, "")
	if _, err := w.tap(t, &cutAfter{t: w.card, n: at, deliver: true}); !errors.Is(err, ErrSaleInDoubt) {
		t.Fatalf("DEBIT answer lost: %v", err)
	}
	w.till = &Till{}
	w.p = &Purchaser{Store: w.store, Till: w.till, TerminalID: testTermID, PSAMProfiles: w.p.PSAMProfiles, Now: w.p.Now, Logger: w.p.Logger}
	rows, err := w.store.InDoubt(context.Background(), offline.KindPurchase)
	if err != nil || len(rows) != 1 {
		t.Fatalf("rows in doubt %+v %v", rows, err)
	}
	w.till.RestoreInDoubt(rows[0].Card, rows[0].ID, rows[0].AmountFen)
	rep, err := w.tap(t, w.card)
	if err != nil || !rep.Paid || len(rep.Recovered) != 1 || !rep.Recovered[0].Applied || w.card.File().EPBalance != start-700 {
		t.Fatalf("after a restart: %+v, %v, card %d", rep, err, w.card.File().EPBalance)
	}
}

// hostile answers the commands that begin with one of its prefixes (hex,
// no spaces) with its canned response, or, when that is nil, fails them
// with fail (a card pulled from its reader when fail is nil); it passes the
// rest on.
type hostile struct {
	t       apdu.Transmitter
	answers map[string][]byte
	fail    error
}

func (h hostile) Transmit(cmd []byte) ([]byte, error) {
	for prefix, resp := range h.answers {
		if strings.HasPrefix(strings.ToUpper(hex.EncodeToString(cmd)), prefix) {
			if resp == nil && h.fail != nil {
				return nil, h.fail
			}
			if resp == nil {
				return nil, &reader.Error{Op: "transmit", Kind: reader.ErrCardRemoved, Err: errors.New("PSAM pulled")}
			}
			return slices.Clone(resp), nil
		}
	}
	return h.t.Transmit(cmd)
}

// TestHostilePSAMMovesNothing: a PSAM (or, for the security code, a card)
// that answers a step before the debit wrongly, whether with a status word,
// a key index of 00 or FF, or the wrong number of bytes, ends the tap as a
// PSAM refusal or a PSAM unavailable: never a card error, nothing journaled,
// the card unchanged.
func TestHostilePSAMMovesNothing(t *testing.T) {
	city := func(f *psamsim.SAMFile) { f.Diversification, f.SecurityCode, f.KeyIndex = psam.DiversifyCity, true, 3 }
	cityCard := psamsim.CardPurchase{Diversification: psam.DiversifyCity, SecurityCode: true, KeyIndex: 3}
	for _, tc := range []struct {
		name    string
		prof    string
		psam    map[string][]byte
		card    map[string][]byte
		outcome Outcome
		fail    error
	}{
		{"EF 17 gives 00", "cityunion", map[string][]byte{"00B09700": {0x00, 0x90, 0x00}}, nil, OutcomeNoSAM, nil},
		{"EF 17 gives FF", "cityunion", map[string][]byte{"00B09700": {0xFF, 0x90, 0x00}}, nil, OutcomePSAMRefused, nil},
		{"EF 17 gives two bytes", "cityunion", map[string][]byte{"00B09700": {0x03, 0x01, 0x90, 0x00}}, nil, OutcomeNoSAM, nil},
		{"EF 17 gives no byte", "cityunion", map[string][]byte{"00B09700": {0x90, 0x00}}, nil, OutcomeNoSAM, nil},
		{"EF 17 not found", "cityunion", map[string][]byte{"00B09700": {0x6A, 0x82}}, nil, OutcomeNoSAM, nil},
		{"application elsewhere", "cityunion apps=DF01,BDA8C9E8B2BF", nil, nil, OutcomeNoSAM, nil},
		{"MAC1 answer of 7 bytes", "cityunion", map[string][]byte{"80700000": {1, 2, 3, 4, 5, 6, 7, 0x90, 0x00}}, nil, OutcomePSAMRefused, nil},
		{"MAC1 answer empty", "cityunion", map[string][]byte{"80700000": {0x90, 0x00}}, nil, OutcomePSAMRefused, nil},
		{"security code answered with data", "cityunion", map[string][]byte{"80CA000009": {1, 0x90, 0x00}}, nil, OutcomePSAMRefused, nil},
		{"card's security code of 8 bytes", "cityunion", nil, map[string][]byte{"80CA0000": {1, 2, 3, 4, 5, 6, 7, 8, 0x90, 0x00}}, OutcomePSAMRefused, nil},
		{"card without a security code", "cityunion", nil, map[string][]byte{"80CA0000": {0x6D, 0x00}}, OutcomePSAMRefused, nil},
		{"PSAM pulled at the security code", "cityunion", map[string][]byte{"80CA000009": nil}, nil, OutcomeNoSAM, nil},
		{"PSAM pulled at MAC1", "cityunion", map[string][]byte{"80700000": nil}, nil, OutcomeNoSAM, nil},
		{"PSAM pulled at a GET RESPONSE", "cityunion", map[string][]byte{"00C00000": nil}, nil, OutcomeNoSAM, nil},
		{"PSAM silent at MAC1 until the deadline", "cityunion", map[string][]byte{"80700000": nil}, nil, OutcomeTimeout,
			&reader.Error{Op: "transmit", Err: context.DeadlineExceeded}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newProfiledWorld(t, city, cityCard, psam.Profiles{Default: mustProfile(t, tc.prof)})
			if _, err := w.till.Arm(1250, ""); err != nil {
				t.Fatal(err)
			}
			w.card.Reset()
			var card apdu.Transmitter = hostile{t: w.card, answers: tc.card}
			cr, err := ReadPurse(card, ReadOptions{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			sam := hostile{t: w.sam, answers: tc.psam, fail: tc.fail}
			rep, err := w.p.Charge(context.Background(), card, cr, cr.Balance, func() (SAMSession, error) { return samSession{sam}, nil })
			if got := (Result{Err: err}).Outcome(); got != tc.outcome {
				t.Errorf("outcome %s, want %s: %v", got, tc.outcome, err)
			}
			w.nothingMoved(t, rep)
			if _, ok := w.till.Armed(); !ok {
				t.Fatal("the sale is no longer armed")
			}
		})
	}
}

// TestSecondFactorFromEF15: INIT SAM FOR PURCHASE carries, after the card
// factor (EF 0x15 bytes 12-19), EF 0x15 bytes 0-7 in the issuer layout and
// bytes 2-3 ‖ FF 00 00 00 00 00 in the city layout, taken here from the
// card's own EF 0x15 bytes, for a campus card, a City Union card and a
// T-Union-numbered card (issuer id 0002 0000 FFFF FFFF, serial 0 ‖ 19
// digits); and each card pays.
func TestSecondFactorFromEF15(t *testing.T) {
	tunion := func(t *testing.T) *epursesim.CardFile {
		f, err := epursesim.NewProfileCardFile(epurse.ProfileTUnion, "3104440000000000017", "", 12345, testStart, testExpiry, testMasters)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	campus := func(t *testing.T) *epursesim.CardFile {
		f, err := epursesim.NewCardFile(testNumber, "", 12345, testStart, testExpiry, testMasters)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	city := func(t *testing.T) *epursesim.CardFile {
		f := campus(t)
		f.Info.IssuerID = [8]byte{0x02, 0x13, 0x31, 0x00, 0xFF, 0xFF, 0xFF, 0xFF}
		return f
	}
	for _, card := range []struct {
		name string
		file func(*testing.T) *epursesim.CardFile
	}{{"campus", campus}, {"cityunion", city}, {"tunion", tunion}} {
		for _, div := range []psam.Diversification{psam.DiversifyIssuer, psam.DiversifyCity} {
			t.Run(card.name+"/"+div.String(), func(t *testing.T) {
				w := newPOSWorld(t, 0)
				sf := w.sam.File()
				sf.Diversification = div
				w.sam = psamsim.NewSimPSAM(sf, "")
				f := card.file(t)
				ef15 := f.Info.Bytes()
				psamsim.CardPurchase{Diversification: div}.Apply(f, testMasters.DPK)
				w.card = epursesim.NewSimCard(f, "")
				prof := psam.Profile{Diversification: div}
				w.p.PSAMProfiles = psam.Profiles{Default: prof, Families: map[string]psam.Profile{"tunion": prof, "cityunion": prof}}
				if _, err := w.till.Arm(1250, ""); err != nil {
					t.Fatal(err)
				}
				rec := &recorder{t: w.sam}
				cr, err := ReadPurse(w.card, ReadOptions{}, nil)
				if err != nil {
					t.Fatal(err)
				}
				rep, err := w.p.Charge(context.Background(), w.card, cr, cr.Balance, func() (SAMSession, error) { return samSession{rec}, nil })
				if err != nil || !rep.Paid || !rep.MAC2Verified {
					t.Fatalf("%s card (%s): %+v, %v", card.name, cr.Info.CardNumber, rep, err)
				}
				i := slices.IndexFunc(rec.cmds, func(c cmdRec) bool { return c.INS == 0x70 })
				data := rec.raw[i][5:]
				want := slices.Concat(ef15[12:20], ef15[0:8])
				if div == psam.DiversifyCity {
					want = slices.Concat(ef15[12:20], ef15[2:4], []byte{0xFF, 0, 0, 0, 0, 0})
				}
				if len(data) != 0x24 || !bytes.Equal(data[20:], want) {
					t.Fatalf("INIT SAM FOR PURCHASE factors % X, want % X", data[20:], want)
				}
			})
		}
	}
}

// A card read without its EF 0x15 (a Beijing card names itself by EF 4)
// has no serial for the PSAM to diversify from: the sale is refused before
// the card's INITIALIZE, nothing moves, and the card counts no wrong MAC.
func TestPurchaseRefusedWithoutCardSerial(t *testing.T) {
	w := newProfiledWorld(t, func(*psamsim.SAMFile) {}, psamsim.CardPurchase{}, psam.Profiles{})
	if _, err := w.till.Arm(1250, ""); err != nil {
		t.Fatal(err)
	}
	w.card.Reset()
	cr, err := ReadPurse(w.card, ReadOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cr.Info.AppSerial = [10]byte{}
	var sent []byte
	card := apdu.TransmitterFunc(func(cmd []byte) ([]byte, error) {
		sent = append(sent, cmd[1])
		return w.card.Transmit(cmd)
	})
	rep, err := w.p.Charge(context.Background(), card, cr, cr.Balance, func() (SAMSession, error) { return samSession{w.sam}, nil })
	if !errors.Is(err, ErrPSAMRefused) || !errors.Is(err, ErrNoCardSerial) {
		t.Fatalf("Charge: %v", err)
	}
	if bytes.Contains(sent, []byte{0x50}) {
		t.Errorf("INITIALIZE sent to the card: INS % X", sent)
	}
	w.nothingMoved(t, rep)
}
