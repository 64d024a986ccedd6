package epurse

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/cardd/cardd/apdu"
)

// LoadInit is the card's answer to INITIALIZE FOR LOAD.
type LoadInit struct {
	OldBalance    int64  // fen
	OnlineCounter uint16 // before this load; the TAC and the log record carry it
	KeyVersion    byte
	AlgID         byte // informational; see the spec
	Random        [4]byte
	MAC1          [4]byte // for the host to check, with SESLK
}

// InitLoad starts a load of amount fen into purse p: 80 50 00 P2 0B
// keyIdx amount termID 10 (spec "Commands", INITIALIZE FOR LOAD). It changes
// nothing on the card, so it is also the probe that tells whether an
// interrupted load happened (the counter rose) or not.
func InitLoad(t apdu.Transmitter, p Purse, keyIndex byte, amount int64, termID [6]byte) (LoadInit, error) {
	data, err := initCommand(t, p1InitLoad, p, keyIndex, amount, termID, 16)
	if err != nil {
		return LoadInit{}, fmt.Errorf("initialize for load: %w", err)
	}
	r := LoadInit{
		OldBalance:    int64(binary.BigEndian.Uint32(data[0:4])),
		OnlineCounter: binary.BigEndian.Uint16(data[4:6]),
		KeyVersion:    data[6],
		AlgID:         data[7],
	}
	copy(r.Random[:], data[8:12])
	copy(r.MAC1[:], data[12:16])
	return r, nil
}

// CreditLoad completes a load with the host's MAC2 and the date and time
// the host put into it: 80 52 00 00 0B date time MAC2 04 (spec "Commands",
// CREDIT FOR LOAD). It returns the card's TAC. A MAC2 the card refuses is
// apdu.ErrMACInvalid and the card is unchanged. When no answer comes the
// outcome is unknown and is resolved from the card (DESIGN.md, money rule 3).
func CreditLoad(t apdu.Transmitter, when time.Time, mac2 [4]byte) (tac [4]byte, err error) {
	date, clock, err := EncodeDateTime(when)
	if err != nil {
		return tac, fmt.Errorf("credit for load: %w", err)
	}
	in := make([]byte, 0, 11)
	in = append(append(append(in, date[:]...), clock[:]...), mac2[:]...)
	data, err := apdu.Transceive(t, apdu.Command{CLA: claPBOC, INS: insCreditLoad, P1: 0x00, P2: 0x00, Data: in, Ne: 4})
	if err != nil {
		return tac, fmt.Errorf("credit for load: %w", err)
	}
	if len(data) != 4 {
		return tac, wrongLength("CREDIT FOR LOAD", len(data), 4)
	}
	copy(tac[:], data)
	return tac, nil
}

// PurchaseInit is the card's answer to INITIALIZE FOR PURCHASE.
type PurchaseInit struct {
	Balance        int64  // fen
	OfflineCounter uint16 // before this purchase
	Overdraft      int64  // the 3-byte overdraft limit, fen
	KeyVersion     byte
	AlgID          byte // informational; see the spec
	Random         [4]byte
}

// InitPurchase starts a purchase of amount fen from purse p: 80 50 01 P2 0B
// keyIdx amount termID 0F (spec "Commands", INITIALIZE FOR PURCHASE). An
// amount above the balance is apdu.ErrInsufficientBalance.
func InitPurchase(t apdu.Transmitter, p Purse, keyIndex byte, amount int64, termID [6]byte) (PurchaseInit, error) {
	data, err := initCommand(t, p1InitPurchase, p, keyIndex, amount, termID, 15)
	if err != nil {
		return PurchaseInit{}, fmt.Errorf("initialize for purchase: %w", err)
	}
	r := PurchaseInit{
		Balance:        int64(binary.BigEndian.Uint32(data[0:4])),
		OfflineCounter: binary.BigEndian.Uint16(data[4:6]),
		Overdraft:      int64(data[6])<<16 | int64(data[7])<<8 | int64(data[8]),
		KeyVersion:     data[9],
		AlgID:          data[10],
	}
	copy(r.Random[:], data[11:15])
	return r, nil
}

// initCommand sends one of the INITIALIZE commands and checks the length of
// the answer, so that callers can slice it.
func initCommand(t apdu.Transmitter, p1 byte, p Purse, keyIndex byte, amount int64, termID [6]byte, want int) ([]byte, error) {
	if err := p.Check(); err != nil {
		return nil, err
	}
	if err := checkAmount("amount", amount); err != nil {
		return nil, err
	}
	in := make([]byte, 0, 11)
	in = append(in, keyIndex)
	in = binary.BigEndian.AppendUint32(in, uint32(amount))
	in = append(in, termID[:]...)
	data, err := apdu.Transceive(t, apdu.Command{CLA: claPBOC, INS: insInit, P1: p1, P2: byte(p), Data: in, Ne: want})
	if err != nil {
		return nil, err
	}
	if len(data) != want {
		return nil, wrongLength("INITIALIZE", len(data), want)
	}
	return data, nil
}

// DebitPurchase completes a purchase with the PSAM's MAC1: 80 54 01 00 0F
// termTxSerial date time MAC1 08 (spec "Commands", DEBIT FOR PURCHASE). It
// returns the card's TAC and its MAC2, which the PSAM checks. A MAC1 the card
// refuses is apdu.ErrMACInvalid and the card is unchanged.
func DebitPurchase(t apdu.Transmitter, termSerial uint32, when time.Time, mac1 [4]byte) (tac, mac2 [4]byte, err error) {
	date, clock, err := EncodeDateTime(when)
	if err != nil {
		return tac, mac2, fmt.Errorf("debit for purchase: %w", err)
	}
	in := make([]byte, 0, 15)
	in = binary.BigEndian.AppendUint32(in, termSerial)
	in = append(append(append(in, date[:]...), clock[:]...), mac1[:]...)
	data, err := apdu.Transceive(t, apdu.Command{CLA: claPBOC, INS: insDebit, P1: 0x01, P2: 0x00, Data: in, Ne: 8})
	if err != nil {
		return tac, mac2, fmt.Errorf("debit for purchase: %w", err)
	}
	if len(data) != 8 {
		return tac, mac2, wrongLength("DEBIT FOR PURCHASE", len(data), 8)
	}
	copy(tac[:], data[0:4])
	copy(mac2[:], data[4:8])
	return tac, mac2, nil
}

// GetTransactionProve fetches the MAC and TAC of the card's last transaction
// of the given type: 80 5A 00 P2 02 counter 08, P2 the type (spec
// "Commands", GET TRANSACTION PROVE). counter is the card's counter after
// that transaction, the value its INIT returned plus one. A card that has no
// such transaction answers 9406 (apdu.ErrMACNotAvailable).
func GetTransactionProve(t apdu.Transmitter, txType TxType, counter uint16) (mac, tac [4]byte, err error) {
	in := binary.BigEndian.AppendUint16(nil, counter)
	data, err := apdu.Transceive(t, apdu.Command{CLA: claPBOC, INS: insGetProve, P1: 0x00, P2: byte(txType), Data: in, Ne: 8})
	if err != nil {
		return mac, tac, fmt.Errorf("get transaction prove (%v, counter %d): %w", txType, counter, err)
	}
	if len(data) != 8 {
		return mac, tac, wrongLength("GET TRANSACTION PROVE", len(data), 8)
	}
	copy(mac[:], data[0:4])
	copy(tac[:], data[4:8])
	return mac, tac, nil
}
