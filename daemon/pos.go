package daemon

import (
	"fmt"
	"log/slog"

	"github.com/cardd/cardd/apdu/mifare"
	"github.com/cardd/cardd/apdu/psam"
	"github.com/cardd/cardd/config"
	"github.com/cardd/cardd/money"
	"github.com/cardd/cardd/offline"
	"github.com/cardd/cardd/redact"
	"github.com/cardd/cardd/tap"
)

// A tap at a canteen POS (mode pos), in the runner's order. The cashier
// arms a sale on the Till through the local API (cardd pos charge) before
// the card comes.
//
//  1. The card's number, validity and balance are read (SELECT, GET
//     BALANCE; to the observers at once). A POS shows no holder and no
//     log: tap.ReadOptions.History is off. With a sale armed before the
//     card came, GET BALANCE is left to the purchase's INITIALIZE, which
//     answers it (tap.Runner's defersBalance, docs/modes.md).
//  2. The Loader settles the card's unfinished loads from its counter (only
//     when the journal has one), journals the tap, and refuses a card on
//     the deny list or past its expiry date; with a host link it then
//     writes the card's pending top-ups onto it, so a top-up paid in the
//     app can pay this sale.
//  3. The Purchaser settles the card's unfinished purchases from its
//     counter, then debits the armed sale through the PSAM in the reader
//     with the SAM role: daily limit (the card's log read from the newest
//     record to the first before today; PIN above it), the row journaled
//     before DEBIT FOR PURCHASE. The card may leave right after DEBIT's
//     answer (tap.Runner.OnLeave); the PSAM's check of the card's MAC2 and
//     the row done with the TAC follow once the card session is closed. A
//     card refused in 2 pays nothing, but its unfinished purchases are
//     settled.
//  4. A card with no e-purse is tried as a MIFARE Classic wallet when
//     mifare.key_file is set: its unfinished purchases settled, its top-ups
//     loaded, the sale charged, in the same order. The card may leave after
//     the last block write; a load's completion to the host follows once
//     the card session is closed.
//  5. The receipts of a load and of a sale are queued with their journal
//     rows (printer.enabled), and the observers are told (observers.go);
//     the POS app learns of the sale on the event stream.
//
// The POS has a Loader with or without a host. Without one there are no
// top-ups to load, and its Loader has no host (tap.Loader.Host nil): that
// is by design, not a missing link. The Loader is also what journals each
// tap, settles a load a previous run left in doubt, and refuses a lost
// (deny-listed) or expired card, and a POS must refuse those whether or
// not it has a host.
var posMode = mode{
	// Every sale is journaled before the card is debited (money rule 2).
	journal:  func(*config.Config) bool { return true },
	assemble: (*Daemon).assemblePOS,
}

// assemblePOS builds the till, the load and the purchase steps.
func (d *Daemon) assemblePOS() error {
	// The till exists before the API serves, so a sale can be armed as
	// soon as the API answers.
	d.api.Till = &tap.Till{MaxPurchase: d.cfg.POS.MaxPurchaseFen(), Meals: mealsOf(d.cfg, d.log)}
	link, err := d.startHostLink(nil)
	if err != nil {
		return err
	}
	d.runner.Loader = d.newLoader(link) // link nil: no host, see above
	d.runner.Purchaser = newPurchaser(d.cfg, d.store, d.api.Till, d.log)
	d.assembleVoids(link) // void.go
	sh := newShifts(d.cfg, d.store, d.store.VoidsBetween)
	if link != nil {
		sh.upload = link.syncer.Kick
	}
	d.api.Shifts = sh
	if d.cfg.POS.RequireShift {
		d.api.Till.Shift = shiftOpen(d.ctx, d.store)
	}
	// A sale whose debit a previous run never saw answered waits for its
	// card again, so the cashier cannot charge it twice.
	if doubt, err := d.store.InDoubt(d.ctx, offline.KindPurchase); err != nil {
		return err
	} else if n := len(doubt); n > 0 {
		last := doubt[n-1]
		d.api.Till.RestoreJournaled(last) // a split sale comes back split
		d.log.Warn("a purchase of the last run is in doubt: its sale waits for that card's next tap",
			"card", redact.CardNumber(last.Card), "journal", last.ID, "amount", money.Format(last.AmountFen), "in_doubt_rows", n)
	}
	if d.cfg.Mifare.KeyFile != "" {
		w, err := loadWallet(d.cfg)
		if err != nil {
			return err
		}
		d.runner.Purchaser.Wallet = &w
	}
	return nil
}

// newPurchaser wires the POS purchase step from a validated config.
func newPurchaser(cfg *config.Config, store *offline.Store, till *tap.Till, log *slog.Logger) *tap.Purchaser {
	var apps []psam.App
	for _, a := range cfg.POS.SAMAppList() {
		apps = append(apps, psam.App{FileID: a.FileID, AID: a.AID})
	}
	logFile := byte(0x18)
	if len(cfg.EPurse.LogFiles) > 0 {
		logFile = byte(cfg.EPurse.LogFiles[0])
	}
	p := &tap.Purchaser{Store: store, Till: till, SAMApps: apps, PSAMProfiles: cfg.PSAM.Profiles(), TerminalID: cfg.TerminalID(),
		DailyLimit: cfg.POS.DailyLimitFen(), LogFile: logFile, LogContinues: len(cfg.EPurse.LogFiles) == 1, Logger: log,
		CloseCards: cfg.POS.CloseCards}
	if cfg.Printer.Enabled {
		p.Receipt = purchaseReceipt(cfg)
	}
	return p
}

// loadWallet reads mifare.key_file (0600) into the M1 wallet.
func loadWallet(cfg *config.Config) (mifare.Wallet, error) {
	b, err := config.ReadSecretFile(cfg.Mifare.KeyFile)
	if err != nil {
		return mifare.Wallet{}, &ConfigError{Err: fmt.Errorf("mifare.key_file: %w", err)}
	}
	slots := mifare.KeySlotsACS
	if cfg.Mifare.SlotConvention == "nonvolatile" {
		slots = mifare.KeySlotsNonVolatile
	}
	w, err := mifare.ParseWalletFile(b, slots)
	if err != nil {
		return mifare.Wallet{}, &ConfigError{Err: fmt.Errorf("mifare.key_file %s: %w", cfg.Mifare.KeyFile, err)}
	}
	return w, nil
}
