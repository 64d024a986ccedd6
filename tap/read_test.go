package tap

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cardd/cardd/apdu"
	"github.com/cardd/cardd/apdu/epurse"
	epursesim "github.com/cardd/cardd/apdu/epurse/sim"
	"github.com/cardd/cardd/reader"
)

// The issuer master keys of every test card: fixed, so a test can look for
// their bytes where they must never appear.
var testMasters = epurse.MasterKeys{
	DLK: epurse.Key16{0x4C, 0x4B, 0xA1, 0x02, 0xB3, 0x04, 0xC5, 0x06, 0xD7, 0x08, 0xE9, 0x0A, 0xFB, 0x0C, 0x1D, 0x0E},
	DPK: epurse.Key16{0x50, 0x4B, 0x2F, 0x31, 0x3E, 0x42, 0x4D, 0x53, 0x5C, 0x64, 0x6B, 0x75, 0x7A, 0x86, 0x89, 0x97},
	DTK: epurse.Key16{0x54, 0x4B, 0x98, 0xA8, 0x87, 0xB9, 0x76, 0xCA, 0x65, 0xDB, 0x54, 0xEC, 0x43, 0xFD, 0x32, 0x0E},
}

const testNumber = "3101000087653456"

var (
	testStart    = epurse.Date{Year: 2025, Month: time.September, Day: 1}
	testExpiry   = epurse.Date{Year: 2029, Month: time.August, Day: 31}
	testTermID   = [6]byte{0x00, 0x00, 0x00, 0x00, 0x10, 0x01}
	testSeedTime = time.Date(2026, 3, 1, 8, 30, 0, 0, time.UTC)
)

// newTestCard makes an in-memory card with testNumber, the given holder (""
// for an anonymous card) and an EP balance of 123.45 yuan, lets edit change
// its file, then makes history transactions on it through its own commands.
func newTestCard(t *testing.T, holder string, history int, edit func(*epursesim.CardFile)) *epursesim.SimCard {
	t.Helper()
	f, err := epursesim.NewCardFile(testNumber, holder, 12345, testStart, testExpiry, testMasters)
	if err != nil {
		t.Fatalf("NewCardFile: %v", err)
	}
	if edit != nil {
		edit(f)
	}
	card := epursesim.NewSimCard(f, "")
	if history > 0 {
		if err := epursesim.SeedHistory(card, testMasters, testTermID, history, testSeedTime); err != nil {
			t.Fatalf("SeedHistory: %v", err)
		}
	}
	card.Reset() // a fresh power-up, as when the card enters the field
	return card
}

// cmdRec is one command as a test saw it go to the card.
type cmdRec struct{ INS, P1 byte }

// recorder passes every command to t and remembers its INS and P1 and raw bytes.
type recorder struct {
	t    apdu.Transmitter
	cmds []cmdRec
	raw  [][]byte
}

func (r *recorder) Transmit(cmd []byte) ([]byte, error) {
	if len(cmd) >= 4 {
		r.cmds = append(r.cmds, cmdRec{cmd[1], cmd[2]})
	} else {
		r.cmds = append(r.cmds, cmdRec{})
	}
	r.raw = append(r.raw, bytes.Clone(cmd))
	return r.t.Transmit(cmd)
}

func sameRecords(t *testing.T, what string, got, want []epurse.LogRecord) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d log records, want %d:\ngot  %+v\nwant %+v", what, len(got), len(want), got, want)
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Counter != w.Counter || g.Amount != w.Amount || g.Overdraft != w.Overdraft ||
			g.Type != w.Type || g.TerminalID != w.TerminalID || !g.Time.Equal(w.Time) {
			t.Errorf("%s: record %d = %+v, want %+v", what, i+1, g, w)
		}
	}
}

