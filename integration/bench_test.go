package integration

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ebfe/scard"

	epursesim "github.com/cardd/cardd/apdu/epurse/sim"
	"github.com/cardd/cardd/door"
	"github.com/cardd/cardd/internal/pty"
	"github.com/cardd/cardd/localapi"
	"github.com/cardd/cardd/offline"
	"github.com/cardd/cardd/reader"
	"github.com/cardd/cardd/reader/vpcd"
	hostsync "github.com/cardd/cardd/sync"
	"github.com/cardd/cardd/tap"
)

// recordingCard remembers the command APDUs the card was sent, so the raw
// baseline replays exactly what cardd sent.
type recordingCard struct {
	*epursesim.SimCard
	mu   sync.Mutex
	cmds [][]byte
}

func (c *recordingCard) Transmit(cmd []byte) ([]byte, error) {
	c.mu.Lock()
	c.cmds = append(c.cmds, append([]byte(nil), cmd...))
	c.mu.Unlock()
	return c.SimCard.Transmit(cmd)
}

func (c *recordingCard) take() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	cmds := c.cmds
	c.cmds = nil
	return cmds
}

// BenchmarkTap taps a simulated card b.N times through pcscd (run it with
// -benchtime=200x) and reports, per tap: APDUs per read and until the balance
// is known, p50/p99 from card present (the monitor's event) to balance known
// and to the full read; and a raw baseline in the same run: the same APDUs
// sent by a bare ebfe/scard loop over the same b.N taps, with the ratio of
// cardd's p50 to the baseline's.
func BenchmarkTap(b *testing.B) {
	for _, lat := range []time.Duration{0, 15 * time.Millisecond} {
		b.Run(fmt.Sprintf("latency=%v", lat), func(b *testing.B) { benchTap(b, lat) })
	}
}

func benchTap(b *testing.B, latency time.Duration) {
	requirePCSC(b)
	f, path := newCardFile(b, "3101000000999999", "赵六", 50000, 10)
	card := &recordingCard{SimCard: epursesim.NewSimCard(f, path)}
	waitEmpty(b, 0)

	results := make(chan tap.Result, 1)
	r := &tap.Runner{
		Roles: reader.Roles{Card: regexp.MustCompile("^" + regexp.QuoteMeta(slot0Reader) + "$")},
		OnTap: func(res tap.Result) { results <- res },
	}
	r.Logger = discardLogger()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)

	var toBalance, toDone []time.Duration
	var apdus, balanceAPDUs int
	var cmds [][]byte
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		waitEmpty(b, 0)
		cctx, ccancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- vpcd.Insert(cctx, vpcd.SlotAddr(0), card, vpcd.Options{Latency: latency}) }()
		b.StartTimer()
		res := waitResult(b, results)
		b.StopTimer()
		ccancel()
		<-done
		if res.Err != nil {
			b.Fatalf("tap %d: %v", i, res.Err)
		}
		toBalance = append(toBalance, res.ToBalance)
		toDone = append(toDone, res.ToDone)
		apdus, balanceAPDUs = res.Read.APDUs, res.Read.BalanceAPDUs
		cmds = card.take()
		b.StartTimer()
	}
	b.StopTimer()
	cancel()

	rawBalance, rawDone := rawBaseline(b, card, cmds, balanceAPDUs, b.N, latency)
	b.ReportMetric(float64(apdus), "apdus/read")
	b.ReportMetric(float64(balanceAPDUs), "apdus-to-balance")
	b.ReportMetric(ms(pct(toBalance, 50)), "balance-p50-ms")
	b.ReportMetric(ms(pct(toBalance, 99)), "balance-p99-ms")
	b.ReportMetric(ms(pct(toDone, 50)), "read-p50-ms")
	b.ReportMetric(ms(pct(toDone, 99)), "read-p99-ms")
	b.ReportMetric(ms(pct(rawBalance, 50)), "raw-balance-p50-ms")
	b.ReportMetric(ms(pct(rawBalance, 99)), "raw-balance-p99-ms")
	b.ReportMetric(ms(pct(rawDone, 50)), "raw-read-p50-ms")
	b.ReportMetric(ms(pct(rawDone, 99)), "raw-read-p99-ms")
	b.ReportMetric(float64(pct(toDone, 50))/float64(pct(rawDone, 50)), "read-p50/raw")
	b.ReportMetric(float64(pct(toBalance, 50))/float64(pct(rawBalance, 50)), "balance-p50/raw")
}

