// Package epursesim is a simulated e-purse card (SimCard) and its file
// (CardFile): a card that answers the APDUs of docs/epurse.md as a real one
// does, so that the terminal code of package epurse, and the daemon above
// it, run unchanged against it through the vpcd virtual reader (cardsim) or
// in tests. Every change of money is saved to the card file before the card
// answers. SeedHistory gives a new card a past of loads and purchases.
//
// It lives apart from package epurse so that terminal code, which runs in
// cardd against real cards, never links a simulator.
package epursesim
