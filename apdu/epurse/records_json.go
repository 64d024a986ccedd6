package epurse

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/cardd/cardd/internal/strictjson"
)

// issuerInfoJSON is the readable JSON form of IssuerInfo, used by card files
// and by anyone showing a card: byte strings in hex, dates as YYYY-MM-DD.
type issuerInfoJSON struct {
	CardNumber string    `json:"card_number"`
	Numbering  Numbering `json:"numbering,omitempty"`
	AppSerial  string    `json:"app_serial,omitempty"`
	IssuerID   string    `json:"issuer_id"`
	AppType    byte      `json:"app_type"`
	Version    byte      `json:"version"`
	StartDate  Date      `json:"start_date"`
	ExpiryDate Date      `json:"expiry_date"`
	CardType   uint16    `json:"card_type"`
}

// MarshalJSON writes i with the field names card_number, app_serial (hex),
// issuer_id (hex), app_type, version, start_date, expiry_date and card_type.
// card_number is the one read from app_serial in the card's numbering
// (numbering, left out for our own BCD numbering).
func (i IssuerInfo) MarshalJSON() ([]byte, error) {
	number, err := i.SerialNumber()
	if err != nil {
		return nil, fmt.Errorf("issuer info: app serial: %w", err)
	}
	nb := i.Numbering
	if nb == NumberBCD {
		nb = ""
	}
	return json.Marshal(issuerInfoJSON{
		CardNumber: number,
		Numbering:  nb,
		AppSerial:  strings.ToUpper(hex.EncodeToString(i.AppSerial[:])),
		IssuerID:   strings.ToUpper(hex.EncodeToString(i.IssuerID[:])),
		AppType:    i.AppType,
		Version:    i.Version,
		StartDate:  i.StartDate,
		ExpiryDate: i.ExpiryDate,
		CardType:   i.CardType,
	})
}

// UnmarshalJSON reads what MarshalJSON writes. When app_serial is left out
// it is built from card_number with the city code (issuer_id bytes 2-3) as
// its prefix; when both are given they must agree, since the keys are
// diversified from the serial while people read the number.
func (i *IssuerInfo) UnmarshalJSON(b []byte) error {
	var j issuerInfoJSON
	if err := strictjson.Unmarshal(b, &j); err != nil {
		return err
	}
	v := IssuerInfo{Numbering: j.Numbering}
	if err := decodeHexInto(v.IssuerID[:], j.IssuerID, "issuer_id"); err != nil {
		return err
	}
	switch {
	case j.AppSerial != "":
		if err := decodeHexInto(v.AppSerial[:], j.AppSerial, "app_serial"); err != nil {
			return err
		}
	case j.CardNumber != "":
		s, err := v.Numbering.AppSerial([2]byte{v.IssuerID[2], v.IssuerID[3]}, j.CardNumber)
		if err != nil {
			return err
		}
		v.AppSerial = s
	default:
		return fmt.Errorf("%w: issuer info needs card_number or app_serial", ErrBadArgument)
	}
	number, err := v.SerialNumber()
	if err != nil {
		return fmt.Errorf("app_serial: %w", err)
	}
	if j.CardNumber != "" && j.CardNumber != number {
		return fmt.Errorf("%w: card_number %s does not match app_serial, which holds %s", ErrBadArgument, j.CardNumber, number)
	}
	v.CardNumber = number
	v.AppType, v.Version, v.CardType = j.AppType, j.Version, j.CardType
	v.StartDate, v.ExpiryDate = j.StartDate, j.ExpiryDate
	*i = v
	return nil
}

// SerialNumber reads the card number from AppSerial in i's numbering: the
// numberings a card of ours can be issued with (Numbering.AppSerial).
func (i IssuerInfo) SerialNumber() (string, error) {
	switch i.Numbering {
	case "", NumberBCD:
		return decodeDigits(i.AppSerial[2:])
	case NumberTUnion:
		head := make([]byte, 10, 20)
		return NumberTUnion.number(append(head, i.AppSerial[:]...), FileRange{}, nil)
	}
	return "", fmt.Errorf("%w: cards numbered %q cannot be issued here", ErrBadArgument, i.Numbering)
}

func decodeHexInto(dst []byte, s, field string) error {
	if s == "" {
		return nil // left out: zeros
	}
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(dst) {
		return fmt.Errorf("%w: %s must be %d bytes in hex", ErrBadArgument, field, len(dst))
	}
	copy(dst, b)
	return nil
}

// logTimeLayout has no zone on purpose: the card stores the terminal's wall
// clock, and a "Z" would claim it is UTC.
const logTimeLayout = "2006-01-02T15:04:05"

type logRecordJSON struct {
	Counter    uint16 `json:"counter"`
	Amount     int64  `json:"amount"`
	Overdraft  int64  `json:"overdraft,omitempty"`
	Type       TxType `json:"type"`
	TerminalID string `json:"terminal_id"`
	Time       string `json:"time"`
}

// MarshalJSON writes r as {"counter", "amount" (fen), "overdraft" (fen),
// "type" (the type byte as a number), "terminal_id" (hex), "time"
// ("2006-01-02T15:04:05", the terminal's wall clock, no zone)}.
func (r LogRecord) MarshalJSON() ([]byte, error) {
	j := logRecordJSON{
		Counter:    r.Counter,
		Amount:     r.Amount,
		Overdraft:  r.Overdraft,
		Type:       r.Type,
		TerminalID: strings.ToUpper(hex.EncodeToString(r.TerminalID[:])),
	}
	if !r.Time.IsZero() {
		j.Time = r.Time.Format(logTimeLayout)
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads what MarshalJSON writes; the time comes back in
// time.UTC, as ParseLogRecord returns it.
func (r *LogRecord) UnmarshalJSON(b []byte) error {
	var j logRecordJSON
	if err := strictjson.Unmarshal(b, &j); err != nil {
		return err
	}
	v := LogRecord{Counter: j.Counter, Amount: j.Amount, Overdraft: j.Overdraft, Type: j.Type}
	if err := decodeHexInto(v.TerminalID[:], j.TerminalID, "terminal_id"); err != nil {
		return err
	}
	if j.Time != "" {
		t, err := time.ParseInLocation(logTimeLayout, j.Time, time.UTC)
		if err != nil {
			return fmt.Errorf("%w: log time %q: want %s", ErrBadArgument, j.Time, logTimeLayout)
		}
		v.Time = t
	}
	if _, err := v.Bytes(); err != nil { // the card must be able to hold it
		return err
	}
	*r = v
	return nil
}
