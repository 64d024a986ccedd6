package host

import (
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cardd/cardd/apdu/epurse"
	epursesim "github.com/cardd/cardd/apdu/epurse/sim"
	psamsim "github.com/cardd/cardd/apdu/psam/sim"
)

// Keys holds the issuer master keys and does every computation that needs
// them: it stands in for the HSM of a production host, so the masters never
// leave it (DESIGN.md, money rule 6). It prints as "[redacted]".
type Keys struct {
	m epurse.MasterKeys
}

// NewKeys wraps master keys; an all-zero key is refused, since it is what a
// truncated or hand-edited key file gives. The maintenance master (DAMK) is
// optional: a key file written before it existed has none, and keeps
// serving loads and reconciliation; only on-chip blocking is refused then
// (ErrNoMaintenanceKey), since no key could be guessed that the cards
// issued from it would take.
func NewKeys(m epurse.MasterKeys) (*Keys, error) {
	if m.DLK == (epurse.Key16{}) || m.DPK == (epurse.Key16{}) || m.DTK == (epurse.Key16{}) {
		return nil, errors.New("issuer master keys: a key (dlk, dpk or dtk) is missing or all zero")
	}
	return &Keys{m: m}, nil
}

// String keeps the keys out of any message.
func (*Keys) String() string { return "[redacted]" }

// LogValue keeps the keys out of slog.
func (*Keys) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// GenerateMasterKeys makes new random issuer master keys, the maintenance
// master (DAMK) with them.
func GenerateMasterKeys() (epurse.MasterKeys, error) {
	var m epurse.MasterKeys
	for _, k := range []*epurse.Key16{&m.DLK, &m.DPK, &m.DTK, &m.DAMK} {
		if _, err := rand.Read(k[:]); err != nil {
			return m, fmt.Errorf("random master key: %w", err)
		}
	}
	return m, nil
}

// WriteMasterKeys writes m to a new key file (epurse.WriteMasterKeyFile).
func WriteMasterKeys(path string, m epurse.MasterKeys) error {
	return epurse.WriteMasterKeyFile(path, m)
}

// LoadKeys reads a master key file (epurse.ReadMasterKeyFile: mode 0600,
// no unknown fields) into a key box.
func LoadKeys(path string) (*Keys, error) {
	m, err := epurse.ReadMasterKeyFile(path)
	if err != nil {
		return nil, err
	}
	k, err := NewKeys(m)
	if err != nil {
		return nil, fmt.Errorf("master key file %s: %w", path, err)
	}
	return k, nil
}

// NewCardFile builds a new card whose keys are diversified from the masters
// (epursesim.NewCardFile), the one place a card's keys leave the key box: they
// go into the card's own chip, or its simulation.
func (k *Keys) NewCardFile(p *epurse.Profile, number, holder string, balance int64, start, expiry epurse.Date) (*epursesim.CardFile, error) {
	return epursesim.NewProfileCardFile(p, number, holder, balance, start, expiry, k.m)
}

// PersonalizePurchase gives card f the purchase key, key index and
// security code that PSAMs keyed as c expect (psamsim.CardPurchase.Apply);
// the master stays here.
func (k *Keys) PersonalizePurchase(f *epursesim.CardFile, c psamsim.CardPurchase) {
	c.Apply(f, k.m.DPK)
}

// cardKeys diversifies the masters for one card (spec "Keys and MACs").
func (k *Keys) cardKeys(serial [10]byte) epurse.CardKeys { return k.m.Diversify(serial[:]) }

// checkLoadMAC1 reports whether mac1 is the card's MAC1 of an INITIALIZE FOR
// LOAD at this counter with this random.
func (k *Keys) checkLoadMAC1(serial [10]byte, random [4]byte, counter uint16, oldBalance, amount int64, tx epurse.TxType, term [6]byte, mac1 [4]byte) (bool, error) {
	return checkLoadMAC1(k.cardKeys(serial).DLK, random, counter, oldBalance, amount, tx, term, mac1)
}

// loadMAC2 computes the MAC2 that authorizes exactly that INIT's CREDIT FOR
// LOAD at the given time.
func (k *Keys) loadMAC2(serial [10]byte, random [4]byte, counter uint16, amount int64, tx epurse.TxType, term [6]byte, when time.Time) ([4]byte, error) {
	return loadMAC2(k.cardKeys(serial).DLK, random, counter, amount, tx, term, when)
}

// loadTAC computes the TAC the card gives for that load.
func (k *Keys) loadTAC(serial [10]byte, newBalance int64, counter uint16, amount int64, tx epurse.TxType, term [6]byte, when time.Time) ([4]byte, error) {
	return epurse.LoadTAC(k.cardKeys(serial).DTK, newBalance, counter, amount, tx, term, when)
}

// purchaseTAC computes the TAC the card gives for a purchase.
func (k *Keys) purchaseTAC(serial [10]byte, amount int64, tx epurse.TxType, psamTerm [6]byte, termSerial uint32, when time.Time) ([4]byte, error) {
	return epurse.PurchaseTAC(k.cardKeys(serial).DTK, amount, tx, psamTerm, termSerial, when)
}

// checkLoadMAC1 is the MAC1 check from a card's DLK, kept apart from the
// masters so the spec's test vectors, which give a DLK, run through it.
func checkLoadMAC1(dlk epurse.Key16, random [4]byte, counter uint16, oldBalance, amount int64, tx epurse.TxType, term [6]byte, mac1 [4]byte) (bool, error) {
	seslk := epurse.SessionKeyLoad(dlk, random, counter)
	want, err := epurse.LoadMAC1(seslk, oldBalance, amount, tx, term)
	if err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare(want[:], mac1[:]) == 1, nil
}

// loadMAC2 is MAC2 from a card's DLK: SESLK = 3DES_DLK(random ‖ counter ‖
// 8000), then MAC_SESLK(amount ‖ type ‖ termID ‖ date ‖ time).
func loadMAC2(dlk epurse.Key16, random [4]byte, counter uint16, amount int64, tx epurse.TxType, term [6]byte, when time.Time) ([4]byte, error) {
	return epurse.LoadMAC2(epurse.SessionKeyLoad(dlk, random, counter), amount, tx, term, when)
}

// SeedHistory gives a newly issued card a past: n transactions made through
// its own load and purchase commands (epursesim.SeedHistory) at terminal termID,
// the last about a day ago. They stand for the card's use before this host
// served it, so they are not credits of this host and its ledger does not
// show them. The keys stay in the box.
func (k *Keys) SeedHistory(card *epursesim.SimCard, termID [6]byte, n int, now time.Time) error {
	first := now.Add(-time.Duration(n) * epursesim.HistoryStep)
	return epursesim.SeedHistory(card, k.m, termID, n, first)
}

// ErrNoMaintenanceKey: the master key file holds no application maintenance
// master key (damk), so the host cannot MAC an APPLICATION BLOCK.
var ErrNoMaintenanceKey = errors.New("the master key file holds no application maintenance key (damk): cards cannot be blocked on the chip")

// blockMAC is the MAC of APPLICATION BLOCK in mode for the card with this
// serial, over the challenge it gave (epurse.BlockMAC with its DAMK).
func (k *Keys) blockMAC(serial [10]byte, challenge [epurse.ChallengeLen]byte, mode epurse.BlockMode) ([4]byte, error) {
	if k.m.DAMK == (epurse.Key16{}) {
		return [4]byte{}, ErrNoMaintenanceKey
	}
	return epurse.BlockMAC(k.cardKeys(serial).DAMK, challenge, mode), nil
}
