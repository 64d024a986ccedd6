package host

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/cardd/cardd/apdu/epurse"
	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/money"
	"github.com/cardd/cardd/redact"
)

// Rules applies the money rules of an online load (DESIGN.md, money rule 4)
// to the store: MAC2 only for the counter the card's MAC1 proves, a credit
// consumed only on a TAC the host verified, a credit re-authorized only when
// the card shows its counter did not move. Each call runs in one IMMEDIATE
// transaction, so concurrent requests for one credit or one card are
// serialized and every check holds when the write is made.
type Rules struct {
	Store *Store
	Keys  *Keys
	// BalanceCap is the most a purse may hold after a load, in fen; 0 means
	// no cap beyond the card's 4-byte field.
	BalanceCap int64
	// Logger receives alarms: a card contradicting the host. Nil discards.
	Logger *slog.Logger
	// LoadHold is how long an authorization keeps the card's counter for
	// the terminal it was issued to; 0 means DefaultLoadHold.
	LoadHold time.Duration
}

// DefaultLoadHold is how long an e-purse load authorization holds the card's
// counter against other terminals: a terminal sends CREDIT FOR LOAD within a
// second of its MAC2, so 30 s covers a slow link and a hesitant hand, and a
// card torn away from one terminal is loaded at another after at most that.
const DefaultLoadHold = 30 * time.Second

func (r *Rules) hold() time.Duration {
	if r.LoadHold > 0 {
		return r.LoadHold
	}
	return DefaultLoadHold
}

// MaxTimeOffset is how far the time of an authorization may be from the
// host's clock. The time is the terminal's wall clock read as UTC, so a
// terminal in UTC+8 is 8 hours "ahead": a day covers every time zone and
// still refuses a terminal whose clock is plainly wrong, which would write
// that wrong date into the card's log for ever.
const MaxTimeOffset = 24 * time.Hour

// auth is one row of the authorizations table.
type auth struct {
	ID         int64
	Credit     string
	Card       string
	Purse      epurse.Purse
	Terminal   string
	Counter    uint16
	Random     string
	OldBalance int64
	Amount     int64
	Time       string // hostapi.TimeLayout
	MAC2       string
	State      string
}

const authColumns = `id, credit, card, purse, terminal, counter, random, old_balance_fen, amount_fen, time, mac2, state`

func scanAuth(sc interface{ Scan(...any) error }) (auth, error) {
	var a auth
	var purse string
	var counter int64
	err := sc.Scan(&a.ID, &a.Credit, &a.Card, &purse, &a.Terminal, &counter, &a.Random, &a.OldBalance, &a.Amount, &a.Time, &a.MAC2, &a.State)
	a.Counter = uint16(counter)
	a.Purse, _ = parsePurse(purse) // the schema admits EP and ED only
	return a, err
}

