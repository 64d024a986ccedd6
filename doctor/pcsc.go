package doctor

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/ebfe/scard"

	"github.com/cardd/cardd/config"
)

// envPCSCSocket is the variable through which pcsc-lite's client library
// finds pcscd's socket; defaultPCSCSocket is where it looks without it
// (Debian and most distributions).
const (
	envPCSCSocket     = "PCSCLITE_CSOCK_NAME"
	defaultPCSCSocket = "/run/pcscd/pcscd.comm"
)

func dialSCard() (PCSC, error) {
	c, err := scard.EstablishContext()
	if err != nil {
		return nil, err
	}
	return c, nil
}

func (r *run) checkConfig(context.Context) Result {
	if err := r.cfg.Validate(); err != nil {
		return fail(oneLine(err.Error()), "correct the keys named; `cardd config` prints the configuration in effect")
	}
	src := "no configuration file (built-in defaults, CARDD_* environment, flags)"
	if r.opts.ConfigFile != "" {
		src = r.opts.ConfigFile
	}
	return pass("%s: valid; mode %s, terminal %s", src, r.cfg.Mode, r.cfg.Terminal.ID)
}

// checkPCSCD establishes a PC/SC context and lists the readers, within
// PCSCTimeout: a wedged pcscd blocks the client library without a bound.
func (r *run) checkPCSCD(ctx context.Context) Result {
	dial := r.opts.DialPCSC
	if dial == nil {
		dial = dialSCard
	}
	type answer struct {
		readers []string
		err     error
	}
	ch := make(chan answer, 1) // the goroutine outlives a timeout; it must not block
	go func() {
		c, err := dial()
		if err != nil {
			ch <- answer{err: err}
			return
		}
		names, err := c.ListReaders()
		c.Release() // before answering: the caller may exit at once
		if errors.Is(err, scard.ErrNoReadersAvailable) {
			names, err = nil, nil
		}
		if err != nil {
			err = fmt.Errorf("listing readers: %w", err)
		}
		ch <- answer{names, err}
	}()
	timeout := orDefault(r.opts.PCSCTimeout, 5*time.Second)
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	sock := pcscSocket()
	select {
	case a := <-ch:
		if a.err != nil {
			r.pcscErr = a.err
			return fail(pcscFailure(sock, a.err))
		}
		r.readers = a.readers
		return pass("answers at %s; %d reader(s)", sock, len(a.readers))
	case <-timer.C:
		r.pcscErr = errors.New("no answer")
		return fail(fmt.Sprintf("pcscd at %s did not answer within %v", sock, timeout),
			"pcscd is stuck: restart it (systemctl restart pcscd, or kill it and run pcscd as root); pcsc_scan must then list the readers")
	case <-ctx.Done():
		r.pcscErr = ctx.Err()
		return fail("not finished: "+ctx.Err().Error(), "run cardd doctor again and let it finish")
	}
}

func (r *run) checkCardReader(context.Context) Result {
	if r.pcscErr != nil {
		return skip("pcscd is not reachable, so no readers can be listed")
	}
	rc := r.cfg.Reader
	var card, sam []string
	for _, n := range r.readers {
		switch {
		case rc.IsCardReader(n):
			card = append(card, n)
		case rc.IsSAMReader(n):
			sam = append(sam, n)
		}
	}
	if len(card) > 0 {
		return pass("%s (reader.card_pattern %q)", quoteList(card), rc.CardPattern)
	}
	detail := fmt.Sprintf("no reader matches reader.card_pattern %q; pcscd has %s", rc.CardPattern, readersText(r.readers))
	if len(r.readers) == 0 {
		return fail(detail, "plug in the card reader (lsusb lists it) and install its driver (libccid for CCID readers), then restart pcscd; for the simulated readers, run scripts/setup (vpcd in /etc/reader.conf.d)")
	}
	fix := fmt.Sprintf("set reader.card_pattern to match the reader where cards are tapped, one of %s (a Go regexp, e.g. \"^%s$\")", quoteList(r.readers), regexp.QuoteMeta(r.readers[0]))
	if len(sam) == len(r.readers) {
		fix = fmt.Sprintf("every reader matches reader.sam_pattern %q, which takes precedence: narrow it to the PSAM's reader, ", rc.SAMPattern) + "or " + fix
	} else {
		fix = "plug in the card reader, or " + fix
	}
	return fail(detail, fix)
}

func (r *run) checkSAMReader(context.Context) Result {
	rc := r.cfg.Reader
	if rc.SAMPattern == "" {
		if r.cfg.Mode == config.ModePOS {
			return fail("mode pos debits cards through a PSAM, but reader.sam_pattern is empty",
				"set reader.sam_pattern to the reader (slot) holding the PSAM")
		}
		return skip("reader.sam_pattern is empty: no PSAM configured (mode %s)", r.cfg.Mode)
	}
	if r.pcscErr != nil {
		return skip("pcscd is not reachable, so no readers can be listed")
	}
	var sam []string
	for _, n := range r.readers {
		if rc.IsSAMReader(n) {
			sam = append(sam, n)
		}
	}
	if len(sam) == 0 {
		fix := "seat the PSAM's reader (or the reader with the SAM slot) and check pcsc_scan lists it"
		if len(r.readers) > 0 {
			fix += fmt.Sprintf(", or set reader.sam_pattern to match it, one of %s", quoteList(r.readers))
		}
		return fail(fmt.Sprintf("no reader matches reader.sam_pattern %q; pcscd has %s", rc.SAMPattern, readersText(r.readers)), fix)
	}
	if len(sam) > 1 {
		return warn(fmt.Sprintf("%d readers match reader.sam_pattern %q: %s", len(sam), rc.SAMPattern, quoteList(sam)),
			"anchor reader.sam_pattern (^...$) so it names the one reader holding the PSAM")
	}
	return pass("%s (reader.sam_pattern %q)", quoteList(sam), rc.SAMPattern)
}

func readersText(names []string) string {
	if len(names) == 0 {
		return "no readers"
	}
	return quoteList(names)
}

func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, ", ")
}
