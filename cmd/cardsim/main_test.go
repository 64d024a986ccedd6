package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cardd/cardd/apdu/epurse"
	epursesim "github.com/cardd/cardd/apdu/epurse/sim"
	"github.com/cardd/cardd/money"
)

func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errw bytes.Buffer
	code = Main(args, &out, &errw)
	return code, out.String(), errw.String()
}

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	code, stdout, stderr := run(t, args...)
	if code != 0 {
		t.Fatalf("cardsim %s: exit %d, stderr %q", strings.Join(args, " "), code, stderr)
	}
	return stdout
}

func wantMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Mode().Perm(); got != want {
		t.Errorf("%s has mode %04o, want %04o", path, got, want)
	}
}

// dirNames lists the files in dir, sorted.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

var hexKey = regexp.MustCompile(`^[0-9A-F]{32}$`)

// readKeyFile checks the key file is JSON with exactly dlk, dpk and dtk, each
// 32 hex digits, and returns the keys.
func readKeyFile(t *testing.T, path string) epurse.MasterKeys {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]string
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatalf("key file %s is not a JSON object of strings: %v", path, err)
	}
	var keys []string
	for k, v := range raw {
		keys = append(keys, k)
		if !hexKey.MatchString(v) {
			t.Errorf("key file %s: %s is %d characters, not 32 upper-case hex digits", path, k, len(v))
		}
	}
	slices.Sort(keys)
	if !slices.Equal(keys, []string{"dlk", "dpk", "dtk"}) {
		t.Errorf("key file %s has fields %v, want dlk dpk dtk", path, keys)
	}
	var m epurse.MasterKeys
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m.DLK == m.DPK || m.DPK == m.DTK || m.DLK == m.DTK || m.DLK == (epurse.Key16{}) {
		t.Errorf("key file %s: keys are zero or repeat", path)
	}
	return m
}

func TestKeysNew(t *testing.T) {
	dir := t.TempDir()
	kf := filepath.Join(dir, "masters.json")
	stdout := mustRun(t, "keys", "new", "--out", kf)
	if !strings.Contains(stdout, kf) {
		t.Errorf("stdout %q does not name %s", stdout, kf)
	}
	wantMode(t, kf, 0o600)
	m := readKeyFile(t, kf)
	before, _ := os.ReadFile(kf)

	// Two runs give different keys.
	kf2 := filepath.Join(dir, "other.json")
	mustRun(t, "keys", "new", "--out", kf2)
	if readKeyFile(t, kf2) == m {
		t.Error("two runs of keys new wrote the same keys")
	}

	// An existing file is never overwritten: every card issued with it would be orphaned.
	code, _, stderr := run(t, "keys", "new", "--out", kf)
	if code != 1 {
		t.Errorf("keys new over an existing file: exit %d, want 1 (stderr %q)", code, stderr)
	}
	if !strings.Contains(stderr, kf) {
		t.Errorf("stderr %q does not name the file", stderr)
	}
	if after, _ := os.ReadFile(kf); !bytes.Equal(after, before) {
		t.Error("the existing key file was changed")
	}

	code, _, stderr = run(t, "keys", "new")
	if code != 2 || !strings.Contains(stderr, "--out") {
		t.Errorf("keys new without --out: exit %d, stderr %q; want 2 naming --out", code, stderr)
	}
}

func signed(t *testing.T, l epurse.LogRecord) int64 {
	t.Helper()
	switch l.Type {
	case epurse.TxEPLoad:
		return l.Amount
	case epurse.TxEPPurchase:
		return -l.Amount
	}
	t.Errorf("log record of type %v on an EP-only history", l.Type)
	return 0
}

