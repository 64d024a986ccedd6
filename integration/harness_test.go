package integration

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/cardd/cardd/apdu/epurse"
	epursesim "github.com/cardd/cardd/apdu/epurse/sim"
	"github.com/cardd/cardd/internal/testbin"
	"github.com/cardd/cardd/reader"
	"github.com/cardd/cardd/reader/vpcd"
	"github.com/cardd/cardd/tap"
)

// Reader names pcscd gives the vpcd slots.
const (
	slot0Reader = "Virtual PCD 00 00"
	slot1Reader = "Virtual PCD 00 01"
)

func TestMain(m *testing.M) {
	lock, err := os.OpenFile("/tmp/cardd-vpcd.lock", os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration: cannot open the vpcd slot lock:", err)
		os.Exit(1)
	}
	// Blocks while another run (or the demo) holds the slots.
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		fmt.Fprintln(os.Stderr, "integration: cannot lock the vpcd slots:", err)
		os.Exit(1)
	}
	code := m.Run()
	// The lock lives as long as the file is open: without this the garbage
	// collector may close it, and the lock with it, in the middle of m.Run.
	runtime.KeepAlive(lock)
	testbin.Cleanup()
	os.Exit(code)
}

// requirePCSC fails (under CI=true) or skips the test when pcscd with the
// vpcd readers is not there.
func requirePCSC(t testing.TB) {
	t.Helper()
	names, err := waitReaders(5 * time.Second)
	if err == nil && slices.Contains(names, slot0Reader) {
		return
	}
	msg := fmt.Sprintf("pcscd with the vpcd virtual reader %q is needed (readers %q, err %v): run scripts/setup", slot0Reader, names, err)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// waitReaders lists readers, retrying while pcscd is starting up.
func waitReaders(limit time.Duration) ([]string, error) {
	deadline := time.Now().Add(limit)
	for {
		names, err := reader.ListReaders()
		if (err == nil && slices.Contains(names, slot0Reader)) || time.Now().After(deadline) {
			return names, err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// demoMasters are fixed issuer master keys for the tests: the spec's test DLK
// family, so a failure can be checked by hand against its vectors.
var demoMasters = epurse.MasterKeys{
	DLK: mustKey("11223344556677888877665544332211"),
	DPK: mustKey("3F013F013F013F013F013F013F013F01"),
	DTK: mustKey("0123456789ABCDEFFEDCBA9876543210"),
}

func mustKey(h string) epurse.Key16 {
	var k epurse.Key16
	if err := k.UnmarshalText([]byte(h)); err != nil {
		panic(err)
	}
	return k
}

// newCardFile creates a card with a history of n real transactions, made
// through the simulated card's own load and purchase commands, and saves it.
func newCardFile(t testing.TB, number, holder string, balance int64, history int) (*epursesim.CardFile, string) {
	t.Helper()
	f, err := epursesim.NewCardFile(number, holder, balance,
		epurse.Date{Year: 2024, Month: 9, Day: 1}, epurse.Date{Year: 2030, Month: 8, Day: 31}, demoMasters)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "card.json")
	if err := f.Save(path); err != nil {
		t.Fatal(err)
	}
	if history > 0 {
		card := epursesim.NewSimCard(f, path)
		start := time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)
		if err := epursesim.SeedHistory(card, demoMasters, [6]byte{0x00, 0x11, 0x22, 0x33, 0x44, 0x55}, history, start); err != nil {
			t.Fatal(err)
		}
		if f, err = epursesim.LoadCardFile(path); err != nil {
			t.Fatal(err)
		}
	}
	return f, path
}

// inserted is a simulated card in a vpcd slot.
type inserted struct {
	cancel context.CancelFunc
	done   chan error
}

// insert puts the card file at path into the vpcd slot until remove is
// called, the tear point is reached or the test ends.
func insert(t testing.TB, path string, slot int, opt vpcd.Options) *inserted {
	t.Helper()
	f, err := epursesim.LoadCardFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return insertSim(t, epursesim.NewSimCard(f, path), slot, opt)
}

// insertSim puts any simulated card (an M1 card, a PSAM) into the vpcd slot
// until remove is called, the tear point is reached or the test ends.
func insertSim(t testing.TB, card vpcd.Card, slot int, opt vpcd.Options) *inserted {
	t.Helper()
	// pcscd notices a card leaving only at its next presence poll; a card
	// inserted before that would be taken for the one that left.
	waitEmpty(t, slot)
	ctx, cancel := context.WithCancel(context.Background())
	in := &inserted{cancel: cancel, done: make(chan error, 1)}
	go func() { in.done <- vpcd.Insert(ctx, vpcd.SlotAddr(slot), card, opt) }()
	t.Cleanup(func() { in.remove(t) })
	return in
}

// status says whether the simulated card is still in the slot and, if not,
// why it left: for failure messages.
func (in *inserted) status() string {
	select {
	case err := <-in.done:
		in.done <- err
		return fmt.Sprintf("the simulated card had left the slot: %v", err)
	default:
		return "the simulated card was still in the slot"
	}
}

// remove takes the card out and waits until the socket is closed.
func (in *inserted) remove(t testing.TB) error {
	in.cancel()
	select {
	case err := <-in.done:
		in.done <- err // let a second remove see it too
		if errors.Is(err, vpcd.ErrTorn) {
			return nil
		}
		return err
	case <-time.After(10 * time.Second):
		t.Error("simulated card did not leave the slot within 10 s")
		return nil
	}
}

// binary is the path of the command name, built once per test run.
func binary(t testing.TB, name string) string { return testbin.Build(t, name) }

// pcscdPollPeriod is how often pcscd's status thread asks a polling driver
// such as vpcd whether a card is present (PCSCLITE_STATUS_POLL_RATE, 400 ms),
// with some slack.
const pcscdPollPeriod = 450 * time.Millisecond

// removeAfterKill takes the card out after the client that held it was
// killed, and returns once pcscd's status thread has seen it go.
//
// pcscd resets the card of a dead client. If the card has already left, the
// reset fails and pcscd marks the slot empty at once, while its status thread
// still believes the card is in. A card inserted before that thread's next
// poll looks to it like no change at all, and the slot reads empty for as
// long as the new card stays (seen with pcscd 1.9.9 and vpcd: the restarted
// daemon never saw its card). So wait one poll after the slot reads empty.
func (in *inserted) removeAfterKill(t testing.TB, slot int) {
	t.Helper()
	in.remove(t)
	waitEmpty(t, slot)
	time.Sleep(pcscdPollPeriod)
}

// waitEmpty waits until pcscd sees no card in the vpcd slot.
func waitEmpty(t testing.TB, slot int) {
	t.Helper()
	name := fmt.Sprintf("Virtual PCD 00 %02d", slot)
	deadline := time.Now().Add(10 * time.Second)
	for cardPresent(t, name) {
		if time.Now().After(deadline) {
			t.Fatalf("pcscd still sees a card in %q after 10 s", name)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// runRunner runs r (on slot 0) until the test ends; the slot is emptied of
// any earlier test's card first.
func runRunner(t testing.TB, r *tap.Runner) {
	t.Helper()
	waitEmpty(t, 0)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = r.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

// waitResult waits for the next tap's result.
func waitResult(t testing.TB, results <-chan tap.Result) tap.Result {
	t.Helper()
	select {
	case res := <-results:
		return res
	case <-time.After(15 * time.Second):
		t.Fatal("no tap within 15 s")
	}
	return tap.Result{}
}
