package epursesim

import (
	"fmt"
	"time"

	"github.com/cardd/cardd/apdu/epurse"
)

// HistoryStep is the time between two transactions SeedHistory makes: a
// little over a day, so the times of day vary. A history of n transactions
// spans (n-1) steps.
const HistoryStep = 25*time.Hour + 37*time.Minute

// SeedHistory makes n past transactions on card through its own commands, as
// a terminal, a host and a PSAM would: loads authorized with MAC2 under the
// issuer's load key, purchases authorized with MAC1 under the purchase key,
// one every HistoryStep from first on. Every MAC1, MAC2 and TAC the card returns
// is checked, so a seeded card is also proof that card and host crypto agree.
// The simulator uses it to give a new card a realistic log.
func SeedHistory(card *SimCard, masters epurse.MasterKeys, termID [6]byte, n int, first time.Time) error {
	if _, err := epurse.Select(card); err != nil {
		return fmt.Errorf("select: %w", err)
	}
	keys := masters.Diversify(card.File().Info.AppSerial[:])
	when := first.UTC().Truncate(time.Second)
	for i := range n {
		balance, err := epurse.GetBalance(card, epurse.PurseEP)
		if err != nil {
			return err
		}
		// Deterministic amounts that look like canteen meals, with a top-up
		// every fourth transaction or whenever the purse runs low.
		amount := int64(350 + (i*737)%1650)
		if i%4 == 0 || balance < amount {
			err = seedLoad(card, keys, termID, 5000, when)
		} else {
			err = seedPurchase(card, keys, termID, uint32(i+1), amount, when)
		}
		if err != nil {
			return fmt.Errorf("transaction %d: %w", i+1, err)
		}
		when = when.Add(HistoryStep)
	}
	return nil
}

func seedLoad(card *SimCard, keys epurse.CardKeys, termID [6]byte, amount int64, when time.Time) error {
	li, err := epurse.InitLoad(card, epurse.PurseEP, 1, amount, termID)
	if err != nil {
		return err
	}
	seslk := epurse.SessionKeyLoad(keys.DLK, li.Random, li.OnlineCounter)
	if want, err := epurse.LoadMAC1(seslk, li.OldBalance, amount, epurse.TxEPLoad, termID); err != nil || want != li.MAC1 {
		return fmt.Errorf("card's load MAC1 does not verify (%v)", err)
	}
	mac2, err := epurse.LoadMAC2(seslk, amount, epurse.TxEPLoad, termID, when)
	if err != nil {
		return err
	}
	tac, err := epurse.CreditLoad(card, when, mac2)
	if err != nil {
		return err
	}
	if want, err := epurse.LoadTAC(keys.DTK, li.OldBalance+amount, li.OnlineCounter, amount, epurse.TxEPLoad, termID, when); err != nil || want != tac {
		return fmt.Errorf("card's load TAC does not verify (%v)", err)
	}
	return nil
}

func seedPurchase(card *SimCard, keys epurse.CardKeys, termID [6]byte, serial uint32, amount int64, when time.Time) error {
	pi, err := epurse.InitPurchase(card, epurse.PurseEP, 1, amount, termID)
	if err != nil {
		return err
	}
	sespk := epurse.SessionKeyPurchase(keys.DPK, pi.Random, pi.OfflineCounter, serial)
	mac1, err := epurse.PurchaseMAC1(sespk, amount, epurse.TxEPPurchase, termID, when)
	if err != nil {
		return err
	}
	tac, mac2, err := epurse.DebitPurchase(card, serial, when, mac1)
	if err != nil {
		return err
	}
	if want, err := epurse.PurchaseMAC2(sespk, amount); err != nil || want != mac2 {
		return fmt.Errorf("card's purchase MAC2 does not verify (%v)", err)
	}
	if want, err := epurse.PurchaseTAC(keys.DTK, amount, epurse.TxEPPurchase, termID, serial, when); err != nil || want != tac {
		return fmt.Errorf("card's purchase TAC does not verify (%v)", err)
	}
	return nil
}
