package epurse

import (
	"encoding/binary"
	"fmt"
	"time"
)

// The helpers below build each MAC input exactly as the spec's "MAC inputs"
// list says and compute the MAC over it. Amounts and balances are int64 fen,
// written as 4-byte big-endian unsigned integers; a value outside 0..MaxAmount
// is an error, never silently truncated. Dates and times are the wall clock
// of the given time.Time encoded with EncodeDateTime.

// macInput accumulates a MAC input, remembering the first encoding error so
// that each helper reads as the spec's list.
type macInput struct {
	b   []byte
	err error
}

func (m *macInput) amount(what string, v int64) {
	if m.err == nil {
		m.err = checkAmount(what, v)
	}
	m.b = binary.BigEndian.AppendUint32(m.b, uint32(v))
}

func (m *macInput) u16(v uint16)      { m.b = binary.BigEndian.AppendUint16(m.b, v) }
func (m *macInput) u32(v uint32)      { m.b = binary.BigEndian.AppendUint32(m.b, v) }
func (m *macInput) typ(t TxType)      { m.b = append(m.b, byte(t)) }
func (m *macInput) termID(id [6]byte) { m.b = append(m.b, id[:]...) }
func (m *macInput) mac(k [8]byte) ([4]byte, error) {
	if m.err != nil {
		return [4]byte{}, m.err
	}
	return MAC(k, m.b), nil
}

func (m *macInput) when(t time.Time) {
	d, c, err := EncodeDateTime(t)
	if m.err == nil && err != nil {
		m.err = fmt.Errorf("transaction time: %w", err)
	}
	m.b = append(append(m.b, d[:]...), c[:]...)
}

// LoadMAC1 is the MAC1 of INITIALIZE FOR LOAD, with which the card proves
// itself to the host: MAC_SESLK(oldBalance ‖ amount ‖ type ‖ termID).
func LoadMAC1(seslk [8]byte, oldBalance, amount int64, tx TxType, termID [6]byte) ([4]byte, error) {
	var m macInput
	m.amount("old balance", oldBalance)
	m.amount("amount", amount)
	m.typ(tx)
	m.termID(termID)
	return m.mac(seslk)
}

// LoadMAC2 is the MAC2 of CREDIT FOR LOAD, with which the host authorizes the
// card: MAC_SESLK(amount ‖ type ‖ termID ‖ date ‖ time).
func LoadMAC2(seslk [8]byte, amount int64, tx TxType, termID [6]byte, when time.Time) ([4]byte, error) {
	var m macInput
	m.amount("amount", amount)
	m.typ(tx)
	m.termID(termID)
	m.when(when)
	return m.mac(seslk)
}

// LoadTAC is the TAC a card returns from CREDIT FOR LOAD, keyed with
// TACKey(dtk): MAC(newBalance ‖ onlineCtr ‖ amount ‖ type ‖ termID ‖ date ‖
// time), where onlineCtr is the counter before the increment, the value
// INITIALIZE FOR LOAD returned.
func LoadTAC(dtk Key16, newBalance int64, onlineCtr uint16, amount int64, tx TxType, termID [6]byte, when time.Time) ([4]byte, error) {
	var m macInput
	m.amount("new balance", newBalance)
	m.u16(onlineCtr)
	m.amount("amount", amount)
	m.typ(tx)
	m.termID(termID)
	m.when(when)
	return m.mac(TACKey(dtk))
}

// PurchaseMAC1 is the MAC1 of DEBIT FOR PURCHASE, with which the PSAM
// authorizes the card: MAC_SESPK(amount ‖ type ‖ termID ‖ date ‖ time).
func PurchaseMAC1(sespk [8]byte, amount int64, tx TxType, termID [6]byte, when time.Time) ([4]byte, error) {
	var m macInput
	m.amount("amount", amount)
	m.typ(tx)
	m.termID(termID)
	m.when(when)
	return m.mac(sespk)
}

// PurchaseMAC2 is the MAC2 a card returns from DEBIT FOR PURCHASE, with which
// it proves the debit to the PSAM: MAC_SESPK(amount).
func PurchaseMAC2(sespk [8]byte, amount int64) ([4]byte, error) {
	var m macInput
	m.amount("amount", amount)
	return m.mac(sespk)
}

// PurchaseTAC is the TAC a card returns from DEBIT FOR PURCHASE, keyed with
// TACKey(dtk): MAC(amount ‖ type ‖ termID ‖ termTxSerial ‖ date ‖ time).
func PurchaseTAC(dtk Key16, amount int64, tx TxType, termID [6]byte, termSerial uint32, when time.Time) ([4]byte, error) {
	var m macInput
	m.amount("amount", amount)
	m.typ(tx)
	m.termID(termID)
	m.u32(termSerial)
	m.when(when)
	return m.mac(TACKey(dtk))
}
