package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/cardd/cardd/apdu"
	"github.com/cardd/cardd/apdu/epurse"
	"github.com/cardd/cardd/apdu/trace"
	"github.com/cardd/cardd/internal/atomicfile"
	"github.com/cardd/cardd/tap"
)

// cmdDump records one tap as a trace (docs/trace.md): the ATR and every
// command of cardd's read with the card's answer, then, when the read failed
// or the card was not recognised, a few read-only probes that show a
// developer what the card holds. The trace is written even when the read
// failed: that is when it is wanted.
func cmdDump(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var out string
	var keepPersonal bool
	var wait time.Duration
	cfg, err := loadConfig("dump", args, func(fs *pflag.FlagSet) {
		fs.StringVar(&out, "out", "", "file to write the trace to (mode 0600); default standard output")
		fs.BoolVar(&keepPersonal, "keep-personal", false, "keep the cardholder's name and id number (blanked to 00 by default)")
		fs.DurationVar(&wait, "wait", 0, "give up when no card is tapped within this time (0 waits for ever)")
	})
	if err != nil {
		return err
	}
	r := interactiveRunner(cfg, stderr)
	var rec *trace.Recorder
	r.WrapCard = func(t apdu.Transmitter) apdu.Transmitter {
		rec = &trace.Recorder{T: readOnly{t}}
		return rec
	}
	probed := 0
	r.BeforeClose = func(_ apdu.Transmitter, res tap.Result) { // the transmitter is rec
		if needsProbe(res) {
			probed = probe(rec)
		}
	}
	got, err := oneTap(ctx, r, wait, stderr)
	if err != nil {
		return err
	}
	if rec == nil {
		return fmt.Errorf("%s: %s: %w", got.Reader, got.Outcome(), got.Err)
	}
	tr := dumpTrace(*got, rec, probed, keepPersonal, time.Now())
	var b bytes.Buffer
	if err := tr.Write(&b); err != nil {
		return err
	}
	where, err := writeDump(out, b.Bytes(), stdout)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "%d exchanges (%d of them probes) written to %s; cardd's read: %s\n", len(tr.Exchanges), probed, where, readOutcome(*got))
	return nil
}

// writeDump writes the trace to the file out, or to stdout when out is "",
// and says where it went. The file is mode 0600, an existing one included
// (it is replaced, not rewritten in place): even blanked, a trace holds the
// card's number.
func writeDump(out string, b []byte, stdout io.Writer) (where string, err error) {
	if out == "" {
		_, err = stdout.Write(b)
		return "standard output", err
	}
	return out, atomicfile.Write(out, b, 0o600)
}

// readOutcome says how cardd's read of the dumped tap went.
func readOutcome(res tap.Result) string {
	switch err := readProblem(res); {
	case err == nil:
		return "ok"
	case res.Err == nil:
		return fmt.Sprintf("read, but not right: %v", err)
	}
	return fmt.Sprintf("%s: %v", res.Outcome(), res.Err)
}

// readProblem is why the dumped tap was not read right: the read's error;
// for a card read, what keeps it from being recognised (the daemon would
// move no money on it) or the fields cardd could not interpret; nil for a
// card read right.
func readProblem(res tap.Result) error {
	if res.Err != nil || res.Read == nil {
		return res.Err
	}
	if err := res.Read.Transactable(); err != nil {
		return err
	}
	if len(res.Read.Notes) > 0 {
		return fmt.Errorf("not interpreted: %s", strings.Join(res.Read.Notes, "; "))
	}
	return nil
}

// dumpTrace is the trace of a recorded tap.
func dumpTrace(res tap.Result, rec *trace.Recorder, probed int, keepPersonal bool, now time.Time) *trace.Trace {
	tr := &trace.Trace{
		Header: []trace.Field{
			{Key: "source", Value: fmt.Sprintf("cardd dump %s on reader %q, %s", version, res.Reader, now.UTC().Format("2006-01-02 15:04:05 UTC"))},
			{Key: "reader", Value: res.Reader},
			{Key: "date", Value: now.UTC().Format(time.RFC3339)},
			{Key: "note", Value: "cardd's read: " + oneLine(readOutcome(res))},
		},
		ATR:       res.ATR,
		Exchanges: rec.Exchanges(),
	}
	if probed > 0 {
		tr.Header = append(tr.Header, trace.Field{Key: "note", Value: fmt.Sprintf("the read went wrong: the last %d exchanges are read-only probes (marked \"probe\"), not cardd's read", probed)})
	}
	for _, l := range rec.Lost() {
		tr.Header = append(tr.Header, trace.Field{Key: "note", Value: fmt.Sprintf("no answer to %X: %s", redactCommand(l.Command), oneLine(l.Err.Error()))})
	}
	if keepPersonal {
		tr.Header = append(tr.Header, trace.Field{Key: "note", Value: "personal data kept (--keep-personal): the cardholder's name and id number are in this file"})
	} else {
		tr.BlankPersonal()
		tr.Header = append(tr.Header, trace.Field{Key: "note", Value: "personal data blanked"})
	}
	return tr
}

