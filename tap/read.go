package tap

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/cardd/cardd/apdu"
	"github.com/cardd/cardd/apdu/epurse"
	"github.com/cardd/cardd/redact"
)

// ReadOptions says what to read from an e-purse card.
type ReadOptions struct {
	// AIDs are tried in order before the file id 1001; nil means every
	// card profile's (epurse.DefaultAIDs), our own cards' first.
	AIDs [][]byte
	// OwnIssuers are the issuer ids (EF 0x15 bytes 0-7) of our own cards,
	// read with epurse.ProfileCampus; nil means epurse.DefaultIssuerID.
	OwnIssuers [][8]byte
	// Purse is the purse whose balance is shown; zero means EP.
	Purse epurse.Purse
	// LogFiles are the SFIs of the transaction log files; nil means {0x18}.
	// Some issuers keep loads in a file of their own (spec, EF 0x18).
	LogFiles []byte
	// LogRecords is how many newest records to show; zero means 5.
	LogRecords int
	// History asks for the cardholder file (EF 0x16) and the log records
	// (LogFiles, LogRecords), for a mode that shows them: the kiosk page,
	// cardd scan and dump. Without it a read is the card's number,
	// validity and balance alone. A Runner reads the history after the
	// tap's money step, which does not need it (doc.go).
	History bool
	// Logger gets the log records that do not parse; nil: slog.Default().
	Logger *slog.Logger
}

func (o ReadOptions) logger() *slog.Logger {
	if o.Logger != nil {
		return o.Logger
	}
	return slog.Default()
}

func (o ReadOptions) withDefaults() ReadOptions {
	if o.Purse == 0 {
		o.Purse = epurse.PurseEP
	}
	if o.LogFiles == nil {
		o.LogFiles = []byte{0x18}
	}
	if o.LogRecords <= 0 {
		o.LogRecords = 5
	}
	return o
}

// CardRead is what one tap read from a card.
type CardRead struct {
	// Info is EF 0x15; Info.CardNumber is the number of the card's
	// profile ("" when it could not be formed) and Info.Numbering the
	// numbering that formed it.
	Info epurse.IssuerInfo
	// Profile is the card's family (epurse.Identify); never nil after a
	// read.
	Profile *epurse.Profile
	Holder  *epurse.Holder // nil when the card has no cardholder file
	Purse   epurse.Purse
	// Balance is the balance to show, in fen (Profile.Shown): the purse,
	// or on a T-Union card spent below zero, less its second purse. It is
	// negative for a card in overdraft.
	Balance int64
	// PurseBalance is the purse alone, as the profile reads GET BALANCE.
	PurseBalance int64
	// SecondPurse is the second purse of a card whose profile has one
	// (GET BALANCE P1 01), nil when it has none or did not answer.
	SecondPurse *int64
	// Notes describe what the card holds that cardd could not interpret
	// (a field that is not BCD, a date that does not exist): each cost that
	// field, never the tap.
	Notes []string
	// datesUnread: the validity dates could not be read (Transactable).
	datesUnread bool
	Log         []epurse.LogRecord
	// LogSkipped counts the log records read that do not parse: they are
	// not in Log.
	LogSkipped int
	// historyRead: Holder and Log were read (ReadOptions.History), so Log
	// holds the card's newest records, not none.
	historyRead bool
	// APDUs counts the command APDUs sent, GET RESPONSE rounds included.
	APDUs int
	// BalanceAPDUs is how many APDUs it took until the balance was known;
	// zero when the read did not read it (balanceDeferred) and an armed
	// sale's INITIALIZE FOR PURCHASE answered it.
	BalanceAPDUs int
	// balanceDeferred: the read skipped GET BALANCE, since the tap pays an
	// armed sale whose INITIALIZE FOR PURCHASE answers the balance
	// (Runner.defersBalance); Balance, PurseBalance and SecondPurse are
	// not known until balanceFromInit or readDeferred.
	balanceDeferred bool
}

// ReadPurse reads an e-purse card: SELECT, then GET BALANCE, then, with
// o.History, the cardholder and the log. The FCI of the select carries a
// copy of EF 0x15 (tag 9F0C), so on most cards the number and the balance
// are known after two APDUs; onBalance is called right then, before the
// slower reads, so a screen can show the balance while the log is still
// being read. onBalance may be nil.
func ReadPurse(t apdu.Transmitter, o ReadOptions, onBalance func(*CardRead)) (*CardRead, error) {
	r, err := readHead(t, o, false)
	if err != nil {
		return nil, err
	}
	if onBalance != nil {
		onBalance(r)
	}
	if !o.History {
		return r, nil
	}
	if err := r.readHistory(t, o); err != nil {
		return nil, err
	}
	return r, nil
}

