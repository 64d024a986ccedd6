// Package psamsim is a simulated PSAM (SimPSAM) and its file (SAMFile): it
// behaves like a real contact T=0 SAM, so that the terminal code of package
// psam runs unchanged against either, through the vpcd virtual reader
// (cardsim psam) or in tests. CardPurchase personalises a simulated card's
// purchase side for PSAMs of a profile.
//
// It lives apart from package psam so that terminal code, which runs in
// cardd against real PSAMs, never links a simulator.
package psamsim
