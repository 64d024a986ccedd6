// Package hostapi is the contract between a terminal (package sync) and the
// central host (cmd/cardhost): the endpoints, their JSON bodies, the error
// shape and the request signature. Both sides import it, so they cannot drift
// apart; docs/upstream-api.md explains it for people writing another host.
//
// Every request is a POST with a JSON body, signed with HMAC-SHA256 under the
// terminal's secret (see Sign). Amounts are int64 fen; byte strings (MACs,
// TACs, randoms) are upper-case hex; times are the terminal's wall clock as
// "20060102150405", the form that goes into the card's MAC inputs.
package hostapi

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Endpoint paths.
const (
	PathPull          = "/v1/pull"           // pending credits, deny-list and class changes since a cursor
	PathCardCredits   = "/v1/card/credits"   // pending credits of one card, asked on tap
	PathLoadAuthorize = "/v1/load/authorize" // the card's INIT FOR LOAD answer in, MAC2 out
	PathLoadComplete  = "/v1/load/complete"  // TAC (or proof of non-application) in
	PathJournal       = "/v1/journal"        // journal rows up, acked by id
	PathHeartbeat     = "/v1/heartbeat"      // versions, queue depth, device state; host time back
	PathAccess        = "/v1/access"         // the door access list, when it changed
)

// TimeLayout is how date and time travel: exactly the BCD digits the card
// gets in CREDIT FOR LOAD, so host and card MAC the same instant.
const TimeLayout = "20060102150405"

// Error is the body of every non-2xx answer.
type Error struct {
	// Code is stable and machine-readable: one of the Code* constants.
	Code string `json:"code"`
	// Reason says what was wrong, for a person reading a log.
	Reason string `json:"reason"`
}

// Error codes.
const (
	CodeUnauthorized    = "unauthorized"     // 401: unknown terminal, bad signature, stale timestamp, reused nonce
	CodeBadRequest      = "bad_request"      // 400: malformed body or field
	CodeNotFound        = "not_found"        // 404: unknown card or credit
	CodeCreditConsumed  = "credit_consumed"  // 409: the credit is already on the card
	CodeCreditPending   = "credit_in_flight" // 409: authorized at a counter the card has since passed: complete it with the card's proof first
	CodeMACInvalid      = "mac_invalid"      // 409: the card's MAC1 does not verify
	CodeTACInvalid      = "tac_invalid"      // 409: the TAC does not verify
	CodeBalanceCap      = "over_balance_cap" // 409: the load would take the card over its cap
	CodeCardDenied      = "card_denied"      // 409: the card is on the deny list
	CodeCounterMismatch = "counter_mismatch" // 409: the proof's counter does not fit the authorization
	// CodeCreditBusy (409): another terminal holds a fresh authorization of
	// the credit (or of the card at this counter): the card may be at it
	// right now. The credit waits; try again on the card's next tap.
	CodeCreditBusy = "credit_busy"
	// CodeCreditNotYet (409): a subsidy's pick-up window has not begun; it
	// waits for a tap from its not_before on.
	CodeCreditNotYet = "credit_not_yet"
	// CodeCreditPurse (409): a subsidy is for the other purse of the card.
	CodeCreditPurse = "credit_wrong_purse"
	// CodeCreditUnapproved (409): the credit is above the host's approval
	// threshold and no second operator has approved it yet; it waits.
	// Terminals never pull such a credit, so they meet this only by
	// naming its id unasked.
	CodeCreditUnapproved = "credit_unapproved"
	// CodeBadRow (400, per journal row): the row is malformed.
	CodeBadRow = "bad_row"
	// CodeRowSettled (409, per journal row): the host holds this id done or
	// failed and the copy sent differs (a settled row is never rewritten),
	// or holds it unknown and the copy changes more than its outcome.
	CodeRowSettled = "row_settled"
)

