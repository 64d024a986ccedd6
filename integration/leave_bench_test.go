package integration

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cardd/cardd/apdu/epurse"
	epursesim "github.com/cardd/cardd/apdu/epurse/sim"
	"github.com/cardd/cardd/offline"
	hostsync "github.com/cardd/cardd/sync"
	"github.com/cardd/cardd/tap"
)

// cardSpeed is a real contactless card's time per APDU at 106 kbit/s: the
// speed the money taps' goals (issue 13) are stated at.
const cardSpeed = 15 * time.Millisecond

// moneyBenchmarks runs a money tap's benchmark at both card speeds with
// its floor, then at cardSpeed with each of benchJournalRows' row counts
// in the journal ("journal/rows=N").
func moneyBenchmarks(b *testing.B, run func(b *testing.B, latency time.Duration, rows int, withFloor bool)) {
	for _, lat := range []time.Duration{0, cardSpeed} {
		b.Run(fmt.Sprintf("latency=%v", lat), func(b *testing.B) { run(b, lat, 0, true) })
	}
	b.Run("journal", func(b *testing.B) {
		for _, rows := range benchJournalRows(b) {
			b.Run(fmt.Sprintf("rows=%d", rows), func(b *testing.B) { run(b, cardSpeed, rows, false) })
		}
	})
}

// warmTaps are the money benchmarks' taps before the figures: a card in use
// has a full log, and a new card's first taps would read fewer records.
const warmTaps = 5

// timeline notes when things happened outside the tap's own code (a command
// reaching the card or the PSAM, a request reaching the host), so a tap's
// share of them can be split at the moment the card could have left.
type timeline struct {
	mu    sync.Mutex
	spans [][2]time.Time
}

// mark notes one command processed now; it has vpcd.Options.OnAPDU's type.
func (l *timeline) mark(int) {
	now := time.Now()
	l.add(now, now)
}

func (l *timeline) add(from, to time.Time) {
	l.mu.Lock()
	l.spans = append(l.spans, [2]time.Time{from, to})
	l.mu.Unlock()
}

// within counts what began at or after from and ended by to.
func (l *timeline) within(from, to time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.spans {
		if !s[0].Before(from) && !s[1].After(to) {
			n++
		}
	}
	return n
}

// countTrips serves h, noting each request's arrival and answer on trips:
// the host's round trips, seen from the host's side of loopback.
func countTrips(h http.Handler, trips *timeline) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		h.ServeHTTP(w, r)
		trips.add(start, time.Now())
	})
}

// leaveFigures gathers the money taps' figures: when the card could leave
// and what it waited for until then.
type leaveFigures struct {
	toLeave, toDone []time.Duration
	// Sums over the taps: the card's and the PSAM's commands, and what
	// came before the card could leave.
	cardAPDUs, samAPDUs, cardBefore, samBefore, tripsBefore int
}

// add takes one tap. card, sam and host (each may be nil) are the
// timelines of the card's commands, the PSAM's and the host's requests.
func (f *leaveFigures) add(res tap.Result, card, sam, host *timeline) {
	f.toLeave = append(f.toLeave, res.ToLeave)
	f.toDone = append(f.toDone, res.ToDone)
	f.cardAPDUs += res.CardAPDUs
	if sam != nil {
		f.samAPDUs += sam.within(res.Start, res.Start.Add(res.ToDone))
	}
	if res.ToLeave == 0 {
		return // no command sent: nothing came before the card could leave
	}
	leave := res.Start.Add(res.ToLeave)
	for _, c := range []struct {
		l   *timeline
		sum *int
	}{{card, &f.cardBefore}, {sam, &f.samBefore}, {host, &f.tripsBefore}} {
		if c.l != nil {
			*c.sum += c.l.within(res.Start, leave)
		}
	}
}

// perTap is a sum of add's divided by the taps.
func (f *leaveFigures) perTap(sum int) float64 {
	if len(f.toLeave) == 0 {
		return 0
	}
	return float64(sum) / float64(len(f.toLeave))
}

