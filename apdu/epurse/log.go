package epurse

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/cardd/cardd/apdu"
)

// TxType is the transaction type byte of a log record, of the MAC inputs and
// of GET TRANSACTION PROVE (spec "Files", EF 0x18).
type TxType byte

// Transaction types.
const (
	TxEDLoad     TxType = 0x01
	TxEPLoad     TxType = 0x02
	TxEDPurchase TxType = 0x05
	TxEPPurchase TxType = 0x06
	TxComposite  TxType = 0x09
)

// String names the type as people read it, "EP purchase"; an unknown type is
// shown by its number.
func (t TxType) String() string {
	switch t {
	case TxEDLoad:
		return "ED load"
	case TxEPLoad:
		return "EP load"
	case TxEDPurchase:
		return "ED purchase"
	case TxEPPurchase:
		return "EP purchase"
	case TxComposite:
		return "composite purchase"
	}
	return fmt.Sprintf("type %#02x", byte(t))
}

// LogRecord is one 23-byte record of the transaction log, EF 0x18.
type LogRecord struct {
	// Counter is the card's online (load) or offline (purchase) counter
	// before the transaction: the value its INIT returned.
	Counter uint16
	// Overdraft is the 3-byte overdraft limit field, in fen.
	Overdraft int64
	// Amount is the transaction amount in fen, never negative; Type says
	// whether it went in or out.
	Amount     int64
	Type       TxType
	TerminalID [6]byte
	// Time is the terminal's wall clock in time.UTC (cards store no zone).
	Time time.Time
}

// maxOverdraft is the largest value of the 3-byte overdraft field.
const maxOverdraft = 0xFFFFFF

// ParseLogRecord decodes one 23-byte log record. A zero-filled record, which
// some cards answer for an unused slot, gives empty=true and no error: it is
// not a transaction.
func ParseLogRecord(b []byte) (rec LogRecord, empty bool, err error) {
	if len(b) != LogRecordLen {
		return LogRecord{}, false, fmt.Errorf("%w: log record of %d bytes, want %d", apdu.ErrMalformed, len(b), LogRecordLen)
	}
	if allZero(b) {
		return LogRecord{}, true, nil
	}
	rec = LogRecord{
		Counter:   binary.BigEndian.Uint16(b[0:2]),
		Overdraft: int64(b[2])<<16 | int64(b[3])<<8 | int64(b[4]),
		Amount:    int64(binary.BigEndian.Uint32(b[5:9])),
		Type:      TxType(b[9]),
	}
	copy(rec.TerminalID[:], b[10:16])
	if rec.Time, err = DecodeDateTime(b[16:20], b[20:23]); err != nil {
		return LogRecord{}, false, fmt.Errorf("log record: %w", err)
	}
	return rec, false, nil
}

// Bytes encodes r as a 23-byte log record; the zero time.Time is written as
// an all-zero date and time. It fails for an amount or overdraft that does
// not fit its field and for a year outside 0..9999.
func (r LogRecord) Bytes() ([]byte, error) {
	if err := checkAmount("amount", r.Amount); err != nil {
		return nil, err
	}
	if r.Overdraft < 0 || r.Overdraft > maxOverdraft {
		return nil, fmt.Errorf("%w: overdraft %d fen does not fit 3 bytes", ErrBadAmount, r.Overdraft)
	}
	b := make([]byte, 0, LogRecordLen)
	b = binary.BigEndian.AppendUint16(b, r.Counter)
	b = append(b, byte(r.Overdraft>>16), byte(r.Overdraft>>8), byte(r.Overdraft))
	b = binary.BigEndian.AppendUint32(b, uint32(r.Amount))
	b = append(b, byte(r.Type))
	b = append(b, r.TerminalID[:]...)
	if r.Time.IsZero() {
		return append(b, make([]byte, 7)...), nil
	}
	d, c, err := EncodeDateTime(r.Time)
	if err != nil {
		return nil, fmt.Errorf("log record: %w", err)
	}
	b = append(b, d[:]...)
	return append(b, c[:]...), nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
