package offline

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/mattn/go-sqlite3"

	"github.com/cardd/cardd/internal/queryplan"
)

var (
	recorder         = &queryplan.Recorder{SQLiteDriver: sqlite3.SQLiteDriver{ConnectHook: checkConn}}
	registerRecorder sync.Once
)

// tapStoreCalls are the store calls a tap makes, in the order a load, a
// purchase, a door decision and a read make them (tap/load.go,
// tap/purchase.go, tap/m1load.go, tap/door.go, tap/runner.go). Each must
// cost the same with a million rows in the journal as with none: a tap
// waits for them with the card in the field.
var tapStoreCalls = []struct {
	name string
	call func(ctx context.Context, s *Store, card string) error
}{
	{"Denied", func(ctx context.Context, s *Store, card string) error { _, _, err := s.Denied(ctx, card); return err }},
	{"CloseOf", func(ctx context.Context, s *Store, card string) error { _, err := s.CloseOf(ctx, card); return err }},
	{"ClosingRow", func(ctx context.Context, s *Store, card string) error {
		_, _, err := s.ClosingRow(ctx, "close-"+card)
		return err
	}},
	{"Unresolved", func(ctx context.Context, s *Store, card string) error { _, err := s.Unresolved(ctx, card); return err }},
	{"CompletionsOwedOf", func(ctx context.Context, s *Store, card string) error {
		_, err := s.CompletionsOwedOf(ctx, card)
		return err
	}},
	{"CreditsFor", func(ctx context.Context, s *Store, card string) error { _, err := s.CreditsFor(ctx, card); return err }},
	{"CursorUpdated", func(ctx context.Context, s *Store, card string) error {
		_, err := s.CursorUpdated(ctx, PullCursor)
		return err
	}},
	{"PurchasesOn", func(ctx context.Context, s *Store, card string) error {
		_, err := s.PurchasesOn(ctx, card, "20261203")
		return err
	}},
	{"NextSerial", func(ctx context.Context, s *Store, card string) error { _, err := s.NextSerial(ctx); return err }},
	{"AccessList", func(ctx context.Context, s *Store, card string) error { _, _, err := s.AccessList(ctx); return err }},
	{"LoadsOfCredit", func(ctx context.Context, s *Store, card string) error {
		_, err := s.LoadsOfCredit(ctx, "C-"+card)
		return err
	}},
	{"load: Begin, Finish, MarkCompletionReported, Get", func(ctx context.Context, s *Store, card string) error {
		r, err := s.Begin(ctx, Row{Kind: KindLoad, Card: card, Purse: "EP", AmountFen: 100, CreditID: "C-" + card, Time: "20261203120000"})
		if err != nil {
			return err
		}
		if err := s.Finish(ctx, r.ID, StateDone, "0A0B0C0D", ""); err != nil {
			return err
		}
		if err := s.MarkCompletionReported(ctx, r.ID); err != nil {
			return err
		}
		_, err = s.Get(ctx, r.ID)
		return err
	}},
	{"load not applied: Begin, FinishNotApplied", func(ctx context.Context, s *Store, card string) error {
		r, err := s.Begin(ctx, Row{Kind: KindLoad, Card: card, Purse: "EP", AmountFen: 100, CreditID: "N-" + card, Time: "20261203120000"})
		if err != nil {
			return err
		}
		return s.FinishNotApplied(ctx, r.ID, "proof", "not applied")
	}},
	{"M1 load: Begin, Finish unknown, SettledElsewhere", func(ctx context.Context, s *Store, card string) error {
		r, err := s.Begin(ctx, Row{Kind: KindLoad, Card: card, AmountFen: 100, CreditID: "M-" + card, Time: "20261203120000"})
		if err != nil {
			return err
		}
		if err := s.Finish(ctx, r.ID, StateUnknown, "", "no answer"); err != nil {
			return err
		}
		return s.SettledElsewhere(ctx, r.ID)
	}},
	{"purchase: Begin, FinishPrint", func(ctx context.Context, s *Store, card string) error {
		r, err := s.Begin(ctx, Row{Kind: KindPurchase, Card: card, Purse: "EP", AmountFen: 100, Time: "20261203120000"})
		if err != nil {
			return err
		}
		return s.FinishPrint(ctx, r.ID, StateDone, "0A0B0C0D", "", NewReceipt{Kind: "sale", Body: []byte("receipt")})
	}},
	{"door and read rows: Begin", func(ctx context.Context, s *Store, card string) error {
		if _, err := s.Begin(ctx, Row{Kind: KindAccess, Card: card, Detail: "open"}); err != nil {
			return err
		}
		_, err := s.Begin(ctx, Row{Kind: KindRead, Card: card})
		return err
	}},
}

