package apdu

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

// sentinels lists every sentinel of status.go with a status word that carries it.
var sentinels = []struct {
	sw   uint16
	err  error
	text string
}{
	{0x9302, ErrMACInvalid, "MAC invalid"},
	{0x9303, ErrAppLocked, "application permanently locked"},
	{0x9401, ErrInsufficientBalance, "insufficient balance"},
	{0x9402, ErrCounterAtMaximum, "transaction counter at maximum"},
	{0x9403, ErrKeyIndex, "key index not supported"},
	{0x9406, ErrMACNotAvailable, "MAC/TAC not available"},
	{0x6982, ErrSecurityStatus, "security status not satisfied"},
	{0x6985, ErrConditionsOfUse, "conditions of use not satisfied"},
	{0x6A81, ErrNotSupported, "function not supported or application blocked"},
	{0x6A82, ErrFileNotFound, "file not found"},
	{0x6A83, ErrRecordNotFound, "record not found"},
	{0x6283, ErrFileInvalidated, "selected file invalidated"},
	{0x6700, ErrWrongLength, "wrong length"},
	{0x6A86, ErrWrongP1P2, "incorrect parameters P1-P2"},
	{0x6D00, ErrINSNotSupported, "instruction not supported"},
	{0x6E00, ErrCLANotSupported, "class not supported"},
	{0x6983, ErrAuthMethodBlocked, "authentication method blocked"},
	{0x63C3, ErrWrongPIN, "wrong PIN"},
}

func TestSentinelTableComplete(t *testing.T) {
	t.Parallel()
	// Every entry of swErrors, plus 63Cx, must be in the table above.
	if got, want := len(sentinels), len(swErrors)+1; got != want {
		t.Fatalf("test table has %d sentinels, status.go %d", got, want)
	}
	for sw, err := range swErrors {
		found := false
		for _, s := range sentinels {
			if s.sw == sw && s.err == err {
				found = true
			}
		}
		if !found {
			t.Errorf("%04X → %v not tested", sw, err)
		}
	}
}

func TestStatusErrorSentinels(t *testing.T) {
	t.Parallel()
	for _, tt := range sentinels {
		t.Run(fmt.Sprintf("%04X", tt.sw), func(t *testing.T) {
			var err error = &StatusError{SW: tt.sw}
			wrapped := fmt.Errorf("reading purse: %w", err)
			for _, e := range []error{err, wrapped} {
				if !errors.Is(e, tt.err) {
					t.Fatalf("errors.Is(%v, %v) = false", e, tt.err)
				}
				// Exactly one sentinel matches.
				for _, other := range sentinels {
					if other.err != tt.err && errors.Is(e, other.err) {
						t.Fatalf("%v also matches %v", e, other.err)
					}
				}
				var se *StatusError
				if !errors.As(e, &se) || se.SW != tt.sw {
					t.Fatalf("errors.As gave %v", se)
				}
				if sw, ok := SW(e); !ok || sw != tt.sw {
					t.Fatalf("SW() = %04X, %v", sw, ok)
				}
			}
			msg := err.Error()
			if !strings.Contains(msg, fmt.Sprintf("%04X", tt.sw)) || !strings.Contains(msg, tt.text) {
				t.Fatalf("Error() = %q, want the status word and %q", msg, tt.text)
			}
		})
	}
}

func TestStatusErrorWrongPIN(t *testing.T) {
	t.Parallel()
	tests := []struct {
		sw   uint16
		want string
	}{
		{0x63C2, "card status 63C2: wrong PIN, 2 tries left"},
		{0x63C0, "card status 63C0: wrong PIN, 0 tries left"},
		{0x63CF, "card status 63CF: wrong PIN, 15 tries left"},
	}
	for _, tt := range tests {
		err := error(&StatusError{SW: tt.sw})
		if !errors.Is(err, ErrWrongPIN) {
			t.Errorf("%04X is not ErrWrongPIN", tt.sw)
		}
		if err.Error() != tt.want {
			t.Errorf("Error() = %q, want %q", err.Error(), tt.want)
		}
	}
}

func TestStatusErrorUnnamed(t *testing.T) {
	t.Parallel()
	for _, sw := range []uint16{0x6F00, 0x6300, 0x63B2, 0x6282, 0x6A80, 0x9000, 0x6100, 0x6C10} {
		t.Run(fmt.Sprintf("%04X", sw), func(t *testing.T) {
			se := &StatusError{SW: sw}
			if u := se.Unwrap(); u != nil {
				t.Fatalf("Unwrap() = %v, want nil", u)
			}
			for _, s := range sentinels {
				if errors.Is(se, s.err) {
					t.Fatalf("matches %v", s.err)
				}
			}
			if want := fmt.Sprintf("card status %04X", sw); se.Error() != want {
				t.Fatalf("Error() = %q, want %q", se.Error(), want)
			}
			if got, ok := SW(fmt.Errorf("x: %w", se)); !ok || got != sw {
				t.Fatalf("SW() = %04X, %v", got, ok)
			}
		})
	}
}

func TestSWNoStatus(t *testing.T) {
	t.Parallel()
	for _, err := range []error{nil, io.EOF, fmt.Errorf("wrapped: %w", ErrFileNotFound), ErrMalformed} {
		if sw, ok := SW(err); ok || sw != 0 {
			t.Errorf("SW(%v) = %04X, %v; want 0, false", err, sw, ok)
		}
	}
}
