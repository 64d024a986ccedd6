package daemon

import (
	"time"

	"github.com/cardd/cardd/config"
	"github.com/cardd/cardd/localapi"
)

// A tap at a self-service kiosk (mode kiosk), in the runner's order:
//
//  1. The card's number, validity and balance are read (SELECT, GET
//     BALANCE); the observers get the balance at once (the kiosk page
//     shows it).
//  2. With a host link, the Loader settles the card's unfinished loads from
//     its counter (only when the journal has one), journals the tap,
//     refuses a card on the deny list or past its expiry date, and writes
//     the card's pending top-ups onto it: the credits the sync pull cached
//     when it is fresh, else the host's list; INITIALIZE FOR LOAD, the
//     host's MAC2, the row journaled, CREDIT FOR LOAD. Without a host
//     nothing is written anywhere: such a kiosk only shows cards.
//  3. The card may leave (tap.Runner.OnLeave): the money needs it no more.
//  4. The holder and the last transactions are read (tap.ReadOptions.History,
//     on in this mode only), then the load's row is recorded done with its
//     receipt (printer.enabled); the sync loop tells the host of the load
//     (its completion is owed from the write-ahead on).
//  5. The observers are told of the tap (observers.go). A balance receipt
//     prints only when asked, through the API.
//
// With kiosk.topup.enabled, the card left on the reader may be topped up
// by phone (localapi/topup.go): the host makes the payment order, and once
// it is paid the API asks the runner to tap the card again
// (tap.Runner.LoadNow), which runs steps 1 to 5 for that card only, its
// credits asked of the host.
var kioskMode = mode{
	// A journal only for something to keep it for: rows to upload to the
	// host, or a print queue.
	journal: func(cfg *config.Config) bool { return cfg.Host.URL != "" || cfg.Printer.Enabled },
	assemble: func(d *Daemon) error {
		// The kiosk page shows the holder and the last transactions.
		d.runner.Read.History = true
		link, err := d.startHostLink(nil)
		if err != nil {
			return err
		}
		if link != nil {
			d.runner.Loader = d.newLoader(link)
			if t := d.cfg.Kiosk.Topup; t.Enabled {
				d.api.Topup = &localapi.Topup{Host: link.client, LoadNow: d.runner.LoadNow,
					Presets: t.PresetsFen(), MaxFen: int64(t.MaxFen), BalanceCap: d.cfg.Load.BalanceCapFen(),
					Wait: t.Wait, Poll: t.Poll,
					// A tap going on, then this one, then its last commit.
					LoadTimeout: 2*d.cfg.Tap.Timeout + 10*time.Second}
			}
		}
		return nil
	},
}