// rawBaseline taps the card n times as the barest ebfe/scard program would:
// insert, wait for SCardGetStatusChange to report the card present (the
// clock starts there, as cardd's does at its monitor's event), connect, begin
// a transaction, send cmds, end, disconnect, remove. It returns the times to
// the balance APDU's answer and to the last answer.
func rawBaseline(b *testing.B, card vpcd.Card, cmds [][]byte, balanceAt, n int, latency time.Duration) (toBalance, toDone []time.Duration) {
	pctx, err := scard.EstablishContext()
	if err != nil {
		b.Fatal(err)
	}
	defer pctx.Release()
	for range n {
		waitEmpty(b, 0)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- vpcd.Insert(ctx, vpcd.SlotAddr(0), card, vpcd.Options{Latency: latency}) }()
		rs := []scard.ReaderState{{Reader: slot0Reader, CurrentState: scard.StateEmpty}}
		for rs[0].EventState&scard.StatePresent == 0 {
			if err := pctx.GetStatusChange(rs, 10*time.Second); err != nil {
				b.Fatalf("raw baseline waiting for the card: %v", err)
			}
			rs[0].CurrentState = rs[0].EventState
		}
		start := time.Now()
		c, err := pctx.Connect(slot0Reader, scard.ShareShared, scard.ProtocolAny)
		if err != nil {
			b.Fatal(err)
		}
		if err := c.BeginTransaction(); err != nil {
			b.Fatal(err)
		}
		for i, cmd := range cmds {
			if _, err := c.Transmit(cmd); err != nil {
				b.Fatal(err)
			}
			if i+1 == balanceAt {
				toBalance = append(toBalance, time.Since(start))
			}
		}
		_ = c.EndTransaction(scard.LeaveCard)
		_ = c.Disconnect(scard.LeaveCard)
		toDone = append(toDone, time.Since(start))
		cancel()
		<-done
	}
	return toBalance, toDone
}

func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[min(max(i-1, 0), len(s)-1)]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// BenchmarkTapLoad taps a card b.N times through pcscd with the reference
// host on loopback (run it with -benchtime=50x); before each tap one credit
// is added at the host and waited for in the terminal's cache, which its
// held pull fills (the path of a credit paid in the app before the tap),
// and each tap must load it (the benchmark fails otherwise); warmTaps taps before them, not counted, fill the card's log,
// as a card in use has it. Per tap it reports the card's APDUs (all, and
// those before the card could leave: Result.ToLeave), the host round trips
// before then (counted at the host), p50/p99 of the time the card must stay
// (ToLeave) and of the whole tap (ToDone), and the floor measured in the
// same run: the APDUs before leaving at a bare ebfe/scard loop's time per
// APDU plus the round trips at a signed loopback request's time, with the
// ratio of p50 and p99 to it. Twice, like BenchmarkTap: a card answering at
// once and one answering in 15 ms per APDU (the issue's goals, printed
// beside, are at that speed). Then "journal": at 15 ms per APDU with
// JOURNAL_ROWS settled rows already in the terminal's journal (0, 100,000,
// 1,000,000 by default), the p50s also as ratios to the empty journal's.
func BenchmarkTapLoad(b *testing.B) {
	moneyBenchmarks(b, benchTapLoad)
}