// TestTapQueriesSearchAnIndex asks SQLite for the plan of every statement a
// tap sends and fails on a full scan of a table: a tap must not get slower as
// the journal grows (issue 13: Unresolved's OR did not imply its partial
// index's condition and scanned the journal, 103 ms a tap at 1,000,000 rows).
func TestTapQueriesSearchAnIndex(t *testing.T) {
	registerRecorder.Do(func() { sql.Register("cardd-offline-recorded", recorder) })
	path := filepath.Join(t.TempDir(), "cardd.db")
	s, err := openDriver("cardd-offline-recorded", DSN(path))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.terminal = testTerminal
	ctx := context.Background()
	// Some rows of every kind and state, so the journal is not empty when
	// the plans are asked for.
	for i := range 50 {
		card := fmt.Sprintf("3104%015d", i%7)
		for _, c := range tapStoreCalls {
			if err := c.call(ctx, s, card); err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
		}
	}
	for _, c := range tapStoreCalls {
		recorder.Take()
		if err := c.call(ctx, s, "3104000000000000009"); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		stmts := recorder.Take()
		if len(stmts) == 0 {
			t.Fatalf("%s: no statement recorded: the recording driver is not in use", c.name)
		}
		for _, q := range stmts {
			scan, err := queryplan.FullScans(s.db, q)
			if err != nil {
				t.Fatal(err)
			}
			if len(scan) > 0 {
				t.Errorf("%s: %s\n\tscans: %s", c.name, queryplan.OneLine(q), strings.Join(scan, "; "))
			}
		}
	}
}

// BenchmarkTapReads times the store reads of one load and one purchase tap
// (Denied, Unresolved, CompletionsOwedOf, CreditsFor, PurchasesOn) with 0,
// 100,000 and 1,000,000 settled rows in the journal: a busy POS holds the
// last within the 180-day retention, and the figure should not move.
func BenchmarkTapReads(b *testing.B) {
	for _, rows := range []int{0, 100_000, 1_000_000} {
		b.Run(fmt.Sprintf("rows=%d", rows), func(b *testing.B) {
			s, _ := newStore(b)
			ctx := context.Background()
			fillJournal(b, s, rows)
			const card = "3104000000000000009"
			b.ResetTimer()
			for b.Loop() {
				for _, c := range tapStoreCalls[:5] {
					if err := c.call(ctx, s, card); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// fillJournal inserts n settled, acknowledged load and purchase rows of
// 10,000 cards in one transaction, as months of taps leave them.
func fillJournal(b *testing.B, s *Store, n int) {
	b.Helper()
	if n == 0 {
		return
	}
	tx, err := s.db.Begin()
	if err != nil {
		b.Fatal(err)
	}
	st, err := tx.Prepare(`INSERT INTO journal (terminal, kind, state, card, purse, counter, balance_fen,
		amount_fen, credit_id, tac, time, created, updated, rev, acked_rev, completion_reported)
		VALUES (?, ?, 'done', ?, 'EP', ?, 1000, 100, ?, '0A0B0C0D', '20260601120000', 1, 1, 1, 1, 1)`)
	if err != nil {
		b.Fatal(err)
	}
	for i := range n {
		kind, credit := KindPurchase, ""
		if i%4 == 0 {
			kind, credit = KindLoad, fmt.Sprintf("C%d", i)
		}
		if _, err := st.Exec(s.terminal, kind, fmt.Sprintf("3104%015d", i%10_000), i%65536, credit); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
}
