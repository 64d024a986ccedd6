package mifaresim

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/cardd/cardd/apdu"
	"github.com/cardd/cardd/apdu/mifare"
	"github.com/cardd/cardd/reader/vpcd"
)

// walletBlocks decodes both wallet blocks of the card; ok is false when
// either does not decode or their sequences differ.
func walletBlocks(c *SimCard) (main, backup int32, ok bool) {
	f := c.File()
	w := testWallet()
	m, ma, err1 := mifare.ParseValue(f.Blocks[w.ValueBlock][:])
	b, ba, err2 := mifare.ParseValue(f.Blocks[w.BackupBlock][:])
	return m, b, err1 == nil && err2 == nil && ma == ba
}

// consistent checks the card at rest: both blocks hold balance, at the
// same sequence.
func consistent(t *testing.T, c *SimCard, balance int64) {
	t.Helper()
	m, b, ok := walletBlocks(c)
	if !ok || int64(m) != balance || int64(b) != balance {
		t.Fatalf("card at rest: value %d backup %d (both valid, same sequence: %v), want %d in both", m, b, ok, balance)
	}
}

func TestPurchaseAndLoad(t *testing.T) {
	card := newTestCard(t, 10000)
	w := testWallet()
	bal, rep, err := w.Read(card)
	if err != nil || bal != 10000 || rep != mifare.RepairNone {
		t.Fatalf("Read = %d, %v, %v", bal, rep, err)
	}
	c, err := w.Decrement(card, 1234, nil)
	if err != nil || c != (mifare.Change{Old: 10000, New: 8766, Seq: 0}) {
		t.Fatalf("Decrement = %+v, %v", c, err)
	}
	consistent(t, card, 8766)
	c, err = w.Increment(card, 5000, nil)
	if err != nil || c != (mifare.Change{Old: 8766, New: 13766, Seq: 1}) {
		t.Fatalf("Increment = %+v, %v", c, err)
	}
	consistent(t, card, 13766)
	// Down to exactly zero is allowed.
	if c, err := w.Decrement(card, 13766, nil); err != nil || c.New != 0 {
		t.Fatalf("Decrement to 0 = %+v, %v", c, err)
	}
	consistent(t, card, 0)
}

func TestWriteAhead(t *testing.T) {
	card := newTestCard(t, 500)
	w := testWallet()
	var seen []mifare.Change
	ahead := func(c mifare.Change) error {
		// The card is untouched when the journal row is written.
		consistent(t, card, 500)
		seen = append(seen, c)
		return nil
	}
	if _, err := w.Decrement(card, 200, ahead); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 1 || seen[0] != (mifare.Change{Old: 500, New: 300}) {
		t.Fatalf("ahead saw %+v", seen)
	}
	journalDown := errors.New("journal: disk full")
	_, err := w.Increment(card, 100, func(mifare.Change) error { return journalDown })
	if !errors.Is(err, journalDown) || errors.Is(err, mifare.ErrOutcomeUnknown) {
		t.Fatalf("failing write-ahead: %v", err)
	}
	consistent(t, card, 300)
}

func TestInsufficientBalanceWritesNothing(t *testing.T) {
	card := newTestCard(t, 999)
	before := card.File()
	cnt := count(card)
	called := false
	_, err := testWallet().Decrement(cnt, 1000, func(mifare.Change) error { called = true; return nil })
	if !errors.Is(err, mifare.ErrInsufficientBalance) || !errors.Is(err, apdu.ErrInsufficientBalance) {
		t.Fatalf("Decrement = %v, want ErrInsufficientBalance", err)
	}
	if called || cnt.ins[insWrite] != 0 || *card.File() != *before {
		t.Fatalf("something was written (ahead called %v, %d writes)", called, cnt.ins[insWrite])
	}
}