func TestReadPurseReadsWhatTheCardHolds(t *testing.T) {
	card := newTestCard(t, "张三", 7, nil)
	want := card.File()
	if len(want.Log) != 7 {
		t.Fatalf("seeded card has %d log records, want 7", len(want.Log))
	}

	rec := &recorder{t: card}
	calls := 0
	firedAt := -1
	var atBalance CardRead
	got, err := ReadPurse(rec, ReadOptions{History: true}, func(cr *CardRead) {
		calls++
		firedAt = len(rec.cmds)
		atBalance = *cr
		atBalance.Log = slices.Clone(cr.Log)
	})
	if err != nil {
		t.Fatalf("ReadPurse: %v", err)
	}

	if got.Info.CardNumber != testNumber {
		t.Errorf("card number %q, want %q", got.Info.CardNumber, testNumber)
	}
	if got.Info != want.Info {
		t.Errorf("issuer info %+v, want %+v", got.Info, want.Info)
	}
	if got.Info.StartDate != testStart || got.Info.ExpiryDate != testExpiry {
		t.Errorf("valid %s to %s, want %s to %s", got.Info.StartDate, got.Info.ExpiryDate, testStart, testExpiry)
	}
	if got.Holder == nil || got.Holder.Name != "张三" {
		t.Errorf("holder %+v, want 张三", got.Holder)
	}
	if got.Purse != epurse.PurseEP {
		t.Errorf("purse %v, want EP", got.Purse)
	}
	if got.Balance != want.EPBalance || got.Balance == 12345 {
		// 12345 was the balance before the seeded history moved it.
		t.Errorf("balance %d, want %d", got.Balance, want.EPBalance)
	}
	sameRecords(t, "log", got.Log, want.Log[:5])
	if got.BalanceAPDUs != 2 {
		t.Errorf("BalanceAPDUs = %d, want 2 (SELECT with 9F0C, GET BALANCE)", got.BalanceAPDUs)
	}
	if got.APDUs != 8 || len(rec.cmds) != 8 {
		t.Errorf("APDUs = %d (card saw %d), want 8", got.APDUs, len(rec.cmds))
	}

	wantCmds := []cmdRec{
		{0xA4, 0x04}, // SELECT by AID
		{0x5C, 0x00}, // GET BALANCE
		{0xB0, 0x96}, // READ BINARY EF 0x16
		// READ RECORD 1..5 of SFI 0x18
		{0xB2, 1}, {0xB2, 2}, {0xB2, 3}, {0xB2, 4}, {0xB2, 5},
	}
	if !slices.Equal(rec.cmds, wantCmds) {
		t.Errorf("commands % X, want % X", rec.cmds, wantCmds)
	}
	if calls != 1 {
		t.Fatalf("onBalance called %d times, want 1", calls)
	}
	if firedAt != 2 {
		t.Errorf("onBalance fired after %d commands, want 2: after GET BALANCE, before READ BINARY of EF 0x16", firedAt)
	}
	if atBalance.Balance != want.EPBalance || atBalance.Info.CardNumber != testNumber {
		t.Errorf("at onBalance: balance %d card %q, want %d %q", atBalance.Balance, atBalance.Info.CardNumber, want.EPBalance, testNumber)
	}
	if atBalance.Holder != nil || len(atBalance.Log) != 0 {
		t.Errorf("at onBalance the holder (%+v) or log (%d records) was already read", atBalance.Holder, len(atBalance.Log))
	}
	if atBalance.APDUs != 2 || atBalance.BalanceAPDUs != 2 {
		t.Errorf("at onBalance: APDUs %d BalanceAPDUs %d, want 2 and 2", atBalance.APDUs, atBalance.BalanceAPDUs)
	}
}

// A nil onBalance is allowed.
func TestReadPurseNilOnBalance(t *testing.T) {
	card := newTestCard(t, "张三", 2, nil)
	got, err := ReadPurse(card, ReadOptions{History: true}, nil)
	if err != nil {
		t.Fatalf("ReadPurse: %v", err)
	}
	if got.Balance != card.File().EPBalance || len(got.Log) != 2 {
		t.Errorf("balance %d, %d records; want %d, 2", got.Balance, len(got.Log), card.File().EPBalance)
	}
}

