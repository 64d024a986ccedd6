package daemon

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/cardd/cardd/config"
	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/internal/buildinfo"
	hostsync "github.com/cardd/cardd/sync"
)

// hostLink is the daemon's link to the host: the signed client a tap's load
// asks, and the loops that pull credits and lists, upload the journal and
// send the heartbeat.
type hostLink struct {
	client *hostsync.Client
	syncer *hostsync.Syncer
}

// startHostLink starts the sync loops and the purge of old journal rows
// when a host is configured, and returns the link; nil without a host.
// onAccess, when set (door mode), gets each access list the host sends.
// Close stops them.
func (d *Daemon) startHostLink(onAccess func(version string, body []byte) error) (*hostLink, error) {
	cfg, store := d.cfg, d.store
	if cfg.Host.URL == "" {
		return nil, nil
	}
	secret, err := config.ReadSecretFile(cfg.Host.SecretFile)
	if err != nil {
		return nil, &ConfigError{Err: fmt.Errorf("host.secret_file: %w", err)}
	}
	tc, err := cfg.Host.TLSConfig()
	if err != nil {
		return nil, &ConfigError{Err: err}
	}
	if cfg.Host.PlainOffLoopback() {
		d.log.Warn("host link is plain HTTP off this machine (host.insecure: true): anyone on the network can read and change it", "host_url", cfg.Host.URL)
	}
	client := &hostsync.Client{BaseURL: cfg.Host.URL, TerminalID: cfg.Terminal.ID, Secret: secret,
		HTTP: &http.Client{Timeout: 10 * time.Second, Transport: d.metrics.Transport(hostsync.NewTransport(tc))}}
	syncer := &hostsync.Syncer{Client: client, Store: store, Logger: d.log,
		Heartbeat: func() hostapi.HeartbeatRequest {
			hb := hostapi.HeartbeatRequest{Version: buildinfo.String(), Printer: d.printerState.Load().(string)}
			if n, err := store.ReceiptsWaiting(d.ctx); err == nil {
				hb.Extra = map[string]string{"receipts_waiting": strconv.Itoa(n)}
			}
			return hb
		}, OnAccessList: onAccess}
	syncer.Start(d.ctx)
	d.onClose(syncer.Stop)
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		purgeLoop(d.ctx, store, cfg.Store.Retention, d.log)
	}()
	d.api.QueueDepth = store.QueueDepth
	d.link = &hostLink{client: client, syncer: syncer}
	return d.link, nil
}