func benchTapLoad(b *testing.B, latency time.Duration, rows int, withFloor bool) {
	requirePCSC(b)
	w := newWorld(b)
	const number = "3101000000888888"
	const amount = 10 // fen: 10,000 taps stay under the balance cap
	path := w.issue(b, number, 0)
	fillTerminalJournal(b, w.store.Path(), number, rows)
	// The runner asks the host through a server that notes each request.
	trips := &timeline{}
	counted := httptest.NewServer(countTrips(w.srv.Config.Handler, trips))
	b.Cleanup(counted.Close)
	client := &hostsync.Client{BaseURL: counted.URL, TerminalID: termID, Secret: []byte(w.secret)}
	// The terminal's held pull brings each credit into its cache before
	// the tap, as `cardd run` has it: the tap then asks no one for the
	// card's credits, only authorizes. The pull goes straight to the host,
	// so trips counts only the tap's own requests.
	s := &hostsync.Syncer{Client: w.client, Store: w.store, Logger: discardLogger(),
		PullEvery: time.Hour, UploadEvery: time.Hour, HeartbeatEvery: time.Hour}
	s.Start(context.Background())
	b.Cleanup(s.Stop)
	w.fresh = time.Minute
	w.startRunnerAs(b, w.store, client)
	waitPulled(b, w.store.Path(), 10*time.Second)
	var fig leaveFigures
	for i := range warmTaps + b.N {
		if i == warmTaps {
			b.ResetTimer()
		}
		b.StopTimer()
		id := w.credit(b, number, amount)
		waitCached(b, w.store.Path(), id, 5*time.Second)
		card := &timeline{}
		b.StartTimer()
		res := w.tap(b, path, vpcd.Options{Latency: latency, OnAPDU: card.mark})
		b.StopTimer()
		if res.Err != nil || res.Load == nil || len(res.Load.Loads) != 1 || !res.Load.Loads[0].Applied || res.Load.Loads[0].CreditID != id {
			b.Fatalf("tap %d: the credit %s was not applied: err %v, load %+v", i, id, res.Err, res.Load)
		}
		if i >= warmTaps {
			fig.add(res, card, nil, trips)
		}
		b.StartTimer()
	}
	b.StopTimer()
	// Every credit is on the card once, and consumed at the host.
	f, err := epursesim.LoadCardFile(path)
	if err != nil {
		b.Fatal(err)
	}
	l, err := w.host.Ledger(context.Background(), number)
	if err != nil {
		b.Fatal(err)
	}
	if want := int64(warmTaps+b.N) * amount; f.EPBalance != want || l.LoadedFen != want || l.PendingFen != 0 || l.Alarms != 0 {
		b.Fatalf("after %d taps: card %d fen, host loaded %d pending %d alarms %d; want %d loaded", warmTaps+b.N, f.EPBalance, l.LoadedFen, l.PendingFen, l.Alarms, want)
	}
	var fl *floor
	if withFloor {
		fl = &floor{trip: hostTrip(b, client, number)}
		w.stop() // the bare loop needs slot 0 to itself
		fl.cardAPDU = bareAPDU(b, latency, floorTaps(b.N))
	}
	loadTap.report(b, &fig, fl, latency, rows)
}

