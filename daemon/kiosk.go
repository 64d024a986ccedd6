package daemon

import "github.com/cardd/cardd/config"

// A tap at a self-service kiosk (mode kiosk), in the runner's order:
//
//  1. The card is read (tap.ReadPurse): number and validity, then the
//     balance, which the observers get at once (the kiosk page shows it),
//     then the holder and the last transactions.
//  2. With a host link, the Loader journals the tap, settles the card's
//     unfinished loads from its counter, refuses a card on the deny list or
//     past its expiry date, and writes the card's pending top-ups onto it,
//     each journaled before the card is changed (with its receipt when
//     printer.enabled). Without a host nothing is written anywhere: such a
//     kiosk only shows cards.
//  3. The observers are told of the tap (observers.go). A balance receipt
//     prints only when asked, through the API.
var kioskMode = mode{
	// A journal only for something to keep it for: rows to upload to the
	// host, or a print queue.
	journal: func(cfg *config.Config) bool { return cfg.Host.URL != "" || cfg.Printer.Enabled },
	assemble: func(d *Daemon) error {
		link, err := d.startHostLink(nil)
		if err != nil {
			return err
		}
		if link != nil {
			d.runner.Loader = d.newLoader(link)
		}
		return nil
	},
}
