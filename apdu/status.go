package apdu

import (
	"errors"
	"fmt"
)

// SWOK is the status word of a successful command.
const SWOK uint16 = 0x9000

// Sentinel errors for the status words that change what a caller does next
// (spec "Status words that matter"). A *StatusError unwraps to one of them, so
// callers write errors.Is(err, apdu.ErrInsufficientBalance).
var (
	ErrMACInvalid          = errors.New("MAC invalid")                                   // 9302
	ErrAppLocked           = errors.New("application permanently locked")                // 9303
	ErrInsufficientBalance = errors.New("insufficient balance")                          // 9401
	ErrCounterAtMaximum    = errors.New("transaction counter at maximum")                // 9402
	ErrKeyIndex            = errors.New("key index not supported")                       // 9403
	ErrMACNotAvailable     = errors.New("MAC/TAC not available")                         // 9406
	ErrSecurityStatus      = errors.New("security status not satisfied")                 // 6982
	ErrConditionsOfUse     = errors.New("conditions of use not satisfied")               // 6985
	ErrNotSupported        = errors.New("function not supported or application blocked") // 6A81
	ErrFileNotFound        = errors.New("file not found")                                // 6A82
	ErrRecordNotFound      = errors.New("record not found")                              // 6A83
	ErrFileInvalidated     = errors.New("selected file invalidated")                     // 6283
	ErrWrongLength         = errors.New("wrong length")                                  // 6700
	ErrWrongP1P2           = errors.New("incorrect parameters P1-P2")                    // 6A86
	ErrINSNotSupported     = errors.New("instruction not supported")                     // 6D00
	ErrCLANotSupported     = errors.New("class not supported")                           // 6E00
	ErrAuthMethodBlocked   = errors.New("authentication method blocked")                 // 6983
	ErrWrongPIN            = errors.New("wrong PIN")                                     // 63Cx
)

var swErrors = map[uint16]error{
	0x9302: ErrMACInvalid,
	0x9303: ErrAppLocked,
	0x9401: ErrInsufficientBalance,
	0x9402: ErrCounterAtMaximum,
	0x9403: ErrKeyIndex,
	0x9406: ErrMACNotAvailable,
	0x6982: ErrSecurityStatus,
	0x6985: ErrConditionsOfUse,
	0x6A81: ErrNotSupported,
	0x6A82: ErrFileNotFound,
	0x6A83: ErrRecordNotFound,
	0x6283: ErrFileInvalidated,
	0x6700: ErrWrongLength,
	0x6A86: ErrWrongP1P2,
	0x6D00: ErrINSNotSupported,
	0x6E00: ErrCLANotSupported,
	0x6983: ErrAuthMethodBlocked,
}

// StatusError is a final status word other than 9000.
type StatusError struct {
	SW uint16
}

// Error names the status word and, where the spec gives one, its meaning.
func (e *StatusError) Error() string {
	if m := e.Unwrap(); m != nil {
		if e.SW&0xFFF0 == 0x63C0 {
			return fmt.Sprintf("card status %04X: %v, %d tries left", e.SW, m, e.SW&0x0F)
		}
		return fmt.Sprintf("card status %04X: %v", e.SW, m)
	}
	return fmt.Sprintf("card status %04X", e.SW)
}

// Unwrap returns the sentinel error for the status word, or nil for one that
// has no named meaning.
func (e *StatusError) Unwrap() error {
	if e.SW&0xFFF0 == 0x63C0 {
		return ErrWrongPIN
	}
	return swErrors[e.SW]
}

// SW returns the status word carried by err, if err is or wraps a *StatusError.
func SW(err error) (uint16, bool) {
	var se *StatusError
	if errors.As(err, &se) {
		return se.SW, true
	}
	return 0, false
}