// BenchmarkEventStream taps a card b.N times under `cardd run` with a client
// on the local API's event stream (run it with -benchtime=50x) and reports
// p50/p99 of: the daemon publishing card.present to the client reading it
// (the API's own cost), the card entering the slot to the client reading
// card.present (pcscd's presence poll included), and entering to the tap's
// card.tap with the balance and transactions. The card answers at once.
func BenchmarkEventStream(b *testing.B) {
	requirePCSC(b)
	w := newHostWorld(b)
	const number = "3101000000930001"
	path := w.issue(b, number, 10000)
	waitEmpty(b, 0)
	d := startDaemon(b, "CARDD_STORE_PATH="+filepath.Join(b.TempDir(), "cardd.db"))
	addr := d.apiAddr(b)
	d.waitLine(b, "reader added", 10*time.Second, func(m map[string]any) bool { return m["reader"] == slot0Reader })
	s := openEvents(b, addr)
	s.wait(b, localapi.EventHello)
	var publishToClient, insertToPresent, insertToTap []time.Duration
	b.ResetTimer()
	for range b.N {
		inserted := time.Now()
		in := insert(b, path, 0, vpcd.Options{})
		e := s.wait(b, localapi.EventCardPresent)
		got := time.Now()
		publishToClient = append(publishToClient, got.Sub(e.Time))
		insertToPresent = append(insertToPresent, got.Sub(inserted))
		if e := s.wait(b, localapi.EventCardTap); e.Tap == nil || e.Tap.Outcome != "ok" {
			b.Fatalf("tap: %+v", e.Tap)
		}
		insertToTap = append(insertToTap, time.Since(inserted))
		b.StopTimer()
		in.remove(b)
		s.wait(b, localapi.EventCardRemoved)
		waitEmpty(b, 0)
		b.StartTimer()
	}
	b.StopTimer()
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	<-d.exit
	b.ReportMetric(ms(pct(publishToClient, 50)), "publish-to-client-p50-ms")
	b.ReportMetric(ms(pct(publishToClient, 99)), "publish-to-client-p99-ms")
	b.ReportMetric(ms(pct(insertToPresent, 50)), "insert-to-present-p50-ms")
	b.ReportMetric(ms(pct(insertToPresent, 99)), "insert-to-present-p99-ms")
	b.ReportMetric(ms(pct(insertToTap, 50)), "insert-to-tap-p50-ms")
	b.ReportMetric(ms(pct(insertToTap, 99)), "insert-to-tap-p99-ms")
}

// BenchmarkTapPurchase is a POS tap: the card is read, the armed sale is
// debited through the simulated PSAM in slot 1, and the tap is approved. The
// POS has no host link here; warmTaps taps, not counted, come first, as in
// BenchmarkTapLoad. Per tap it reports the card's and the PSAM's APDUs (all,
// and those before the card could leave: Result.ToLeave), p50/p99 of the
// time the card must stay (ToLeave) and of the whole tap to approved
// (ToDone), and the floor measured in the same run: the card's APDUs before
// leaving at a bare ebfe/scard loop's time per APDU at the card's speed, the
// PSAM's at the same loop's time at once (a contact SAM is faster than the
// RF link; the simulated one answers at once), with the ratio of p50 and p99
// to it. For a card answering at once and one answering in 15 ms per APDU
// (the issue's goals, printed beside, are at that speed). Then "journal", as
// in BenchmarkTapLoad.
func BenchmarkTapPurchase(b *testing.B) {
	moneyBenchmarks(b, benchTapPurchase)
}

func benchTapPurchase(b *testing.B, latency time.Duration, rows int, withFloor bool) {
	requirePCSC(b)
	w := newHostWorld(b)
	sam := &timeline{}
	insertObservedPSAM(b, w.hostDir, sam.mark)
	var fl *floor
	if withFloor {
		// Before the runner starts: the bare loop needs slot 0 to itself.
		fl = &floor{cardAPDU: bareAPDU(b, latency, floorTaps(b.N))}
		fl.samAPDU = fl.cardAPDU
		if latency != 0 {
			fl.samAPDU = bareAPDU(b, 0, floorTaps(b.N))
		}
	}
	store, till, results := startPOSRunner(b, -1)
	const number = "3101000000888899"
	const amount = 10
	path := w.issue(b, number, 100000)
	fillTerminalJournal(b, store.Path(), number, rows)
	var fig leaveFigures
	for i := range warmTaps + b.N {
		if i == warmTaps {
			b.ResetTimer()
		}
		b.StopTimer()
		if _, err := till.Arm(amount, ""); err != nil {
			b.Fatal(err)
		}
		card := &timeline{}
		b.StartTimer()
		in := insert(b, path, 0, vpcd.Options{Latency: latency, OnAPDU: card.mark})
		res := waitResult(b, results)
		b.StopTimer()
		in.remove(b)
		if res.Err != nil || res.Purchase == nil || !res.Purchase.Paid {
			b.Fatalf("tap %d: not paid: %v %+v", i, res.Err, res.Purchase)
		}
		if i >= warmTaps {
			fig.add(res, card, sam, nil)
		}
		b.StartTimer()
	}
	b.StopTimer()
	f, err := epursesim.LoadCardFile(path)
	if err != nil {
		b.Fatal(err)
	}
	if want := 100000 - int64(warmTaps+b.N)*amount; f.EPBalance != want {
		b.Fatalf("after %d purchases the card holds %d, want %d", warmTaps+b.N, f.EPBalance, want)
	}
	purchaseTap.report(b, &fig, fl, latency, rows)
}

