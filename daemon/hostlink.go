package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/cardd/cardd/config"
	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/internal/buildinfo"
	"github.com/cardd/cardd/metrics"
	"github.com/cardd/cardd/offline"
	hostsync "github.com/cardd/cardd/sync"
	"github.com/cardd/cardd/tap"
)

// startHostLink starts the sync loops and gives the runner its on-tap
// loader. Without a host there is nothing to load.
func startHostLink(ctx context.Context, cfg *config.Config, log *slog.Logger, runner *tap.Runner, store *offline.Store, mets *metrics.Metrics, printer func() string, onAccess func(string, []byte) error) (stop func(), err error) {
	secret, err := config.ReadSecretFile(cfg.Host.SecretFile)
	if err != nil {
		return nil, &ConfigError{Err: fmt.Errorf("host.secret_file: %w", err)}
	}
	client := &hostsync.Client{BaseURL: cfg.Host.URL, TerminalID: cfg.Terminal.ID, Secret: secret,
		HTTP: &http.Client{Timeout: 10 * time.Second, Transport: mets.Transport(nil)}}
	syncer := &hostsync.Syncer{Client: client, Store: store, Logger: log,
		Heartbeat: func() hostapi.HeartbeatRequest {
			hb := hostapi.HeartbeatRequest{Version: buildinfo.String(), Printer: printer()}
			if n, err := store.ReceiptsWaiting(ctx); err == nil {
				hb.Extra = map[string]string{"receipts_waiting": strconv.Itoa(n)}
			}
			return hb
		}, OnAccessList: onAccess}
	syncer.Start(ctx)
	runner.Loader = &tap.Loader{Store: store, Host: client, TerminalID: cfg.TerminalID(),
		BalanceCap: cfg.Load.BalanceCapFen(), Logger: log}
	runner.OnTap = func(tap.Result) { syncer.Kick() }

	purgeCtx, cancelPurge := context.WithCancel(ctx)
	purged := make(chan struct{})
	go func() {
		defer close(purged)
		purgeLoop(purgeCtx, store, cfg.Store.Retention, log)
	}()
	return func() {
		cancelPurge()
		<-purged
		syncer.Stop()
	}, nil
}
