package integration

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/text/encoding/simplifiedchinese"

	"github.com/cardd/cardd/apdu/epurse"
	epursesim "github.com/cardd/cardd/apdu/epurse/sim"
	"github.com/cardd/cardd/apdu/trace"
)

// whileTapped runs `cardd args...`, which waits for one tap on slot 0,
// while `cardsim tapArgs...` puts a card there for a moment; it returns
// cardd's standard output and error output.
func whileTapped(t *testing.T, args []string, tapArgs ...string) (stdout, stderr string, err error) {
	t.Helper()
	cardd, cardsim := binary(t, "cardd"), binary(t, "cardsim")
	waitEmpty(t, 0)
	cmd := exec.Command(cardd, append(args, "--wait", "20s", "--reader-card", "^"+slot0Reader+"$")...)
	cmd.Env = append(os.Environ(), "CARDD_CONFIG=")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // cardd is waiting; now tap
	tapCmd := exec.Command(cardsim, append(tapArgs, "--slot", "0", "--hold", "2s")...)
	if b, err := tapCmd.CombinedOutput(); err != nil {
		t.Fatalf("cardsim %q: %v\n%s", tapArgs, err, b)
	}
	err = cmd.Wait()
	return out.String(), errOut.String(), err
}

// scanJSON is `cardd scan --json --full-number` of one tap, without the fields that are
// the reader's and the clock's, not the card's.
func scanJSON(t *testing.T, tapArgs ...string) map[string]any {
	t.Helper()
	out, stderr, err := whileTapped(t, []string{"scan", "--json", "--full-number"}, tapArgs...)
	if err != nil {
		t.Fatalf("cardd scan of %q: %v\n%s%s", tapArgs, err, out, stderr)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("scan output is not JSON: %v\n%s", err, out)
	}
	for _, k := range []string{"reader", "balance_ms", "total_ms"} {
		if _, ok := m[k]; !ok {
			t.Fatalf("scan output has no %q: the comparison leaves out a field that is not there\n%s", k, out)
		}
		delete(m, k)
	}
	return m
}

// dump is `cardd dump --out FILE flags...` of one tap; it returns the file.
func dump(t *testing.T, name string, flags []string, tapArgs ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	out, stderr, err := whileTapped(t, append([]string{"dump", "--out", path}, flags...), tapArgs...)
	if err != nil {
		t.Fatalf("cardd dump: %v\n%s%s", err, out, stderr)
	}
	t.Logf("cardd dump: %s", stderr)
	return path
}

func readTrace(t *testing.T, path string) (*trace.Trace, string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := trace.Parse(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("the dump does not parse: %v\n%s", err, b)
	}
	return tr, string(b)
}

// TestDumpReplaySimulatedCard: `cardd dump` of the simulated card through
// pcscd, then `cardsim replay` of that trace: `cardd scan --json` reads the
// replayed card exactly as the card itself, to the APDU count; the trace is
// the ATR and every APDU of the read, nothing more; without --keep-personal
// the cardholder's name and id number are not in the file and the replay
// reads a holder with neither.
func TestDumpReplaySimulatedCard(t *testing.T) {
	requirePCSC(t)
	f, card := newCardFile(t, "3101000000135790", "王小明", 8642, 8)
	f.Holder.IDNumber = "110101199001011234"
	if err := f.Save(card); err != nil {
		t.Fatal(err)
	}
	if _, probes := checkDumpReplay(t, f, card); probes != 0 {
		t.Errorf("%d probes after a read that succeeded", probes)
	}
}

// TestDumpReplayTUnionCard: the same for a T-Union-numbered simulated card
// (`cardsim card new --profile tunion`): its 19-digit number, both purses,
// validity and log read the same from its replay.
func TestDumpReplayTUnionCard(t *testing.T) {
	requirePCSC(t)
	cardsim := binary(t, "cardsim")
	dir := t.TempDir()
	keys, path := filepath.Join(dir, "masters.json"), filepath.Join(dir, "tunion.json")
	const number = "3104990600000000006"
	for _, args := range [][]string{
		{"keys", "new", "--out", keys},
		{"card", "new", "--profile", "tunion", "--out", path, "--keys", keys, "--number", number, "--holder", "赵六",
			"--balance", "42.10", "--start", "2025-09-01", "--expiry", "2029-08-31", "--history", "6"},
	} {
		if out, err := exec.Command(cardsim, args...).CombinedOutput(); err != nil {
			t.Fatalf("cardsim %v: %v\n%s", args, err, out)
		}
	}
	f, err := epursesim.LoadCardFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if f.Info.CardNumber != number || f.Info.Numbering != epurse.NumberTUnion {
		t.Fatalf("card file: number %q numbering %q", f.Info.CardNumber, f.Info.Numbering)
	}
	f.Holder.IDNumber = "310101198002021234"
	if err := f.Save(path); err != nil {
		t.Fatal(err)
	}
	// A recognised card is dumped without probes: the trace is exactly
	// cardd's read.
	orig, probes := checkDumpReplay(t, f, path)
	if probes != 0 {
		t.Errorf("%d probes: cardd did not recognise the T-Union card", probes)
	}
	if orig["family"] != "tunion" || orig["second_purse_fen"] == nil {
		t.Errorf("the card scans as family %v, second purse %v: the comparison does not cover a T-Union card's own fields", orig["family"], orig["second_purse_fen"])
	}
}