// AlarmPrefix starts the detail of a journal row whose terminal raises an
// alarm about it (a card whose MAC2 the PSAM refused, say): the host copies
// such a row into the card's ledger as an alarm, for a person to look at.
const AlarmPrefix = "ALARM:"

// PurseM1 names the value block of a MIFARE Classic wallet where the
// e-purse names EP or ED: in load requests and journal rows.
const PurseM1 = "M1"

// UIDCardPrefix starts the id of a card known by its UID alone (an M1
// wallet, or any card at a door): "uid:" and the UID in upper-case hex.
const UIDCardPrefix = "uid:"

// UIDCard is the card id of a card known by its UID.
func UIDCard(uid []byte) string {
	const digits = "0123456789ABCDEF"
	out := []byte(UIDCardPrefix)
	for _, b := range uid {
		out = append(out, digits[b>>4], digits[b&0x0F])
	}
	return string(out)
}

// MinCardDigits and MaxCardDigits bound a card number: the digits printed
// on the card, as its issuer numbers it. Campus cards have 16, T-Union cards
// (JT/T 978) 19; other issuers' range from 8 to 20.
const (
	MinCardDigits = 8
	MaxCardDigits = 20
)

// CardIDError says why a string is not a card id. Reason does not repeat
// the id, so a caller that must mask it (a log, a journal refusal) can
// still say why; Error names it in full for the one who typed it.
type CardIDError struct {
	ID     string
	Reason string
}

// Error names the id in full, quoted, and the reason.
func (e *CardIDError) Error() string { return fmt.Sprintf("card %+q: %s", e.ID, e.Reason) }

// CheckCardNumber accepts a card number: MinCardDigits to MaxCardDigits
// ASCII decimal digits, nothing else. It normalises nothing: a space, a
// sign or a digit of another script (Arabic-Indic, full-width) is refused
// rather than read as a digit, so that one card has one spelling and the
// deny list cannot be dodged by writing the number differently.
func CheckCardNumber(n string) error {
	if reason := numberReason(n); reason != "" {
		return &CardIDError{ID: n, Reason: reason}
	}
	return nil
}

// numberReason is why n is not a card number, or "".
func numberReason(n string) string {
	const want = "want %d to %d decimal digits 0-9"
	if n == "" {
		return fmt.Sprintf("empty; "+want, MinCardDigits, MaxCardDigits)
	}
	for i, c := range n {
		if c < '0' || c > '9' {
			return fmt.Sprintf("%+q at byte %d is not a decimal digit 0-9; "+want, c, i, MinCardDigits, MaxCardDigits)
		}
	}
	if len(n) < MinCardDigits || len(n) > MaxCardDigits {
		return fmt.Sprintf("%d digits; "+want, len(n), MinCardDigits, MaxCardDigits)
	}
	return ""
}

// CheckCardID accepts the two forms a card id takes: a card number
// (CheckCardNumber), or UIDCardPrefix and a 4-, 7- or 10-byte ISO 14443 UID
// in upper-case hex. Errors are *CardIDError.
func CheckCardID(id string) error {
	if rest, ok := strings.CutPrefix(id, UIDCardPrefix); ok {
		uid := &CardIDError{ID: id, Reason: "want " + UIDCardPrefix + " and a UID of 4, 7 or 10 bytes in upper-case hex"}
		if n := len(rest); n != 8 && n != 14 && n != 20 {
			return uid
		}
		for _, c := range rest {
			if !('0' <= c && c <= '9' || 'A' <= c && c <= 'F') {
				return uid
			}
		}
		return nil
	}
	if reason := numberReason(id); reason != "" {
		return &CardIDError{ID: id, Reason: reason + " (or " + UIDCardPrefix + " and a UID)"}
	}
	return nil
}

// PullRequest asks for what changed since Cursor ("" = from the start).
type PullRequest struct {
	Cursor string `json:"cursor"`
	Limit  int    `json:"limit,omitempty"` // at most this many changes; 0 = the host's default
	// WaitMS, when above 0, asks the host to hold the request while nothing
	// follows the cursor: it answers as soon as a change arrives, or empty
	// after WaitMS milliseconds (or its own cap, if shorter). 0 answers at
	// once, as a plain poll.
	WaitMS int `json:"wait_ms,omitempty"`
}

