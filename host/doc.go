// Package host is the reference central host of cardd: the upstream API the
// terminals call (Handler, over the contract of package hostapi), the money
// rules of an online load (Rules), and the SQLite store behind them (Store):
// terminals and their secrets, issued cards, credits waiting to be loaded,
// their authorizations, the deny list, the change feed, uploaded journal
// rows, spent nonces and the ledger of every credit's fate.
//
// The issuer master keys live in a Keys, the stand-in for a production
// HSM: they are read from a 0600 file, never leave it, never print, and
// never reach a terminal (DESIGN.md, money rule 6). Amounts are int64 fen.
//
// A host directory holds DBFile and MastersFile; cmd/cardhost wires this
// package to its command line.
package host