// checkDumpReplay dumps the card in the card file at path twice (with and
// without --keep-personal), replays both and compares the scans. It returns
// the card's own scan and how many probes the first dump holds.
func checkDumpReplay(t *testing.T, f *epursesim.CardFile, path string) (orig map[string]any, probes int) {
	t.Helper()
	orig = scanJSON(t, "card", "--file", path)
	if txs, _ := orig["transactions"].([]any); orig["card"] != f.Info.CardNumber || orig["balance_fen"] != float64(f.EPBalance) ||
		orig["holder"] != f.Holder.Name || len(txs) != min(5, len(f.Log)) {
		t.Fatalf("the card itself scans as %v", orig)
	}

	kept := dump(t, "kept.trace", []string{"--keep-personal"}, "card", "--file", path)
	tr, text := readTrace(t, kept)
	if want := epursesim.NewSimCard(f, "").ATR(); !bytes.Equal(tr.ATR, want) {
		t.Errorf("trace ATR % X, the card's % X", tr.ATR, want)
	}
	// Every APDU of the read, then the probes, if any.
	read := probesFrom(tr)
	if float64(read) != orig["apdus"] {
		t.Errorf("the trace holds %d exchanges before its probes, the read sends %v APDUs\n%s", read, orig["apdus"], text)
	}
	if src, _ := tr.Get("source"); !strings.HasPrefix(src, "cardd dump ") || !strings.Contains(src, slot0Reader) {
		t.Errorf("source %q: want cardd dump, its version and the reader", src)
	}
	if got := scanJSON(t, "replay", "--trace", kept); !reflect.DeepEqual(got, orig) {
		t.Errorf("replayed (--keep-personal):\n%v\nthe card:\n%v", got, orig)
	}

	blanked := dump(t, "blanked.trace", nil, "card", "--file", path)
	tr, text = readTrace(t, blanked)
	if !strings.Contains(text, "\n# note: personal data blanked\n") {
		t.Errorf("no note of the blanking:\n%s", text)
	}
	name, err := simplifiedchinese.GBK.NewEncoder().String(f.Holder.Name)
	if err != nil {
		t.Fatal(err)
	}
	flat := strings.ToUpper(strings.ReplaceAll(text, " ", ""))
	for _, secret := range []string{name, f.Holder.IDNumber} {
		if h := strings.ToUpper(hex.EncodeToString([]byte(secret))); strings.Contains(flat, h) {
			t.Errorf("the blanked dump holds %s", h)
		}
	}
	got := scanJSON(t, "replay", "--trace", blanked)
	if _, ok := got["holder"]; ok {
		t.Errorf("the blanked replay has a holder name %q", got["holder"])
	}
	want := maps(orig)
	delete(want, "holder")
	if !reflect.DeepEqual(got, want) {
		t.Errorf("replayed (blanked):\n%v\nthe card without its holder:\n%v", got, want)
	}
	return orig, len(tr.Exchanges) - read
}

// probesFrom is the index of a dump's first probe: the number of exchanges
// of cardd's read.
func probesFrom(tr *trace.Trace) int {
	for i, e := range tr.Exchanges {
		if strings.HasPrefix(e.Note, "probe") {
			return i
		}
	}
	return len(tr.Exchanges)
}

func maps(m map[string]any) map[string]any {
	c := make(map[string]any, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// TestDumpBlockedCardProbes: a card cardd cannot read (its application
// blocked: 6283) is dumped all the same, with the read-only probes after the
// read; its replay fails cardd's scan the same way as the card did.
func TestDumpBlockedCardProbes(t *testing.T) {
	requirePCSC(t)
	f, card := newCardFile(t, "3101000000975310", "", 100, 2)
	f.Blocked = true
	if err := f.Save(card); err != nil {
		t.Fatal(err)
	}
	_, origErr, err := whileTapped(t, []string{"scan", "--json"}, "card", "--file", card)
	if err == nil || !strings.Contains(origErr, "application_blocked") {
		t.Fatalf("the blocked card scans with %v: %s", err, origErr)
	}
	path := dump(t, "blocked.trace", nil, "card", "--file", card)
	tr, text := readTrace(t, path)
	probes := len(tr.Exchanges) - probesFrom(tr)
	if probes == 0 || !strings.Contains(text, fmt.Sprintf("the last %d exchanges are read-only probes", probes)) {
		t.Fatalf("no probes (%d) or no note of them:\n%s", probes, text)
	}
	for _, e := range tr.Exchanges {
		if ins := e.Command[1]; ins != 0xA4 && ins != 0xB0 && ins != 0xB2 && ins != 0x5C && ins != 0xC0 {
			t.Errorf("the dump sent %X", e.Command)
		}
	}
	// EF 0x15 read whole, as the FCI's copy of it is all the read had.
	if !strings.Contains(text, "> 00B0950000\n< "+strings.ToUpper(hex.EncodeToString(f.Info.Bytes()))+" 9000\n") {
		t.Errorf("no READ BINARY of EF 0x15 among the probes:\n%s", text)
	}
	_, replayErr, err := whileTapped(t, []string{"scan", "--json"}, "replay", "--trace", path)
	if err == nil || !strings.Contains(replayErr, "application_blocked") {
		t.Errorf("the replayed blocked card scans with %v: %s", err, replayErr)
	}
}
