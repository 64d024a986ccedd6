// Package mifaresim is a simulated MIFARE Classic 1K card (SimCard) and its
// file (CardFile): it answers the PC/SC storage-card pseudo-APDUs that
// package mifare sends as a reader holding the card would, enforcing the
// sector keys and access bits of the datasheet, for the vpcd virtual reader
// (cardsim m1) and for tests. Every write is saved before the card answers.
//
// It lives apart from package mifare so that terminal code, which runs in
// cardd against real readers, never links a simulator or its transport
// (reader/vpcd).
//
// # Tearing the simulated card
//
// SimCard.TearNextWriteAt makes a chosen later write leave its block
// corrupt, old or new, and the card leave the field: Transmit returns an
// error wrapping ErrTorn (and so vpcd.ErrTorn) until Reset.
package mifaresim