func TestBadAmounts(t *testing.T) {
	card := newTestCard(t, mifare.MaxBalance-10)
	before := card.File()
	w := testWallet()
	for _, amount := range []int64{0, -1, mifare.MaxBalance + 1, 1 << 62} {
		if _, err := w.Decrement(card, amount, nil); !errors.Is(err, mifare.ErrBadAmount) {
			t.Errorf("Decrement(%d): %v", amount, err)
		}
		if _, err := w.Increment(card, amount, nil); !errors.Is(err, mifare.ErrBadAmount) {
			t.Errorf("Increment(%d): %v", amount, err)
		}
	}
	// int32 overflow of the value block.
	if _, err := w.Increment(card, 11, nil); !errors.Is(err, mifare.ErrBadAmount) {
		t.Errorf("Increment past MaxBalance: %v", err)
	}
	if *card.File() != *before {
		t.Fatal("a refused change wrote to the card")
	}
	if c, err := w.Increment(card, 10, nil); err != nil || c.New != mifare.MaxBalance {
		t.Fatalf("Increment to MaxBalance = %+v, %v", c, err)
	}
}

func TestWrongKey(t *testing.T) {
	card := newTestCard(t, 100)
	w := testWallet()
	w.KeyA[0] ^= 1
	if _, _, err := w.Read(card); !errors.Is(err, mifare.ErrAuth) {
		t.Errorf("Read with a wrong key A: %v, want ErrAuth", err)
	}
	w = testWallet()
	w.KeyB[5] ^= 1
	if _, err := w.Decrement(card, 1, nil); !errors.Is(err, mifare.ErrAuth) {
		t.Errorf("Decrement with a wrong key B: %v, want ErrAuth", err)
	}
	// Key A in place of key B.
	w = testWallet()
	w.KeyB = w.KeyA
	if _, err := w.Increment(card, 1, nil); !errors.Is(err, mifare.ErrAuth) {
		t.Errorf("Increment with key A as key B: %v, want ErrAuth", err)
	}
	consistent(t, card, 100)
}

func TestTransportSectorIsNotAWallet(t *testing.T) {
	// Sector 2 of an issued card is still in the transport configuration:
	// key A (FF…FF) could write any balance there.
	f, err := NewCardFile(testUID, testWallet(), 100)
	if err != nil {
		t.Fatal(err)
	}
	f.Blocks[8] = mifare.EncodeValue(100, 8)
	f.Blocks[9] = mifare.EncodeValue(100, 9)
	card := NewSimCard(f, "")
	before := card.File()
	w := mifare.Wallet{Sector: 2, ValueBlock: 8, BackupBlock: 9, KeyA: mifare.TransportKey, KeyB: mifare.TransportKey, Slots: mifare.KeySlotsACS}
	if _, _, err := w.Read(card); !errors.Is(err, mifare.ErrNotWallet) {
		t.Errorf("Read: %v, want ErrNotWallet", err)
	}
	// Key B is readable in that sector, so it is no key: the card refuses
	// every access after authenticating with it.
	if _, err := w.Decrement(card, 1, nil); !errors.Is(err, mifare.ErrOperationFailed) {
		t.Errorf("Decrement: %v, want ErrOperationFailed", err)
	}
	// A wallet-like trailer with the value blocks writable by key A is
	// refused too.
	card = newTestCard(t, 100)
	send(t, card, "FF82000006 B0B1B2B3B4B5")
	mustSW(t, card, "FF86000005 01 00 04 61 00", 0x9000)
	lax := mifare.EncodeAccessBits([4]mifare.AccessCond{mifare.CondTransport, mifare.CondValue, mifare.CondValue, mifare.CondTrailerWallet})
	tr, _ := mifare.Trailer{KeyA: testKeyA, Access: lax, GPB: mifare.DefaultGPB, KeyB: testKeyB}.Bytes()
	mustSW(t, card, fmt.Sprintf("FFD6000710 %X", tr), 0x9000)
	if _, _, err := testWallet().Read(card); !errors.Is(err, mifare.ErrNotWallet) {
		t.Errorf("value block writable by key A: %v, want ErrNotWallet", err)
	}
	if *card.File() == *before {
		t.Fatal("test did not change the trailer")
	}
}

