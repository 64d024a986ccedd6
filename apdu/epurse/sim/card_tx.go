package epursesim

import (
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"time"

	"github.com/cardd/cardd/apdu"
	"github.com/cardd/cardd/apdu/epurse"
)

// insSecurityCode is 80 CA 00 00 09, which asks a city card for its
// security code (docs/psam.md).
const insSecurityCode = 0xCA

// pendingTx is what an INIT leaves for its second command.
type pendingTx struct {
	ins     byte // the second command it allows: CREDIT FOR LOAD or DEBIT FOR PURCHASE
	purse   epurse.Purse
	amount  int64
	termID  [6]byte
	random  [4]byte
	counter uint16 // the counter the INIT returned
}

// purseState points at one purse's fields of the card file.
type purseState struct {
	balance *int64
	online  *uint16
	offline *uint16
}

func (f *CardFile) purse(p epurse.Purse) purseState {
	if p == epurse.PurseED {
		return purseState{&f.EDBalance, &f.EDOnlineCounter, &f.EDOfflineCounter}
	}
	return purseState{&f.EPBalance, &f.EPOnlineCounter, &f.EPOfflineCounter}
}

// purseReady answers the checks common to the purse commands: the ADF is
// selected and not blocked, and the ED's PIN is verified when the card wants it.
func (c *SimCard) purseReady(p epurse.Purse) uint16 {
	switch {
	case c.df != dfADF:
		return swConditions
	case c.f.Blocked:
		return c.blockedSW()
	case p == epurse.PurseED && c.f.EDNeedsPIN && !c.pinOK:
		return swSecurity
	}
	return apdu.SWOK
}

// getBalance is GET BALANCE (spec "Commands").
func (c *SimCard) getBalance(cm apdu.Command) ([]byte, uint16) {
	p := epurse.Purse(cm.P2)
	second := cm.P1 == 0x01 && p == epurse.PurseEP && c.f.SecondPurse != nil
	if cm.P1 != 0x00 && !second || p.Check() != nil {
		return nil, swWrongP1P2
	}
	if len(cm.Data) != 0 {
		return nil, swWrongLength
	}
	if sw := c.purseReady(p); sw != apdu.SWOK {
		return nil, sw
	}
	if second {
		return binary.BigEndian.AppendUint32(nil, uint32(*c.f.SecondPurse)), apdu.SWOK
	}
	w := uint32(*c.f.purse(p).balance)
	if c.f.BalanceTopBit {
		w |= 0x80000000 // an issuer flag, as Shenzhen Tong sets it
	}
	return binary.BigEndian.AppendUint32(nil, w), apdu.SWOK
}

// initialize is INITIALIZE FOR LOAD (P1 00) and FOR PURCHASE (P1 01). It
// changes nothing on the card; it only arms the one command that may follow.
func (c *SimCard) initialize(cm apdu.Command) ([]byte, uint16, error) {
	p := epurse.Purse(cm.P2)
	if (cm.P1 != p1InitLoad && cm.P1 != p1InitPurchase) || p.Check() != nil {
		return nil, swWrongP1P2, nil
	}
	if len(cm.Data) != 11 {
		return nil, swWrongLength, nil
	}
	if sw := c.purseReady(p); sw != apdu.SWOK {
		return nil, sw, nil
	}
	if cm.Data[0] != c.f.keyIndex(cm.P1) {
		return nil, swKeyIndex, nil // the simulated card has one key of each kind
	}
	tx := pendingTx{purse: p, amount: int64(binary.BigEndian.Uint32(cm.Data[1:5]))}
	copy(tx.termID[:], cm.Data[5:11])
	st := c.f.purse(p)
	balance := *st.balance
	if cm.P1 == p1InitLoad {
		tx.ins, tx.counter = insCreditLoad, *st.online
		if tx.counter == 0xFFFF {
			return nil, swCounterMax, nil
		}
		if balance+tx.amount > c.f.maxBalance() {
			// The spec names no status for a load beyond the purse limit;
			// 6985 is the general "not now" of ISO 7816-4.
			return nil, swConditions, nil
		}
	} else {
		tx.ins, tx.counter = insDebit, *st.offline
		if tx.amount > balance {
			return nil, swInsufficient, nil
		}
		if tx.counter == 0xFFFF {
			return nil, swCounterMax, nil
		}
	}
	if _, err := io.ReadFull(c.rand, tx.random[:]); err != nil {
		return nil, 0, fmt.Errorf("simulated card: random: %w", err)
	}
	out := binary.BigEndian.AppendUint32(nil, uint32(balance))
	out = binary.BigEndian.AppendUint16(out, tx.counter)
	if cm.P1 == p1InitPurchase {
		out = append(out, 0, 0, 0) // overdraft limit: the simulated card allows none
	}
	out = append(out, c.f.KeyVersion, c.f.AlgID)
	out = append(out, tx.random[:]...)
	if cm.P1 == p1InitLoad {
		seslk := epurse.SessionKeyLoad(c.f.Keys.DLK, tx.random, tx.counter)
		mac1, err := epurse.LoadMAC1(seslk, balance, tx.amount, p.LoadType(), tx.termID)
		if err != nil {
			return nil, swConditions, nil // amounts were checked above; never reached
		}
		out = append(out, mac1[:]...)
	}
	c.pending = &tx
	return out, apdu.SWOK, nil
}

