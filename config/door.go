package config

import (
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Bounds of door.relay.hold. Below 100 ms a strike barely moves; above a
// minute the door stands unlocked long after the person has gone.
const (
	DoorMinHold = 100 * time.Millisecond
	DoorMaxHold = 60 * time.Second
)

// maxRelayCommand bounds door.relay.open and door.relay.close. Relay boards
// take a few bytes; a long string is a pasted mistake.
const maxRelayCommand = 64

// ValidateDoorGroups checks door.groups and returns its bad entries as
// [*ValidationError]s. It lives here rather than in package door so that
// `cardd config` and `cardd doctor` refuse what `cardd run` refuses.
func ValidateDoorGroups(groups []string) []error {
	var errs []error
	if len(groups) == 0 {
		errs = append(errs, &ValidationError{Key: "door.groups",
			Reason: "must name at least one group of the access list (or \"*\" for every group)"})
	}
	for i, g := range groups {
		switch {
		case strings.TrimSpace(g) == "":
			errs = append(errs, &ValidationError{Key: "door.groups", Value: g,
				Reason: fmt.Sprintf("entry %d is empty", i+1)})
		case slices.Contains(groups[:i], g):
			errs = append(errs, &ValidationError{Key: "door.groups", Value: g,
				Reason: fmt.Sprintf("entry %d repeats an earlier group", i+1)})
		}
	}
	return errs
}

// ValidateDoorRelay checks door.relay.baud, .open, .close and .hold (not
// .port, whose need depends on the caller) and returns the bad keys as
// [*ValidationError]s. Zero baud and hold and empty open and close are
// valid: they mean package door's defaults.
func ValidateDoorRelay(baud int, open, close string, hold time.Duration) []error {
	var errs []error
	bad := func(key, value, reason string, args ...any) {
		errs = append(errs, &ValidationError{Key: key, Value: value, Reason: fmt.Sprintf(reason, args...)})
	}
	if baud < 0 || baud > 4000000 {
		bad("door.relay.baud", strconv.Itoa(baud), "must be a line speed in bits per second, like 9600 (LCUS-1 boards)")
	}
	switch {
	case open == "" && close != "":
		bad("door.relay.open", "", "required when door.relay.close is set: the two commands go together")
	case close == "" && open != "":
		bad("door.relay.close", "", "required when door.relay.open is set: the two commands go together")
	}
	var o, c []byte
	var err error
	if open != "" {
		if o, err = DecodeRelayCommand(open); err != nil {
			bad("door.relay.open", open, "%v", err)
		}
	}
	if close != "" {
		if c, err = DecodeRelayCommand(close); err != nil {
			bad("door.relay.close", close, "%v", err)
		}
	}
	if o != nil && c != nil && string(o) == string(c) {
		bad("door.relay.close", close, "is the same as door.relay.open: the door would never lock")
	}
	if hold != 0 && (hold < DoorMinHold || hold > DoorMaxHold) {
		bad("door.relay.hold", hold.String(), "must be from %v to %v, like \"3s\"", DoorMinHold, DoorMaxHold)
	}
	return errs
}

// DecodeRelayCommand reads a relay command, hex bytes with optional spaces
// between them ("A0 01 01 A2").
func DecodeRelayCommand(s string) ([]byte, error) {
	compact := strings.ReplaceAll(s, " ", "")
	b, err := hex.DecodeString(compact)
	switch {
	case err != nil:
		return nil, fmt.Errorf("not hex bytes (like \"A0 01 01 A2\"): %w", err)
	case len(b) == 0:
		return nil, errors.New("no bytes: give the command as hex, like \"A0 01 01 A2\"")
	case len(b) > maxRelayCommand:
		return nil, fmt.Errorf("%d bytes: a relay command is at most %d", len(b), maxRelayCommand)
	}
	return b, nil
}
