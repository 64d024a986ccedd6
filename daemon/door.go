package daemon

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/cardd/cardd/config"
	"github.com/cardd/cardd/door"
	"github.com/cardd/cardd/offline"
	"github.com/cardd/cardd/tap"
)

// A tap at a dorm door (mode door), in the runner's order:
//
//  1. The card's number, validity and balance are read (SELECT, GET
//     BALANCE); a card with no e-purse is known by its UID. The door reads
//     no cardholder file and no log (tap.ReadOptions.History is off).
//  2. The Door decides at once, offline, from
//     the access list in force (the last one the host sent, kept in the
//     store) and the deny list: allowed, the relay opens for
//     door.relay.hold; refused, nothing is sent. Either way the decision is
//     journaled for the host.
//  3. With a host link and door.load_credits, a card let in gets its
//     pending top-ups written onto it, as at a kiosk (the Loader): the card
//     may leave after CREDIT FOR LOAD (tap.Runner.OnLeave), the row done and
//     the host told after.
//  4. The observers are told (observers.go). The host link uploads the
//     decisions and puts each access list it pulls in force at once.
var doorMode = mode{
	// Every decision is journaled, and the access list is kept there.
	journal:  func(*config.Config) bool { return true },
	assemble: (*Daemon).assembleDoor,
}

// assembleDoor builds the door step, the host link that feeds it its lists,
// and the load step when the door loads top-ups.
func (d *Daemon) assembleDoor() error {
	step, apply, stop, err := newDoor(d.ctx, d.cfg, d.store, d.log)
	if err != nil {
		return err
	}
	d.onClose(stop)
	d.runner.Door = step
	link, err := d.startHostLink(apply)
	if err != nil {
		return err
	}
	if link != nil && d.cfg.Door.LoadCredits {
		d.runner.Loader = d.newLoader(link)
	}
	return nil
}

// doorConfig is the door package's view of door.*; its Validate names the
// keys.
func doorConfig(cfg *config.Config) door.Config {
	r := cfg.Door.Relay
	return door.Config{Groups: cfg.Door.Groups,
		Relay: door.RelayConfig{Port: r.Port, Baud: r.Baud, Open: r.Open, Close: r.Close, Hold: r.Hold}}
}

// newDoor wires door mode: the relay (locked at start, in case a killed
// daemon left it open), the access list last pulled, and the step that
// decides each tap. stop locks the door and releases the port.
func newDoor(ctx context.Context, cfg *config.Config, store *offline.Store, log *slog.Logger) (*tap.Door, func(version string, body []byte) error, func(), error) {
	dc := doorConfig(cfg)
	relay, err := door.NewRelay(dc.Relay, log)
	if err != nil {
		return nil, nil, nil, &ConfigError{Err: err}
	}
	if err := relay.Lock(ctx); err != nil {
		log.Warn("locking the door at start; the relay is retried on the next tap", "port", dc.Relay.Port, "err", err)
	}
	d := &tap.Door{Store: store, Relay: relay, Families: cfg.Door.CardFamilies, Logger: log}
	apply := func(version string, body []byte) error {
		list, err := door.ParseList(body)
		if err != nil {
			return err
		}
		ix, err := door.NewIndex(list, dc.Groups)
		if err != nil {
			return err
		}
		if missing := ix.MissingGroups(); len(missing) > 0 {
			log.Warn("door.groups names groups the access list does not have", "groups", missing, "version", version)
		}
		d.SetList(ix)
		log.Info("access list in force", "version", version, "cards", ix.Len())
		return nil
	}
	version, body, err := store.AccessList(ctx)
	if err != nil {
		relay.Close()
		return nil, nil, nil, err
	}
	if body != nil {
		if err := apply(version, body); err != nil {
			log.Error("the stored access list is refused; every card is refused until the host sends one", "version", version, "err", err)
		}
	} else {
		log.Warn("no access list yet: every card is refused until the host sends one")
	}
	stop := func() {
		if err := relay.Close(); err != nil {
			log.Error("locking the door at stop", "err", fmt.Sprint(err))
		}
	}
	return d, apply, stop, nil
}
