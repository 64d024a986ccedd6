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
//     journaled, deny list and expiry checked, each credit loaded: the
//     cached ones when the sync pull is fresh, else the host's), then the
//     history. Without a host there is no Loader, and the tap only reads.
//     A card left on the reader is tapped again on request (Runner.LoadNow,
//     loadnow.go: a top-up paid at the kiosk): the same steps, for the
//     same card number only, asking the host for its credits.
//   - POS: read, load (a Loader without a host still checks the deny list
//     and expiry), then pay the armed sale through the PSAM
//     (Purchaser.Charge); a denied or expired card pays nothing but has its
//     unfinished purchases settled (Purchaser.Settle). A card without the
//     e-purse, with Purchaser.Wallet set, is an M1 wallet: read it
//     (Purchaser.ReadM1, which settles its unfinished purchases), load
//     (Loader.ApplyM1: each credit journaled, authorized, then written by
//     the value block and its backup, whose 9000s are the wallet's word:
//     it has no TAC), pay (Purchaser.ChargeM1). The card may leave after
//     the last block write; a load's row done and its completion follow
//     after the card, as an e-purse load's, except that a sale on the same
//     tap records the load done before its own write-ahead (the wallet's
//     balance and sequence settle one unrecorded row, not two).
//   - door: read, and decide as soon as the number is known (Door.Decide,
//     inside the read: two APDUs on most cards); a card without
//     the e-purse is decided by its UID. An e-purse card let in is then
//     loaded when there is a Loader.
//
// Every mode reads the card's number, validity and balance first (SELECT,
// GET BALANCE): that is all the money needs. A POS tap of a sale armed
// before the card came reads no balance (Runner.defersBalance): the
// purchase's INITIALIZE answers it, and OnBalance is told after the
// money step; so, with no rule that needs the card's log, the card is
// sent SELECT, INITIALIZE and DEBIT. Such a tap still reads the balance
// first for an unfinished row of the card to settle, and after a refusal
// that came before INITIALIZE, to show it. The money step then runs
// (INITIALIZE, the write-ahead row, CREDIT or DEBIT), and right after its
// last card command comes the leave point: Result.ToLeave and CardAPDUs
// are taken there and Runner.OnLeave is told, since the card may go. The
// cardholder file and the log are read after it, only with
// ReadOptions.History (the kiosk page, cardd scan and dump show them; a
// POS and a door do not), and a POS's daily limit reads only the log
// records of today. What needs the card no more (afterCard: the PSAM's
// MAC2 check, the row done with its receipt, a load's completion to the
// host, an M1 wallet's load included) runs once the card session is closed; a crash before it leaves the
// write-ahead row in intent, which the card's next tap settles from its
// counter, as a crash right after the card's answer always did. A tap
// without a money step leaves when its last command is answered. The
// PSAM's connection is kept between purchases, and its set-up (its
// application, terminal id and key index) done once per PSAM session
// (samlink.go).
//
// A card on the deny list is refused in every mode that has a Loader; when
// the Loader can ask the host (Loader.BlockHost), the card's e-purse
// application is then blocked on the chip, in the same card session
// (block.go: GET CHALLENGE, the host's MAC over the challenge, APPLICATION
// BLOCK), after a POS has settled its unfinished purchases. Every terminal
// then refuses it, lists or no lists: its SELECT answers 6283, and the tap
// ends application_blocked ("card blocked", 卡已锁定) before any money step.
// A host out of reach leaves the card to be blocked on a later tap.
//
// Whatever the mode, no money moves on a card whose number or validity
// does not read (CardRead.Transactable). The e-purse's load and purchase are
// load.go and purchase.go; the M1 wallet's, m1load.go and m1purchase.go.
package tap