func TestCardNewWithKeys(t *testing.T) {
	dir := t.TempDir()
	kf := filepath.Join(dir, "masters.json")
	mustRun(t, "keys", "new", "--out", kf)
	masters := readKeyFile(t, kf)

	card := filepath.Join(dir, "card.json")
	stdout := mustRun(t, "card", "new", "--out", card, "--keys", kf,
		"--number", "3101000087653456", "--holder", "张三", "--balance", "100.00",
		"--start", "2025-09-01", "--expiry", "2029-08-31", "--history", "6")
	if strings.Contains(stdout, "3101000087653456") || !strings.Contains(stdout, "3101********3456") {
		t.Errorf("stdout %q: want the card number masked as 3101********3456", stdout)
	}
	wantMode(t, card, 0o600)

	f, err := epursesim.LoadCardFile(card)
	if err != nil {
		t.Fatalf("LoadCardFile: %v", err)
	}
	if f.Info.CardNumber != "3101000087653456" {
		t.Errorf("card number %q", f.Info.CardNumber)
	}
	if f.Holder == nil || f.Holder.Name != "张三" {
		t.Errorf("holder %+v, want 张三", f.Holder)
	}
	if want := (epurse.Date{Year: 2025, Month: time.September, Day: 1}); f.Info.StartDate != want {
		t.Errorf("start %s, want %s", f.Info.StartDate, want)
	}
	if want := (epurse.Date{Year: 2029, Month: time.August, Day: 31}); f.Info.ExpiryDate != want {
		t.Errorf("expiry %s, want %s", f.Info.ExpiryDate, want)
	}
	if f.Keys != masters.Diversify(f.Info.AppSerial[:]) {
		t.Error("the card's keys are not diversified from --keys")
	}
	if len(f.Log) != 6 {
		t.Fatalf("%d log records, want 6", len(f.Log))
	}
	var sum int64
	loads, purchases := 0, 0
	for _, l := range f.Log {
		s := signed(t, l)
		sum += s
		if s > 0 {
			loads++
		} else {
			purchases++
		}
	}
	if loads == 0 || purchases == 0 {
		t.Errorf("history of %d loads and %d purchases, want both", loads, purchases)
	}
	if f.EPBalance != 10000+sum {
		t.Errorf("EP balance %d fen, want 10000 + %d from the log = %d", f.EPBalance, sum, 10000+sum)
	}
	if int(f.EPOnlineCounter) != loads || int(f.EPOfflineCounter) != purchases {
		t.Errorf("counters online %d offline %d, want %d and %d", f.EPOnlineCounter, f.EPOfflineCounter, loads, purchases)
	}
	for i := 1; i < len(f.Log); i++ {
		if !f.Log[i].Time.Before(f.Log[i-1].Time) {
			t.Errorf("log not newest first: record %d at %s, record %d at %s", i, f.Log[i-1].Time, i+1, f.Log[i].Time)
		}
	}
	// The summary line tells the card as it is after its history.
	for _, want := range []string{"EP balance " + money.Format(f.EPBalance), "6 transactions", `"张三"`, "2025-09-01 to 2029-08-31"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout %q does not say %s", stdout, want)
		}
	}
	// The card file holds the card's keys, never the masters.
	b, _ := os.ReadFile(card)
	for _, k := range []epurse.Key16{masters.DLK, masters.DPK, masters.DTK} {
		h, _ := k.MarshalText()
		if bytes.Contains(b, h) {
			t.Error("the card file holds an issuer master key")
		}
	}
	// Only the two files: no temporary file left behind, no second key file.
	if got := dirNames(t, dir); !slices.Equal(got, []string{"card.json", "masters.json"}) {
		t.Errorf("directory holds %v, want card.json and masters.json", got)
	}
}

func TestCardNewWritesMasterKeysBesideCard(t *testing.T) {
	dir := t.TempDir()
	card := filepath.Join(dir, "alice.json")
	stdout := mustRun(t, "card", "new", "--out", card, "--balance", "12.34")
	kf := filepath.Join(dir, "alice.masters.json")
	if !strings.Contains(stdout, kf) {
		t.Errorf("stdout %q does not name the new key file %s", stdout, kf)
	}
	wantMode(t, card, 0o600)
	wantMode(t, kf, 0o600)
	masters := readKeyFile(t, kf)
	f, err := epursesim.LoadCardFile(card)
	if err != nil {
		t.Fatalf("LoadCardFile: %v", err)
	}
	if f.Keys != masters.Diversify(f.Info.AppSerial[:]) {
		t.Error("the card's keys are not diversified from the key file written beside it")
	}
	if f.EPBalance != 1234 || len(f.Log) != 0 || f.Holder != nil {
		t.Errorf("card: balance %d, %d records, holder %+v; want 1234, 0, anonymous", f.EPBalance, len(f.Log), f.Holder)
	}
	// Defaults: valid from a year ago (so a seeded history lies within) for 4 years.
	yearAgo := epurse.DateOf(time.Now().AddDate(-1, 0, 0))
	if f.Info.StartDate != yearAgo && f.Info.StartDate != epurse.DateOf(time.Now().Add(-time.Minute).AddDate(-1, 0, 0)) {
		t.Errorf("start %s, want a year ago %s", f.Info.StartDate, yearAgo)
	}
	if f.Info.ExpiryDate.Year != f.Info.StartDate.Year+4 {
		t.Errorf("expiry %s, want 4 years after %s", f.Info.ExpiryDate, f.Info.StartDate)
	}

	// The new key file is usable with --keys for the next card of the issuer.
	card2 := filepath.Join(dir, "bob.json")
	mustRun(t, "card", "new", "--out", card2, "--keys", kf, "--number", "3101000000000002")
	f2, err := epursesim.LoadCardFile(card2)
	if err != nil {
		t.Fatal(err)
	}
	if f2.Keys != masters.Diversify(f2.Info.AppSerial[:]) {
		t.Error("second card's keys are not from the same issuer")
	}
	if _, err := os.Stat(filepath.Join(dir, "bob.masters.json")); err == nil {
		t.Error("--keys given, yet a new key file was written")
	}
}

