package config

// KioskConfig is the kiosk page's (mode kiosk): kiosk.topup, the top-up
// paid by phone (topup.go).
type KioskConfig struct {
	Topup TopupConfig `mapstructure:"topup"`
}