// A card whose FCI carries no 9F0C: the number comes from READ BINARY of EF
// 0x15, one APDU more before the balance.
func TestReadPurseWithout9F0CReadsEF15(t *testing.T) {
	card := newTestCard(t, "张三", 6, nil)
	want := card.File()
	bare := apdu.TransmitterFunc(func(cmd []byte) ([]byte, error) {
		resp, err := card.Transmit(cmd)
		if err != nil || cmd[1] != 0xA4 {
			return resp, err
		}
		if sw := resp[len(resp)-2:]; sw[0] == 0x90 && sw[1] == 0x00 {
			return []byte{0x90, 0x00}, nil // selected, but no FCI at all
		}
		return resp, nil
	})
	rec := &recorder{t: bare}
	firedAt := -1
	got, err := ReadPurse(rec, ReadOptions{History: true}, func(*CardRead) { firedAt = len(rec.cmds) })
	if err != nil {
		t.Fatalf("ReadPurse: %v", err)
	}
	if got.Info.CardNumber != testNumber || got.Info != want.Info {
		t.Errorf("issuer info %+v, want %+v", got.Info, want.Info)
	}
	if got.Balance != want.EPBalance {
		t.Errorf("balance %d, want %d", got.Balance, want.EPBalance)
	}
	if got.BalanceAPDUs != 3 || firedAt != 3 {
		t.Errorf("BalanceAPDUs = %d, onBalance after %d commands; want 3 and 3", got.BalanceAPDUs, firedAt)
	}
	if len(rec.raw) < 3 {
		t.Fatalf("only %d commands sent", len(rec.raw))
	}
	if wantRB := []byte{0x00, 0xB0, 0x95, 0x00, 0x1E}; !bytes.Equal(rec.raw[1], wantRB) {
		t.Errorf("second command % X, want READ BINARY of EF 0x15 % X", rec.raw[1], wantRB)
	}
	if rec.cmds[2] != (cmdRec{0x5C, 0x00}) {
		t.Errorf("third command %X, want GET BALANCE", rec.cmds[2])
	}
	sameRecords(t, "log", got.Log, want.Log[:5])
	if got.APDUs != 9 {
		t.Errorf("APDUs = %d, want 9", got.APDUs)
	}
}