func TestCorruptWallet(t *testing.T) {
	w := testWallet()
	for name, c := range map[string]struct{ main, backup [mifare.BlockSize]byte }{
		"both broken":             {block(t, "00000000 00000000 00000000 04FB04FB"), [mifare.BlockSize]byte{}},
		"negative value":          {mifare.EncodeValue(-5, 4), mifare.EncodeValue(-5, 5)},
		"broken, backup negative": {[mifare.BlockSize]byte{}, mifare.EncodeValue(-5, 5)},
	} {
		f, _ := NewCardFile(testUID, w, 100)
		f.Blocks[4], f.Blocks[5] = c.main, c.backup
		card := NewSimCard(f, "")
		if _, _, err := w.Read(card); !errors.Is(err, mifare.ErrCorrupt) {
			t.Errorf("%s: Read = %v, want ErrCorrupt", name, err)
		}
		if _, err := w.Increment(card, 1, nil); !errors.Is(err, mifare.ErrCorrupt) {
			t.Errorf("%s: Increment = %v, want ErrCorrupt", name, err)
		}
		if *card.File() != *f {
			t.Errorf("%s: a corrupt wallet was written to", name)
		}
	}
}

func TestReadRepairs(t *testing.T) {
	w := testWallet()
	for name, c := range map[string]struct {
		main, backup [mifare.BlockSize]byte
		want         int64
		repair       mifare.Repair
	}{
		"backup broken":    {mifare.EncodeValue(700, 4), [mifare.BlockSize]byte{1}, 700, mifare.RepairBackup},
		"sequences differ": {mifare.EncodeValue(700, 5), mifare.EncodeValue(700, 4), 700, mifare.RepairBackup}, // the backup is a change behind
		"backup older":     {mifare.EncodeValue(700, 4), mifare.EncodeValue(1000, 5), 700, mifare.RepairBackup},
		"backup newer":     {mifare.EncodeValue(700, 4), mifare.EncodeValue(400, 5), 700, mifare.RepairBackup}, // the rule: main wins
		"value block torn": {torn(mifare.EncodeValue(1000, 4), mifare.EncodeValue(700, 4)), mifare.EncodeValue(1000, 5), 1000, mifare.RepairMain},
	} {
		f, _ := NewCardFile(testUID, w, 0)
		f.Blocks[4], f.Blocks[5] = c.main, c.backup
		card := NewSimCard(f, "")
		bal, rep, err := w.Read(card)
		if err != nil || bal != c.want || rep != c.repair {
			t.Errorf("%s: Read = %d, %v, %v; want %d, %v", name, bal, rep, err, c.want, c.repair)
			continue
		}
		consistent(t, card, c.want)
		if bal, rep, err := w.Read(card); err != nil || bal != c.want || rep != mifare.RepairNone {
			t.Errorf("%s: second Read = %d, %v, %v", name, bal, rep, err)
		}
	}
}

