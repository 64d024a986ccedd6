package epursesim

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/cardd/cardd/apdu/epurse"
	"github.com/cardd/cardd/internal/jsonfile"
	"github.com/cardd/cardd/internal/strictjson"
	"github.com/cardd/cardd/redact"
)

// CardFile is the whole state of a simulated card, kept as JSON so that a
// person can read and edit it. The field names, as written by Save:
//
//	info            EF 0x15: card_number, app_serial (hex, 10 bytes; the keys are
//	                diversified from it), issuer_id (hex, 8 bytes), app_type, version,
//	                start_date and expiry_date ("2006-01-02"), card_type
//	aid             the card's own AID in hex, answered when it is selected by file id
//	                1001; only it selects the card by name. Empty means AIDCityCard,
//	                and then the T-Union AID selects it too.
//	second_purse    fen: the card answers GET BALANCE with P1 01 (T-Union's second
//	                purse) with it; absent, that command answers 6A86
//	balance_top_bit GET BALANCE sets the top bit of its answer, as Shenzhen Tong does
//	holder          EF 0x16: name, id_number, id_type, card_type, staff_flag; absent on
//	                an anonymous card, which then has no EF 0x16 (6A82)
//	ep_balance, ed_balance                   balances in fen
//	max_balance     the most a purse may hold, in fen; 0 means 4294967295
//	ep_online_counter, ep_offline_counter    counters of the EP (loads, purchases)
//	ed_online_counter, ed_offline_counter    the same for the ED
//	log             EF 0x18, newest first, at most 10 records: counter, amount (fen),
//	                overdraft (fen), type (01 ED load … 06 EP purchase), terminal_id
//	                (hex), time ("2006-01-02T15:04:05", terminal wall clock)
//	load_log_sfi    when set, loads are logged in this file instead of 0x18, as on
//	                some city cards; load_log holds its records
//	zero_filled_empty_records   answer an unused log slot with 23 zero bytes
//	                instead of 6A83, as some real cards do
//	keys            dlk, dpk, dtk, damk: the card's diversified keys in hex (never
//	                masters); without damk APPLICATION BLOCK answers 6A88
//	key_version, alg_id    returned by the INITs; default 01 and 00
//	purchase_key_index     the purchase key index INITIALIZE FOR PURCHASE takes; default 01
//	security_code   9 bytes in hex that 80 CA 00 00 09 answers (city cards' 安全认证码);
//	                absent: the card does not know the command
//	pin             the cardholder PIN, 4 to 12 digits
//	pin_tries_left  0 blocks VERIFY (6983); a right PIN resets it to 3
//	ed_needs_pin    GET BALANCE and the INITs of the ED need VERIFY first (6982)
//	blocked         the application is blocked: SELECT answers 6283, the purse
//	                commands 6A81 (9303 when blocked_permanently)
//	blocked_permanently   the block was APPLICATION BLOCK P2 01: UNBLOCK answers 9303
//	proofs          per transaction type, the last transaction's counter (after it),
//	                mac and tac (hex), for GET TRANSACTION PROVE
//
// A CardFile holds keys and a PIN: Save writes it with mode 0600, and its
// String and LogValue show neither.
type CardFile struct {
	Info   epurse.IssuerInfo `json:"info"`
	AID    string            `json:"aid,omitempty"`
	Holder *epurse.Holder    `json:"holder,omitempty"`

	EPBalance     int64  `json:"ep_balance"`
	EDBalance     int64  `json:"ed_balance"`
	MaxBalance    int64  `json:"max_balance,omitempty"`
	SecondPurse   *int64 `json:"second_purse,omitempty"`
	BalanceTopBit bool   `json:"balance_top_bit,omitempty"`

	EPOnlineCounter  uint16 `json:"ep_online_counter"`
	EPOfflineCounter uint16 `json:"ep_offline_counter"`
	EDOnlineCounter  uint16 `json:"ed_online_counter"`
	EDOfflineCounter uint16 `json:"ed_offline_counter"`

	Log                    []epurse.LogRecord `json:"log"`
	LoadLogSFI             byte               `json:"load_log_sfi,omitempty"`
	LoadLog                []epurse.LogRecord `json:"load_log,omitempty"`
	ZeroFilledEmptyRecords bool               `json:"zero_filled_empty_records,omitempty"`

	Keys       epurse.CardKeys `json:"keys"`
	KeyVersion byte            `json:"key_version"`
	AlgID      byte            `json:"alg_id"`
	// PurchaseKeyIndex is the only key index INITIALIZE FOR PURCHASE
	// accepts (others: 9403); 0 means 1.
	PurchaseKeyIndex byte `json:"purchase_key_index,omitempty"`
	// SecurityCode, 18 hex digits, is what 80 CA 00 00 09 answers; empty:
	// the card has no security code (6D00).
	SecurityCode string `json:"security_code,omitempty"`

	PIN          string `json:"pin"`
	PINTriesLeft int    `json:"pin_tries_left"`
	EDNeedsPIN   bool   `json:"ed_needs_pin,omitempty"`
	Blocked      bool   `json:"blocked"`
	// BlockedPermanently: the application was blocked for good (P2 01).
	BlockedPermanently bool `json:"blocked_permanently,omitempty"`

	Proofs []Proof `json:"proofs,omitempty"`
}

