// Package trace reads and writes cardd trace files: one tap of one card, its
// ATR and every command APDU with the card's answer, in the order they were
// sent (docs/trace.md has the format and the replay rules). `cardd dump`
// writes one through a Recorder, `cardsim replay` plays one back as a card
// through a Card, and the card corpus under testdata is made of them.
package trace

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
)

// Magic is line 1 of every trace of the version this package reads.
const Magic = "# cardd trace 1"

// maxLine bounds one line: the longest short APDU is a few hundred hex
// digits, so a longer line is not a trace.
const maxLine = 64 << 10

// Field is one `# key: value` header line.
type Field struct {
	Key, Value string
}

// Exchange is one command APDU and the card's answer to it.
type Exchange struct {
	// Command is the command APDU as sent, Response the answer: data
	// followed by the two status word bytes.
	Command, Response []byte
	// Note is the comment lines just before the `>` line, without their
	// `#`, one per line; "" for none. A dump marks its probes with it.
	Note string
	// Line is the line of the `>` in the file it was parsed from; 0 for an
	// exchange made otherwise. Write ignores it.
	Line int
}

// Trace is one tap of one card.
type Trace struct {
	// Header is the `# key: value` lines before the first atr or `>` line,
	// in their order; a key may repeat (note does).
	Header []Field
	ATR    []byte
	// Exchanges are in the order they were sent.
	Exchanges []Exchange
}

// Get returns the value of the first header line with key.
func (t *Trace) Get(key string) (string, bool) {
	for _, f := range t.Header {
		if f.Key == key {
			return f.Value, true
		}
	}
	return "", false
}

// Values returns the values of every header line with key, in order.
func (t *Trace) Values(key string) []string {
	var vs []string
	for _, f := range t.Header {
		if f.Key == key {
			vs = append(vs, f.Value)
		}
	}
	return vs
}

// SyntaxError is a trace that does not follow the format, at Line (1 the
// first; 0 when no one line is to blame).
type SyntaxError struct {
	Line int
	Msg  string
}

// Error names the trace line to blame, when there is one, and what is wrong.
func (e *SyntaxError) Error() string {
	if e.Line == 0 {
		return "trace: " + e.Msg
	}
	return fmt.Sprintf("trace line %d: %s", e.Line, e.Msg)
}

func syntaxErr(line int, format string, a ...any) error {
	return &SyntaxError{Line: line, Msg: fmt.Sprintf(format, a...)}
}

// keyRE is what a header key looks like: "source", "expect.tx.1". A comment
// such as "# see: the log" has a space in its would-be key and stays a
// comment.
var keyRE = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// Parse reads a trace. It is strict, so that a trace that would replay
// other than its author meant is refused with the line to fix: line 1 must be
// Magic, a source header is required, one atr line comes before the first
// exchange, and every `>` line has exactly one `<` line after it (comments
// and blank lines may come between). A leading UTF-8 byte order mark and
// CRLF line ends are accepted.
//
// One switch over the line kinds reads better than its pieces scattered, so
// it is exempt from the complexity bound scripts/test holds.
//
//gocyclo:ignore
func Parse(r io.Reader) (*Trace, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxLine)
	t := &Trace{}
	var (
		n        int
		inHeader = true
		atrLine  int
		pending  *Exchange // a `>` waiting for its `<`
		notes    []string
	)
	for sc.Scan() {
		n++
		line := strings.TrimSuffix(sc.Text(), "\r")
		if n == 1 {
			line = strings.TrimPrefix(line, "\uFEFF")
			if line != Magic {
				if v, ok := strings.CutPrefix(line, "# cardd trace "); ok {
					return nil, syntaxErr(1, "trace version %q; this cardd reads version 1", v)
				}
				return nil, syntaxErr(1, "not a cardd trace: line 1 must be %q", Magic)
			}
			continue
		}
		if strings.TrimSpace(line) == "" {
			continue
		}
		if c, ok := strings.CutPrefix(line, "#"); ok {
			switch {
			case inHeader:
				if k, v, ok := strings.Cut(c, ":"); ok && keyRE.MatchString(strings.TrimSpace(k)) {
					t.Header = append(t.Header, Field{Key: strings.TrimSpace(k), Value: strings.TrimSpace(v)})
				}
			case pending == nil:
				notes = append(notes, strings.TrimPrefix(c, " "))
			}
			continue
		}
		kind, rest := lineKind(line)
		switch kind {
		case "atr":
			if atrLine != 0 {
				return nil, syntaxErr(n, "a second atr line (the first is line %d)", atrLine)
			}
			if len(t.Exchanges) > 0 || pending != nil {
				return nil, syntaxErr(n, "the atr line comes after an exchange; it must come before the first")
			}
			b, err := parseHex(n, rest)
			if err != nil {
				return nil, err
			}
			if len(b) == 0 {
				return nil, syntaxErr(n, "empty atr")
			}
			t.ATR, atrLine, inHeader = b, n, false
		case ">":
			if pending != nil {
				return nil, syntaxErr(n, "a command follows the command of line %d, which has no answer: every '>' line needs one '<' line after it", pending.Line)
			}
			if atrLine == 0 {
				return nil, syntaxErr(n, "a command before the atr line")
			}
			b, err := parseHex(n, rest)
			if err != nil {
				return nil, err
			}
			if len(b) < 4 {
				return nil, syntaxErr(n, "a command of %d bytes; a command APDU has at least CLA INS P1 P2", len(b))
			}
			pending = &Exchange{Command: b, Line: n, Note: strings.Join(notes, "\n")}
			notes = nil
		case "<":
			if pending == nil {
				return nil, syntaxErr(n, "an answer without a command: a '<' line must follow a '>' line")
			}
			b, err := parseHex(n, rest)
			if err != nil {
				return nil, err
			}
			if len(b) < 2 {
				return nil, syntaxErr(n, "an answer of %d bytes has no status word (SW1 SW2)", len(b))
			}
			pending.Response = b
			t.Exchanges = append(t.Exchanges, *pending)
			pending = nil
		default:
			return nil, syntaxErr(n, "a line that is none of '#', 'atr', '>', '<': %q", clip(line))
		}
		inHeader = false
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, syntaxErr(n+1, "line longer than %d bytes", maxLine)
		}
		return nil, fmt.Errorf("trace: reading: %w", err)
	}
	switch {
	case n == 0:
		return nil, syntaxErr(0, "empty file; line 1 must be %q", Magic)
	case pending != nil:
		return nil, syntaxErr(pending.Line, "the command has no answer: the file ends before its '<' line")
	case atrLine == 0:
		return nil, syntaxErr(0, "no atr line: a trace holds the card's ATR before its first exchange")
	}
	if v, ok := t.Get("source"); !ok || v == "" {
		return nil, syntaxErr(0, "missing header: no '# source:' line before the atr line says where the bytes come from")
	}
	return t, nil
}