// decodeWhen reads the BCD date and time of CREDIT and DEBIT. A card cannot
// log a date that does not exist, so it refuses one (6A80).
func decodeWhen(date, clock []byte) (time.Time, bool) {
	t, err := epurse.DecodeDateTime(date, clock)
	return t, err == nil && !t.IsZero()
}

// creditLoad is CREDIT FOR LOAD: it checks the host's MAC2, then adds the
// amount, logs the load, keeps its proof and saves, all before answering TAC.
func (c *SimCard) creditLoad(cm apdu.Command, p *pendingTx) ([]byte, uint16, error) {
	if cm.P1 != 0x00 || cm.P2 != 0x00 {
		return nil, swWrongP1P2, nil
	}
	if len(cm.Data) != 11 {
		return nil, swWrongLength, nil
	}
	if p == nil || p.ins != insCreditLoad || c.df != dfADF {
		return nil, swConditions, nil
	}
	when, ok := decodeWhen(cm.Data[0:4], cm.Data[4:7])
	if !ok {
		return nil, swWrongData, nil
	}
	var got [4]byte
	copy(got[:], cm.Data[7:11])
	st := c.f.purse(p.purse)
	seslk := epurse.SessionKeyLoad(c.f.Keys.DLK, p.random, p.counter)
	tx := p.purse.LoadType()
	want, err := epurse.LoadMAC2(seslk, p.amount, tx, p.termID, when)
	if err != nil || subtle.ConstantTimeCompare(want[:], got[:]) != 1 {
		return nil, swMACInvalid, nil // the INIT is spent: a new one is needed
	}
	newBalance := *st.balance + p.amount
	tac, err := epurse.LoadTAC(c.f.Keys.DTK, newBalance, p.counter, p.amount, tx, p.termID, when)
	if err != nil {
		return nil, swConditions, nil // checked at INIT; never reached
	}
	rec := epurse.LogRecord{Counter: p.counter, Amount: p.amount, Type: tx, TerminalID: p.termID, Time: when}
	err = c.commit(func(f *CardFile) {
		st := f.purse(p.purse)
		*st.balance = newBalance
		*st.online = p.counter + 1
		if f.LoadLogSFI != 0 {
			f.LoadLog = pushLog(f.LoadLog, rec)
		} else {
			f.Log = pushLog(f.Log, rec)
		}
		f.setProof(Proof{Type: tx, Counter: p.counter + 1, MAC: got, TAC: tac})
	})
	if err != nil {
		return nil, 0, err
	}
	return tac[:], apdu.SWOK, nil
}