// PullResponse carries changes in the order they happened. Apply them, then
// ask again with NextCursor; More says whether more are waiting now.
type PullResponse struct {
	Credits []Credit     `json:"credits"`
	Deny    []DenyChange `json:"deny"`
	// Classes are changes of the cards' identity classes, in the order
	// they happened (a host older than classes leaves it out).
	Classes []ClassChange `json:"classes"`
	// CardProducts are changes of the cards' products, in the order they
	// happened; Products is the host's whole product list as of this
	// answer, so an edited cap or validity reaches the terminal on its
	// next pull (a host older than products leaves both out).
	CardProducts []ProductChange `json:"card_products,omitempty"`
	Products     []Product       `json:"products,omitempty"`
	// Closes are cards an operator asked to close (销户), in the order
	// asked (a host older than closing leaves it out).
	Closes     []CloseChange `json:"closes,omitempty"`
	NextCursor string        `json:"next_cursor"`
	More       bool          `json:"more"`
	// Held says the host honours WaitMS: it would have held this request
	// while nothing followed the cursor, so the terminal may ask again at
	// once. A host that leaves it out (false) does not hold; the terminal
	// keeps its pull interval rather than poll in a tight loop.
	Held bool `json:"held,omitempty"`
}

// Credit is money paid for a card that waits to be loaded onto it.
type Credit struct {
	ID        string `json:"id"`   // stable, unique at the host
	Card      string `json:"card"` // a card id: see CheckCardID
	AmountFen int64  `json:"amount_fen"`
	Note      string `json:"note,omitempty"` // "wechat", "subsidy", …
	Created   string `json:"created"`        // RFC 3339
	// State is "pending" or, in a pull, "consumed"/"cancelled" for a credit
	// a terminal should drop from its cache.
	State string `json:"state"`
	// A subsidy (补助) is bound to one purse and a pick-up window: a
	// terminal loads it onto that purse only, from NotBefore until
	// Expires, and the host refuses it otherwise. Other credits leave
	// these empty and load onto the purse the terminal chose.
	Kind      string `json:"kind,omitempty"`       // CreditSubsidy, or "" for money paid
	Subsidy   string `json:"subsidy,omitempty"`    // the batch id
	Purse     string `json:"purse,omitempty"`      // "EP" or "ED"
	NotBefore string `json:"not_before,omitempty"` // RFC 3339
	Expires   string `json:"expires,omitempty"`    // RFC 3339
	// CardProduct is, in a pull, the card's product (卡种) as the host
	// knows it when the credit changed: its cap holds the load (see
	// PullResponse.Products). "" from a host older than products.
	CardProduct string `json:"card_product,omitempty"`
}

// CreditSubsidy is the Kind of a subsidy's credit.
const CreditSubsidy = "subsidy"

// Credit states.
const (
	CreditPending   = "pending"
	CreditConsumed  = "consumed"
	CreditCancelled = "cancelled"
)

// DenyChange adds a card to the deny list or lifts it.
type DenyChange struct {
	Card   string `json:"card"`
	Denied bool   `json:"denied"`
	Reason string `json:"reason,omitempty"` // "lost", "stolen", …
}

// CardCreditsRequest asks for the pending credits of one card.
type CardCreditsRequest struct {
	Card string `json:"card"`
}

// CardCreditsResponse lists them, oldest first; Denied reports the deny list.
type CardCreditsResponse struct {
	Credits []Credit `json:"credits"`
	Denied  bool     `json:"denied"`
	Reason  string   `json:"reason,omitempty"`
	// M1Open is an M1 wallet's load the host has authorized and not heard
	// the end of (at most one per wallet). Any terminal that reads the
	// wallet before changing it can tell from its balance and sequence
	// whether it happened, and complete it under its Ref.
	M1Open *M1OpenLoad `json:"m1_open,omitempty"`
}

