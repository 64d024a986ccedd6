package tap

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cardd/cardd/apdu"
	"github.com/cardd/cardd/apdu/epurse"
	"github.com/cardd/cardd/apdu/mifare"
	mifaresim "github.com/cardd/cardd/apdu/mifare/sim"
	"github.com/cardd/cardd/door"
	"github.com/cardd/cardd/offline"
	"github.com/cardd/cardd/reader"
)

// fakeRelay counts opens; err makes them fail.
type fakeRelay struct {
	opens int
	err   error
}

func (r *fakeRelay) Open(context.Context) error {
	if r.err != nil {
		return r.err
	}
	r.opens++
	return nil
}

const testList = `{"version":"1","groups":[{"name":"residents","windows":[{"days":["mon","tue","wed","thu","fri","sat","sun"],"from":"00:00","until":"24:00"}]}],
"entries":[{"card":"` + testNumber + `","groups":["residents"]},{"uid":"04A1B2C3","groups":["residents"]}]}`

func newTestDoor(t *testing.T) (*Door, *fakeRelay, *offline.Store) {
	t.Helper()
	st, err := offline.Open(filepath.Join(t.TempDir(), "cardd.db"), "000000000001")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	l, err := door.ParseList([]byte(testList))
	if err != nil {
		t.Fatal(err)
	}
	ix, err := door.NewIndex(l, []string{"residents"})
	if err != nil {
		t.Fatal(err)
	}
	relay := &fakeRelay{}
	d := &Door{Store: st, Relay: relay, Logger: slog.New(slog.DiscardHandler),
		Now: func() time.Time { return time.Date(2026, 11, 23, 12, 0, 0, 0, time.Local) }}
	d.SetList(ix)
	return d, relay, st
}