// A tear at each write of a decrement and of an increment, in each way a
// write can tear: the next Read gives the old or the new balance, the one
// the tear implies, and leaves the card consistent.
func TestTornWrites(t *testing.T) {
	w := testWallet()
	ops := []struct {
		name string
		do   func(apdu.Transmitter) (mifare.Change, error)
		new  int64
	}{
		{"decrement", func(tr apdu.Transmitter) (mifare.Change, error) { return w.Decrement(tr, 300, nil) }, 700},
		{"increment", func(tr apdu.Transmitter) (mifare.Change, error) { return w.Increment(tr, 300, nil) }, 1300},
	}
	for _, op := range ops {
		for write := 1; write <= 2; write++ {
			for _, mode := range []TearMode{TearCorrupt, TearNotWritten, TearWritten} {
				t.Run(fmt.Sprintf("%s/write%d/%v", op.name, write, mode), func(t *testing.T) {
					card := newTestCard(t, 1000)
					card.TearNextWriteAt(write, mode)
					c, err := op.do(card)

					// What the terminal learns from the torn command.
					switch write {
					case 1: // the value block: the outcome is for the card to say
						if !errors.Is(err, mifare.ErrOutcomeUnknown) || !errors.Is(err, ErrTorn) || !errors.Is(err, vpcd.ErrTorn) {
							t.Fatalf("err = %v, want ErrOutcomeUnknown wrapping ErrTorn", err)
						}
						if c.Old != 1000 || c.New != op.new {
							t.Fatalf("change = %+v", c)
						}
					case 2: // the backup: the change happened
						if err != nil || !c.BackupStale || c.New != op.new {
							t.Fatalf("change = %+v, %v; want the new balance, backup stale", c, err)
						}
					}
					// The card is out of the field until it comes back.
					if _, _, err := w.Read(card); !errors.Is(err, ErrTorn) {
						t.Fatalf("Read of a pulled card: %v", err)
					}
					card.Reset()

					want := op.new
					if write == 1 && mode != TearWritten {
						want = 1000
					}
					st, err := w.ReadState(card)
					bal, rep := st.Balance, st.Repair
					if err != nil || bal != want {
						t.Fatalf("Read after tear = %d (%v), %v; want %d", bal, rep, err, want)
					}
					wantRepair := mifare.RepairNone
					switch {
					case write == 1 && mode == TearCorrupt:
						wantRepair = mifare.RepairMain
					case write == 1 && mode == TearWritten, write == 2 && mode != TearWritten:
						wantRepair = mifare.RepairBackup
					}
					if rep != wantRepair {
						t.Errorf("repair = %v, want %v", rep, wantRepair)
					}
					if happened, err := c.Happened(st); err != nil || happened != (want == op.new) {
						t.Errorf("Happened(%+v) = %v, %v", st, happened, err)
					}
					consistent(t, card, want)
					if _, rep, err := w.Read(card); err != nil || rep != mifare.RepairNone {
						t.Errorf("second Read: %v, %v", rep, err)
					}
				})
			}
		}
	}
}

// A tear during the repair itself: the balance is the same whatever the
// repair write left.
func TestTornRepair(t *testing.T) {
	w := testWallet()
	for _, mode := range []TearMode{TearCorrupt, TearNotWritten, TearWritten} {
		for _, startTorn := range []TearMode{TearCorrupt, TearWritten} { // value block broken / backup stale
			card := newTestCard(t, 1000)
			card.TearNextWriteAt(1, startTorn)
			if _, err := w.Decrement(card, 1, nil); !errors.Is(err, ErrTorn) {
				t.Fatal(err)
			}
			card.Reset()
			want := int64(1000)
			if startTorn == TearWritten {
				want = 999
			}
			card.TearNextWriteAt(1, mode)
			bal, _, err := w.Read(card)
			if !errors.Is(err, ErrTorn) || bal != want {
				t.Fatalf("%v then %v: Read = %d, %v; want %d and ErrTorn", startTorn, mode, bal, err, want)
			}
			card.Reset()
			if bal, _, err := w.Read(card); err != nil || bal != want {
				t.Fatalf("%v then %v: Read after repair tear = %d, %v; want %d", startTorn, mode, bal, err, want)
			}
			consistent(t, card, want)

			// A change on a card that needs repairing, torn in the repair:
			// not made, and not unknown.
			card = newTestCard(t, 1000)
			card.TearNextWriteAt(1, startTorn)
			w.Decrement(card, 1, nil)
			card.Reset()
			card.TearNextWriteAt(1, mode)
			_, err = w.Increment(card, 50, nil)
			if !errors.Is(err, ErrTorn) || errors.Is(err, mifare.ErrOutcomeUnknown) {
				t.Fatalf("change torn in its repair: %v", err)
			}
			card.Reset()
			if bal, _, err := w.Read(card); err != nil || bal != want {
				t.Fatalf("after a change torn in its repair: %d, %v; want %d", bal, err, want)
			}
		}
	}
}