func TestReadPurseOptions(t *testing.T) {
	for _, tc := range []struct {
		name      string
		holder    string
		history   int
		edit      func(*epursesim.CardFile)
		opts      ReadOptions
		wantPurse epurse.Purse
		// wantBalance reads the expected balance from the card file.
		wantBalance func(*epursesim.CardFile) int64
		wantLog     int
		wantAPDUs   int
	}{
		{
			name: "ED purse", holder: "张三", history: 3,
			edit:      func(f *epursesim.CardFile) { f.EDBalance = 777 },
			opts:      ReadOptions{History: true, Purse: epurse.PurseED},
			wantPurse: epurse.PurseED, wantBalance: func(f *epursesim.CardFile) int64 { return 777 },
			wantLog: 3, wantAPDUs: 2 + 1 + 3 + 1,
		},
		{
			name: "3 records asked", holder: "张三", history: 7,
			opts:      ReadOptions{History: true, LogRecords: 3},
			wantPurse: epurse.PurseEP, wantBalance: func(f *epursesim.CardFile) int64 { return f.EPBalance },
			wantLog: 3, wantAPDUs: 2 + 1 + 3,
		},
		{
			name: "fewer records than asked", holder: "张三", history: 2,
			wantPurse: epurse.PurseEP, wantBalance: func(f *epursesim.CardFile) int64 { return f.EPBalance },
			wantLog: 2, wantAPDUs: 2 + 1 + 3, // the third READ RECORD answers 6A83
		},
		{
			name: "fewer records, zero-filled empty slots", holder: "张三", history: 2,
			edit:      func(f *epursesim.CardFile) { f.ZeroFilledEmptyRecords = true },
			wantPurse: epurse.PurseEP, wantBalance: func(f *epursesim.CardFile) int64 { return f.EPBalance },
			wantLog: 2, wantAPDUs: 2 + 1 + 3,
		},
		{
			name: "no records at all", holder: "张三", history: 0,
			wantPurse: epurse.PurseEP, wantBalance: func(f *epursesim.CardFile) int64 { return 12345 },
			wantLog: 0, wantAPDUs: 2 + 1 + 1,
		},
		{
			name: "anonymous card", holder: "", history: 6,
			wantPurse: epurse.PurseEP, wantBalance: func(f *epursesim.CardFile) int64 { return f.EPBalance },
			wantLog: 5, wantAPDUs: 2 + 1 + 5, // READ BINARY of EF 0x16 answers 6A82
		},
		{
			name: "configured log file the card lacks", holder: "张三", history: 6,
			opts:      ReadOptions{History: true, LogFiles: []byte{epursesim.LogSFI, 0x1A}},
			wantPurse: epurse.PurseEP, wantBalance: func(f *epursesim.CardFile) int64 { return f.EPBalance },
			wantLog: 5, wantAPDUs: 2 + 1 + 5 + 1, // READ RECORD 1 of SFI 1A answers 6A82
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			card := newTestCard(t, tc.holder, tc.history, tc.edit)
			want := card.File()
			if len(want.Log) != tc.history {
				t.Fatalf("card has %d records, want %d", len(want.Log), tc.history)
			}
			opts := tc.opts
			opts.History = true // the whole read, as cardd scan does
			got, err := ReadPurse(card, opts, nil)
			if err != nil {
				t.Fatalf("ReadPurse: %v", err)
			}
			if got.Purse != tc.wantPurse {
				t.Errorf("purse %v, want %v", got.Purse, tc.wantPurse)
			}
			if wb := tc.wantBalance(want); got.Balance != wb {
				t.Errorf("balance %d, want %d", got.Balance, wb)
			}
			if tc.holder == "" {
				if got.Holder != nil {
					t.Errorf("holder %+v on an anonymous card, want nil", got.Holder)
				}
			} else if got.Holder == nil || got.Holder.Name != tc.holder {
				t.Errorf("holder %+v, want %s", got.Holder, tc.holder)
			}
			if got.Info.CardNumber != testNumber {
				t.Errorf("card number %q, want %q", got.Info.CardNumber, testNumber)
			}
			sameRecords(t, "log", got.Log, want.Log[:tc.wantLog])
			if got.APDUs != tc.wantAPDUs {
				t.Errorf("APDUs = %d, want %d", got.APDUs, tc.wantAPDUs)
			}
		})
	}
}

// Loads in a file of their own: both files read and merged newest first, as
// one file of the same history would hold them.
func TestReadPurseMergesTwoLogFiles(t *testing.T) {
	const loadSFI = 0x1A
	split := newTestCard(t, "张三", 9, func(f *epursesim.CardFile) { f.LoadLogSFI = loadSFI })
	// The same history on a card with one log file is the order to expect:
	// amounts, counters and times do not depend on the card's random numbers.
	single := newTestCard(t, "张三", 9, nil)

	sf := split.File()
	if len(sf.LoadLog) == 0 || len(sf.Log) == 0 {
		t.Fatalf("split card: %d loads, %d purchases; want both", len(sf.LoadLog), len(sf.Log))
	}
	for _, l := range sf.LoadLog {
		if l.Type != epurse.TxEPLoad {
			t.Fatalf("load log holds a %v", l.Type)
		}
	}
	if sf.EPBalance != single.File().EPBalance {
		t.Fatalf("split card balance %d, single %d: the histories differ", sf.EPBalance, single.File().EPBalance)
	}

	got, err := ReadPurse(split, ReadOptions{History: true, LogFiles: []byte{epursesim.LogSFI, loadSFI}}, nil)
	if err != nil {
		t.Fatalf("ReadPurse: %v", err)
	}
	sameRecords(t, "merged log", got.Log, single.File().Log[:5])
	hasLoad, hasPurchase := false, false
	for _, l := range got.Log {
		hasLoad = hasLoad || l.Type == epurse.TxEPLoad
		hasPurchase = hasPurchase || l.Type == epurse.TxEPPurchase
	}
	if !hasLoad || !hasPurchase {
		t.Errorf("merged log %+v lacks loads or purchases", got.Log)
	}
	for i := 1; i < len(got.Log); i++ {
		if got.Log[i].Time.After(got.Log[i-1].Time) {
			t.Errorf("record %d (%s) is newer than record %d (%s)", i+1, got.Log[i].Time, i, got.Log[i-1].Time)
		}
	}

	// Reading only 0x18 of the split card gives purchases only.
	only, err := ReadPurse(split, ReadOptions{History: true}, nil)
	if err != nil {
		t.Fatalf("ReadPurse: %v", err)
	}
	sameRecords(t, "0x18 alone", only.Log, sf.Log[:min(5, len(sf.Log))])
}

