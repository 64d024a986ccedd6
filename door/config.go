package door

import (
	"errors"
	"strings"
	"time"

	"github.com/cardd/cardd/config"
)

// Relay defaults: an LCUS-1 style USB relay board, which takes A0 (start),
// the channel, the state and their sum, at 9600 baud.
const (
	DefaultBaud  = 9600
	DefaultOpen  = "A0 01 01 A2" // channel 1 on: the lock is released
	DefaultClose = "A0 01 00 A1" // channel 1 off: the lock holds
	DefaultHold  = 3 * time.Second
)

// Bounds of door.relay.hold, config's: see [config.DoorMinHold].
const (
	MinHold = config.DoorMinHold
	MaxHold = config.DoorMaxHold
)

// Config is the door mode's part of cardd's configuration, the door key.
type Config struct {
	// Groups are the groups of the access list this door admits, by name;
	// "*" admits every group (a single-door site). At least one: a door
	// that admits nobody is a mistake, not a setting.
	Groups []string `mapstructure:"groups"`
	// Relay is the board that releases the lock.
	Relay RelayConfig `mapstructure:"relay"`
}

// RelayConfig is a relay board on a serial (usually USB-serial) port.
// Zero values take the defaults above, so only the port must be given.
type RelayConfig struct {
	// Port is the serial device, e.g. /dev/ttyUSB0, or a stable symlink
	// from a udev rule. A port that is missing when the door should open is
	// an error for that tap and is opened again on the next one.
	Port string `mapstructure:"port"`
	// Baud is the line speed; 0 means 9600.
	Baud int `mapstructure:"baud"`
	// Open and Close are the bytes that switch the relay on (lock released)
	// and off, as hex, spaces allowed: "A0 01 01 A2". Give both or neither;
	// neither means the LCUS-1 channel 1 commands.
	Open  string `mapstructure:"open"`
	Close string `mapstructure:"close"`
	// Hold is how long the door stays unlocked after a tap, 100ms to 60s;
	// 0 means 3s. A tap during the hold starts it again.
	Hold time.Duration `mapstructure:"hold"`
}

// DefaultRelayConfig returns the defaults, with no port: what cardd's
// configuration starts from before the file and the environment.
func DefaultRelayConfig() RelayConfig {
	return RelayConfig{Baud: DefaultBaud, Open: DefaultOpen, Close: DefaultClose, Hold: DefaultHold}
}

// Validate checks door.groups and the relay keys and returns nil or the bad
// keys as [*config.ValidationError]s joined with errors.Join. The checks are
// config's ([config.ValidateDoorGroups]), so that the daemon's config
// command refuses what this does.
func (c Config) Validate() error {
	errs := config.ValidateDoorGroups(c.Groups)
	if err := c.Relay.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Validate checks the relay keys and returns nil or the bad keys
// (door.relay.port, .baud, .open, .close, .hold) as
// [*config.ValidationError]s joined with errors.Join.
func (c RelayConfig) Validate() error {
	_, err := c.resolve()
	return err
}

// relaySettings is a validated RelayConfig with the defaults applied and
// the commands decoded.
type relaySettings struct {
	port        string
	baud        int
	open, close []byte
	hold        time.Duration
}

func (c RelayConfig) resolve() (relaySettings, error) {
	var errs []error
	if strings.TrimSpace(c.Port) == "" {
		errs = append(errs, &config.ValidationError{Key: "door.relay.port", Value: c.Port,
			Reason: "required: the relay board's serial device, like \"/dev/ttyUSB0\""})
	}
	errs = append(errs, config.ValidateDoorRelay(c.Baud, c.Open, c.Close, c.Hold)...)
	if len(errs) > 0 {
		return relaySettings{}, errors.Join(errs...)
	}
	s := relaySettings{port: c.Port, baud: c.Baud, hold: c.Hold}
	if s.baud == 0 {
		s.baud = DefaultBaud
	}
	if s.hold == 0 {
		s.hold = DefaultHold
	}
	open, close := c.Open, c.Close
	if open == "" {
		open, close = DefaultOpen, DefaultClose
	}
	// Both decode: ValidateDoorRelay has checked them.
	s.open, _ = config.DecodeRelayCommand(open)
	s.close, _ = config.DecodeRelayCommand(close)
	return s, nil
}