// M1OpenLoad is an open authorization of an M1 wallet's load.
type M1OpenLoad struct {
	CreditID      string `json:"credit_id"`
	Ref           string `json:"ref"`
	Terminal      string `json:"terminal"`
	OldBalanceFen int64  `json:"old_balance_fen"`
	AmountFen     int64  `json:"amount_fen"`
	Seq           uint8  `json:"seq"` // the wallet's sequence before the load
}

// LoadAuthorizeRequest carries the card's answer to INITIALIZE FOR LOAD for
// one credit (spec "Commands"). The host checks MAC1 with the card's load key
// and answers MAC2 for this counter only.
//
// For an M1 wallet (Purse PurseM1, Card a UIDCard) there is no MAC1: the
// request holds the balance and the transaction sequence (OnlineCounter)
// the terminal read, the time and Ref, and the host authorizes the credit
// to this terminal at that balance (MAC2 empty).
type LoadAuthorizeRequest struct {
	CreditID      string `json:"credit_id"`
	Card          string `json:"card"`
	Purse         string `json:"purse"` // "EP" or "ED"; PurseM1 for an M1 wallet
	AmountFen     int64  `json:"amount_fen"`
	OldBalanceFen int64  `json:"old_balance_fen"`
	OnlineCounter uint16 `json:"online_counter"`
	KeyVersion    byte   `json:"key_version"`
	AlgID         byte   `json:"alg_id"`
	Random        string `json:"random"` // 4 bytes hex
	MAC1          string `json:"mac1"`   // 4 bytes hex
	// Time is the instant the terminal will send in CREDIT FOR LOAD.
	Time string `json:"time"` // TimeLayout
	// Ref is, for an M1 wallet, the terminal's own name for this
	// authorization (16 hex digits, random), journaled before it is asked
	// for: the completion names it back. The same Ref again is a retry.
	Ref string `json:"ref,omitempty"`
}

// LoadAuthorizeResponse authorizes exactly one CREDIT FOR LOAD.
type LoadAuthorizeResponse struct {
	MAC2 string `json:"mac2"` // 4 bytes hex
	Time string `json:"time"` // echoes the request: the MAC2 covers it
	// Credits are the card's other pending credits as the host knows them
	// when it answers (not the one authorized): the terminal loads them on
	// the same tap, and knows them next time, without asking for the
	// card's credits again. A host that knows the field always sends it,
	// [] when there are none, so that an empty list tells the terminal to
	// drop what its cache still holds for the card. Absent (nil) from an
	// older host: the terminal then goes by its own cache.
	Credits []Credit `json:"credits"`
}

// LoadCompleteRequest closes an authorization: either the card's TAC (the
// load happened; from CREDIT FOR LOAD or GET TRANSACTION PROVE), or, with
// NotApplied, proof that it did not: a fresh INIT FOR LOAD whose MAC1
// verifies at the same counter the authorization was for.
type LoadCompleteRequest struct {
	CreditID string `json:"credit_id"`
	Card     string `json:"card"`
	// Counter is the online counter the authorization was for.
	Counter uint16 `json:"counter"`
	TAC     string `json:"tac,omitempty"` // 4 bytes hex, when applied

	// Purse is PurseM1 for an M1 wallet's load, else empty.
	Purse string `json:"purse,omitempty"`
	// Ref is, for an M1 wallet, the LoadAuthorizeRequest.Ref of the
	// authorization this completion closes: a late or repeated completion
	// closes only the authorization it is about.
	Ref string `json:"ref,omitempty"`
	// BalanceFen is, for an M1 wallet, the balance the wallet holds after
	// the load (applied) or still holds (NotApplied): the terminal's signed
	// word, since the card proves nothing.
	BalanceFen int64 `json:"balance_fen,omitempty"`

	NotApplied bool `json:"not_applied,omitempty"`
	// The fresh INIT FOR LOAD answer, when NotApplied.
	ProbeOldBalanceFen int64  `json:"probe_old_balance_fen,omitempty"`
	ProbeRandom        string `json:"probe_random,omitempty"`
	ProbeMAC1          string `json:"probe_mac1,omitempty"`
	ProbeAmountFen     int64  `json:"probe_amount_fen,omitempty"`
}

