package daemon

import (
	"fmt"
	"log/slog"

	"github.com/cardd/cardd/apdu/mifare"
	"github.com/cardd/cardd/apdu/psam"
	"github.com/cardd/cardd/config"
	"github.com/cardd/cardd/offline"
	"github.com/cardd/cardd/tap"
)

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
	return &tap.Purchaser{Store: store, Till: till, SAMApps: apps, PSAMProfiles: cfg.PSAM.Profiles(), TerminalID: cfg.TerminalID(),
		DailyLimit: cfg.POS.DailyLimitFen(), LogFile: logFile, LogContinues: len(cfg.EPurse.LogFiles) == 1, Logger: log}
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