func TestCardNewForce(t *testing.T) {
	dir := t.TempDir()
	kf := filepath.Join(dir, "masters.json")
	mustRun(t, "keys", "new", "--out", kf)
	card := filepath.Join(dir, "card.json")
	mustRun(t, "card", "new", "--out", card, "--keys", kf, "--balance", "1.00")
	mustRun(t, "card", "new", "--out", card, "--keys", kf, "--balance", "2.00", "--force")
	f, err := epursesim.LoadCardFile(card)
	if err != nil {
		t.Fatal(err)
	}
	if f.EPBalance != 200 {
		t.Errorf("after --force balance %d, want 200", f.EPBalance)
	}
}

func TestCardNewUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string // after "card new --out DIR/card.json", unless noOut
		// noOut leaves --out away.
		noOut bool
		// exists makes the card file beforehand.
		exists bool
		want   string // in stderr
	}{
		{name: "missing --out", noOut: true, want: "--out"},
		{name: "three decimals", args: []string{"--balance", "12.345"}, want: "--balance"},
		{name: "negative balance", args: []string{"--balance", "-1"}, want: "--balance"},
		{name: "balance not a number", args: []string{"--balance", "ten"}, want: "--balance"},
		{name: "history 51", args: []string{"--history", "51"}, want: "--history"},
		{name: "history -1", args: []string{"--history", "-1"}, want: "--history"},
		{name: "month 13", args: []string{"--start", "2025-13-01"}, want: "--start"},
		{name: "bad expiry", args: []string{"--expiry", "2029-02-30"}, want: "--expiry"},
		{name: "unknown flag", args: []string{"--colour", "red"}, want: "colour"},
		{name: "stray argument", args: []string{"extra"}, want: "extra"},
		{name: "existing card without --force", exists: true, want: "--force"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			card := filepath.Join(dir, "card.json")
			const old = "{\"not\": \"a card\"}\n"
			if tc.exists {
				if err := os.WriteFile(card, []byte(old), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			args := []string{"card", "new"}
			if !tc.noOut {
				args = append(args, "--out", card)
			}
			code, stdout, stderr := run(t, append(args, tc.args...)...)
			if code != 2 {
				t.Errorf("exit %d, want 2 (stderr %q)", code, stderr)
			}
			if !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr %q does not name %s", stderr, tc.want)
			}
			if stdout != "" {
				t.Errorf("stdout %q on a usage error", stdout)
			}
			// A usage error changes nothing: no card, no key file.
			want := []string(nil)
			if tc.exists {
				want = []string{"card.json"}
				if b, _ := os.ReadFile(card); string(b) != old {
					t.Errorf("existing card file changed to %q", b)
				}
			}
			if got := dirNames(t, dir); !slices.Equal(got, want) {
				t.Errorf("directory holds %v after a usage error, want %v", got, want)
			}
		})
	}
}

func TestCardNewRefusesOpenKeyFile(t *testing.T) {
	dir := t.TempDir()
	kf := filepath.Join(dir, "masters.json")
	mustRun(t, "keys", "new", "--out", kf)
	if err := os.Chmod(kf, 0o644); err != nil {
		t.Fatal(err)
	}
	card := filepath.Join(dir, "card.json")
	code, _, stderr := run(t, "card", "new", "--out", card, "--keys", kf)
	if code != 1 {
		t.Errorf("exit %d, want 1 (stderr %q)", code, stderr)
	}
	if !strings.Contains(stderr, "chmod 600 "+kf) || !strings.Contains(stderr, "0644") {
		t.Errorf("stderr %q: want the mode 0644 and the advice chmod 600 %s", stderr, kf)
	}
	if strings.Contains(stderr, `"dlk"`) || hexKey.MatchString(stderr) {
		t.Errorf("stderr %q quotes the key file", stderr)
	}
	if _, err := os.Stat(card); err == nil {
		t.Error("a card was made with keys from an open key file")
	}

	// Fixed as told, it works.
	if err := os.Chmod(kf, 0o600); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "card", "new", "--out", card, "--keys", kf)
}

