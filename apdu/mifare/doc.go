// Package mifare speaks to MIFARE Classic 1K (M1) wallet cards through the
// PC/SC storage-card pseudo-APDUs of the reader (docs/epurse.md,
// "MIFARE Classic wallet"): the terminal side (UID, LoadKey, Authenticate,
// ReadBlock, WriteBlock, WriteTrailer and the Wallet on top of them). The
// simulated card is package mifaresim (apdu/mifare/sim), which terminal code
// never imports.
//
// # APDUs
//
//	FF CA 00 00 00                      UID
//	FF 82 P1 slot 06 key                LOAD KEYS (P1 00 volatile, 20 non-volatile: KeySlotConvention)
//	FF 86 00 00 05 01 00 blk 60|61 slot GENERAL AUTHENTICATE with key A or B
//	FF B0 00 blk 10                     READ BINARY, one block
//	FF D6 00 blk 10 data(16)            UPDATE BINARY, one block
//
// 9000 is success, 6300 failure: ErrAuth to an authentication, else
// ErrOperationFailed. The wallet uses only these, the path every PC/SC 2.07
// reader has. The simulated card (mifaresim) also answers ACS's value
// operations, FF D7 (store, increment, decrement, restore) and FF B1 (read
// value).
//
// # The wallet
//
// The balance, in fen, is a value block (EncodeValue) in the wallet's sector,
// and a backup value block in the same sector holds a copy. The address
// byte of both holds the wallet's transaction sequence (State.Seq), which
// every change increments, mod 256, in the same block write as the balance:
// so a change whose answer was lost is settled from the card by balance and
// sequence together (Change.Happened), and a wallet that was changed back
// to the same balance elsewhere meanwhile (A-B-A) is not mistaken for one
// that was not changed. The address byte is the application's to use (the
// card's value operations keep it, and only check its redundancy). The sector's
// access bits must be a wallet's (WalletAccess, 08 77 8F: key A reads and
// decrements, key B also writes and increments, key B is secret): every
// operation reads the trailer first and refuses another setting with
// ErrNotWallet. Read authenticates with key A; Decrement, Increment and any
// repair with key B, because plain UPDATE BINARY of a value block needs key
// B. APDUs per operation: a read is 5 (load key, authenticate, trailer,
// value block, backup), a change 7 (the same with key B, then two writes);
// preloaded keys save the load.
//
// Write order of a change from old to new:
//
//  1. repair, if the blocks disagree, so that value block = backup = old;
//  2. write the value block = new, at sequence + 1;
//  3. write the backup = the same.
//
// Repair rule, applied by every Read and before every change:
//
//   - value block valid (and not negative): it is the balance and sequence;
//     a backup that is invalid or different is rewritten from it;
//   - value block invalid, backup valid: the backup is the balance; the value
//     block is restored from it;
//   - neither valid: ErrCorrupt, nothing is written.
//
// Why this is safe: the backup is only ever written after the value block
// holds the balance it is given, so a valid value block is never older than
// the backup. A tear in step 2 leaves the value block old (the change did not
// happen), new (it did) or invalid (restored to old from the backup, which
// holds old); a tear in step 3 leaves a valid new value block (it did). A
// tear in a repair leaves the same choice with the same balance. So after a
// tear the next Read gives the old or the new balance, never another.
//
// A change reports ErrOutcomeUnknown only when the step 2 write got no 9000;
// the caller resolves it from the card's next Read with Change.Happened. Once
// step 2 is answered the change has happened, even if step 3 fails
// (Change.BackupStale). A WriteAhead callback runs before the first write,
// for the journal row of DESIGN.md's money rule 2.
package mifare
