package tap

import (
	"errors"
	"fmt"
	"slices"

	"github.com/cardd/cardd/apdu"
	"github.com/cardd/cardd/apdu/epurse"
	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/redact"
)

// identify reads what names the card: its EF 0x15 (the FCI's copy when it
// sent one, else READ BINARY), its profile, and the files the profile takes
// its number and validity from. Only a transport failure or a card refusing
// EF 0x15 stops the tap here; a field the profile cannot read leaves a note
// and an empty value, and the balance is still read.
func (r *CardRead) identify(t apdu.Transmitter, fci epurse.FCI, own [][8]byte) (retErr error) {
	if fci.Unreadable != nil {
		r.note("select answer: %v", fci.Unreadable)
	}
	raw, problems := fci.InfoRaw, fci.InfoProblems
	if fci.Info != nil {
		r.Info = *fci.Info
	} else {
		var err error
		raw, err = epurse.ReadBinarySFI(t, 0x15, epurse.IssuerInfoLen)
		if _, isSW := apdu.SW(err); err != nil && !isSW {
			return err
		}
		var info epurse.IssuerInfo
		if err != nil {
			// Some families keep what names the card elsewhere (Beijing:
			// EF 4); the profile may still read it.
			r.note("%v", err)
		} else if info, problems, err = epurse.DecodeIssuerInfo(raw); err != nil {
			// Too short to hold even the dates: nothing names the card,
			// but its balance can still be shown.
			r.note("%v", err)
		}
		r.Info = info
	}
	r.Profile = epurse.Identify(fci.AID, fci.InfoRaw, r.Info, own)
	fr := fileReader{t: t, name: fci.AID, files: map[byte][]byte{}}
	defer func() {
		if fr.atMF {
			// GET BALANCE and the log are the application's: go back.
			if err := epurse.Reselect(t, fci.AID); err != nil && retErr == nil {
				retErr = err
			}
		}
	}()
	if r.Profile == epurse.ProfileGeneric && fci.AID == nil {
		// Selected by file id, and nothing in its FCI or EF 0x15 says
		// whose: some families are known by a file's content.
		for _, p := range epurse.Probes() {
			b, err := fr.read(p.Probe.SFI)
			if err != nil {
				return err
			}
			if p.Probed(b) {
				r.Profile = p
				break
			}
		}
	}
	for _, sfi := range r.Profile.NeedsFiles() {
		if _, err := fr.read(sfi); err != nil {
			return err
		}
	}
	for _, n := range fr.notes {
		r.note("%s", n)
	}
	files := fr.files
	if r.Profile.ValiditySFI != 0 {
		// The dates are in a file of the family's own; EF 0x15's bytes
		// 20-27 mean something else there.
		problems = slices.DeleteFunc(slices.Clone(problems), isDateProblem)
		r.Info.StartDate, r.Info.ExpiryDate = epurse.Date{}, epurse.Date{}
		start, expiry, ok, err := r.Profile.ValidityFrom(files)
		if err != nil {
			r.note("%v", err)
		}
		if ok {
			r.Info.StartDate, r.Info.ExpiryDate = start, expiry
		}
		r.datesUnread = !ok || err != nil
	}
	for _, p := range problems {
		r.datesUnread = r.datesUnread || isDateProblem(p)
		if r.Profile.Numbering != epurse.NumberBCD && isNumberProblem(p) {
			continue // the family does not number in BCD: nothing odd
		}
		r.note("%v", p)
	}
	number, nb, err := r.Profile.Number(raw, files)
	if err != nil {
		r.note("card number (%s): %v", r.Profile.Numbering, err)
	}
	if nb == epurse.NumberBCD {
		nb = "" // IssuerInfo's zero Numbering
	}
	r.Info.CardNumber, r.Info.Numbering = number, nb
	return nil
}

// fileReader reads the transparent files that name a card, by short file
// id: in the application first, then, for a file it lacks, in the MF, where
// Beijing and Wuhan Tong cards keep them (NFCard reads them there before
// selecting 1001). A file neither has is a note, not an error.
type fileReader struct {
	t     apdu.Transmitter
	name  []byte // the application's DF name; nil: file id 1001
	files map[byte][]byte
	atMF  bool
	notes []string
}

func (f *fileReader) read(sfi byte) ([]byte, error) {
	if b, ok := f.files[sfi]; ok {
		return b, nil
	}
	b, err := epurse.ReadBinarySFI(f.t, sfi, 256)
	if errors.Is(err, apdu.ErrFileNotFound) && !f.atMF {
		// mfErr, not err: the read in the MF below must set the outer err.
		mfErr := epurse.SelectMF(f.t)
		sw, isSW := apdu.SW(mfErr)
		switch {
		case mfErr != nil && !isSW:
			return nil, mfErr
		case mfErr != nil && sw>>8 != 0x62 && sw>>8 != 0x63:
			f.notes = append(f.notes, mfErr.Error())
		default:
			// 9000, or a warning (62xx, 63xx: ISO 7816-4 says the
			// command was done): the MF is selected, and the
			// application must be selected again before GET BALANCE.
			f.atMF = true
			b, err = epurse.ReadBinarySFI(f.t, sfi, 256)
		}
	}
	if _, isSW := apdu.SW(err); err != nil && !isSW {
		return nil, err
	}
	if err != nil {
		f.notes = append(f.notes, err.Error())
		b = nil
	}
	f.files[sfi] = b
	return b, nil
}

func (r *CardRead) note(format string, a ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, a...))
}

func isDateProblem(err error) bool {
	var fe *epurse.FieldError
	return errors.As(err, &fe) && fe.IsDate()
}

func isNumberProblem(err error) bool {
	var fe *epurse.FieldError
	return errors.As(err, &fe) && fe.Field == epurse.FieldCardNumber
}

// ErrCardNotRecognised is returned for a card read for its balance whose
// number or validity cardd could not form: no money moves on it, since the
// journal, the host and the deny list know cards by number, and an unread
// expiry date would let an expired card pay.
var ErrCardNotRecognised = errors.New("card not recognised: no money moves on it")

// Transactable reports whether money may move on the card read: its number
// is one the host knows cards by (hostapi.CheckCardID) in a numbering an
// issuer printed, and its validity dates were read.
func (r *CardRead) Transactable() error {
	if r.Info.Numbering == epurse.NumberSerialHex || r.Info.CardNumber == "" {
		return fmt.Errorf("%w: a card of an unknown issuer (%s)", ErrCardNotRecognised, r.Profile.Name)
	}
	if err := hostapi.CheckCardID(r.Info.CardNumber); err != nil {
		return fmt.Errorf("%w: %s numbers it %s", ErrCardNotRecognised, r.Profile.Name, redact.CardNumber(r.Info.CardNumber))
	}
	if r.datesUnread {
		return fmt.Errorf("%w: its validity dates do not read", ErrCardNotRecognised)
	}
	return nil
}
