// Package redact hides what must not reach logs, screens or receipts in full.
package redact

import "strings"

// CardNumber keeps the first 4 and the last 4 characters of a card number and
// masks the rest: "3101234567890001" → "3101********0001". A number of 8
// characters or fewer is masked whole but for its last 2, since showing
// 4+4 of it would show all of it.
func CardNumber(n string) string {
	r := []rune(n)
	switch {
	case len(r) > 8:
		return string(r[:4]) + strings.Repeat("*", len(r)-8) + string(r[len(r)-4:])
	case len(r) > 2:
		return strings.Repeat("*", len(r)-2) + string(r[len(r)-2:])
	default:
		return strings.Repeat("*", len(r))
	}
}