// readHead is what every tap reads: SELECT (number and validity from the
// FCI, or EF 0x15) and the balance. It is all the money step needs. With
// deferBalance the balance is left to the purchase's INITIALIZE
// (balanceDeferred), except on a card of a family with a second purse,
// which INITIALIZE does not answer.
func readHead(t apdu.Transmitter, o ReadOptions, deferBalance bool) (*CardRead, error) {
	o = o.withDefaults()
	ct := &countingTransmitter{t: t}
	r := &CardRead{Purse: o.Purse}
	aids := o.AIDs
	if aids == nil {
		aids = epurse.DefaultAIDs()
	}
	fci, err := epurse.Select(ct, aids...)
	if err != nil {
		return nil, err
	}
	if err := r.identify(ct, fci, o.OwnIssuers); err != nil {
		return nil, err
	}
	if deferBalance && !r.Profile.SecondPurse {
		r.balanceDeferred, r.APDUs = true, ct.n
		return r, nil
	}
	r.PurseBalance, r.SecondPurse, err = readBalance(ct, r.Profile, o.Purse)
	if err != nil {
		if _, isSW := apdu.SW(err); isSW {
			// The card answered, but not with a balance: what named it is
			// still worth showing an operator (cardd scan, cardd dump).
			r.APDUs = ct.n
			return nil, &BalanceError{Read: r, Err: err}
		}
		return nil, err
	}
	r.Balance = r.Profile.Shown(r.PurseBalance, r.SecondPurse)
	r.BalanceAPDUs, r.APDUs = ct.n, ct.n
	return r, nil
}

// readHistory reads the cardholder file and the newest log records into
// r, counting its commands in r.APDUs. A file the card lacks, or one it
// wrote another issuer's way, costs that file, not the read.
func (r *CardRead) readHistory(t apdu.Transmitter, o ReadOptions) error {
	o = o.withDefaults()
	ct := &countingTransmitter{t: t}
	defer func() { r.APDUs += ct.n }()
	h, err := epurse.ReadHolder(ct)
	switch {
	case err == nil:
		r.Holder = &h
	case errors.Is(err, apdu.ErrFileNotFound):
		// Anonymous cards have no EF 0x16; that is not a failed tap.
	case errors.Is(err, apdu.ErrMalformed), errors.Is(err, epurse.ErrBadRecord):
		// A cardholder file written another issuer's way costs the
		// holder's name, not the log and the money.
		r.note("cardholder file: %v", err)
	default:
		return err
	}

	var logs []epurse.LogRecord
	skipped := 0
	for _, sfi := range o.LogFiles {
		recs, err := epurse.ReadLog(ct, sfi, o.LogRecords)
		var bad *epurse.LogRecordError
		switch {
		case errors.Is(err, apdu.ErrFileNotFound):
			continue // a configured file this card does not have
		case errors.As(err, &bad):
			// A record the card wrote wrongly costs that record, not the
			// balance and the others.
			skipped += len(bad.Records)
			o.logger().Warn("card log records do not parse; skipped", "card", redact.CardNumber(r.Info.CardNumber),
				"sfi", sfi, "records", bad.Records, "err", bad.Err)
		case err != nil:
			return err
		}
		logs = append(logs, recs...)
	}
	if len(o.LogFiles) > 1 {
		// Merge files newest first; stable keeps each file's own order on ties.
		slices.SortStableFunc(logs, func(a, b epurse.LogRecord) int { return b.Time.Compare(a.Time) })
	}
	if len(logs) > o.LogRecords {
		logs = logs[:o.LogRecords]
	}
	r.Log, r.LogSkipped, r.historyRead = logs, skipped, true
	return nil
}

// readBalance reads the purse by the family's rule and, on a card of a
// family that has one, its second purse (nil when the card has none). An
// error status is the purse's own: a card of the family without a second
// purse answers one for it, which costs the second purse, not the balance.
func readBalance(t apdu.Transmitter, p *epurse.Profile, purse epurse.Purse) (int64, *int64, error) {
	word, err := epurse.GetBalanceWord(t, 0x00, purse)
	if err != nil {
		return 0, nil, err
	}
	if !p.SecondPurse {
		return p.Balance.Decode(word), nil, nil
	}
	w, err := epurse.GetBalanceWord(t, 0x01, purse)
	if _, isSW := apdu.SW(err); err != nil && !isSW {
		return 0, nil, err
	} else if err != nil {
		return p.Balance.Decode(word), nil, nil
	}
	second := p.Balance.Decode(w)
	return p.Balance.Decode(word), &second, nil
}