func queryAuths(tx *sql.Tx, query string, args ...any) ([]auth, error) {
	rows, err := tx.Query(`SELECT `+authColumns+` FROM authorizations WHERE `+query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []auth
	for rows.Next() {
		a, err := scanAuth(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// when is the instant the authorization's MAC2 and the card's TAC cover.
func (a auth) when() (time.Time, error) { return time.Parse(hostapi.TimeLayout, a.Time) }

func parsePurse(s string) (epurse.Purse, error) {
	switch s {
	case "EP":
		return epurse.PurseEP, nil
	case "ED":
		return epurse.PurseED, nil
	}
	return 0, fmt.Errorf("purse %q: want EP or ED", s)
}

// hex4 decodes a 4-byte field sent as 8 hex digits.
func hex4(field, s string) ([4]byte, error) {
	var b [4]byte
	if len(s) != 8 {
		return b, badRequest("%s %q: want 4 bytes as 8 hex digits", field, s)
	}
	if _, err := hex.Decode(b[:], []byte(s)); err != nil {
		return b, badRequest("%s %q: want 4 bytes as 8 hex digits", field, s)
	}
	return b, nil
}

func hexUpper(b []byte) string { return strings.ToUpper(hex.EncodeToString(b)) }

// checkAmountField checks an amount or balance against the card's 4-byte
// field; min is 1 for an amount to load, 0 for a balance.
func checkAmountField(field string, v, min int64) error {
	if v < min || v > epurse.MaxAmount {
		return badRequest("%s %d: want %d to %d fen", field, v, min, int64(epurse.MaxAmount))
	}
	return nil
}

// parseWhen reads the authorization time: the terminal's wall clock as
// hostapi.TimeLayout, kept in time.UTC so that its fields are what the card
// gets (package epurse's convention), and within MaxTimeOffset of now.
func parseWhen(s string, now time.Time) (time.Time, error) {
	t, err := time.Parse(hostapi.TimeLayout, s)
	if err != nil || len(s) != len(hostapi.TimeLayout) {
		return time.Time{}, badRequest("time %q: want the terminal's wall clock as YYYYMMDDhhmmss", s)
	}
	if d := t.Sub(now.UTC()); d > MaxTimeOffset || d < -MaxTimeOffset {
		return time.Time{}, badRequest("time %q is more than %v from the host's clock (%s UTC): check the terminal's clock", s, MaxTimeOffset, now.UTC().Format(hostapi.TimeLayout))
	}
	return t, nil
}

// purseCounter is the highest online counter the card is known to have
// reached on a purse: proved by a verified MAC1 (it was there) or a verified
// TAC (it went one past).
func purseCounter(tx *sql.Tx, number string, p epurse.Purse) (uint16, error) {
	var c int64
	err := tx.QueryRow(`SELECT counter FROM purse_counters WHERE card = ? AND purse = ?`, number, p.String()).Scan(&c)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return uint16(c), err
}

// sawCounter raises the purse's known counter; it never lowers it.
func sawCounter(tx *sql.Tx, number string, p epurse.Purse, counter uint32, now time.Time) error {
	_, err := tx.Exec(`INSERT INTO purse_counters (card, purse, counter, seen) VALUES (?, ?, ?, ?)
		ON CONFLICT (card, purse) DO UPDATE SET counter = excluded.counter, seen = excluded.seen
		WHERE excluded.counter > purse_counters.counter`, number, p.String(), int64(counter), dbTime(now))
	return err
}

// voidOpenAt voids every open authorization of a purse at one counter,
// except the one numbered keep, with the reason in the ledger.
func voidOpenAt(tx *sql.Tx, number string, p epurse.Purse, counter uint16, keep int64, actor, detail string, now time.Time) error {
	open, err := queryAuths(tx, `card = ? AND purse = ? AND counter = ? AND state = 'open' AND id != ?`, number, p.String(), int64(counter), keep)
	if err != nil {
		return err
	}
	for _, a := range open {
		if _, err := tx.Exec(`UPDATE authorizations SET state = 'void', closed = ? WHERE id = ?`, dbTime(now), a.ID); err != nil {
			return err
		}
		ctr, amount := a.Counter, a.Amount
		if err := addLedger(tx, ledgerEntry{Time: now, Actor: actor, Event: EventVoided, Credit: a.Credit, Card: number,
			Counter: &ctr, AmountFen: &amount, Detail: detail}); err != nil {
			return err
		}
	}
	return nil
}

// creditOfCard reads the credit a load request names and the card it is
// for; a refusal when there is no such credit or it is another card's.
func creditOfCard(tx *sql.Tx, id, number string) (CreditInfo, Card, error) {
	if id == "" {
		return CreditInfo{}, Card{}, badRequest("credit_id is empty")
	}
	c, err := credit(tx, id)
	if errors.Is(err, ErrNotFound) {
		return c, Card{}, notFound("no credit %q", id)
	}
	if err != nil {
		return c, Card{}, err
	}
	if c.Card != number {
		return c, Card{}, badRequest("credit %s is not a credit of card %s", id, redact.CardNumber(number))
	}
	cd, err := card(tx, number)
	return c, cd, err
}

// loadCredit reads the credit a load request names and checks that it is
// the named card's; a refusal when not.
func loadCredit(tx *sql.Tx, id, number string) (CreditInfo, Card, [10]byte, error) {
	var serial [10]byte
	c, cd, err := creditOfCard(tx, id, number)
	if err != nil {
		return c, cd, serial, err
	}
	if cd.Kind == CardM1 {
		return c, cd, serial, badRequest("card %s is an M1 wallet: its loads name purse %s", redact.CardNumber(number), hostapi.PurseM1)
	}
	serial, err = cd.serial()
	return c, cd, serial, err
}

// checkLoadable is the end of rule 1 of Authorize, for the e-purse and the
// M1 wallet alike: credit c is pending, its amount is the request's, and its
// card is not denied.
func checkLoadable(tx *sql.Tx, c CreditInfo, amount int64) error {
	switch c.State {
	case hostapi.CreditConsumed:
		proof := "TAC " + c.ConsumedTAC
		if c.ConsumedTAC == "" {
			proof = "reported by terminal " + c.ConsumedBy // an M1 wallet signs nothing
		}
		return conflict(hostapi.CodeCreditConsumed, "credit %s was loaded onto the card at %s (%s)", c.ID, c.ConsumedAt, proof)
	case hostapi.CreditCancelled:
		return notFound("credit %s was cancelled", c.ID)
	}
	if c.Approval == approvalAwaiting {
		return conflict(hostapi.CodeCreditUnapproved, "credit %s is above the approval threshold and awaits a second operator's approval", c.ID)
	}
	if c.AmountFen != amount {
		return badRequest("credit %s is %s, the request loads %s", c.ID, money.Format(c.AmountFen), money.Format(amount))
	}
	if denied, reason, err := denyState(tx, c.Card); err != nil {
		return err
	} else if denied {
		return conflict(hostapi.CodeCardDenied, "card %s is on the deny list (%s)", redact.CardNumber(c.Card), reason)
	}
	return nil
}

// Authorize answers an INITIALIZE FOR LOAD with MAC2, applying the money
// rules in this order (the first that fails answers):
//
//  1. the credit exists (404), is the card's (400), is pending (409
//     credit_consumed; a cancelled one is 404), its amount is the request's
//     (400), it does not await an operator's approval (409
//     credit_unapproved), the card is not denied (409 card_denied), and a subsidy is
//     within its window by the host's clock (409 credit_not_yet before
//     it; 404 from its expiry on) and for this purse (409
//     credit_wrong_purse);
//  2. the card's product is valid at now (409 product_expired) and old
//     balance + amount is within the smaller of BalanceCap and the
//     product's cap (409 over_balance_cap, naming the product when its cap
//     is the one passed);
//  3. MAC1 verifies with the card's DLK for this random, counter and the
//     calling terminal (409 mac_invalid; nothing is recorded);
//  4. the counter is not below one the card is known to have reached (409
//     counter_mismatch: an old INIT answer proves nothing about the card now);
//  5. no authorization of this card's purse is open at a lower counter: the
//     card has moved past it, so that load may have happened, and only its
//     TAC, which GET TRANSACTION PROVE gives only while it is the card's last
//     load, can settle it (409 credit_in_flight);
//  6. no lower counter at which the host issued MAC2s has them all void: the
//     card passed that counter, so one of them was applied after all (409
//     counter_mismatch and an alarm in the ledger; loads stop until a person
//     settles it, since the host cannot tell which);
//  7. the credit's open authorization, if any: the same INIT answer again is
//     a retry and gets the same MAC2 and time back; another purse is 409
//     credit_in_flight; an open authorization at this counter issued to
//     another terminal less than LoadHold ago is 409 credit_busy (that
//     terminal may be sending CREDIT FOR LOAD right now; two terminals asking
//     in turn must not void each other's MAC2 back and forth); otherwise the
//     same counter with a new random means the card did not move, so every
//     open authorization at this counter (this terminal's own, or another's
//     whose hold ran out) is void, and
//  8. a new MAC2 is issued for this counter and time and recorded open.
//
// A MAC2 (new or the same again) comes with the card's other pending
// credits, oldest first, read in the same transaction; a refusal with none.
func (r *Rules) Authorize(ctx context.Context, term string, req hostapi.LoadAuthorizeRequest, now time.Time) (hostapi.LoadAuthorizeResponse, error) {
	if req.Purse == hostapi.PurseM1 {
		return r.authorizeM1(ctx, term, req, now)
	}
	a, err := readLoadAuth(term, req, now)
	if err != nil {
		return hostapi.LoadAuthorizeResponse{}, err
	}
	var out *authorizeOutcome
	err = r.Store.inCardTx(ctx, a.Card, func(tx *sql.Tx) error {
		var err error
		if out, err = r.authorizeTx(tx, a); err != nil || out.refusal != nil {
			return err
		}
		// The card's other credits as this transaction sees them: the
		// terminal loads them on the same tap without asking again.
		out.resp.Credits, err = pendingOf(tx, a.Card, a.CreditID)
		return err
	})
	if err != nil {
		return hostapi.LoadAuthorizeResponse{}, err
	}
	if out.alarm != "" {
		r.alarm("card passed a counter whose authorizations were all voided", req.Card, out.alarm)
	}
	if out.refusal != nil {
		return hostapi.LoadAuthorizeResponse{}, out.refusal
	}
	return out.resp, nil
}

// loadAuth is an e-purse load authorization request with its fields read:
// what the steps of Authorize work on.
type loadAuth struct {
	hostapi.LoadAuthorizeRequest
	term      string // the calling terminal, as authenticated
	termID    [6]byte
	actor     string // the terminal as the ledger names it
	purse     epurse.Purse
	random    [4]byte
	randomHex string // random as the authorizations table keeps it
	mac1      [4]byte
	when      time.Time // the time MAC2 covers
	now       time.Time // the host's clock
}

// readLoadAuth reads and checks the request's fields in the order a
// refusal names them: purse, card, random, mac1, amount, old balance, time.
func readLoadAuth(term string, req hostapi.LoadAuthorizeRequest, now time.Time) (loadAuth, error) {
	a := loadAuth{LoadAuthorizeRequest: req, term: term, termID: terminalBytes(term), actor: terminalActor(term), now: now}
	var err error
	if a.purse, err = parsePurse(req.Purse); err != nil {
		return a, badRequest("%v", err)
	}
	if err := CheckCardNumber(req.Card); err != nil {
		return a, badCard(err)
	}
	if a.random, err = hex4("random", req.Random); err != nil {
		return a, err
	}
	a.randomHex = hexUpper(a.random[:])
	if a.mac1, err = hex4("mac1", req.MAC1); err != nil {
		return a, err
	}
	if err := checkAmountField("amount_fen", req.AmountFen, 1); err != nil {
		return a, err
	}
	if err := checkAmountField("old_balance_fen", req.OldBalanceFen, 0); err != nil {
		return a, err
	}
	a.when, err = parseWhen(req.Time, now)
	return a, err
}

// authorizeOutcome is what an Authorize transaction decided, to be
// committed: a MAC2, or a refusal that keeps what the card proved (its
// counter, an alarm in the ledger), with the alarm to log once committed.
type authorizeOutcome struct {
	resp    hostapi.LoadAuthorizeResponse
	refusal error
	alarm   string
}

// authorizeTx applies rules 1 to 8 of Authorize in transaction tx. An
// error rolls it back (nothing the request said is kept); an outcome
// commits it. Each step of rules 5 to 7 either decides, with an outcome,
// or passes to the next.
func (r *Rules) authorizeTx(tx *sql.Tx, a loadAuth) (*authorizeOutcome, error) {
	c, serial, err := r.checkAuthorizable(tx, a)
	if err != nil {
		return nil, err
	}
	// Rule 5.
	if out, err := refuseOpenBelow(tx, a); out != nil || err != nil {
		return out, err
	}
	// Rule 6.
	if out, err := refusePassedVoided(tx, a); out != nil || err != nil {
		return out, err
	}
	// Rule 7.
	if out, err := answerOpen(tx, a, c.ID); out != nil || err != nil {
		return out, err
	}
	if out, err := r.refuseBusy(tx, a); out != nil || err != nil {
		return out, err
	}
	detail := fmt.Sprintf("the card answered a new INIT FOR LOAD at the same counter %d (random %s): its earlier session is gone, the load was not applied", a.OnlineCounter, a.randomHex)
	if err := voidOpenAt(tx, a.Card, a.purse, a.OnlineCounter, 0, a.actor, detail, a.now); err != nil {
		return nil, err
	}
	// Rule 8.
	return r.issueMAC2(tx, a, c.ID, serial)
}

// checkAuthorizable applies rules 1 to 4 of Authorize: the credit may be
// loaded, within the cap, the MAC1 is the card's, and its counter is not an
// old one, which the host then knows the card reached. It returns the
// credit and the card's application serial.
func (r *Rules) checkAuthorizable(tx *sql.Tx, a loadAuth) (CreditInfo, [10]byte, error) {
	// Rule 1.
	c, _, serial, err := loadCredit(tx, a.CreditID, a.Card)
	if err != nil {
		return c, serial, err
	}
	if err := checkLoadable(tx, c, a.AmountFen); err != nil {
		return c, serial, err
	}
	if err := checkSubsidy(c, a.purse, a.now); err != nil {
		return c, serial, err
	}
	// Rule 2.
	if err := checkProductLoad(tx, a.Card, a.OldBalanceFen, a.AmountFen, r.BalanceCap, a.now); err != nil {
		return c, serial, err
	}
	// Rule 3.
	if err := r.checkMAC1(a, serial); err != nil {
		return c, serial, err
	}
	// Rule 4. From here the card has spoken: what it proved is kept.
	return c, serial, checkCounterNotOld(tx, a)
}

// checkMAC1 is rule 3 of Authorize: MAC1 is the card's answer to this
// terminal's INITIALIZE FOR LOAD.
func (r *Rules) checkMAC1(a loadAuth, serial [10]byte) error {
	ok, err := r.Keys.checkLoadMAC1(serial, a.random, a.OnlineCounter, a.OldBalanceFen, a.AmountFen, a.purse.LoadType(), a.termID, a.mac1)
	if err != nil {
		return badRequest("%v", err)
	}
	if !ok {
		return conflict(hostapi.CodeMACInvalid, "MAC1 %s does not verify for card %s, %v purse, counter %d, random %s, terminal %s: not this card's answer to this terminal's INITIALIZE FOR LOAD",
			hexUpper(a.mac1[:]), redact.CardNumber(a.Card), a.purse, a.OnlineCounter, a.randomHex, a.term)
	}
	return nil
}

// checkCounterNotOld is rule 4 of Authorize: the card's counter is not
// below one it is known to have reached; it then raises the known counter
// to it.
func checkCounterNotOld(tx *sql.Tx, a loadAuth) error {
	known, err := purseCounter(tx, a.Card, a.purse)
	if err != nil {
		return err
	}
	if a.OnlineCounter < known {
		return conflict(hostapi.CodeCounterMismatch, "the card's %v counter is known to have reached %d; an INIT answer at counter %d is an old one: run INITIALIZE FOR LOAD again",
			a.purse, known, a.OnlineCounter)
	}
	return sawCounter(tx, a.Card, a.purse, uint32(a.OnlineCounter), a.now)
}

// refuseOpenBelow is rule 5 of Authorize: an authorization of the purse
// still open at a lower counter is refused until the card's proof settles
// it.
func refuseOpenBelow(tx *sql.Tx, a loadAuth) (*authorizeOutcome, error) {
	below, err := queryAuths(tx, `card = ? AND purse = ? AND counter < ? AND state = 'open' ORDER BY counter LIMIT 1`, a.Card, a.purse.String(), int64(a.OnlineCounter))
	if err != nil || len(below) == 0 {
		return nil, err
	}
	o := below[0]
	return &authorizeOutcome{refusal: conflict(hostapi.CodeCreditPending, "credit %s was authorized at counter %d and the card is now at %d: complete authorization at counter %d with the card's proof first (GET TRANSACTION PROVE for counter %d)",
		o.Credit, o.Counter, a.OnlineCounter, o.Counter, uint32(o.Counter)+1)}, nil
}

// refusePassedVoided is rule 6 of Authorize: the card passed a counter
// whose authorizations are all void, so one of them was applied after all.
// The refusal comes with an alarm in the ledger, one per counter however
// often terminals retry.
func refusePassedVoided(tx *sql.Tx, a loadAuth) (*authorizeOutcome, error) {
	var passed int64
	err := tx.QueryRow(`SELECT counter FROM authorizations WHERE card = ? AND purse = ? AND counter < ?
		GROUP BY counter HAVING sum(CASE WHEN state = 'void' THEN 0 ELSE 1 END) = 0 ORDER BY counter LIMIT 1`, a.Card, a.purse.String(), int64(a.OnlineCounter)).Scan(&passed)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	ctr := uint16(passed)
	detail := fmt.Sprintf("card is at %v counter %d, past counter %d where every authorization was voided: one of them was applied; loads refused until settled", a.purse, a.OnlineCounter, passed)
	out := &authorizeOutcome{refusal: conflict(hostapi.CodeCounterMismatch, "%s: a person must settle it at the host", detail)}
	var n int
	if err := tx.QueryRow(`SELECT count(*) FROM ledger WHERE card = ? AND event = 'alarm' AND credit IS NULL AND counter = ?`, a.Card, passed).Scan(&n); err != nil {
		return nil, err
	}
	if n > 0 {
		return out, nil
	}
	out.alarm = detail
	return out, addLedger(tx, ledgerEntry{Time: a.now, Actor: a.actor, Event: EventAlarm, Card: a.Card, Counter: &ctr, Detail: detail})
}

// answerOpen is the first part of rule 7 of Authorize: the credit's open
// authorization, if any. For the other purse it is a refusal; the same INIT
// answer from the same terminal is a retry (the first answer was lost) and
// gets the same MAC2, never a second one for one session.
func answerOpen(tx *sql.Tx, a loadAuth, credit string) (*authorizeOutcome, error) {
	prev, err := queryAuths(tx, `credit = ? AND state = 'open'`, credit)
	if err != nil || len(prev) == 0 {
		return nil, err
	}
	p := prev[0]
	if p.Purse != a.purse {
		return &authorizeOutcome{refusal: conflict(hostapi.CodeCreditPending, "credit %s is authorized for the %v purse at counter %d: complete authorization at counter %d with the card's proof first", credit, p.Purse, p.Counter, p.Counter)}, nil
	}
	if p.Counter == a.OnlineCounter && p.Random == a.randomHex && p.Terminal == a.term {
		return &authorizeOutcome{resp: hostapi.LoadAuthorizeResponse{MAC2: p.MAC2, Time: p.Time}}, nil
	}
	return nil, nil
}

// refuseBusy is rule 7 of Authorize, busy: another terminal's authorization
// at this counter issued less than LoadHold ago stays, whatever credit it is
// for.
func (r *Rules) refuseBusy(tx *sql.Tx, a loadAuth) (*authorizeOutcome, error) {
	var holder, heldCredit, heldAt string
	err := tx.QueryRow(`SELECT terminal, credit, created FROM authorizations WHERE card = ? AND purse = ? AND counter = ?
		AND state = 'open' AND terminal != ? AND created > ? ORDER BY id DESC LIMIT 1`,
		a.Card, a.purse.String(), int64(a.OnlineCounter), a.term, dbTime(a.now.Add(-r.hold()))).Scan(&holder, &heldCredit, &heldAt)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &authorizeOutcome{refusal: conflict(hostapi.CodeCreditBusy, "terminal %s was authorized to load credit %s onto this card at counter %d at %s, less than %v ago: it may be loading it now; the credit waits, try on the card's next tap",
		holder, heldCredit, a.OnlineCounter, rfc3339(heldAt), r.hold())}, nil
}

// issueMAC2 is rule 8 of Authorize: a new MAC2 for this counter and time,
// recorded open with its line in the ledger.
func (r *Rules) issueMAC2(tx *sql.Tx, a loadAuth, credit string, serial [10]byte) (*authorizeOutcome, error) {
	mac2, err := r.Keys.loadMAC2(serial, a.random, a.OnlineCounter, a.AmountFen, a.purse.LoadType(), a.termID, a.when)
	if err != nil {
		return nil, badRequest("%v", err)
	}
	resp := hostapi.LoadAuthorizeResponse{MAC2: hexUpper(mac2[:]), Time: a.Time}
	if _, err := tx.Exec(`INSERT INTO authorizations (credit, card, purse, terminal, counter, random, old_balance_fen, amount_fen, time, mac2, state, created)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'open', ?)`, credit, a.Card, a.purse.String(), a.term, int64(a.OnlineCounter), a.randomHex,
		a.OldBalanceFen, a.AmountFen, a.Time, resp.MAC2, dbTime(a.now)); err != nil {
		return nil, err
	}
	ctr, amount := a.OnlineCounter, a.AmountFen
	return &authorizeOutcome{resp: resp}, addLedger(tx, ledgerEntry{Time: a.now, Actor: a.actor, Event: EventAuthorized, Credit: credit, Card: a.Card, Counter: &ctr, AmountFen: &amount,
		Detail: fmt.Sprintf("%v purse, old balance %s, time %s", a.purse, money.Format(a.OldBalanceFen), a.Time)})
}

// Complete closes an authorization with the card's proof.
//
// With a TAC: the TAC must verify (with the card's DTK, over old balance +
// amount, the counter, amount, type, the authorizing terminal and time) for
// an authorization of the credit at that counter, else 409 tac_invalid and
// nothing changes; no authorization at that counter is 409
// counter_mismatch. A verified TAC is the only thing that consumes a credit:
// the credit becomes consumed, the authorization applied, every other open
// authorization of the purse at that counter void (only one load happens per
// counter), and the card is known to be at counter+1. The same TAC again
// answers consumed and changes nothing. A verified TAC for an authorization
// that had been voided is believed, since the card cannot forge it: the
// credit is consumed if it was not, and an alarm goes to the ledger. A TAC
// that verifies for another credit's authorization of the card at that
// counter settles that credit (the card's last load is whatever GET
// TRANSACTION PROVE gives, whoever authorized it) and answers this
// credit's own state: the counter's one load was not this one, and the
// terminal that sent it can close its journal row.
//
// With NotApplied: see notApplied.
func (r *Rules) Complete(ctx context.Context, term string, req hostapi.LoadCompleteRequest, now time.Time) (hostapi.LoadCompleteResponse, error) {
	var resp hostapi.LoadCompleteResponse
	if req.Purse == hostapi.PurseM1 {
		return r.completeM1(ctx, term, req, now)
	}
	if err := CheckCardNumber(req.Card); err != nil {
		return resp, badCard(err)
	}
	if req.NotApplied {
		if req.TAC != "" {
			return resp, badRequest("a TAC and not_applied together: the load happened or it did not")
		}
		return r.notApplied(ctx, term, req, now)
	}
	if req.TAC == "" {
		return resp, badRequest("tac is empty: send the card's TAC, or not_applied with a fresh INIT FOR LOAD probe")
	}
	tac, err := hex4("tac", req.TAC)
	if err != nil {
		return resp, err
	}
	actor := terminalActor(term)
	var alarm string
	err = r.Store.inCardTx(ctx, req.Card, func(tx *sql.Tx) error {
		resp, alarm = hostapi.LoadCompleteResponse{}, "" // a retry starts over
		c, _, serial, err := loadCredit(tx, req.CreditID, req.Card)
		if err != nil {
			return err
		}
		// Every authorization of the card at that counter is a candidate,
		// this credit's first: the TAC says which one the card applied.
		auths, err := queryAuths(tx, `card = ? AND counter = ? ORDER BY credit = ? DESC, id DESC`, c.Card, int64(req.Counter), c.ID)
		if err != nil {
			return err
		}
		own := 0
		for _, a := range auths {
			if a.Credit == c.ID {
				own++
			}
		}
		match, err := r.matchTAC(serial, auths, tac)
		if err != nil {
			return err
		}
		tacHex := hexUpper(tac[:])
		switch {
		case match == nil && own == 0:
			return conflict(hostapi.CodeCounterMismatch, "credit %s has no authorization at counter %d", c.ID, req.Counter)
		case match == nil:
			return conflict(hostapi.CodeTACInvalid, "TAC %s does not verify for credit %s at counter %d", tacHex, c.ID, req.Counter)
		case match.Credit != c.ID:
			// The card's proof of another credit's load at this counter
			// (GET TRANSACTION PROVE gives the card's last load, whoever
			// authorized it). It settles that credit; this one was not
			// loaded there, and its terminal may close its journal row on
			// this answer.
			if match.State != "applied" {
				other, err := credit(tx, match.Credit)
				if err != nil {
					return err
				}
				if alarm, err = r.settle(tx, other, *match, tacHex, actor, now); err != nil {
					return err
				}
			}
			resp.State = c.State
			return nil
		}
		resp.State = hostapi.CreditConsumed
		alarm, err = r.settle(tx, c, *match, tacHex, actor, now)
		return err
	})
	if err != nil {
		return hostapi.LoadCompleteResponse{}, err
	}
	if alarm != "" {
		r.alarm("a verified TAC contradicts the host's records", req.Card, alarm)
	}
	return resp, nil
}

// matchTAC returns the authorization the TAC verifies for, if any: the TAC
// covers the new balance, counter, amount, type, terminal and time, with the
// card's DTK, so only the card can make it and only for a load it applied.
func (r *Rules) matchTAC(serial [10]byte, auths []auth, tac [4]byte) (*auth, error) {
	for i, a := range auths {
		when, err := a.when()
		if err != nil {
			return nil, fmt.Errorf("authorization %d: stored time %q: %w", a.ID, a.Time, err)
		}
		want, err := r.Keys.loadTAC(serial, a.OldBalance+a.Amount, a.Counter, a.Amount, a.Purse.LoadType(), terminalBytes(a.Terminal), when)
		if err != nil {
			return nil, fmt.Errorf("authorization %d: %w", a.ID, err)
		}
		if subtle.ConstantTimeCompare(want[:], tac[:]) == 1 {
			return &auths[i], nil
		}
	}
	return nil, nil
}

// settle records what a verified TAC proves: the card applied authorization
// a of credit c. The credit becomes consumed (if the same authorization
// consumed it already, nothing changes), the authorization applied, the
// purse's other open authorizations at that counter void, and the card is
// known to be one counter further. A fact that contradicts the records (a
// voided authorization applied, a cancelled credit loaded, a credit loaded
// twice) is returned as an alarm and written to the ledger.
func (r *Rules) settle(tx *sql.Tx, c CreditInfo, a auth, tacHex, actor string, now time.Time) (alarm string, err error) {
	ctr, amount := a.Counter, a.Amount
	if c.State == hostapi.CreditConsumed {
		var consumedAuth, consumedCtr int64
		if err := tx.QueryRow(`SELECT a.id, a.counter FROM credits c JOIN authorizations a ON a.id = c.consumed_auth WHERE c.id = ?`, c.ID).
			Scan(&consumedAuth, &consumedCtr); err != nil {
			return "", err
		}
		if consumedAuth == a.ID {
			return "", nil // the same proof again
		}
		alarm = fmt.Sprintf("credit %s was loaded twice: at counter %d (TAC %s) and at counter %d (TAC %s)", c.ID, consumedCtr, c.ConsumedTAC, ctr, tacHex)
		if a.State != "applied" {
			if _, err := tx.Exec(`UPDATE authorizations SET state = 'applied', closed = ?, tac = ? WHERE id = ?`, dbTime(now), tacHex, a.ID); err != nil {
				return "", err
			}
		}
		return alarm, addLedger(tx, ledgerEntry{Time: now, Actor: actor, Event: EventAlarm, Credit: c.ID, Card: c.Card, Counter: &ctr, AmountFen: &amount, TAC: tacHex, Detail: alarm})
	}
	switch {
	case a.State == "void":
		alarm = fmt.Sprintf("credit %s: the authorization at counter %d had been voided, yet the card's TAC %s shows it applied", c.ID, ctr, tacHex)
	case c.State == hostapi.CreditCancelled:
		alarm = fmt.Sprintf("credit %s had been cancelled, yet the card's TAC %s shows it loaded at counter %d", c.ID, tacHex, ctr)
	}
	if _, err := tx.Exec(`UPDATE credits SET state = 'consumed', consumed_at = ?, consumed_tac = ?, consumed_by = ?, consumed_auth = ? WHERE id = ?`,
		dbTime(now), tacHex, a.Terminal, a.ID, c.ID); err != nil {
		return "", err
	}
	if _, err := tx.Exec(`UPDATE authorizations SET state = 'applied', closed = ?, tac = ? WHERE id = ?`, dbTime(now), tacHex, a.ID); err != nil {
		return "", err
	}
	detail := fmt.Sprintf("the card's load at %v counter %d was credit %s (TAC %s)", a.Purse, ctr, c.ID, tacHex)
	if err := voidOpenAt(tx, c.Card, a.Purse, ctr, a.ID, actor, detail, now); err != nil {
		return "", err
	}
	if err := sawCounter(tx, c.Card, a.Purse, uint32(ctr)+1, now); err != nil {
		return "", err
	}
	if err := addChange(tx, c.ID, hostapi.CreditConsumed, c.Card, now); err != nil {
		return "", err
	}
	if err := addLedger(tx, ledgerEntry{Time: now, Actor: actor, Event: EventConsumed, Credit: c.ID, Card: c.Card, Counter: &ctr, AmountFen: &amount, TAC: tacHex,
		Detail: fmt.Sprintf("new balance %s, loaded by terminal %s at %s", money.Format(a.OldBalance+a.Amount), a.Terminal, a.Time)}); err != nil {
		return "", err
	}
	if alarm != "" {
		return alarm, addLedger(tx, ledgerEntry{Time: now, Actor: actor, Event: EventAlarm, Credit: c.ID, Card: c.Card, Counter: &ctr, AmountFen: &amount, TAC: tacHex, Detail: alarm})
	}
	return "", nil
}

// notApplied settles an authorization the card never applied. The proof is
// a fresh INITIALIZE FOR LOAD from the calling terminal: its MAC1 must
// verify at the authorization's counter (same purse), which a card answers
// only while its counter has not moved, so the load did not happen. Then
// every open authorization of the purse at that counter is void (the new
// INIT also ended their sessions on the card) and the credit stays pending.
//
// A probe that verifies at counter+1 instead is 409 counter_mismatch: the
// card moved, the load happened, its TAC is what settles it. A probe that
// verifies at neither is 409 mac_invalid. A card already known to be past the
// counter is 409 counter_mismatch whatever the probe. When the credit's
// authorization at that counter is already void (an earlier proof, a newer
// INIT, another credit's TAC at that counter), the answer is the credit's
// state and nothing changes: there is nothing left to decide.
func (r *Rules) notApplied(ctx context.Context, term string, req hostapi.LoadCompleteRequest, now time.Time) (hostapi.LoadCompleteResponse, error) {
	var resp hostapi.LoadCompleteResponse
	random, err := hex4("probe_random", req.ProbeRandom)
	if err != nil {
		return resp, err
	}
	mac1, err := hex4("probe_mac1", req.ProbeMAC1)
	if err != nil {
		return resp, err
	}
	if err := checkAmountField("probe_old_balance_fen", req.ProbeOldBalanceFen, 0); err != nil {
		return resp, err
	}
	if err := checkAmountField("probe_amount_fen", req.ProbeAmountFen, 0); err != nil {
		return resp, err
	}
	termID, actor := terminalBytes(term), terminalActor(term)
	var refusal error
	err = r.Store.inCardTx(ctx, req.Card, func(tx *sql.Tx) error {
		resp, refusal = hostapi.LoadCompleteResponse{}, nil // a retry starts over
		c, _, serial, err := loadCredit(tx, req.CreditID, req.Card)
		if err != nil {
			return err
		}
		if c.State == hostapi.CreditConsumed {
			return conflict(hostapi.CodeCreditConsumed, "credit %s was loaded onto the card at %s (TAC %s)", c.ID, c.ConsumedAt, c.ConsumedTAC)
		}
		auths, err := queryAuths(tx, `credit = ? AND counter = ? ORDER BY id DESC`, c.ID, int64(req.Counter))
		if err != nil {
			return err
		}
		if len(auths) == 0 {
			return conflict(hostapi.CodeCounterMismatch, "credit %s has no authorization at counter %d", c.ID, req.Counter)
		}
		var target *auth
		for i, a := range auths {
			if a.State == "open" {
				target = &auths[i]
			}
		}
		if target == nil {
			// Already void (by an earlier proof, a newer INIT, or another
			// credit's TAC at this counter): nothing is left to decide.
			resp.State = c.State
			return nil
		}
		known, err := purseCounter(tx, c.Card, target.Purse)
		if err != nil {
			return err
		}
		if known > req.Counter {
			return conflict(hostapi.CodeCounterMismatch, "the card's %v counter is known to have reached %d, past %d: a load at counter %d happened; complete with its TAC (GET TRANSACTION PROVE for counter %d)",
				target.Purse, known, req.Counter, req.Counter, uint32(req.Counter)+1)
		}
		tx1 := target.Purse.LoadType()
		ok, err := r.Keys.checkLoadMAC1(serial, random, req.Counter, req.ProbeOldBalanceFen, req.ProbeAmountFen, tx1, termID, mac1)
		if err != nil {
			return badRequest("%v", err)
		}
		if !ok {
			if req.Counter < 0xFFFF {
				moved, err := r.Keys.checkLoadMAC1(serial, random, req.Counter+1, req.ProbeOldBalanceFen, req.ProbeAmountFen, tx1, termID, mac1)
				if err != nil {
					return badRequest("%v", err)
				}
				if moved {
					if err := sawCounter(tx, c.Card, target.Purse, uint32(req.Counter)+1, now); err != nil {
						return err
					}
					refusal = conflict(hostapi.CodeCounterMismatch, "the probe shows the card at counter %d, past %d: the load happened; complete it with the TAC from GET TRANSACTION PROVE for counter %d",
						req.Counter+1, req.Counter, req.Counter+1)
					return nil
				}
			}
			return conflict(hostapi.CodeMACInvalid, "probe MAC1 %s does not verify for card %s at counter %d (random %s, terminal %s)",
				hexUpper(mac1[:]), redact.CardNumber(c.Card), req.Counter, hexUpper(random[:]), term)
		}
		if err := sawCounter(tx, c.Card, target.Purse, uint32(req.Counter), now); err != nil {
			return err
		}
		resp.State = c.State
		detail := fmt.Sprintf("the card proved its %v counter is still %d (probe random %s): the load was not applied", target.Purse, req.Counter, hexUpper(random[:]))
		return voidOpenAt(tx, c.Card, target.Purse, req.Counter, 0, actor, detail, now)
	})
	if err != nil {
		return hostapi.LoadCompleteResponse{}, err
	}
	if refusal != nil {
		return hostapi.LoadCompleteResponse{}, refusal
	}
	return resp, nil
}

// alarm logs a contradiction between the card and the host's records.
func (r *Rules) alarm(msg, number, detail string) {
	if r.Logger != nil {
		r.Logger.Error(msg, "card", redact.CardNumber(number), "detail", detail)
	}
}
