package printer

import (
	"errors"
	"fmt"
)

// StatusKind selects which status byte DLE EOT asks for.
type StatusKind byte

// The four DLE EOT statuses every ESC/POS printer answers.
const (
	StatusPrinter StatusKind = 1 // online/offline, drawer pin, feed button
	StatusOffline StatusKind = 2 // why it is offline: cover, paper end, error
	StatusError   StatusKind = 3 // which error: cutter, unrecoverable, overheat
	StatusPaper   StatusKind = 4 // roll paper near-end and end sensors
)

// StatusQuery is the DLE EOT n real-time status request (10 04 n). The
// printer answers it with one byte as soon as it arrives, even while offline
// or with a full buffer, which is what makes it usable to ask why a printer
// stopped. Send it between commands, never inside one: a command waiting for
// its parameter would take the 10 as its parameter.
func StatusQuery(k StatusKind) []byte { return []byte{dle, eot, byte(k)} }

// ErrMalformedStatus is wrapped by ParseStatus errors.
var ErrMalformedStatus = errors.New("printer: malformed status byte")

// Every DLE EOT answer has bit 0 off, bit 1 on, bit 4 on and bit 7 off
// (Epson: "not used, fixed"). Checking them tells a status byte apart from
// an XON (11) or XOFF (13) in the same serial stream, and from line noise.
const (
	statusFixedMask = 0x93
	statusFixedBits = 0x12
)

// Status is what DLE EOT answers tell about a printer. Each field says
// something is wrong or unusual, so the zero value is "nothing wrong known"
// and the answers to several queries merge with Update without one query's
// silence hiding another's alarm.
type Status struct {
	// DLE EOT 1, printer status.
	DrawerPin3High bool // bit 2: drawer kick-out connector pin 3 is high (drawer open or closed, by drawer)
	Offline        bool // bit 3: not printing; StatusOffline says why
	WaitingOnline  bool // bit 5: waiting for online recovery (undefined on some models: read as off)
	FeedButton     bool // bit 6: the paper feed button is being pressed

	// DLE EOT 2, offline cause.
	CoverOpen    bool // bit 2
	FeedingPaper bool // bit 3: paper is being fed by the feed button
	PaperEndStop bool // bit 5: printing stopped because the paper ran out
	Error        bool // bit 6: an error occurred; StatusError says which

	// DLE EOT 3, error cause.
	RecoverableError     bool // bit 2: recoverable error (models call it mechanical, presenter or black mark error)
	CutterError          bool // bit 3: autocutter error, such as a jam; DLE ENQ recovers it once cleared
	UnrecoverableError   bool // bit 5: needs service
	AutoRecoverableError bool // bit 6: such as a head overheat; printing resumes by itself

	// DLE EOT 4, roll paper sensors.
	PaperNearEnd bool // bits 2 and 3: little paper left on the roll
	PaperOut     bool // bits 5 and 6: no paper
}

// ParseStatus reads the answer b to StatusQuery(k). The fields of the other
// kinds stay false.
func ParseStatus(k StatusKind, b byte) (Status, error) {
	var s Status
	err := s.Update(k, b)
	return s, err
}

// Update sets the fields answered by b, the answer to StatusQuery(k), and
// leaves the others alone. A byte without the fixed bits is an error, and s
// is then unchanged.
func (s *Status) Update(k StatusKind, b byte) error {
	if k < StatusPrinter || k > StatusPaper {
		return fmt.Errorf("%w: DLE EOT %d is not a status this package reads (1 to 4)", ErrMalformedStatus, k)
	}
	if b&statusFixedMask != statusFixedBits {
		return fmt.Errorf("%w: %#02x (%08b) to DLE EOT %d: want bits 0 and 7 off, 1 and 4 on", ErrMalformedStatus, b, b, k)
	}
	bit := func(n uint) bool { return b&(1<<n) != 0 }
	switch k {
	case StatusPrinter:
		s.DrawerPin3High, s.Offline, s.WaitingOnline, s.FeedButton = bit(2), bit(3), bit(5), bit(6)
	case StatusOffline:
		s.CoverOpen, s.FeedingPaper, s.PaperEndStop, s.Error = bit(2), bit(3), bit(5), bit(6)
	case StatusError:
		s.RecoverableError, s.CutterError, s.UnrecoverableError, s.AutoRecoverableError = bit(2), bit(3), bit(5), bit(6)
	case StatusPaper:
		// Each sensor has two bits that Epson sets together; some printers
		// with one sensor wire only one of them, so either counts.
		s.PaperNearEnd, s.PaperOut = bit(2) || bit(3), bit(5) || bit(6)
	}
	return nil
}

// Answer is the byte a printer in state s answers to StatusQuery(k), for the
// virtual printer and for tests. A kind outside 1 to 4 answers 0, which
// ParseStatus refuses.
func (s Status) Answer(k StatusKind) byte {
	if k < StatusPrinter || k > StatusPaper {
		return 0
	}
	b := byte(statusFixedBits)
	set := func(n uint, on bool) {
		if on {
			b |= 1 << n
		}
	}
	switch k {
	case StatusPrinter:
		set(2, s.DrawerPin3High)
		set(3, s.Offline)
		set(5, s.WaitingOnline)
		set(6, s.FeedButton)
	case StatusOffline:
		set(2, s.CoverOpen)
		set(3, s.FeedingPaper)
		set(5, s.PaperEndStop)
		set(6, s.Error)
	case StatusError:
		set(2, s.RecoverableError)
		set(3, s.CutterError)
		set(5, s.UnrecoverableError)
		set(6, s.AutoRecoverableError)
	case StatusPaper:
		set(2, s.PaperNearEnd)
		set(3, s.PaperNearEnd)
		set(5, s.PaperOut)
		set(6, s.PaperOut)
	}
	return b
}

// CanPrint reports whether nothing in s stops printing. It is only as good as
// the queries merged into s: ask all four kinds first. A near-end roll still
// prints.
func (s Status) CanPrint() bool {
	return !s.Offline && !s.CoverOpen && !s.PaperEndStop && !s.Error && !s.PaperOut &&
		!s.RecoverableError && !s.CutterError && !s.UnrecoverableError && !s.AutoRecoverableError
}