// floor is what a tap's waits cost at least, measured in the same run: one
// bare ebfe/scard APDU at the card's speed per card APDU, one at the PSAM's
// (at once) per PSAM APDU, one signed loopback request per host round trip.
type floor struct {
	cardAPDU, samAPDU, trip time.Duration
}

// moneyTap is what a money tap's benchmark prints beside its figures: which
// parties it waits for, and the goals for the time the card stays
// at cardSpeed (issue 13), printed beside, never asserted.
type moneyTap struct {
	name             string
	host, sam        bool
	goalP50, goalP99 float64 // ms
}

var (
	loadTap     = moneyTap{name: "load", host: true, goalP50: 80, goalP99: 100}
	purchaseTap = moneyTap{name: "purchase", sam: true, goalP50: 100, goalP99: 120}
)

// report prints f's figures for a run at latency with rows in the journal.
// With a floor (fl not nil), the floor's parts are printed too, so the
// table shows what it was made of; without one (a journal run), the p50s
// as ratios to the empty journal's.
func (m moneyTap) report(b *testing.B, f *leaveFigures, fl *floor, latency time.Duration, rows int) {
	b.ReportMetric(f.perTap(f.cardAPDUs), "card-apdus/tap")
	b.ReportMetric(f.perTap(f.cardBefore), "card-apdus-before-leave")
	if m.sam {
		b.ReportMetric(f.perTap(f.samAPDUs), "psam-apdus/tap")
		b.ReportMetric(f.perTap(f.samBefore), "psam-apdus-before-leave")
	}
	if m.host {
		b.ReportMetric(f.perTap(f.tripsBefore), "host-trips-before-leave")
	}
	leave50, leave99 := pct(f.toLeave, 50), pct(f.toLeave, 99)
	b.ReportMetric(ms(leave50), "leave-p50-ms")
	b.ReportMetric(ms(leave99), "leave-p99-ms")
	b.ReportMetric(ms(pct(f.toDone, 50)), "done-p50-ms")
	b.ReportMetric(ms(pct(f.toDone, 99)), "done-p99-ms")
	if latency == cardSpeed {
		b.ReportMetric(m.goalP50, "goal-p50-ms")
		b.ReportMetric(m.goalP99, "goal-p99-ms")
	}
	if fl == nil {
		reportJournal(b, m.name, rows, f)
		return
	}
	d := time.Duration(f.perTap(f.cardBefore)*float64(fl.cardAPDU) +
		f.perTap(f.samBefore)*float64(fl.samAPDU) + f.perTap(f.tripsBefore)*float64(fl.trip))
	b.ReportMetric(ms(fl.cardAPDU), "floor-card-apdu-ms")
	if m.sam {
		b.ReportMetric(ms(fl.samAPDU), "floor-psam-apdu-ms")
	}
	if m.host {
		b.ReportMetric(ms(fl.trip), "floor-host-trip-ms")
	}
	b.ReportMetric(ms(d), "floor-ms")
	if d > 0 {
		b.ReportMetric(float64(leave50)/float64(d), "leave-p50/floor")
		b.ReportMetric(float64(leave99)/float64(d), "leave-p99/floor")
	}
}

// bareAPDU is the time per APDU of a bare ebfe/scard program at the given
// card speed, through the same pcscd and vpcd slot 0 (nothing else may
// hold the slot): n taps of a card that is sent SELECT and then GET BALANCE
// until ten commands, the median tap divided by its commands.
func bareAPDU(b *testing.B, latency time.Duration, n int) time.Duration {
	b.Helper()
	f, path := newCardFile(b, "3101000000777777", "", 1000, 0)
	card := &recordingCard{SimCard: epursesim.NewSimCard(f, path)}
	if _, err := epurse.Select(card, epurse.DefaultAIDs()...); err != nil {
		b.Fatal(err)
	}
	for len(card.cmds) < 10 {
		if _, err := epurse.GetBalance(card, epurse.PurseEP); err != nil {
			b.Fatal(err)
		}
	}
	cmds := card.take()
	_, done := rawBaseline(b, card.SimCard, cmds, 0, n, latency)
	return pct(done, 50) / time.Duration(len(cmds))
}

