package door

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
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

// Bounds of door.relay.hold. Below 100 ms a strike barely moves; above a
// minute the door stands unlocked long after the person has gone.
const (
	MinHold = 100 * time.Millisecond
	MaxHold = 60 * time.Second
)

// maxCommand bounds door.relay.open and door.relay.close. Relay boards take
// a few bytes; a long string is a pasted mistake.
const maxCommand = 64

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
// keys as [*config.ValidationError]s joined with errors.Join.
func (c Config) Validate() error {
	var errs []error
	if len(c.Groups) == 0 {
		errs = append(errs, &config.ValidationError{Key: "door.groups",
			Reason: "must name at least one group of the access list (or \"*\" for every group)"})
	}
	for i, g := range c.Groups {
		switch {
		case strings.TrimSpace(g) == "":
			errs = append(errs, &config.ValidationError{Key: "door.groups", Value: g,
				Reason: fmt.Sprintf("entry %d is empty", i+1)})
		case indexOf(c.Groups[:i], g) >= 0:
			errs = append(errs, &config.ValidationError{Key: "door.groups", Value: g,
				Reason: fmt.Sprintf("entry %d repeats an earlier group", i+1)})
		}
	}
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
	bad := func(key, value, reason string, args ...any) {
		errs = append(errs, &config.ValidationError{Key: key, Value: value, Reason: fmt.Sprintf(reason, args...)})
	}
	s := relaySettings{port: c.Port, baud: c.Baud, hold: c.Hold}
	if strings.TrimSpace(c.Port) == "" {
		bad("door.relay.port", c.Port, "required: the relay board's serial device, like \"/dev/ttyUSB0\"")
	}
	if s.baud == 0 {
		s.baud = DefaultBaud
	} else if s.baud < 0 || s.baud > 4000000 {
		bad("door.relay.baud", strconv.Itoa(c.Baud), "must be a line speed in bits per second, like 9600 (LCUS-1 boards)")
	}
	open, close := c.Open, c.Close
	switch {
	case open == "" && close == "":
		open, close = DefaultOpen, DefaultClose
	case open == "":
		bad("door.relay.open", "", "required when door.relay.close is set: the two commands go together")
	case close == "":
		bad("door.relay.close", "", "required when door.relay.open is set: the two commands go together")
	}
	var err error
	if open != "" {
		if s.open, err = decodeCommand(open); err != nil {
			bad("door.relay.open", c.Open, "%v", err)
		}
	}
	if close != "" {
		if s.close, err = decodeCommand(close); err != nil {
			bad("door.relay.close", c.Close, "%v", err)
		}
	}
	if s.open != nil && s.close != nil && string(s.open) == string(s.close) {
		bad("door.relay.close", c.Close, "is the same as door.relay.open: the door would never lock")
	}
	if s.hold == 0 {
		s.hold = DefaultHold
	} else if s.hold < MinHold || s.hold > MaxHold {
		bad("door.relay.hold", c.Hold.String(), "must be from %v to %v, like \"3s\"", MinHold, MaxHold)
	}
	return s, errors.Join(errs...)
}

// decodeCommand reads hex bytes with optional spaces between them.
func decodeCommand(s string) ([]byte, error) {
	compact := strings.ReplaceAll(s, " ", "")
	b, err := hex.DecodeString(compact)
	switch {
	case err != nil:
		return nil, fmt.Errorf("not hex bytes (like \"A0 01 01 A2\"): %w", err)
	case len(b) == 0:
		return nil, errors.New("no bytes: give the command as hex, like \"A0 01 01 A2\"")
	case len(b) > maxCommand:
		return nil, fmt.Errorf("%d bytes: a relay command is at most %d", len(b), maxCommand)
	}
	return b, nil
}
