package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/cardd/cardd/config"
	"github.com/cardd/cardd/internal/lockfile"
	"github.com/cardd/cardd/offline"
)

// lockRetry is how long lockStore tries a held store lock again before it
// gives up: longer than any probe of cardd doctor holds it.
var lockRetry = 2 * time.Second

// lockStore takes the store's lock for `cardd run` (offline.Lock): exit 2
// naming the holder when another daemon has it. A daemon that keeps no
// journal (used is false) still guards the .api file beside the store, but
// does not make the store's directory for that: where it cannot lock, it
// cannot write .api either, and runs unlocked as before.
func lockStore(cfg *config.Config, used bool, log *slog.Logger) (release func(), err error) {
	var l *lockfile.Lock
	var held *lockfile.HeldError
	// cardd doctor asks who holds the lock by taking it for an instant: a
	// daemon starting then must not exit 2 (systemd does not restart on 2),
	// so a held lock is tried again for a moment before it counts.
	for deadline := time.Now().Add(lockRetry); ; time.Sleep(50 * time.Millisecond) {
		if used {
			l, err = offline.Lock(cfg.Store.Path)
		} else {
			l, err = lockfile.Acquire(offline.LockPath(cfg.Store.Path))
		}
		if !errors.As(err, &held) || time.Now().After(deadline) {
			break
		}
	}
	switch {
	case errors.As(err, &held):
		holder := "another cardd"
		if held.PID > 0 {
			holder = "cardd pid " + strconv.Itoa(held.PID)
		}
		return nil, &ConfigError{Err: fmt.Errorf("store %s is in use by %s (%s): one daemon per store; stop it, or give this one its own store.path", cfg.Store.Path, holder, held.Path)}
	case err != nil && used:
		return nil, fmt.Errorf("store.path %s: %w", cfg.Store.Path, err)
	case err != nil:
		log.Debug("no store lock: this daemon keeps no journal and cannot write beside store.path", "err", err)
		return func() {}, nil
	}
	return func() { l.Release() }, nil
}

// openStore opens the journal and settles what a killed daemon left in
// intent; Close closes it. A daemon whose mode keeps no journal does not
// touch the store.
func (d *Daemon) openStore() error {
	store, err := offline.Open(d.cfg.Store.Path, d.cfg.Terminal.ID)
	if err != nil {
		return err
	}
	// Rows a killed daemon left in intent are in doubt: the card decides on
	// its next tap (money rule 3).
	if n, err := store.RecoverInterrupted(d.ctx); err != nil {
		store.Close()
		return err
	} else if n > 0 {
		d.log.Warn("journal rows of an interrupted run are in doubt; each card settles its own on its next tap", "rows", n)
	}
	d.store = store
	d.onClose(func() {
		if err := store.Close(); err != nil {
			d.log.Error("closing the journal", "err", err)
		}
	})
	d.api.Journal = store
	return nil
}

// purgeLoop deletes acknowledged journal rows and printed receipts older
// than the retention, at start and every six hours (DESIGN.md, money
// rule 5).
func purgeLoop(ctx context.Context, store *offline.Store, retention time.Duration, log *slog.Logger) {
	for {
		if n, err := store.Purge(ctx, time.Now().Add(-retention)); err != nil {
			log.Warn("purging old journal rows", "err", err)
		} else if n > 0 {
			log.Info("purged acknowledged journal rows", "rows", n, "older_than", retention)
		}
		if n, err := store.PurgeReceipts(ctx, time.Now().Add(-retention)); err != nil {
			log.Warn("purging old receipts", "err", err)
		} else if n > 0 {
			log.Info("purged printed receipts", "receipts", n, "older_than", retention)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(6 * time.Hour):
		}
	}
}