// lineKind splits an exchange or atr line into its marker and its hex.
func lineKind(line string) (kind, rest string) {
	switch {
	case strings.HasPrefix(line, ">"), strings.HasPrefix(line, "<"):
		return line[:1], line[1:]
	case line == "atr":
		return "atr", ""
	case strings.HasPrefix(line, "atr ") || strings.HasPrefix(line, "atr\t"):
		return "atr", line[4:]
	}
	return "", ""
}

// parseHex reads hex digits in pairs, spaces and tabs allowed between pairs.
func parseHex(line int, s string) ([]byte, error) {
	var out []byte
	for _, tok := range strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == '\t' }) {
		if len(tok)%2 != 0 {
			return nil, syntaxErr(line, "odd number of hex digits in %q: bytes are pairs of digits", clip(tok))
		}
		b, err := hex.DecodeString(tok)
		if err != nil {
			return nil, syntaxErr(line, "%q is not hex: %v", clip(tok), err)
		}
		out = append(out, b...)
	}
	return out, nil
}

// clip shortens what an error quotes.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// Write writes t in the trace format: the header, the atr line, then each
// exchange, the answer's status word apart from its data for the reader. It
// refuses, writing nothing, a trace that Parse would not read back the same:
// no source, a key or value that does not fit on its header line, a
// command shorter than 4 bytes, an answer without a status word.
func (t *Trace) Write(w io.Writer) error {
	if err := t.check(); err != nil {
		return err
	}
	var b bytes.Buffer
	b.WriteString(Magic + "\n")
	for _, f := range t.Header {
		fmt.Fprintf(&b, "# %s: %s\n", f.Key, f.Value)
	}
	fmt.Fprintf(&b, "atr %X\n", t.ATR)
	for _, e := range t.Exchanges {
		if e.Note != "" {
			for _, l := range strings.Split(e.Note, "\n") {
				fmt.Fprintf(&b, "# %s\n", l)
			}
		}
		fmt.Fprintf(&b, "> %X\n", e.Command)
		data, sw := e.Response[:len(e.Response)-2], e.Response[len(e.Response)-2:]
		if len(data) > 0 {
			fmt.Fprintf(&b, "< %X %X\n", data, sw)
		} else {
			fmt.Fprintf(&b, "< %X\n", sw)
		}
	}
	_, err := w.Write(b.Bytes())
	return err
}

func (t *Trace) check() error {
	if v, ok := t.Get("source"); !ok || v == "" {
		return errors.New("trace: no source header: say where the bytes come from")
	}
	for _, f := range t.Header {
		if !keyRE.MatchString(f.Key) {
			return fmt.Errorf("trace: header key %q: want letters, digits, '.', '_' or '-'", f.Key)
		}
		if strings.Contains(f.Value, "\n") || f.Value != strings.TrimSpace(f.Value) {
			return fmt.Errorf("trace: header %s: the value must be one line without surrounding space", f.Key)
		}
	}
	if len(t.ATR) == 0 {
		return errors.New("trace: no ATR")
	}
	for i, e := range t.Exchanges {
		if len(e.Command) < 4 {
			return fmt.Errorf("trace: exchange %d: a command of %d bytes, want at least 4", i+1, len(e.Command))
		}
		if len(e.Response) < 2 {
			return fmt.Errorf("trace: exchange %d: an answer of %d bytes has no status word", i+1, len(e.Response))
		}
		if strings.Contains(e.Note+"\n", "\r\n") {
			return fmt.Errorf("trace: exchange %d: a note line ends in a carriage return", i+1)
		}
	}
	return nil
}
