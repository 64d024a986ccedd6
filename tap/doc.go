// Package tap is what happens when a card touches a reader: it opens the
// session, reads the purse with as few APDUs as the card allows, publishes the
// balance the moment it is known, and reports the outcome of every tap.
//
// A tap is a sequence of steps in one card session (in runner.go: steps,
// and a function per step); the Runner's parts (Door, Loader, Purchaser)
// say which steps run, and so make the mode:
//
//   - kiosk: read (the balance to OnBalance), then load the card's credits
//     (Loader.Apply: unfinished loads settled from the card, the tap
//     journaled, deny list and expiry checked, each credit loaded). Without
//     a host there is no Loader, and the tap only reads.
//   - POS: read, load (a Loader without a host still checks the deny list
//     and expiry), then pay the armed sale through the PSAM
//     (Purchaser.Charge); a denied or expired card pays nothing but has its
//     unfinished purchases settled (Purchaser.Settle). A card without the
//     e-purse, with Purchaser.Wallet set, is an M1 wallet: read it
//     (Purchaser.ReadM1, which settles its unfinished purchases), load
//     (Loader.ApplyM1), pay (Purchaser.ChargeM1).
//   - door: read, and decide as soon as the number is known (Door.Decide,
//     inside the read: two APDUs on most cards); a card without
//     the e-purse is decided by its UID. An e-purse card let in is then
//     loaded when there is a Loader.
//
// Whatever the mode, no money moves on a card whose number or validity
// does not read (CardRead.Transactable). The e-purse's load and purchase are
// load.go and purchase.go; the M1 wallet's, m1load.go and m1purchase.go.
package tap
