package hostapi

import "strings"

// CloseChange tells terminals that an operator asked to close (销户) a
// card: the next tap of it at a terminal allowed to close cards debits its
// whole balance as the closing debit, whose journal row carries ID in its
// credit_id (CloseIDPrefix tells it from a load's credit).
type CloseChange struct {
	Card string `json:"card"`
	ID   string `json:"id"` // CloseID(Card)
}

// CloseIDPrefix begins the id of a card's close. A card closes once, so
// its close id is derived from its number: a terminal and the host name the
// same close without a look-up.
const CloseIDPrefix = "close-"

// CloseID is the id of card's close.
func CloseID(card string) string { return CloseIDPrefix + card }

// IsCloseID reports whether a journal row's credit_id names a close, not a
// credit: the row is a card's closing debit (a purchase) or, for a card
// that held nothing, its closing read.
func IsCloseID(id string) bool { return strings.HasPrefix(id, CloseIDPrefix) }