// debitPurchase is DEBIT FOR PURCHASE: it checks the PSAM's MAC1 with the
// session key that the terminal serial completes, then debits, logs, keeps
// the proof and saves, all before answering TAC and MAC2.
func (c *SimCard) debitPurchase(cm apdu.Command, p *pendingTx) ([]byte, uint16, error) {
	if cm.P1 != 0x01 || cm.P2 != 0x00 {
		return nil, swWrongP1P2, nil
	}
	if len(cm.Data) != 15 {
		return nil, swWrongLength, nil
	}
	if p == nil || p.ins != insDebit || c.df != dfADF {
		return nil, swConditions, nil
	}
	serial := binary.BigEndian.Uint32(cm.Data[0:4])
	when, ok := decodeWhen(cm.Data[4:8], cm.Data[8:11])
	if !ok {
		return nil, swWrongData, nil
	}
	var got [4]byte
	copy(got[:], cm.Data[11:15])
	st := c.f.purse(p.purse)
	sespk := epurse.SessionKeyPurchase(c.f.Keys.DPK, p.random, p.counter, serial)
	tx := p.purse.PurchaseType()
	want, err := epurse.PurchaseMAC1(sespk, p.amount, tx, p.termID, when)
	if err != nil || subtle.ConstantTimeCompare(want[:], got[:]) != 1 {
		return nil, swMACInvalid, nil
	}
	if p.amount > *st.balance {
		return nil, swInsufficient, nil // checked at INIT; nothing ran since
	}
	mac2, err := epurse.PurchaseMAC2(sespk, p.amount)
	if err != nil {
		return nil, swConditions, nil
	}
	tac, err := epurse.PurchaseTAC(c.f.Keys.DTK, p.amount, tx, p.termID, serial, when)
	if err != nil {
		return nil, swConditions, nil
	}
	rec := epurse.LogRecord{Counter: p.counter, Amount: p.amount, Type: tx, TerminalID: p.termID, Time: when}
	err = c.commit(func(f *CardFile) {
		st := f.purse(p.purse)
		*st.balance -= p.amount
		*st.offline = p.counter + 1
		f.Log = pushLog(f.Log, rec)
		f.setProof(Proof{Type: tx, Counter: p.counter + 1, MAC: mac2, TAC: tac})
	})
	if err != nil {
		return nil, 0, err
	}
	return append(tac[:], mac2[:]...), apdu.SWOK, nil
}

// getProve is GET TRANSACTION PROVE: the MAC and TAC of the last transaction
// of type P2, if its counter (after the transaction) is the one asked.
func (c *SimCard) getProve(cm apdu.Command) ([]byte, uint16) {
	switch epurse.TxType(cm.P2) {
	case epurse.TxEDLoad, epurse.TxEPLoad, epurse.TxEDPurchase, epurse.TxEPPurchase, epurse.TxComposite:
	default:
		return nil, swWrongP1P2
	}
	if cm.P1 != 0x00 {
		return nil, swWrongP1P2
	}
	if len(cm.Data) != 2 {
		return nil, swWrongLength
	}
	if c.df != dfADF {
		return nil, swConditions
	}
	if c.f.Blocked {
		return nil, c.blockedSW()
	}
	counter := binary.BigEndian.Uint16(cm.Data)
	for _, pr := range c.f.Proofs {
		if pr.Type == epurse.TxType(cm.P2) && pr.Counter == counter {
			return append(pr.MAC[:], pr.TAC[:]...), apdu.SWOK
		}
	}
	return nil, swNoProof
}

// pushLog writes r as the newest record of a cyclic log of 10: the oldest
// falls off.
func pushLog(log []epurse.LogRecord, r epurse.LogRecord) []epurse.LogRecord {
	out := make([]epurse.LogRecord, 0, epurse.MaxLogRecords)
	out = append(out, r)
	out = append(out, log...)
	return out[:min(len(out), epurse.MaxLogRecords)]
}

// setProof keeps p as the last transaction of its type.
func (f *CardFile) setProof(p Proof) {
	for i := range f.Proofs {
		if f.Proofs[i].Type == p.Type {
			f.Proofs[i] = p
			return
		}
	}
	f.Proofs = append(f.Proofs, p)
}

// keyIndex is the one key index the INITIALIZE with p1 accepts: the
// purchase key's own (purchase_key_index, default 1), 1 for the load key.
func (f *CardFile) keyIndex(p1 byte) byte {
	if p1 == p1InitPurchase && f.PurchaseKeyIndex != 0 {
		return f.PurchaseKeyIndex
	}
	return 0x01
}

// securityCode answers 80 CA 00 00 09 with the card's security code
// (CardFile.SecurityCode); a card without one does not know the command.
func (c *SimCard) securityCode(cm apdu.Command) ([]byte, uint16) {
	code, err := hex.DecodeString(c.f.SecurityCode)
	switch {
	case c.f.SecurityCode == "" || err != nil:
		return nil, swINSNotSupported
	case cm.P1 != 0x00 || cm.P2 != 0x00:
		return nil, swWrongP1P2
	case len(cm.Data) != 0:
		return nil, swWrongLength
	case cm.Ne != 0 && cm.Ne != apdu.MaxShortNe && cm.Ne != len(code):
		return nil, 0x6C00 | uint16(len(code))
	}
	return code, apdu.SWOK
}
