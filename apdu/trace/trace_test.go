package trace

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// example is TRACE.md's example, spaces inside the hex and all.
const example = `# cardd trace 1
# source: https://example.org/card.log line 12
# note: first note
# note: second note
# expect.number: 3104990600000000006
# expect.balance_fen: 5710
# a comment: with a colon, not a header key
atr 3B8F8001804F0CA000000306030001000000006A

# the select
> 00A4040009A0000000038698070100
< 6F0A8408A000000632010105 9000
> 805c000204
< 000016 4E 9000
`

func TestParseExample(t *testing.T) {
	tr, err := Parse(strings.NewReader(example))
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := tr.Get("source"); v != "https://example.org/card.log line 12" {
		t.Errorf("source %q", v)
	}
	if v, _ := tr.Get("expect.number"); v != "3104990600000000006" {
		t.Errorf("expect.number %q", v)
	}
	if got := tr.Values("note"); !reflect.DeepEqual(got, []string{"first note", "second note"}) {
		t.Errorf("notes %q", got)
	}
	if _, ok := tr.Get("a comment"); ok || len(tr.Header) != 5 {
		t.Errorf("header %q: a comment with spaces before its colon is no key", tr.Header)
	}
	if want := mustHex("3B8F8001804F0CA000000306030001000000006A"); !bytes.Equal(tr.ATR, want) {
		t.Errorf("atr % X", tr.ATR)
	}
	want := []Exchange{
		{Command: mustHex("00A4040009A0000000038698070100"), Response: mustHex("6F0A8408A0000006320101059000"), Note: "the select", Line: 11},
		{Command: mustHex("805C000204"), Response: mustHex("0000164E9000"), Line: 13},
	}
	if !reflect.DeepEqual(tr.Exchanges, want) {
		t.Errorf("exchanges\n%+v\nwant\n%+v", tr.Exchanges, want)
	}
}

func TestParseErrors(t *testing.T) {
	const head = "# cardd trace 1\n# source: test\natr 3B00\n"
	for _, c := range []struct {
		name, in string
		line     int
		msg      string
	}{
		{"empty", "", 0, "empty file"},
		{"no magic", "# source: x\natr 3B00\n", 1, "not a cardd trace"},
		{"other version", "# cardd trace 2\n", 1, `version "2"`},
		{"missing source", "# cardd trace 1\n# note: x\natr 3B00\n", 0, "no '# source:' line"},
		{"source after atr", "# cardd trace 1\natr 3B00\n# source: x\n", 0, "no '# source:' line"},
		{"empty source", "# cardd trace 1\n# source:\natr 3B00\n", 0, "no '# source:' line"},
		{"no atr", "# cardd trace 1\n# source: x\n", 0, "no atr line"},
		{"command before atr", "# cardd trace 1\n# source: x\n> 00A40400\n< 9000\n", 3, "before the atr line"},
		{"second atr", head + "atr 3B00\n", 4, "second atr line (the first is line 3)"},
		{"atr after exchange", "# cardd trace 1\n# source: x\natr 3B\n> 00A40400\n< 9000\natr 3B\n", 6, "a second atr"},
		{"empty atr", "# cardd trace 1\n# source: x\natr\n", 3, "empty atr"},
		{"command without answer", head + "> 00A40400\n> 00B0950000\n< 9000\n", 5, "command of line 4, which has no answer"},
		{"command at end", head + "> 00A40400\n< 9000\n> 00B0950000\n", 6, "file ends before its '<' line"},
		{"answer without command", head + "< 9000\n", 4, "answer without a command"},
		{"two answers", head + "> 00A40400\n< 9000\n< 9000\n", 6, "answer without a command"},
		{"odd hex", head + "> 00A4040\n< 9000\n", 4, "odd number of hex digits"},
		{"space inside a byte", head + "> 00A40 4 00\n< 9000\n", 4, "odd number of hex digits"},
		{"not hex", head + "> 00A4ZZ00\n< 9000\n", 4, "is not hex"},
		{"short command", head + "> 00A404\n< 9000\n", 4, "command of 3 bytes"},
		{"no status word", head + "> 00A40400\n< 90\n", 5, "no status word"},
		{"unknown line", head + "apdu 00A40400\n", 4, "none of"},
		{"too long", head + "> " + strings.Repeat("00", maxLine) + "\n", 4, "longer than"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(c.in))
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error %v, want a *SyntaxError", err)
			}
			if se.Line != c.line || !strings.Contains(se.Msg, c.msg) {
				t.Errorf("error %q at line %d; want line %d saying %q", se.Msg, se.Line, c.line, c.msg)
			}
		})
	}
}

