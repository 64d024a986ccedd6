package daemon

import (
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/cardd/cardd/config"
	"github.com/cardd/cardd/offline"
)

// A store lock held for an instant (cardd doctor asking who holds it) does
// not make a starting daemon exit 2: systemd does not restart on 2.
func TestLockStoreWaitsOutAProbe(t *testing.T) {
	store := filepath.Join(t.TempDir(), "cardd.db")
	probe, err := offline.Lock(store)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(300 * time.Millisecond)
		probe.Release()
	}()
	cfg := &config.Config{}
	cfg.Store.Path = store
	release, err := lockStore(cfg, true, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("lock held 300 ms by a probe: %v", err)
	}
	release()
}