// answerSW answers every command with the status word sw and no data.
func answerSW(sw uint16) apdu.TransmitterFunc {
	return func(cmd []byte) ([]byte, error) { return []byte{byte(sw >> 8), byte(sw)}, nil }
}

func TestReadPurseNotAnEPurse(t *testing.T) {
	rec := &recorder{t: answerSW(0x6A82)}
	called := false
	got, err := ReadPurse(rec, ReadOptions{History: true}, func(*CardRead) { called = true })
	if !errors.Is(err, apdu.ErrFileNotFound) {
		t.Fatalf("err = %v, want apdu.ErrFileNotFound", err)
	}
	if got != nil {
		t.Errorf("read %+v with an error", got)
	}
	if called {
		t.Error("onBalance called on a card that is not an e-purse")
	}
	if o := (Result{Err: err}).Outcome(); o != OutcomeNotEPurse {
		t.Errorf("outcome %q, want %q", o, OutcomeNotEPurse)
	}
	// Every family's AID, then the file id 1001, then nothing more.
	var want []cmdRec
	for range epurse.DefaultAIDs() {
		want = append(want, cmdRec{0xA4, 0x04})
	}
	want = append(want, cmdRec{0xA4, 0x00})
	if !slices.Equal(rec.cmds, want) {
		t.Errorf("commands % X, want % X", rec.cmds, want)
	}
}

func TestReadPurseBlockedCard(t *testing.T) {
	card := newTestCard(t, "张三", 0, func(f *epursesim.CardFile) { f.Blocked = true })
	rec := &recorder{t: card}
	got, err := ReadPurse(rec, ReadOptions{History: true}, nil)
	if !errors.Is(err, apdu.ErrFileInvalidated) {
		t.Fatalf("err = %v, want apdu.ErrFileInvalidated", err)
	}
	if got != nil {
		t.Errorf("read %+v from a blocked card", got)
	}
	if o := (Result{Err: err}).Outcome(); o != OutcomeBlocked {
		t.Errorf("outcome %q, want %q", o, OutcomeBlocked)
	}
	if len(rec.cmds) != 1 {
		t.Errorf("%d commands sent to a blocked card, want only the SELECT", len(rec.cmds))
	}
}