// balanceNow re-reads, in the same session, the balance to show of the card
// r read (Profile.Shown): after a recovery changed the card, the money
// checks and the screen need what the card now spends, by the same rule
// as the read, never its purse's raw 32 bits.
func (r *CardRead) balanceNow(t apdu.Transmitter) (int64, error) {
	main, second, err := readBalance(t, r.Profile, r.Purse)
	if err != nil {
		return 0, err
	}
	return r.Profile.Shown(main, second), nil
}

// readDeferred reads the balance the read deferred (balanceDeferred), now,
// in the same session: for a tap that needs it before the purchase's
// INITIALIZE (an unfinished row of the card to settle) or that ended
// without one (a refused card, a sale refused or not taken).
func (r *CardRead) readDeferred(t apdu.Transmitter) error {
	if !r.balanceDeferred {
		return nil
	}
	ct := &countingTransmitter{t: t}
	main, second, err := readBalance(ct, r.Profile, r.Purse)
	r.APDUs += ct.n
	if err != nil {
		return err
	}
	r.PurseBalance, r.SecondPurse = main, second
	r.Balance = r.Profile.Shown(main, second)
	r.BalanceAPDUs, r.balanceDeferred = r.APDUs, false
	return nil
}

// balanceFromInit takes the balance the read deferred from the purse's
// word in the card's INITIALIZE FOR PURCHASE answer, by the family's rule
// (a family with a second purse never defers).
func (r *CardRead) balanceFromInit(word int64) {
	r.PurseBalance = r.Profile.Balance.Decode(uint32(word))
	r.Balance = r.Profile.Shown(r.PurseBalance, nil)
	r.balanceDeferred = false
}

// shownAfter is the balance to show once the purse, as the card's
// INITIALIZE answered it (word), has moved by delta: read by the family's
// rule, less the second purse read on this tap, like the read's Balance. A
// load or a sale does not make the card spend its second purse.
func (r *CardRead) shownAfter(word, delta int64) int64 {
	return r.Profile.Shown(r.Profile.Balance.Decode(uint32(word))+delta, r.SecondPurse)
}

// purseOf is what the purse holds when the balance shown is shown: the
// second purse the read subtracted added back. The money rules that ask
// what is on the card (the balance cap, whether the card can answer
// INITIALIZE) go by it.
func (r *CardRead) purseOf(shown int64) int64 { return shown + r.PurseBalance - r.Balance }

// BalanceError is ReadPurse's error when the card was selected and named
// but refused GET BALANCE: Read holds what was read before (number,
// profile, validity, notes), for an operator's tools; a tap treats it as
// the failed read it is. It wraps the card's error.
type BalanceError struct {
	Read *CardRead
	Err  error
}

// Error is the card's error: what was read before it is in Read.
func (e *BalanceError) Error() string { return e.Err.Error() }

// Unwrap returns the card's error, for errors.Is and errors.As.
func (e *BalanceError) Unwrap() error { return e.Err }

// countingTransmitter counts APDUs: the first performance figure of a tap
// (DESIGN.md, "A tap, as data").
type countingTransmitter struct {
	t apdu.Transmitter
	n int
}

func (c *countingTransmitter) Transmit(cmd []byte) ([]byte, error) {
	c.n++
	return c.t.Transmit(cmd)
}

// deadlineTransmitter refuses to start an APDU after the deadline, and names
// an exchange the session abandoned at the deadline (a card that stopped
// answering: reader.Session) a tap timeout. PC/SC cannot cancel an APDU in
// flight, but a tap that has run too long must neither wait for it nor go
// on issuing new ones.
type deadlineTransmitter struct {
	t        apdu.Transmitter
	deadline time.Time
	observe  func(time.Duration) // each exchange's round trip; nil: none
}

// ErrTapTimeout is returned when a tap's card session ran past its time limit.
var ErrTapTimeout = errors.New("tap took too long")

func (d deadlineTransmitter) Transmit(cmd []byte) ([]byte, error) {
	if !d.deadline.IsZero() && time.Now().After(d.deadline) {
		return nil, ErrTapTimeout
	}
	start := time.Now()
	resp, err := d.t.Transmit(cmd)
	if d.observe != nil {
		d.observe(time.Since(start))
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return nil, fmt.Errorf("%w: %w", ErrTapTimeout, err)
	}
	return resp, err
}