// redactCommand is cmd for a note; a dump sends no VERIFY, but should one
// ever pass, its data, the PIN, is not written.
func redactCommand(cmd []byte) []byte {
	if len(cmd) > 4 && cmd[1] == 0x20 {
		return cmd[:4]
	}
	return cmd
}

func oneLine(s string) string { return string(bytes.Join(bytes.Fields([]byte(s)), []byte(" "))) }

// readOnly refuses every command but those that only read: a dump must
// never change the card, whatever cardd's read or probes would send.
type readOnly struct{ t apdu.Transmitter }

// errNotReadOnly is returned for a command a dump refuses to send.
var errNotReadOnly = errors.New("cardd dump sends only commands that read")

// readINS are the instructions a dump sends: SELECT, READ BINARY, READ
// RECORD, GET RESPONSE, GET DATA, and GET BALANCE, which PBOC defines as a
// read (spec "Commands").
var readINS = map[byte]bool{0xA4: true, 0xB0: true, 0xB2: true, 0xC0: true, 0xCA: true, 0x5C: true}

func (r readOnly) Transmit(cmd []byte) ([]byte, error) {
	if len(cmd) < 4 || !readINS[cmd[1]] {
		return nil, fmt.Errorf("%w: INS %02X refused", errNotReadOnly, cmd[min(1, len(cmd)-1)])
	}
	return r.t.Transmit(cmd)
}

// needsProbe: the card answered, but cardd did not read it right; a card
// gone or a tap out of time has nothing more to say.
func needsProbe(res tap.Result) bool {
	if readProblem(res) == nil {
		return false
	}
	switch res.Outcome() {
	case tap.OutcomeRemoved, tap.OutcomeTimeout, tap.OutcomeStopped, tap.OutcomeNoService,
		tap.OutcomeReaderGone, tap.OutcomeReaderBusy:
		return false
	}
	return true
}

// probeApps are the applications a dump tries after a read gone wrong: the
// PBOC directory (PSE 1PAY.SYS.DDF01), whose records list the card's
// applications, every card family's DF name (epurse.DefaultAIDs), and the
// application's file id 1001.
func probeApps() []apdu.Command {
	apps := []apdu.Command{selectName([]byte("1PAY.SYS.DDF01"))}
	for _, aid := range epurse.DefaultAIDs() {
		apps = append(apps, selectName(aid))
	}
	return append(apps, apdu.Command{CLA: 0x00, INS: 0xA4, P1: 0x00, P2: 0x00, Data: []byte{0x10, 0x01}, Ne: 256})
}

func selectName(aid []byte) apdu.Command {
	return apdu.Command{CLA: 0x00, INS: 0xA4, P1: 0x04, P2: 0x00, Data: aid, Ne: 256}
}

// Reads after an application answers its SELECT: EF 0x15 whole (Le 00:
// some issuers' is longer than 30 bytes), both balances, the newest log
// record; in the PSE, the first directory record.
var (
	probeADF = []apdu.Command{
		{CLA: 0x00, INS: 0xB0, P1: 0x95, P2: 0x00, Ne: 256},
		{CLA: 0x80, INS: 0x5C, P1: 0x00, P2: 0x02, Ne: 4},
		{CLA: 0x80, INS: 0x5C, P1: 0x00, P2: 0x01, Ne: 4},
		{CLA: 0x00, INS: 0xB2, P1: 0x01, P2: 0x18<<3 | 4, Ne: 256},
	}
	probePSE = []apdu.Command{{CLA: 0x00, INS: 0xB2, P1: 0x01, P2: 0x01<<3 | 4, Ne: 256}}
)

// probe sends the probes through rec and returns how many exchanges they
// added. It stops at the first command that got no answer.
func probe(rec *trace.Recorder) int {
	before := len(rec.Exchanges())
	rec.Note = "probe: not part of cardd's read; the dump tries what the card holds"
	for i, app := range probeApps() {
		resp, err := apdu.TransceiveResponse(rec, app)
		if err != nil {
			break
		}
		if resp.SW != apdu.SWOK && resp.SW != 0x6283 {
			continue
		}
		reads := probeADF
		if i == 0 {
			reads = probePSE
		}
		for _, c := range reads {
			if _, err := apdu.TransceiveResponse(rec, c); err != nil {
				return len(rec.Exchanges()) - before
			}
		}
	}
	rec.Note = ""
	return len(rec.Exchanges()) - before
}