// The card leaves the field at every command in turn: the error says so,
// nothing panics, and no half read is returned.
func TestReadPurseCardRemovedAtEveryCommand(t *testing.T) {
	const total = 8 // SELECT, GET BALANCE, EF 0x16, 5 records
	for n := 1; n <= total+1; n++ {
		t.Run(fmt.Sprint("command ", n), func(t *testing.T) {
			card := newTestCard(t, "张三", 7, nil)
			sent := 0
			pulled := apdu.TransmitterFunc(func(cmd []byte) ([]byte, error) {
				sent++
				if sent == n {
					return nil, &reader.Error{Op: "transmit", Reader: "test", Kind: reader.ErrCardRemoved, Err: errors.New("SCARD_W_REMOVED_CARD")}
				}
				if sent > n {
					t.Errorf("command %d sent after the card was removed at %d", sent, n)
				}
				return card.Transmit(cmd)
			})
			balanceSeen := false
			got, err := ReadPurse(pulled, ReadOptions{History: true}, func(*CardRead) { balanceSeen = true })
			if n > total {
				if err != nil || got == nil || got.APDUs != total {
					t.Fatalf("card never pulled: %v, read %+v; want a full read of %d APDUs", err, got, total)
				}
				return
			}
			if !errors.Is(err, reader.ErrCardRemoved) {
				t.Fatalf("err = %v, want reader.ErrCardRemoved", err)
			}
			if got != nil {
				t.Errorf("read %+v returned with the error", got)
			}
			if o := (Result{Err: err}).Outcome(); o != OutcomeRemoved {
				t.Errorf("outcome %q, want %q", o, OutcomeRemoved)
			}
			if wantBalance := n > 2; balanceSeen != wantBalance {
				t.Errorf("onBalance called = %v, want %v", balanceSeen, wantBalance)
			}
			if sent != n {
				t.Errorf("%d commands sent, want %d", sent, n)
			}
		})
	}
}

// A card answering bytes that do not make sense gives an error, never a
// panic and never an ok tap.
func TestReadPurseMalformedAnswers(t *testing.T) {
	for _, tc := range []struct {
		name string
		ins  byte
		p1   int // -1 for any
		// answer replaces the card's answer to the matching command.
		answer func(real []byte) []byte
	}{
		{"GET BALANCE of 3 bytes", 0x5C, -1, func([]byte) []byte { return []byte{0x00, 0x30, 0x39, 0x90, 0x00} }},
		{"GET BALANCE without data", 0x5C, -1, func([]byte) []byte { return []byte{0x90, 0x00} }},
		{"GET BALANCE of 5 bytes", 0x5C, -1, func([]byte) []byte { return []byte{0x00, 0x00, 0x00, 0x30, 0x39, 0x90, 0x00} }},
		{"answer without status word", 0x5C, -1, func([]byte) []byte { return []byte{0x90} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			card := newTestCard(t, "张三", 5, nil)
			hit := false
			bad := apdu.TransmitterFunc(func(cmd []byte) ([]byte, error) {
				resp, err := card.Transmit(cmd)
				if err == nil && cmd[1] == tc.ins && (tc.p1 < 0 || cmd[2] == byte(tc.p1)) {
					hit = true
					return tc.answer(resp), nil
				}
				return resp, err
			})
			var got *CardRead
			var err error
			func() {
				defer func() {
					if p := recover(); p != nil {
						t.Fatalf("ReadPurse panicked: %v", p)
					}
				}()
				got, err = ReadPurse(bad, ReadOptions{History: true}, nil)
			}()
			if !hit {
				t.Fatal("the malformed answer was never sent")
			}
			if err == nil {
				t.Fatalf("no error; read %+v", got)
			}
			if got != nil {
				t.Errorf("read %+v returned with the error", got)
			}
			if !errors.Is(err, apdu.ErrMalformed) && !errors.Is(err, epurse.ErrBadRecord) {
				t.Errorf("err = %v, want apdu.ErrMalformed or epurse.ErrBadRecord", err)
			}
			if o := (Result{Err: err}).Outcome(); o != OutcomeCardFailure {
				t.Errorf("outcome %q, want %q", o, OutcomeCardFailure)
			}
		})
	}
}

