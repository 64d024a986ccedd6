package daemon

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/cardd/cardd/config"
)

// testConfig is a valid configuration of mode whose store, API and relay
// live in a temporary directory; set adds to it.
func testConfig(t *testing.T, mode string, set ...func(*config.Config)) *config.Config {
	t.Helper()
	dir := t.TempDir()
	cfg := config.Default()
	cfg.Mode = mode
	cfg.Store.Path = filepath.Join(dir, "cardd.db")
	cfg.API.Listen = "127.0.0.1:0"
	cfg.Reader.SAMPattern = "SAM"
	// No board there: the relay is locked at start in vain, and logged.
	cfg.Door.Relay.Port = filepath.Join(dir, "no-relay")
	for _, f := range set {
		f(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return &cfg
}

// withHost gives cfg a host link to a host that is not there: the sync
// loops retry in the background, which changes nothing here.
func withHost(t *testing.T) func(*config.Config) {
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("0123456789abcdef0123456789abcdef"), 0o600); err != nil {
		t.Fatal(err)
	}
	return func(c *config.Config) { c.Host.URL, c.Host.SecretFile = "http://127.0.0.1:1", secret }
}

func withPrinter(c *config.Config) {
	c.Printer.Enabled, c.Printer.Port = true, filepath.Join(filepath.Dir(c.Store.Path), "no-printer")
}

func open(t *testing.T, cfg *config.Config) *Daemon {
	t.Helper()
	d, err := Open(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return d
}

// Each mode gets exactly its steps of a tap: a kiosk loads only with a
// host, the POS always has a Loader (host-less without a host: it still
// journals, settles and refuses) and a Purchaser, the door a Door and a
// Loader only with a host and door.load_credits. Receipts only with a
// printer; the runner's hooks are always set.
func TestOpenAssemblesEachMode(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("door mode is Linux-only and refused on Windows (docs/windows.md)")
	}
	noLoadCredits := func(c *config.Config) { c.Door.LoadCredits = false }
	for _, tc := range []struct {
		name                 string
		cfg                  *config.Config
		store, loader, host  bool
		purchaser, door, rec bool
	}{
		{name: "kiosk", cfg: testConfig(t, config.ModeKiosk)},
		{name: "kiosk with host", cfg: testConfig(t, config.ModeKiosk, withHost(t)), store: true, loader: true, host: true},
		{name: "kiosk with printer", cfg: testConfig(t, config.ModeKiosk, withPrinter), store: true},
		{name: "pos", cfg: testConfig(t, config.ModePOS), store: true, loader: true, purchaser: true},
		{name: "pos with host", cfg: testConfig(t, config.ModePOS, withHost(t)), store: true, loader: true, host: true, purchaser: true},
		{name: "pos with printer", cfg: testConfig(t, config.ModePOS, withPrinter), store: true, loader: true, purchaser: true, rec: true},
		{name: "door", cfg: testConfig(t, config.ModeDoor), store: true, door: true},
		{name: "door with host", cfg: testConfig(t, config.ModeDoor, withHost(t)), store: true, door: true, loader: true, host: true},
		{name: "door with host, no loads", cfg: testConfig(t, config.ModeDoor, withHost(t), noLoadCredits), store: true, door: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := open(t, tc.cfg)
			r := d.runner
			if got := d.store != nil; got != tc.store {
				t.Errorf("store open: %v, want %v", got, tc.store)
			}
			if _, err := os.Stat(tc.cfg.Store.Path); errors.Is(err, os.ErrNotExist) == tc.store {
				t.Errorf("store file: %v, want it made: %v", err, tc.store)
			}
			if got := r.Loader != nil; got != tc.loader {
				t.Fatalf("Loader: %v, want %v", got, tc.loader)
			}
			if r.Loader != nil && (r.Loader.Host != nil) != tc.host {
				// A nil *sync.Client in the interface would pass for a host.
				t.Errorf("Loader.Host = %#v, want a host: %v", r.Loader.Host, tc.host)
			}
			if r.Loader != nil && (r.Loader.Receipt != nil) != tc.rec {
				t.Errorf("Loader.Receipt set: %v, want %v", r.Loader.Receipt != nil, tc.rec)
			}
			if got := r.Purchaser != nil; got != tc.purchaser {
				t.Fatalf("Purchaser: %v, want %v", got, tc.purchaser)
			}
			if got := d.api.Till != nil; got != tc.purchaser {
				t.Errorf("Till: %v, want %v", got, tc.purchaser)
			}
			if r.Purchaser != nil && (r.Purchaser.Receipt != nil) != tc.rec {
				t.Errorf("Purchaser.Receipt set: %v, want %v", r.Purchaser.Receipt != nil, tc.rec)
			}
			if got := r.Door != nil; got != tc.door {
				t.Errorf("Door: %v, want %v", got, tc.door)
			}
			if got, want := d.link != nil, tc.cfg.Host.URL != ""; got != want {
				t.Errorf("host link: %v, want %v", got, want)
			}
			if r.OnEvent == nil || r.OnBalance == nil || r.OnTap == nil || r.OnAPDU == nil {
				t.Error("the runner's hooks are not all set")
			}
		})
	}
}

// A daemon that cannot start as configured stops what it started and says
// why with a *ConfigError (cardd exits 2); its store lock is released.
func TestOpenConfigErrorReleasesTheStore(t *testing.T) {
	cfg := testConfig(t, config.ModePOS, func(c *config.Config) {
		c.Mifare.KeyFile = filepath.Join(t.TempDir(), "no-keys.json")
	})
	_, err := Open(context.Background(), cfg, slog.New(slog.DiscardHandler))
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("Open with a missing mifare.key_file: %v, want a *ConfigError", err)
	}
	cfg.Mifare.KeyFile = ""
	open(t, cfg) // the lock was released, and the store closed
}
