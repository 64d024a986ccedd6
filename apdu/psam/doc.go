// Package psam speaks to the PBOC-style PSAM (purchase secure access module,
// JR/T 0025 "PSAM卡") that a canteen POS keeps in its reader's second slot:
// the terminal side (Open, TerminalID, InitForPurchase, VerifyMAC2). The
// simulated PSAM is package psamsim (apdu/psam/sim), which terminal code
// never imports.
//
// In an e-purse purchase the PSAM holds the issuer's purchase master key
// (DPK). It diversifies it with the card's application serial, derives the
// session key from the card's random and offline counter and its own terminal
// transaction serial, computes MAC1 (which authorizes the card's debit) and
// later checks the card's MAC2 (which proves the debit). The terminal never
// sees a key. The crypto is apdu/epurse's; this package only moves its
// inputs and outputs over APDUs. docs/psam.md lists every APDU and the order
// of a purchase across card and PSAM.
//
// Status words come back as the apdu package's typed errors, wrapped with
// context, so callers test them with errors.Is: a refused MAC2 is
// apdu.ErrMACInvalid, a MAC2 check without its MAC1 is
// apdu.ErrConditionsOfUse. Money is int64 fen, checked to fit the 4-byte
// field before it is encoded.
package psam