// An FCI or EF 0x15 the card's issuer wrote its own way costs the field,
// never the balance: the read goes on, says what it could not interpret,
// and no money moves on a card whose validity did not read.
func TestReadPurseOddFieldsCostOnlyThemselves(t *testing.T) {
	for _, tc := range []struct {
		name string
		ins  byte
		p1   int
		// answer replaces the card's answer to the matching command.
		answer func(real []byte) []byte
	}{
		{"FCI cut short", 0xA4, 0x04, func(real []byte) []byte { return append(bytes.Clone(real[:10]), 0x90, 0x00) }},
		{"FCI without 6F", 0xA4, 0x04, func([]byte) []byte { return []byte{0x84, 0x01, 0xA0, 0x90, 0x00} }},
		{"9F0C with a date that does not exist", 0xA4, 0x04, func(real []byte) []byte {
			b := bytes.Clone(real)
			i := bytes.Index(b, []byte{0x9F, 0x0C, 0x1E})
			b[i+3+20+2] = 0x13 // start date month 13
			return b
		}},
		{"EF 0x16 of 10 bytes", 0xB0, 0x96, func([]byte) []byte { return append(make([]byte, 10), 0x90, 0x00) }},
		{"EF 0x16 name not GBK", 0xB0, 0x96, func(real []byte) []byte {
			b := bytes.Clone(real)
			b[2], b[3] = 0xFF, 0x30 // FF is no GBK lead byte
			return b
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			card := newTestCard(t, "张三", 5, nil)
			odd := apdu.TransmitterFunc(func(cmd []byte) ([]byte, error) {
				resp, err := card.Transmit(cmd)
				if err == nil && cmd[1] == tc.ins && cmd[2] == byte(tc.p1) {
					return tc.answer(resp), nil
				}
				return resp, err
			})
			got, err := ReadPurse(odd, ReadOptions{History: true}, nil)
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if got.Balance != card.File().EPBalance || len(got.Log) == 0 || len(got.Notes) == 0 {
				t.Errorf("balance %d (card %d), %d log records, notes %q", got.Balance, card.File().EPBalance, len(got.Log), got.Notes)
			}
			if got.Info.CardNumber != card.File().Info.CardNumber || got.Profile != epurse.ProfileCampus {
				t.Errorf("card %q, profile %s", got.Info.CardNumber, got.Profile.Name)
			}
			dateBroken := strings.Contains(tc.name, "date")
			if err := got.Transactable(); (err != nil) != dateBroken || err != nil && !errors.Is(err, ErrCardNotRecognised) {
				t.Errorf("Transactable() = %v, want an error %v", err, dateBroken)
			}
		})
	}
}

func TestDeadlineTransmitter(t *testing.T) {
	t.Run("past deadline sends nothing", func(t *testing.T) {
		card := newTestCard(t, "张三", 3, nil)
		rec := &recorder{t: card}
		got, err := ReadPurse(deadlineTransmitter{t: rec, deadline: time.Now().Add(-time.Second)}, ReadOptions{History: true}, nil)
		if !errors.Is(err, ErrTapTimeout) {
			t.Fatalf("err = %v, want ErrTapTimeout", err)
		}
		if got != nil {
			t.Errorf("read %+v after the deadline", got)
		}
		if o := (Result{Err: err}).Outcome(); o != OutcomeTimeout {
			t.Errorf("outcome %q, want %q", o, OutcomeTimeout)
		}
		if len(rec.cmds) != 0 {
			t.Errorf("%d commands reached the card after the deadline", len(rec.cmds))
		}
	})
	t.Run("exchange abandoned at the deadline is a timeout", func(t *testing.T) {
		// What reader.Session returns when the card never answered before
		// the session's deadline.
		abandoned := &reader.Error{Op: "transmit", Reader: "r", Err: context.DeadlineExceeded}
		_, err := ReadPurse(deadlineTransmitter{t: apdu.TransmitterFunc(func([]byte) ([]byte, error) { return nil, abandoned }),
			deadline: time.Now().Add(time.Hour)}, ReadOptions{History: true}, nil)
		if !errors.Is(err, ErrTapTimeout) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want ErrTapTimeout wrapping the deadline", err)
		}
		if _, answered := apdu.SW(err); answered {
			t.Errorf("an abandoned exchange looks answered (%v): a money command would be judged refused, not unknown", err)
		}
		if o := (Result{Err: err}).Outcome(); o != OutcomeTimeout {
			t.Errorf("outcome %q, want %q", o, OutcomeTimeout)
		}
	})
	for _, tc := range []struct {
		name     string
		deadline time.Time
	}{
		{"zero deadline is no limit", time.Time{}},
		{"deadline far ahead", time.Now().Add(time.Hour)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			card := newTestCard(t, "张三", 3, nil)
			rec := &recorder{t: card}
			got, err := ReadPurse(deadlineTransmitter{t: rec, deadline: tc.deadline}, ReadOptions{History: true}, nil)
			if err != nil {
				t.Fatalf("ReadPurse: %v", err)
			}
			if got.APDUs != len(rec.cmds) || len(rec.cmds) != 2+1+4 {
				t.Errorf("APDUs %d, card saw %d, want 7", got.APDUs, len(rec.cmds))
			}
		})
	}
}

