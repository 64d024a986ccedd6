package main

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/text/encoding/simplifiedchinese"

	"github.com/cardd/cardd/apdu"
	"github.com/cardd/cardd/apdu/epurse"
	epursesim "github.com/cardd/cardd/apdu/epurse/sim"
	"github.com/cardd/cardd/apdu/trace"
	"github.com/cardd/cardd/reader"
	"github.com/cardd/cardd/tap"
)

// testMasters are issuer keys for a card that is only read.
var testMasters = epurse.MasterKeys{DLK: epurse.Key16{1}, DPK: epurse.Key16{2}, DTK: epurse.Key16{3}}

// simCard is an in-memory simulated card with a named, numbered holder.
func simCard(t *testing.T) *epursesim.SimCard {
	t.Helper()
	f, err := epursesim.NewCardFile("3101000000123456", "张三丰", 4321,
		epurse.Date{Year: 2024, Month: 9, Day: 1}, epurse.Date{Year: 2030, Month: 8, Day: 31}, testMasters)
	if err != nil {
		t.Fatal(err)
	}
	f.Holder.IDNumber = "110101199001011234"
	return epursesim.NewSimCard(f, "")
}

// TestDumpReadOnly: the guard every dump's commands pass lets reads through
// and refuses, without sending, anything that could change a card.
func TestDumpReadOnly(t *testing.T) {
	sent := 0
	g := readOnly{apdu.TransmitterFunc(func([]byte) ([]byte, error) { sent++; return []byte{0x90, 0x00}, nil })}
	for _, h := range []string{"00A40400", "00B0950000", "00B2011C17", "00C0000010", "80CA000009", "805C000204"} {
		if _, err := g.Transmit(mustHex(t, h)); err != nil {
			t.Errorf("%s refused: %v", h, err)
		}
	}
	for _, h := range []string{"805000020B", "8052000B", "8054010F", "0020000003", "805A000208", "00E40000", "00D6960000", "00"} {
		if _, err := g.Transmit(mustHex(t, h)); !errors.Is(err, errNotReadOnly) {
			t.Errorf("%s: %v, want it refused", h, err)
		}
	}
	if sent != 6 {
		t.Errorf("%d commands reached the card, want the 6 reads", sent)
	}
}

