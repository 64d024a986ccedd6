// Package epurse speaks the PBOC-style electronic purse (EP) and electronic
// deposit (ED) dialect of campus and city CPU cards, as written down in
// docs/epurse.md: the terminal side (Select, GetBalance, the log, load
// and purchase) and the 3DES/DES cryptography the terminal, the host and the
// simulated card share. The simulated card is package epursesim
// (apdu/epurse/sim), which terminal code never imports.
//
// Money is int64 fen everywhere; on the wire it is a 4-byte big-endian
// unsigned integer, so every amount is checked to lie in 0..MaxAmount before
// it is encoded. Status words come back as the apdu package's typed errors,
// wrapped with context, so callers test them with errors.Is.
//
// Cards store dates and times as BCD without a time zone. Times read from a
// card are returned as time.Time values in time.UTC whose fields are the
// terminal's wall clock at the moment of the transaction; times written to a
// card are encoded from the fields of the time.Time as given, in its own
// location. Whoever computes a MAC over a date and time (host or PSAM) and the
// terminal that sends them must therefore use the same time.Time value.
package epurse