// PINTries is how many wrong PINs a card allows before it blocks VERIFY.
const PINTries = 3

// LogSFI is the short file id of the transaction log (spec "Files").
const LogSFI = 0x18

// DefaultPIN is the PIN NewCardFile sets, the usual factory PIN.
const DefaultPIN = "123456"

// Proof is what GET TRANSACTION PROVE returns for the last transaction of a
// type: its MAC (for a purchase the card's MAC2; for a load the MAC2 the
// card accepted) and its TAC.
type Proof struct {
	Type    epurse.TxType
	Counter uint16 // the card's counter after the transaction
	MAC     [4]byte
	TAC     [4]byte
}

type proofJSON struct {
	Type    epurse.TxType `json:"type"`
	Counter uint16        `json:"counter"`
	MAC     string        `json:"mac"`
	TAC     string        `json:"tac"`
}

// MarshalJSON writes {"type", "counter", "mac" (hex), "tac" (hex)}.
func (p Proof) MarshalJSON() ([]byte, error) {
	return json.Marshal(proofJSON{
		Type: p.Type, Counter: p.Counter,
		MAC: strings.ToUpper(hex.EncodeToString(p.MAC[:])),
		TAC: strings.ToUpper(hex.EncodeToString(p.TAC[:])),
	})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (p *Proof) UnmarshalJSON(b []byte) error {
	var j proofJSON
	if err := strictjson.Unmarshal(b, &j); err != nil {
		return err
	}
	v := Proof{Type: j.Type, Counter: j.Counter}
	if err := decodeHexInto(v.MAC[:], j.MAC, "mac"); err != nil {
		return err
	}
	if err := decodeHexInto(v.TAC[:], j.TAC, "tac"); err != nil {
		return err
	}
	*p = v
	return nil
}

// NewCardFile builds a fresh card of our own: a number of 8 to 16 digits, the
// cardholder's name ("" for an anonymous card with no EF 0x16), an EP
// balance in fen, the validity dates and the issuer master keys from which
// its keys are diversified (the masters themselves are not kept). The
// application serial is the city code of epurse.DefaultIssuerID followed by the
// number in BCD.
func NewCardFile(number string, holder string, balance int64, start, expiry epurse.Date, masters epurse.MasterKeys) (*CardFile, error) {
	return NewProfileCardFile(epurse.ProfileCampus, number, holder, balance, start, expiry, masters)
}

// IssuableProfiles are the families a simulated card can be issued in:
// our own numbering, and T-Union's, whose 19-digit numbers every part of
// cardd must carry.
var IssuableProfiles = []*epurse.Profile{epurse.ProfileCampus, epurse.ProfileTUnion}

// TUnionSimIssuerID is the issuer id (EF 0x15 bytes 0-7) of the simulator's
// T-Union cards: not a real issuer's, and not ours, so the card reads as a
// T-Union card.
var TUnionSimIssuerID = [8]byte{0x00, 0x02, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF}

// NewProfileCardFile is NewCardFile for a card of family p (one of
// IssuableProfiles): a T-Union card has a 19-digit number, answers only
// the T-Union AID, and has an empty second purse.
func NewProfileCardFile(p *epurse.Profile, number string, holder string, balance int64, start, expiry epurse.Date, masters epurse.MasterKeys) (*CardFile, error) {
	issuer, aid, nb := epurse.DefaultIssuerID, "", epurse.NumberBCD
	switch p {
	case epurse.ProfileCampus:
		if len(number) < 8 || len(number) > 16 || !isDigits(number) {
			// BCD in bytes 12-19, F-padded: up to 16 digits; fewer than 8
			// is no card number anyone uses (hostapi.CheckCardNumber).
			return nil, fmt.Errorf("%w: a campus card number is 8 to 16 digits", epurse.ErrBadArgument)
		}
	case epurse.ProfileTUnion:
		issuer, aid, nb = TUnionSimIssuerID, strings.ToUpper(hex.EncodeToString(epurse.AIDTUnion)), epurse.NumberTUnion
	default:
		return nil, fmt.Errorf("%w: cards of profile %s cannot be issued here", epurse.ErrBadArgument, p.Name)
	}
	if masters.DLK == (epurse.Key16{}) || masters.DPK == (epurse.Key16{}) || masters.DTK == (epurse.Key16{}) {
		return nil, fmt.Errorf("%w: a master key is missing (all zero)", epurse.ErrBadArgument)
	}
	serial, err := nb.AppSerial([2]byte{issuer[2], issuer[3]}, number)
	if err != nil {
		return nil, err
	}
	if nb == epurse.NumberBCD {
		nb = ""
	}
	f := &CardFile{
		AID: aid,
		Info: epurse.IssuerInfo{
			IssuerID:   issuer,
			Numbering:  nb,
			AppType:    0x03, // ED and EP
			Version:    0x01,
			AppSerial:  serial,
			CardNumber: number,
			StartDate:  start,
			ExpiryDate: expiry,
		},
		EPBalance:    balance,
		Log:          []epurse.LogRecord{}, // "log": [] reads better in the file than null
		Keys:         masters.Diversify(serial[:]),
		KeyVersion:   0x01,
		AlgID:        0x00,
		PIN:          DefaultPIN,
		PINTriesLeft: PINTries,
	}
	if holder != "" {
		f.Holder = &epurse.Holder{Name: holder}
	}
	if p.SecondPurse {
		var empty int64
		f.SecondPurse = &empty
	}
	if err := f.Validate(); err != nil {
		return nil, err
	}
	return f, nil
}

// Validate checks that the card could exist: every field fits its place on
// the card, and the number agrees with the serial. It reports every problem,
// in the order of the fields.
func (f *CardFile) Validate() error {
	var p problems
	for _, check := range []func(*problems){
		f.checkInfo, f.checkApplication, f.checkBalances, f.checkLogs, f.checkAccess, f.checkProofs,
	} {
		check(&p)
	}
	return errors.Join(p...)
}

// problems collects what Validate finds.
type problems []error

// bad adds a problem that wraps epurse.ErrBadArgument.
func (p *problems) bad(format string, a ...any) {
	*p = append(*p, fmt.Errorf("%w: "+format, append([]any{epurse.ErrBadArgument}, a...)...))
}

// checkInfo: EF 0x15, the number against the serial and the dates.
func (f *CardFile) checkInfo(p *problems) {
	number, err := f.Info.SerialNumber()
	if err != nil {
		p.bad("info.app_serial does not hold a card number numbered %q: %v", f.Info.Numbering, err)
	} else if f.Info.CardNumber != "" && f.Info.CardNumber != number {
		p.bad("info.card_number %s does not match app_serial, which holds %s", f.Info.CardNumber, number)
	}
	for _, d := range []epurse.Date{f.Info.StartDate, f.Info.ExpiryDate} {
		if _, err := d.BCD(); err != nil {
			p.bad("info: date %s does not exist", d)
		}
	}
	if !f.Info.StartDate.IsZero() && !f.Info.ExpiryDate.IsZero() && f.Info.ExpiryDate.Before(f.Info.StartDate) {
		p.bad("info: expiry_date %s is before start_date %s", f.Info.ExpiryDate, f.Info.StartDate)
	}
}

// checkApplication: the AID, the security code and EF 0x16.
func (f *CardFile) checkApplication(p *problems) {
	if f.AID != "" {
		if aid, err := hex.DecodeString(f.AID); err != nil || len(aid) < 5 || len(aid) > 16 {
			p.bad("aid must be 5 to 16 bytes in hex")
		}
	}
	if f.SecurityCode != "" {
		if code, err := hex.DecodeString(f.SecurityCode); err != nil || len(code) != 9 {
			p.bad("security_code must be 9 bytes in hex")
		}
	}
	if f.Holder != nil {
		if _, err := f.Holder.Bytes(); err != nil {
			*p = append(*p, fmt.Errorf("holder: %w", err))
		}
	}
}

// checkBalances: every purse within what the card's 4-byte fields and its
// max_balance allow.
func (f *CardFile) checkBalances(p *problems) {
	if f.SecondPurse != nil && (*f.SecondPurse < 0 || *f.SecondPurse > 0x7FFFFFFF) {
		p.bad("second_purse %d is not in 0..%d", *f.SecondPurse, 0x7FFFFFFF)
	}
	if f.BalanceTopBit && (f.EPBalance > 0x7FFFFFFF || f.EDBalance > 0x7FFFFFFF) {
		p.bad("balance_top_bit needs balances below %d", 0x7FFFFFFF)
	}
	if f.MaxBalance < 0 || f.MaxBalance > epurse.MaxAmount {
		p.bad("max_balance %d is not in 0..%d", f.MaxBalance, int64(epurse.MaxAmount))
	}
	for _, b := range []struct {
		name string
		v    int64
	}{{"ep_balance", f.EPBalance}, {"ed_balance", f.EDBalance}} {
		if b.v < 0 || b.v > f.maxBalance() {
			p.bad("%s %d is not in 0..%d", b.name, b.v, f.maxBalance())
		}
	}
}

// checkLogs: the transaction logs fit their files, and the load log has one.
func (f *CardFile) checkLogs(p *problems) {
	for _, l := range []struct {
		name string
		recs []epurse.LogRecord
	}{{"log", f.Log}, {"load_log", f.LoadLog}} {
		name, log := l.name, l.recs
		if len(log) > epurse.MaxLogRecords {
			p.bad("%s has %d records, a log file holds %d", name, len(log), epurse.MaxLogRecords)
		}
		for i, r := range log {
			if _, err := r.Bytes(); err != nil {
				*p = append(*p, fmt.Errorf("%s record %d: %w", name, i+1, err))
			}
		}
	}
	switch s := f.LoadLogSFI; {
	case s == 0:
		if len(f.LoadLog) > 0 {
			p.bad("load_log has records but load_log_sfi is not set")
		}
	case s > 30 || s == LogSFI || s == 0x15 || s == 0x16:
		p.bad("load_log_sfi %#02x must be 1..30 and not 0x15, 0x16 or 0x18", s)
	}
}

// checkAccess: the PIN, its tries and the keys.
func (f *CardFile) checkAccess(p *problems) {
	if len(f.PIN) < 4 || len(f.PIN) > 12 || !isDigits(f.PIN) {
		p.bad("pin must be 4 to 12 digits")
	}
	if f.PINTriesLeft < 0 || f.PINTriesLeft > PINTries {
		p.bad("pin_tries_left %d is not in 0..%d", f.PINTriesLeft, PINTries)
	}
	if f.Keys == (epurse.CardKeys{}) {
		p.bad("keys are missing")
	}
}

// checkProofs: at most one proof per transaction type, as a card keeps.
func (f *CardFile) checkProofs(p *problems) {
	seen := map[epurse.TxType]bool{}
	for _, proof := range f.Proofs {
		if seen[proof.Type] {
			p.bad("proofs: two for type %v, a card keeps the last one", proof.Type)
		}
		seen[proof.Type] = true
	}
}

func (f *CardFile) maxBalance() int64 {
	if f.MaxBalance == 0 {
		return epurse.MaxAmount
	}
	return f.MaxBalance
}

// aid is the card's own AID.
func (f *CardFile) aid() []byte {
	if aid, err := hex.DecodeString(f.AID); err == nil && len(aid) > 0 {
		return aid
	}
	return bytes.Clone(epurse.AIDCityCard)
}

// clone is a deep copy: the card keeps one to roll back to when a save fails.
func (f *CardFile) clone() *CardFile {
	c := *f
	if f.Holder != nil {
		h := *f.Holder
		c.Holder = &h
	}
	if f.SecondPurse != nil {
		v := *f.SecondPurse
		c.SecondPurse = &v
	}
	c.Log = slices.Clone(f.Log)
	c.LoadLog = slices.Clone(f.LoadLog)
	c.Proofs = slices.Clone(f.Proofs)
	return &c
}

// String names the card by its masked number and balances, never its keys
// or PIN.
func (f *CardFile) String() string {
	return fmt.Sprintf("card %s (EP %d fen, ED %d fen)", redact.CardNumber(f.Info.CardNumber), f.EPBalance, f.EDBalance)
}

// GoString keeps %#v from printing the PIN.
func (f *CardFile) GoString() string { return f.String() }

// LogValue keeps slog from marshalling the keys and the PIN.
func (f *CardFile) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("card", redact.CardNumber(f.Info.CardNumber)),
		slog.Int64("ep_balance", f.EPBalance),
		slog.Int64("ed_balance", f.EDBalance),
	)
}

// LoadCardFile reads and validates a card file, strictly (jsonfile.Load):
// an unknown or misspelt field, anything after the JSON value and a card
// that could not exist are refused, naming the file. key_version defaults
// to 01 and pin_tries_left to 3 when left out.
func LoadCardFile(path string) (*CardFile, error) {
	return jsonfile.Load(path, fileKind, CardFile{KeyVersion: 0x01, PINTriesLeft: PINTries}, jsonfile.Options{})
}

// fileKind names a card file in errors.
const fileKind = "card file"

// Save writes the card file atomically: a temporary file in the same
// directory, fsync, rename over path, fsync of the directory. A crash leaves
// either the old card or the new one, never half of each, which is what a
// real card's EEPROM transaction gives. The file has mode 0600: it holds keys.
func (f *CardFile) Save(path string) error {
	return jsonfile.Save(path, fileKind, f, 0o600)
}