func TestParseAcceptsCRLFAndBOM(t *testing.T) {
	in := "\uFEFF" + strings.ReplaceAll(example, "\n", "\r\n")
	got, err := Parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := Parse(strings.NewReader(example))
	if !reflect.DeepEqual(got, want) {
		t.Errorf("CRLF and BOM read as\n%+v\nnot\n%+v", got, want)
	}
}

func TestWrite(t *testing.T) {
	tr := &Trace{
		Header: []Field{{"source", "cardd dump 0.1.0-dev"}, {"note", "personal data blanked"}},
		ATR:    mustHex("3B8A80"),
		Exchanges: []Exchange{
			{Command: mustHex("00A4040009A0000000038698070100"), Response: mustHex("6F009000")},
			{Command: mustHex("00B0950000"), Response: mustHex("6A82"), Note: "probe\n second line", Line: 99},
		},
	}
	var b bytes.Buffer
	if err := tr.Write(&b); err != nil {
		t.Fatal(err)
	}
	const want = `# cardd trace 1
# source: cardd dump 0.1.0-dev
# note: personal data blanked
atr 3B8A80
> 00A4040009A0000000038698070100
< 6F00 9000
# probe
#  second line
> 00B0950000
< 6A82
`
	if b.String() != want {
		t.Fatalf("wrote\n%s\nwant\n%s", b.String(), want)
	}
	back, err := Parse(&b)
	if err != nil {
		t.Fatal(err)
	}
	tr.Exchanges[0].Line, tr.Exchanges[1].Line = 5, 9
	if !reflect.DeepEqual(back, tr) {
		t.Errorf("read back\n%+v\nwant\n%+v", back, tr)
	}
}

func TestWriteRefuses(t *testing.T) {
	ok := func() *Trace {
		return &Trace{Header: []Field{{"source", "x"}}, ATR: []byte{0x3B},
			Exchanges: []Exchange{{Command: mustHex("00A40400"), Response: mustHex("9000")}}}
	}
	for name, spoil := range map[string]func(*Trace){
		"no source":        func(t *Trace) { t.Header = nil },
		"value on 2 lines": func(t *Trace) { t.Header = append(t.Header, Field{"note", "a\nb"}) },
		"key with space":   func(t *Trace) { t.Header = append(t.Header, Field{"a b", "c"}) },
		"no atr":           func(t *Trace) { t.ATR = nil },
		"short command":    func(t *Trace) { t.Exchanges[0].Command = []byte{0, 0xA4} },
		"no status word":   func(t *Trace) { t.Exchanges[0].Response = []byte{0x90} },
	} {
		tr := ok()
		spoil(tr)
		var b bytes.Buffer
		if err := tr.Write(&b); err == nil || b.Len() != 0 {
			t.Errorf("%s: Write wrote %d bytes, err %v; want an error and nothing written", name, b.Len(), err)
		}
	}
	if err := ok().Write(&bytes.Buffer{}); err != nil {
		t.Errorf("the unspoilt trace: %v", err)
	}
}

func mustHex(s string) []byte {
	b, err := parseHex(0, s)
	if err != nil {
		panic(err)
	}
	return b
}