// BenchmarkTapDoor is a door tap: the card is identified, the decision made
// offline from an access list of 50,000 cards, and the relay (a board on a
// pty) switched. It reports p50/p99 from the card's arrival (the monitor's
// event) to the relay's open command written, and the APDUs sent until
// then, at both card speeds.
func BenchmarkTapDoor(b *testing.B) {
	for _, lat := range []time.Duration{0, 15 * time.Millisecond} {
		b.Run(fmt.Sprintf("latency=%v", lat), func(b *testing.B) { benchTapDoor(b, lat) })
	}
}

func benchTapDoor(b *testing.B, latency time.Duration) {
	requirePCSC(b)
	w := newHostWorld(b)
	const number = "3101000000888877"
	path := w.issue(b, number, 1000)
	list := door.List{Groups: []door.Group{{Name: "residents", Windows: []door.Window{{
		Days: []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}, From: "00:00", Until: "24:00"}}}}}
	for i := range 50000 {
		list.Entries = append(list.Entries, door.Entry{Card: fmt.Sprintf("31020000%08d", i), Groups: []string{"residents"}})
	}
	list.Entries = append(list.Entries, door.Entry{Card: number, Groups: []string{"residents"}})
	ix, err := door.NewIndex(&list, []string{"residents"})
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	link := filepath.Join(dir, "relay")
	master, slave, ptyPath, err := pty.Open()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { master.Close(); slave.Close() })
	go io.Copy(io.Discard, master)
	if err := os.Symlink(ptyPath, link); err != nil {
		b.Fatal(err)
	}
	relay, err := door.NewRelay(door.RelayConfig{Port: link, Hold: 100 * time.Millisecond}, discardLogger())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { relay.Close() })
	store, err := offline.Open(filepath.Join(dir, "cardd.db"), termID)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	d := &tap.Door{Store: store, Relay: relay, Logger: discardLogger()}
	d.SetList(ix)
	results := make(chan tap.Result, 16)
	var apdus atomic.Int64
	var atOpen int64
	r := &tap.Runner{
		Roles:  reader.Roles{Card: regexp.MustCompile("^" + regexp.QuoteMeta(slot0Reader) + "$")},
		Logger: discardLogger(),
		OnTap:  func(res tap.Result) { results <- res },
		OnBalance: func(tap.Result) {
			// The door decides on the balance, just before this hook.
			atOpen = apdus.Load()
		},
		Door: d,
	}
	runRunner(b, r)
	var toOpen []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		apdus.Store(0)
		in := insert(b, path, 0, vpcd.Options{Latency: latency, OnAPDU: func(n int) { apdus.Store(int64(n)) }})
		res := waitResult(b, results)
		b.StopTimer()
		in.remove(b)
		if res.Err != nil || res.Door == nil || !res.Door.Opened {
			b.Fatalf("tap %d: door not opened: %v %+v", i, res.Err, res.Door)
		}
		toOpen = append(toOpen, res.Door.ToOpen)
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(ms(pct(toOpen, 50)), "open-p50-ms")
	b.ReportMetric(ms(pct(toOpen, 99)), "open-p99-ms")
	b.ReportMetric(float64(atOpen), "apdus-to-open")
}