// One log record that does not parse does not fail the tap: the balance and
// the records that parse are read, and the bad one is logged (card masked)
// and counted. (An answer that is not a record at all, or an error status,
// still fails the read: TestReadPurseMalformedAnswers.)
func TestReadPurseSkipsABadLogRecord(t *testing.T) {
	for _, tc := range []struct {
		name   string
		record byte
		answer func(real []byte) []byte
	}{
		{"22 bytes", 1, func(real []byte) []byte { return append(bytes.Clone(real[:22]), 0x90, 0x00) }},
		{"time 25:00", 2, func(real []byte) []byte {
			b := bytes.Clone(real)
			b[20] = 0x25
			return b
		}},
		{"month 13", 3, func(real []byte) []byte {
			b := bytes.Clone(real)
			b[18] = 0x13
			return b
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			card := newTestCard(t, "张三", 7, nil)
			want := card.File()
			bad := apdu.TransmitterFunc(func(cmd []byte) ([]byte, error) {
				resp, err := card.Transmit(cmd)
				if err == nil && cmd[1] == 0xB2 && cmd[2] == tc.record && cmd[3] == 0x18<<3|4 {
					return tc.answer(resp), nil
				}
				return resp, err
			})
			var logged bytes.Buffer
			got, err := ReadPurse(bad, ReadOptions{History: true, Logger: slog.New(slog.NewTextHandler(&logged, nil))}, nil)
			if err != nil {
				t.Fatalf("ReadPurse: %v", err)
			}
			if got.Balance != want.EPBalance {
				t.Errorf("balance %d, want %d", got.Balance, want.EPBalance)
			}
			i := int(tc.record) - 1
			sameRecords(t, "log", got.Log, append(slices.Clone(want.Log[:i]), want.Log[i+1:5]...))
			if got.LogSkipped != 1 {
				t.Errorf("LogSkipped %d, want 1", got.LogSkipped)
			}
			line := logged.String()
			for _, w := range []string{"level=WARN", "do not parse", fmt.Sprintf("records=[%d]", tc.record), "3101********3456"} {
				if !strings.Contains(line, w) {
					t.Errorf("log %q lacks %q", line, w)
				}
			}
			if strings.Contains(line, testNumber) {
				t.Errorf("log shows the whole card number: %q", line)
			}
		})
	}
}

// TestOwnCardUnderTheOperatorsAID: a deployment whose own cards answer an
// AID of its own, listed in epurse.aids, read them as campus cards before
// card profiles came: the 16-digit number, money moving. They still do.
func TestOwnCardUnderTheOperatorsAID(t *testing.T) {
	aid := []byte{0xF0, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06}
	card := newTestCard(t, "", 0, func(cf *epursesim.CardFile) { cf.AID = hex.EncodeToString(aid) })
	cr, err := ReadPurse(card, ReadOptions{History: true, AIDs: [][]byte{aid}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cr.Profile != epurse.ProfileCampus || cr.Info.CardNumber != testNumber || cr.Transactable() != nil {
		t.Fatalf("read as %s, number %q, transactable: %v", cr.Profile.Name, cr.Info.CardNumber, cr.Transactable())
	}
}