// LoadCompleteResponse reports the credit's state after the call.
type LoadCompleteResponse struct {
	State string `json:"state"` // CreditConsumed or CreditPending
}

// JournalRow is one card operation as the terminal journaled it. ID is
// permanent: terminal id + "-" + local sequence, so an upload sent twice is
// stored once.
type JournalRow struct {
	ID         string `json:"id"`
	Kind       string `json:"kind"`  // "read", "load", "purchase", "access", "recovery"
	State      string `json:"state"` // "done", "failed" or "unknown": a row in intent stays at the terminal
	Card       string `json:"card"`
	Purse      string `json:"purse,omitempty"`
	Counter    uint16 `json:"counter"`
	BalanceFen int64  `json:"balance_fen"` // before the operation
	AmountFen  int64  `json:"amount_fen"`
	CreditID   string `json:"credit_id,omitempty"`
	TAC        string `json:"tac,omitempty"`
	// TermSerial is a purchase's terminal transaction serial (the PSAM's),
	// which its TAC covers.
	TermSerial uint32 `json:"term_serial,omitempty"`
	// PSAMTerminal is, for an e-purse purchase, the terminal id of the
	// PSAM it was made with (12 upper-case hex digits), which its TAC
	// covers: with it the host verifies the TAC. Optional: a terminal
	// that journaled the sale before it kept the id sends none, and a
	// row stored without it is not changed by a later copy with it.
	PSAMTerminal string `json:"psam_terminal,omitempty"`
	Detail       string `json:"detail,omitempty"`
	Time         string `json:"time"` // RFC 3339
}

// JournalRequest uploads a batch of rows.
type JournalRequest struct {
	Rows []JournalRow `json:"rows"`
}

// JournalResponse answers a batch row by row: Acked lists the ids the host
// stored or already held exactly so; Refused the rows it will never take as
// sent. Every row of the batch is in exactly one of them. A refused row is
// not worth sending again unchanged.
type JournalResponse struct {
	Acked   []string         `json:"acked"`
	Refused []JournalRefusal `json:"refused"`
}

// JournalRefusal is one refused row of a batch.
type JournalRefusal struct {
	// Index is the row's position in the batch, from 0: it names even a row
	// whose id is missing or repeated.
	Index  int    `json:"index"`
	ID     string `json:"id"`
	Status int    `json:"status"` // 400 (CodeBadRow) or 409 (CodeRowSettled)
	Code   string `json:"code"`
	Reason string `json:"reason"`
}

// HeartbeatRequest tells the host how the terminal is.
type HeartbeatRequest struct {
	Version    string            `json:"version"`
	QueueDepth int               `json:"queue_depth"`
	Readers    []string          `json:"readers"`
	Printer    string            `json:"printer,omitempty"`
	Extra      map[string]string `json:"extra,omitempty"`
}

// HeartbeatResponse gives the host's clock, for the terminal's skew check.
type HeartbeatResponse struct {
	Time string `json:"time"` // RFC 3339, UTC
}

// AccessRequest asks for the door access list; Version is the one the
// terminal holds ("" for none).
type AccessRequest struct {
	Version string `json:"version"`
}

// AccessResponse answers AccessRequest: List is sent only when Changed, that
// is when the host's version differs from the terminal's. The list's JSON is
// package door's List. Version "" means the host has no list.
type AccessResponse struct {
	Version string          `json:"version"`
	Changed bool            `json:"changed"`
	List    json.RawMessage `json:"list,omitempty"`
}
