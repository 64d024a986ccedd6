package hostapi

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxClassName is the longest identity class name, in characters.
const MaxClassName = 32

// ClassChange sets the identity class (身份: student, staff, …) the host's
// card record gives a card, or clears it (Class ""): a terminal then goes
// by the card's own type byte again.
type ClassChange struct {
	Card  string `json:"card"`
	Class string `json:"class"`
}

// CheckClassName accepts an identity class name as both the host's card
// records and a terminal's pos.classes spell it: 1 to MaxClassName
// characters, lower case, no dots (a config key path would split there),
// no control characters or surrounding spaces. The error says what is
// wrong, without the name.
func CheckClassName(name string) error {
	switch {
	case name == "" || utf8.RuneCountInString(name) > MaxClassName:
		return fmt.Errorf("a class name is 1 to %d characters", MaxClassName)
	case strings.TrimSpace(name) != name:
		return fmt.Errorf("a class name has no surrounding spaces")
	case strings.ToLower(name) != name:
		return fmt.Errorf("a class name is lower case")
	case strings.Contains(name, "."):
		return fmt.Errorf("a class name has no dots")
	case strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return fmt.Errorf("a class name has no control characters")
	}
	return nil
}