// TestDumpThenReplay: cardd's read of a card, recorded and written as a
// dump, then replayed, reads the same, but for the blanked cardholder; the
// file holds neither the name nor the id number.
func TestDumpThenReplay(t *testing.T) {
	card := simCard(t)
	rec := &trace.Recorder{T: readOnly{card}}
	orig, err := tap.ReadPurse(rec, tap.ReadOptions{History: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	res := tap.Result{Reader: "Virtual PCD 00 00", ATR: card.ATR(), Read: orig}
	if needsProbe(res) || readOutcome(res) != "ok" {
		t.Errorf("a card read right gets probes, or its outcome is %q", readOutcome(res))
	}
	var b bytes.Buffer
	if err := dumpTrace(res, rec, 0, false, time.Date(2026, 12, 3, 13, 0, 0, 0, time.UTC)).Write(&b); err != nil {
		t.Fatal(err)
	}
	text := b.String()
	name, _ := simplifiedchinese.GBK.NewEncoder().Bytes([]byte("张三丰"))
	for _, secret := range []string{fmtHex(name), fmtHex([]byte("110101199001011234"))} {
		if strings.Contains(strings.ReplaceAll(text, " ", ""), secret) {
			t.Errorf("the dump holds %s:\n%s", secret, text)
		}
	}
	for _, want := range []string{
		`# source: cardd dump ` + version + ` on reader "Virtual PCD 00 00", 2026-12-03 13:00:00 UTC`,
		"# note: personal data blanked", "# note: cardd's read: ok",
	} {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("no line %q in\n%s", want, text)
		}
	}
	tr, err := trace.Parse(&b)
	if err != nil {
		t.Fatal(err)
	}
	replayed, err := tap.ReadPurse(trace.NewCard(tr), tap.ReadOptions{History: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if replayed.Holder == nil || replayed.Holder.Name != "" || replayed.Holder.IDNumber != "" {
		t.Errorf("replayed holder %+v, want one with name and id blank", replayed.Holder)
	}
	replayed.Holder, orig.Holder = nil, nil
	if !reflect.DeepEqual(replayed, orig) {
		t.Errorf("replayed read\n%+v\nthe card's\n%+v", replayed, orig)
	}

	// --keep-personal keeps them.
	b.Reset()
	if err := dumpTrace(res, rec, 0, true, time.Now()).Write(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.ReplaceAll(b.String(), " ", ""), fmtHex([]byte("110101199001011234"))) {
		t.Error("--keep-personal: the id number is not in the dump")
	}
}

// TestDumpProbes: a card cardd cannot read (here: one that answers only the
// T-Union AID, which the configured read does not try) gets the probes,
// all of them reads, marked in the trace.
func TestDumpProbes(t *testing.T) {
	card := simCard(t)
	rec := &trace.Recorder{T: readOnly{card}}
	_, err := tap.ReadPurse(rec, tap.ReadOptions{History: true, AIDs: [][]byte{[]byte("NO.SUCH.APP")}}, nil)
	res := tap.Result{Reader: "r", ATR: card.ATR(), Err: err}
	// The simulated card answers file 1001 too: cardd's read succeeds there,
	// so fail it by hand as a card with an unreadable EF 0x15 would.
	if err == nil {
		res.Err = epurse.ErrBadRecord
	}
	if !needsProbe(res) {
		t.Fatalf("no probe after %v", res.Err)
	}
	before := len(rec.Exchanges())
	n := probe(rec)
	ex := rec.Exchanges()[before:]
	if n != len(ex) || n < len(probeApps()) {
		t.Fatalf("probe said %d, recorded %d, want at least one per application", n, len(ex))
	}
	if !strings.HasPrefix(ex[0].Note, "probe") || ex[1].Note != "" {
		t.Errorf("notes %q, %q: the first probe is marked, once", ex[0].Note, ex[1].Note)
	}
	var gotEF15, gotBalance bool
	for _, e := range ex {
		if !readINS[e.Command[1]] {
			t.Errorf("probe sent %X", e.Command)
		}
		gotEF15 = gotEF15 || bytes.HasPrefix(e.Command, []byte{0x00, 0xB0, 0x95}) && len(e.Response) == 32
		gotBalance = gotBalance || bytes.Equal(e.Response, []byte{0, 0, 0x10, 0xE1, 0x90, 0x00})
	}
	if !gotEF15 || !gotBalance {
		t.Errorf("probes read EF 0x15: %v, the balance 43.21: %v", gotEF15, gotBalance)
	}
	if len(rec.Lost()) != 0 {
		t.Errorf("lost %+v", rec.Lost())
	}
	tr := dumpTrace(res, rec, n, false, time.Now())
	if notes := strings.Join(tr.Values("note"), "|"); !strings.Contains(notes, "read-only probes") {
		t.Errorf("notes %q do not say there are probes", notes)
	}
	for _, r := range []tap.Result{
		{Err: fmt.Errorf("get EP balance: %w", &reader.Error{Op: "transmit", Kind: reader.ErrCardRemoved, Err: errors.New("gone")})},
		{Err: fmt.Errorf("read EF 0x16: %w", tap.ErrTapTimeout)},
	} {
		if needsProbe(r) {
			t.Errorf("probe after %v: the card no longer answers", r.Err)
		}
	}
	// A card read and shown, but whose number cardd could not form, was not
	// read right either.
	cr, err := tap.ReadPurse(simCard(t), tap.ReadOptions{History: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cr.Notes = append(cr.Notes, "card number: not BCD")
	unknown := tap.Result{Read: cr}
	if !needsProbe(unknown) || !strings.HasPrefix(readOutcome(unknown), "read, but not right: ") {
		t.Errorf("no probe after a read without a number (%s)", readOutcome(unknown))
	}
}

// TestWriteDump: a dump written over an existing file readable by all is
// readable by its owner only; without --out it goes to stdout.
func TestWriteDump(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Windows guards files with ACLs, not mode bits: this asserts Unix modes (docs/windows.md)")
	}
	path := filepath.Join(t.TempDir(), "card.trace")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if where, err := writeDump(path, []byte("new"), nil); err != nil || where != path {
		t.Fatalf("writeDump: %q, %v", where, err)
	}
	st, err := os.Stat(path)
	if b, _ := os.ReadFile(path); err != nil || st.Mode().Perm() != 0o600 || string(b) != "new" {
		t.Errorf("the dump file: mode %v, content %q (%v); want 0600 and the new content", st.Mode().Perm(), b, err)
	}
	var out bytes.Buffer
	if where, err := writeDump("", []byte("trace"), &out); err != nil || where != "standard output" || out.String() != "trace" {
		t.Errorf("to stdout: %q, %q, %v", where, out.String(), err)
	}
}

func fmtHex(b []byte) string { return fmt.Sprintf("%X", b) }

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