func TestCardNewMissingKeyFile(t *testing.T) {
	dir := t.TempDir()
	card := filepath.Join(dir, "card.json")
	code, _, stderr := run(t, "card", "new", "--out", card, "--keys", filepath.Join(dir, "nope.json"))
	if code != 1 || !strings.Contains(stderr, "nope.json") {
		t.Errorf("exit %d, stderr %q; want 1 naming nope.json", code, stderr)
	}
	if _, err := os.Stat(card); err == nil {
		t.Error("card written without its keys")
	}
}

// The insert command's usage errors come before it loads the card or
// touches a vpcd slot. The card file named does not exist, so a check that
// let a bad flag through would fail with exit 1 before any socket is opened.
func TestCardInsertUsageErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-such-card.json")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"missing --file", []string{"--slot", "0"}, "--file"},
		{"slot 16", []string{"--file", missing, "--slot", "16"}, "--slot"},
		{"slot -1", []string{"--file", missing, "--slot=-1"}, "--slot"},
		{"taps 3 without --hold", []string{"--file", missing, "--taps", "3"}, "--hold"},
		{"taps 0 without --hold", []string{"--file", missing, "--taps", "0"}, "--hold"},
		{"negative latency", []string{"--file", missing, "--latency=-1ms"}, "--latency"},
		{"negative gap", []string{"--file", missing, "--hold", "1s", "--gap=-1s"}, "--gap"},
		{"negative tear-after", []string{"--file", missing, "--tear-after=-1"}, "--tear-after"},
		{"negative silent-after", []string{"--file", missing, "--silent-after=-1"}, "--silent-after"},
		{"latency not a duration", []string{"--file", missing, "--latency", "15"}, "latency"},
		{"stray argument", []string{"--file", missing, "now"}, "now"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := run(t, append([]string{"card"}, tc.args...)...)
			if code != 2 {
				t.Errorf("exit %d, want 2 (stderr %q)", code, stderr)
			}
			if !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr %q does not name %s", stderr, tc.want)
			}
		})
	}
}

func TestTopLevelUsage(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		wantCode int
	}{
		{nil, 2},
		{[]string{"keys"}, 2},
		{[]string{"frobnicate"}, 2},
		{[]string{"help"}, 0},
		{[]string{"--help"}, 0},
	} {
		code, stdout, stderr := run(t, tc.args...)
		if code != tc.wantCode {
			t.Errorf("cardsim %v: exit %d, want %d", tc.args, code, tc.wantCode)
		}
		if !strings.Contains(stdout+stderr, "cardsim card new") {
			t.Errorf("cardsim %v: no usage text (stdout %q, stderr %q)", tc.args, stdout, stderr)
		}
	}
}

// A refused card leaves no key file behind to block the corrected command.
func TestCardNewRefusedLeavesNoKeyFile(t *testing.T) {
	dir := t.TempDir()
	card := filepath.Join(dir, "c.json")
	var out, errw bytes.Buffer
	if code := Main([]string{"card", "new", "--out", card, "--number", "123"}, &out, &errw); code != 2 {
		t.Fatalf("bad number: exit %d, want 2 (%s)", code, errw.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "c.masters.json")); !os.IsNotExist(err) {
		t.Fatalf("a refused card left its key file: %v", err)
	}
	if code := Main([]string{"card", "new", "--out", card}, &out, &errw); code != 0 {
		t.Fatalf("corrected command: exit %d (%s)", code, errw.String())
	}
}

// The longest history still lies wholly in the past.
func TestCardNewHistoryInThePast(t *testing.T) {
	card := filepath.Join(t.TempDir(), "c.json")
	var out, errw bytes.Buffer
	if code := Main([]string{"card", "new", "--out", card, "--history", "50", "--balance", "500.00"}, &out, &errw); code != 0 {
		t.Fatalf("exit %d (%s)", code, errw.String())
	}
	f, err := epursesim.LoadCardFile(card)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	for _, l := range f.Log {
		if l.Time.After(now) {
			t.Errorf("transaction #%d dated %v, after now %v", l.Counter, l.Time, now)
		}
		if epurse.DateOf(l.Time).Before(f.Info.StartDate) {
			t.Errorf("transaction #%d dated %v, before the card's start %v", l.Counter, l.Time, f.Info.StartDate)
		}
	}
}