func readTestCard(t *testing.T) *CardRead {
	t.Helper()
	cr, err := ReadPurse(newTestCard(t, "王小明", 0, nil), ReadOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return cr
}

func accessRows(t *testing.T, st *offline.Store) []offline.Row {
	t.Helper()
	rows, err := st.List(context.Background(), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func TestDoorOpensForAListedCard(t *testing.T) {
	d, relay, st := newTestDoor(t)
	rep, err := d.Decide(context.Background(), nil, time.Now(), readTestCard(t), nil)
	if err != nil || !rep.Opened || relay.opens != 1 || rep.Decision.Reason != door.ReasonAllowed {
		t.Fatalf("Decide = %+v, %v; relay opened %d times", rep, err, relay.opens)
	}
	rows := accessRows(t, st)
	if len(rows) != 1 || rows[0].Kind != offline.KindAccess || rows[0].Card != testNumber || !strings.HasPrefix(rows[0].Detail, "allowed:") {
		t.Fatalf("journal %+v", rows)
	}
}

func TestDoorRefusesADeniedCard(t *testing.T) {
	d, relay, st := newTestDoor(t)
	if err := st.SetDenied(context.Background(), testNumber, true, "lost"); err != nil {
		t.Fatal(err)
	}
	rep, err := d.Decide(context.Background(), nil, time.Now(), readTestCard(t), nil)
	if !errors.Is(err, ErrAccessDenied) || rep.Opened || relay.opens != 0 || rep.Decision.Reason != door.ReasonDenyListed {
		t.Fatalf("Decide = %+v, %v", rep, err)
	}
	if (Result{Err: err}).Outcome() != OutcomeAccessDenied {
		t.Fatal("outcome")
	}
	if rows := accessRows(t, st); len(rows) != 1 || !strings.HasPrefix(rows[0].Detail, "deny_listed:") {
		t.Fatalf("journal %+v", rows)
	}
}

func TestDoorRefusesWithoutAList(t *testing.T) {
	d, relay, _ := newTestDoor(t)
	d.SetList(nil)
	rep, err := d.Decide(context.Background(), nil, time.Now(), readTestCard(t), nil)
	if !errors.Is(err, ErrAccessDenied) || relay.opens != 0 || rep.Decision.Reason != door.ReasonUnknownCard {
		t.Fatalf("Decide = %+v, %v", rep, err)
	}
}

func TestDoorKnowsACardByUID(t *testing.T) {
	d, relay, st := newTestDoor(t)
	f, err := mifaresim.NewCardFile([4]byte{0x04, 0xA1, 0xB2, 0xC3}, mifare.Wallet{Sector: 1, ValueBlock: 4, BackupBlock: 5,
		KeyA: mifare.Key{1, 2, 3, 4, 5, 6}, KeyB: mifare.Key{6, 5, 4, 3, 2, 1}, Slots: mifare.KeySlotsACS}, 0)
	if err != nil {
		t.Fatal(err)
	}
	card := mifaresim.NewSimCard(f, "")
	_, readErr := ReadPurse(card, ReadOptions{}, nil)
	if readErr == nil {
		t.Fatal("an M1 card read as an e-purse")
	}
	rep, err := d.Decide(context.Background(), card, time.Now(), nil, readErr)
	if err != nil || !rep.Opened || relay.opens != 1 {
		t.Fatalf("Decide = %+v, %v", rep, err)
	}
	if rows := accessRows(t, st); len(rows) != 1 || rows[0].Card != "uid:04A1B2C3" {
		t.Fatalf("journal %+v", rows)
	}
}

func TestDoorLeavesAPulledCardUndecided(t *testing.T) {
	d, relay, st := newTestDoor(t)
	pulled := &reader.Error{Op: "transmit", Kind: reader.ErrCardRemoved, Err: errors.New("gone")}
	_, err := d.Decide(context.Background(), apdu.TransmitterFunc(func([]byte) ([]byte, error) { return nil, pulled }), time.Now(), nil, pulled)
	if !errors.Is(err, reader.ErrCardRemoved) || relay.opens != 0 || len(accessRows(t, st)) != 0 {
		t.Fatalf("err %v, opens %d", err, relay.opens)
	}
}

func TestDoorRelayFailureIsNotADenial(t *testing.T) {
	d, relay, _ := newTestDoor(t)
	relay.err = errors.New("port gone")
	rep, err := d.Decide(context.Background(), nil, time.Now(), readTestCard(t), nil)
	if !errors.Is(err, ErrRelayFailed) || rep.Opened || (Result{Err: err}).Outcome() != OutcomeRelayFailed {
		t.Fatalf("Decide = %+v, %v", rep, err)
	}
}

func TestDoorRefusesAnExpiredCard(t *testing.T) {
	d, relay, _ := newTestDoor(t)
	d.Now = func() time.Time { return time.Date(2030, 1, 1, 12, 0, 0, 0, time.Local) }
	rep, err := d.Decide(context.Background(), nil, time.Now(), readTestCard(t), nil)
	if !errors.Is(err, ErrAccessDenied) || relay.opens != 0 || rep.Decision.Reason != door.ReasonExpired {
		t.Fatalf("Decide = %+v, %v", rep, err)
	}
}

// A listed number is not enough when cardd could not read the card the
// way its family numbers it: an unknown issuer's serial that happens to
// spell a listed number, or a card whose expiry date does not read, keeps
// the door shut.
func TestDoorRefusesACardNotRecognised(t *testing.T) {
	for name, spoil := range map[string]func(*CardRead){
		"serial in hex":   func(cr *CardRead) { cr.Info.Numbering = epurse.NumberSerialHex },
		"dates not read":  func(cr *CardRead) { cr.datesUnread = true },
		"no number known": func(cr *CardRead) { cr.Info.CardNumber = "" },
	} {
		t.Run(name, func(t *testing.T) {
			d, relay, _ := newTestDoor(t)
			cr := readTestCard(t)
			spoil(cr)
			if cr.Info.CardNumber == "" {
				cr.Info.CardNumber = testNumber // as if the list matched anyway
				cr.Info.Numbering = epurse.NumberSerialHex
			}
			rep, err := d.Decide(context.Background(), nil, time.Now(), cr, nil)
			if !errors.Is(err, ErrAccessDenied) || relay.opens != 0 || rep.Decision.Reason != door.ReasonUnknownCard {
				t.Fatalf("Decide = %+v, %v; relay opened %d times", rep, err, relay.opens)
			}
		})
	}
}

// A door takes numbers of its card families only: a City Union card of
// another city carrying a listed campus number stays outside.
func TestDoorTakesItsCardFamiliesOnly(t *testing.T) {
	d, relay, _ := newTestDoor(t)
	d.Families = []string{"campus", "tunion"}
	cr := readTestCard(t)
	cr.Profile = epurse.ProfileCityUnion
	rep, err := d.Decide(context.Background(), nil, time.Now(), cr, nil)
	if !errors.Is(err, ErrAccessDenied) || relay.opens != 0 || rep.Decision.Reason != door.ReasonUnknownCard ||
		!strings.Contains(rep.Decision.Text, "cityunion") {
		t.Fatalf("Decide = %+v, %v; relay opened %d times", rep, err, relay.opens)
	}
	// The campus card itself is let in.
	if rep, err := d.Decide(context.Background(), nil, time.Now(), readTestCard(t), nil); err != nil || !rep.Opened {
		t.Fatalf("campus card: %+v, %v", rep, err)
	}
}