// floorTaps is how many bare taps measure a per-APDU time: each waits for
// pcscd's next presence poll, and the median settles long before.
func floorTaps(n int) int { return min(n, 20) }

// hostTrip is one signed request to the host through c, the same way and
// the same handler as the taps' (20 asks for the card's credits, median).
func hostTrip(b *testing.B, c *hostsync.Client, card string) time.Duration {
	b.Helper()
	var d []time.Duration
	for range 20 {
		start := time.Now()
		if _, err := c.CardCredits(context.Background(), card); err != nil {
			b.Fatal(err)
		}
		d = append(d, time.Since(start))
	}
	return pct(d, 50)
}

// benchJournalRows is how many rows the journal benchmarks put in the terminal's
// journal before the taps: JOURNAL_ROWS (scripts/bench passes it), space
// separated, by default 0, 100,000 and 1,000,000 (a busy POS within the
// 180-day retention).
func benchJournalRows(b *testing.B) []int {
	b.Helper()
	s, ok := os.LookupEnv("JOURNAL_ROWS")
	if !ok {
		s = "0 100000 1000000"
	}
	var out []int
	for _, f := range strings.Fields(s) {
		n, err := strconv.Atoi(f)
		if err != nil || n < 0 {
			b.Fatalf("JOURNAL_ROWS=%q: %q is not a count of rows", s, f)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		b.Fatalf("JOURNAL_ROWS=%q names no row count", s)
	}
	return out
}

// fillTerminalJournal inserts n settled, acknowledged load and purchase rows
// into the terminal journal at path, in one transaction, as months of taps
// leave them: 10,000 cards, the first of them card (so its own history is in
// the journal too), created over the last 180 days.
func fillTerminalJournal(b *testing.B, path, card string, n int) {
	b.Helper()
	if n == 0 {
		return
	}
	db, err := sql.Open("sqlite3", offline.DSN(path))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	tx, err := db.Begin()
	if err != nil {
		b.Fatal(err)
	}
	defer tx.Rollback()
	st, err := tx.Prepare(`INSERT INTO journal (terminal, kind, state, card, purse, counter, balance_fen,
		amount_fen, credit_id, tac, time, created, updated, rev, acked_rev, completion_reported)
		VALUES (?, ?, 'done', ?, 'EP', ?, 1000, 100, ?, '0A0B0C0D', ?, ?, ?, 1, 1, 1)`)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	for i := range n {
		kind, credit := offline.KindPurchase, ""
		if i%4 == 0 {
			kind, credit = offline.KindLoad, fmt.Sprintf("B%d", i)
		}
		number := card
		if c := i % 10_000; c > 0 {
			number = fmt.Sprintf("3109%012d", c)
		}
		at := now.Add(-time.Duration(n-i) * 180 * 24 * time.Hour / time.Duration(n))
		if _, err := st.Exec(termID, kind, number, i%65536, credit, at.Format("20060102150405"), at.UnixNano(), at.UnixNano()); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
}

// emptyJournal keeps, per benchmark, the p50s of the rows=0 run, so a run
// with a full journal prints its ratio to them.
var emptyJournal sync.Map // benchmark name → [2]time.Duration{leave, done}

// reportJournal prints a full journal's p50s over the empty journal's, when
// the rows=0 run of the same benchmark came before in this process.
func reportJournal(b *testing.B, name string, rows int, f *leaveFigures) {
	leave, done := pct(f.toLeave, 50), pct(f.toDone, 50)
	if rows == 0 {
		emptyJournal.Store(name, [2]time.Duration{leave, done})
		return
	}
	v, ok := emptyJournal.Load(name)
	if !ok {
		return
	}
	empty := v.([2]time.Duration)
	if empty[0] > 0 && empty[1] > 0 {
		b.ReportMetric(float64(leave)/float64(empty[0]), "leave-p50/rows=0")
		b.ReportMetric(float64(done)/float64(empty[1]), "done-p50/rows=0")
	}
}
