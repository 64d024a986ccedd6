package integration

import (
	"errors"
	"log/slog"
	"regexp"
	"testing"
	"time"

	"github.com/cardd/cardd/apdu/epurse"
	"github.com/cardd/cardd/reader"
	"github.com/cardd/cardd/reader/vpcd"
	"github.com/cardd/cardd/tap"
)

// startRunner runs a tap.Runner on slot 0 until the test ends and returns
// its results.
func startRunner(t *testing.T) <-chan tap.Result {
	t.Helper()
	waitEmpty(t, 0) // a card left over from the last test is not this test's tap
	results := make(chan tap.Result, 16)
	r := &tap.Runner{
		Roles:  reader.Roles{Card: regexp.MustCompile("^" + regexp.QuoteMeta(slot0Reader) + "$")},
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
		OnTap:  func(res tap.Result) { results <- res },
		// The whole read, holder and log, as cardd scan shows it.
		Read: tap.ReadOptions{History: true},
	}
	runRunner(t, r)
	return results
}

func nextTap(t *testing.T, results <-chan tap.Result) tap.Result {
	t.Helper()
	select {
	case res := <-results:
		return res
	case <-time.After(15 * time.Second):
		t.Fatal("no tap seen within 15 s")
		return tap.Result{}
	}
}

// testWriter sends log lines to t.Log, so they show only for failing tests.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// TestReadThroughPCSC: pcscd + vpcd + the simulated card + cardd's reader and
// epurse code read exactly what the card file holds.
func TestReadThroughPCSC(t *testing.T) {
	requirePCSC(t)
	f, path := newCardFile(t, "3101000000123456", "张三", 12345, 9)
	results := startRunner(t)
	in := insert(t, path, 0, vpcd.Options{})
	res := nextTap(t, results)
	if res.Err != nil {
		t.Fatalf("tap failed: %v", res.Err)
	}
	cr := res.Read
	if cr.Info.CardNumber != "3101000000123456" || cr.Info.CardNumber != f.Info.CardNumber {
		t.Errorf("card number %q, card file %q", cr.Info.CardNumber, f.Info.CardNumber)
	}
	if cr.Balance != f.EPBalance {
		t.Errorf("balance %d, card file %d", cr.Balance, f.EPBalance)
	}
	if cr.Info.StartDate != f.Info.StartDate || cr.Info.ExpiryDate != f.Info.ExpiryDate {
		t.Errorf("validity %v..%v, card file %v..%v", cr.Info.StartDate, cr.Info.ExpiryDate, f.Info.StartDate, f.Info.ExpiryDate)
	}
	if cr.Holder == nil || cr.Holder.Name != "张三" {
		t.Errorf("holder %+v, want 张三", cr.Holder)
	}
	want := newestFirst(f.Log, 5)
	if len(want) != 5 || len(cr.Log) != 5 {
		t.Fatalf("read %d log records, card file's newest: %d (file holds %d)", len(cr.Log), len(want), len(f.Log))
	}
	for i := range want {
		if cr.Log[i] != want[i] {
			t.Errorf("log record %d: read %+v, card file %+v", i+1, cr.Log[i], want[i])
		}
	}
	// The FCI carries EF 0x15, so SELECT and GET BALANCE are all it takes.
	if cr.BalanceAPDUs > 3 {
		t.Errorf("balance known after %d APDUs, want at most 3", cr.BalanceAPDUs)
	}
	if err := in.remove(t); err != nil {
		t.Fatalf("card left the slot with %v", err)
	}
}

// newestFirst returns the n newest of the card file's log records. The card
// file keeps the log newest first, as the card returns it.
func newestFirst(log []epurse.LogRecord, n int) []epurse.LogRecord {
	if len(log) > n {
		log = log[:n]
	}
	return log
}

// TestTearEachAPDU pulls the card after each APDU of a full read in turn:
// every tap ends as "card removed too early", nothing panics, and the next
// tap of the same card reads correctly.
func TestTearEachAPDU(t *testing.T) {
	requirePCSC(t)
	f, path := newCardFile(t, "3101000000654321", "李四", 5000, 7)
	results := startRunner(t)

	// A clean read first, to learn how many APDUs a read takes.
	in := insert(t, path, 0, vpcd.Options{})
	full := nextTap(t, results)
	if full.Err != nil {
		t.Fatalf("clean tap failed: %v", full.Err)
	}
	in.remove(t)
	waitRemoved(t, results)
	n := full.Read.APDUs
	if n < 3 {
		t.Fatalf("a full read took %d APDUs; expected select, balance, holder and the log", n)
	}
	for k := 1; k <= n; k++ {
		in := insert(t, path, 0, vpcd.Options{TearAfter: k})
		res := nextTap(t, results)
		if !errors.Is(res.Err, reader.ErrCardRemoved) || res.Outcome() != tap.OutcomeRemoved {
			t.Errorf("torn after APDU %d/%d: outcome %s, err %v; want card removed too early", k, n, res.Outcome(), res.Err)
		}
		in.remove(t)
		waitRemoved(t, results)

		in = insert(t, path, 0, vpcd.Options{})
		res = nextTap(t, results)
		if res.Err != nil {
			t.Fatalf("tap after tear at APDU %d: %v", k, res.Err)
		}
		if res.Read.Balance != f.EPBalance || len(res.Read.Log) != len(full.Read.Log) {
			t.Errorf("tap after tear at APDU %d: balance %d with %d records, want %d with %d", k, res.Read.Balance, len(res.Read.Log), f.EPBalance, len(full.Read.Log))
		}
		in.remove(t)
		waitRemoved(t, results)
	}
}

// waitRemoved waits until pcscd has seen the card leave slot 0, so that the
// next insertion is a new tap. pcscd polls vpcd for presence, so this takes
// up to about a second.
func waitRemoved(t *testing.T, results <-chan tap.Result) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if !cardPresent(t, slot0Reader) {
			return
		}
		select {
		case res := <-results:
			t.Fatalf("unexpected tap while waiting for removal: %+v", res)
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatal("pcscd still sees a card in slot 0 after 10 s")
}
