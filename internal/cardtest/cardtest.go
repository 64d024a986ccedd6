// Package cardtest holds the card numbers the tests of every interface
// that takes one try (the host API, the journal, the door, the local
// API): a T-Union card's 19-digit number that each must take, and the
// numbers each must refuse with the reason hostapi.CheckCardNumber gives,
// so that no interface is tested against a weaker list than another.
package cardtest

// TUnion is a T-Union (JT/T 978) card's number as printed on it: 19 digits.
const TUnion = "3104990600000000006"

// Refused maps numbers every interface refuses to the reason it names:
// too short, too long, and TUnion dressed up so that a lax parser
// (strings.TrimSpace, strconv, unicode.IsDigit) would take it for itself.
var Refused = map[string]string{
	"3104990":               "7 digits; want 8 to 20 decimal digits 0-9",
	"310499060000000000061": "21 digits; want 8 to 20 decimal digits 0-9",
	" " + TUnion:            `' ' at byte 0 is not a decimal digit 0-9`,
	TUnion + " ":            `' ' at byte 19 is not a decimal digit 0-9`,
	"+" + TUnion:            `'+' at byte 0 is not a decimal digit 0-9`,
	"٣١٠٤٩٩٠٦٠٠٠٠٠٠٠٠٠٠٠٦": `'\u0663' at byte 0 is not a decimal digit 0-9`,  // Arabic-Indic
	"３１０４９９０６００００":         `'\uff13' at byte 0 is not a decimal digit 0-9`,  // full-width
	TUnion[:16] + "\u200b": `'\u200b' at byte 16 is not a decimal digit 0-9`, // zero-width space
}