// Many changes with random tears: the card's balance always follows a
// model that knows only "old or new", resolved the way the daemon does.
func TestRandomTears(t *testing.T) {
	w := testWallet()
	card := newTestCard(t, 50000)
	model := int64(50000)
	rng := rand.New(rand.NewPCG(1, 2))
	modes := []TearMode{TearCorrupt, TearNotWritten, TearWritten}
	for i := range 500 {
		if rng.IntN(3) == 0 {
			card.TearNextWriteAt(1+rng.IntN(3), modes[rng.IntN(3)])
		}
		amount := 1 + rng.Int64N(2000)
		var c mifare.Change
		var err error
		if rng.IntN(2) == 0 {
			c, err = w.Decrement(card, amount, nil)
		} else {
			c, err = w.Increment(card, amount, nil)
		}
		unknown := errors.Is(err, mifare.ErrOutcomeUnknown)
		switch {
		case err == nil:
			model = c.New
		case unknown, errors.Is(err, ErrTorn), errors.Is(err, mifare.ErrInsufficientBalance):
		default:
			t.Fatalf("step %d: %v", i, err)
		}
		card.Reset()
		st, err := w.ReadState(card)
		if errors.Is(err, ErrTorn) { // a tear armed for later hit the repair
			card.Reset()
			st, err = w.ReadState(card)
		}
		if err != nil {
			t.Fatalf("step %d: Read: %v", i, err)
		}
		bal := st.Balance
		if unknown {
			happened, err := c.Happened(st)
			if err != nil {
				t.Fatalf("step %d: %v", i, err)
			}
			if happened {
				model = c.New
			}
		}
		if bal != model {
			t.Fatalf("step %d: balance %d, model %d", i, bal, model)
		}
		card.TearNextWriteAt(0, 0)
		consistent(t, card, model)
	}
}

func TestPreloadedKeys(t *testing.T) {
	card := newTestCard(t, 100)
	w := testWallet()
	w.Slots = mifare.KeySlotsNonVolatile
	if _, _, err := w.Read(card); !errors.Is(err, mifare.ErrAuth) {
		t.Fatalf("Read before LoadKeys: %v, want ErrAuth (empty slot)", err)
	}
	if err := w.LoadKeys(card); err != nil {
		t.Fatal(err)
	}
	cnt := count(card)
	if _, err := w.Decrement(cnt, 10, nil); err != nil {
		t.Fatal(err)
	}
	if bal, _, err := w.Read(cnt); err != nil || bal != 90 {
		t.Fatalf("Read = %d, %v", bal, err)
	}
	if cnt.ins[insLoadKeys] != 0 || cnt.all != 6+4 {
		t.Fatalf("sent %d LOAD KEYS, %d APDUs in all; want 0 and 10", cnt.ins[insLoadKeys], cnt.all)
	}
}

// TestSequence: every change moves the sequence by one, in the same write
// as the balance, and a torn change leaves it with the balance it goes with.
func TestSequence(t *testing.T) {
	w := testWallet()
	card := newTestCard(t, 1000)
	st, err := w.ReadState(card)
	if err != nil || st.Seq != 0 || st.Balance != 1000 {
		t.Fatalf("fresh wallet: %+v, %v; want 1000 at sequence 0", st, err)
	}
	for i := 1; i <= 300; i++ {
		if _, err := w.Decrement(card, 1, nil); err != nil {
			t.Fatal(err)
		}
		if st, err = w.ReadState(card); err != nil || st.Seq != byte(i) || st.Balance != int64(1000-i) {
			t.Fatalf("after %d changes: %+v, %v", i, st, err)
		}
	}
}
