package offline

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/cardd/cardd/internal/cardtest"
)

const cardA, cardB = "3101234567890001", "3101234567890002"

func loadRow(card, credit string) Row {
	return Row{Kind: KindLoad, Card: card, Purse: "EP", Counter: 5, BalanceFen: 1000, AmountFen: 5000,
		CreditID: credit, MAC2: "11223344", Time: "20250102030405"}
}

func mustBegin(t *testing.T, s *Store, r Row) Row {
	t.Helper()
	out, err := s.Begin(context.Background(), r)
	if err != nil {
		t.Fatalf("Begin(%+v): %v", r, err)
	}
	return out
}

func mustGet(t *testing.T, s *Store, id string) Row {
	t.Helper()
	r, err := s.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("Get(%s): %v", id, err)
	}
	return r
}

func ids(rows []Row) []string {
	var out []string
	for _, r := range rows {
		out = append(out, r.ID)
	}
	return out
}

func TestBeginFinish(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()

	r := mustBegin(t, s, loadRow(cardA, "c1"))
	if r.State != StateIntent || r.ID != testTerminal+"-1" || r.Seq != 1 || r.Created.IsZero() {
		t.Fatalf("Begin returned %+v", r)
	}
	if got := mustGet(t, s, r.ID); got.State != StateIntent || got.CreditID != "c1" || got.Acked || got.CompletionReported {
		t.Errorf("stored %+v", got)
	}

	// intent → unknown → done; then done is final.
	if err := s.Finish(ctx, r.ID, StateUnknown, "", "card removed during CREDIT FOR LOAD"); err != nil {
		t.Fatal(err)
	}
	if err := s.Finish(ctx, r.ID, StateDone, "DEADBEEF", "settled by GET TRANSACTION PROVE"); err != nil {
		t.Fatal(err)
	}
	got := mustGet(t, s, r.ID)
	if got.State != StateDone || got.TAC != "DEADBEEF" || got.Detail != "settled by GET TRANSACTION PROVE" {
		t.Errorf("after done: %+v", got)
	}
	// The same answer again is a no-op; any other change is ErrFinal.
	if err := s.Finish(ctx, r.ID, StateDone, "DEADBEEF", "again"); err != nil {
		t.Errorf("repeated Finish: %v", err)
	}
	if again := mustGet(t, s, r.ID); again != got {
		t.Errorf("no-op Finish changed the row:\n%+v\n%+v", again, got)
	}
	for _, tc := range []struct{ state, tac string }{
		{StateFailed, ""}, {StateUnknown, ""}, {StateDone, "00000000"}, {StateDone, ""},
	} {
		if err := s.Finish(ctx, r.ID, tc.state, tc.tac, ""); !errors.Is(err, ErrFinal) {
			t.Errorf("Finish(%s, %q) on a done row: %v, want ErrFinal", tc.state, tc.tac, err)
		}
	}

	// intent → failed, final too.
	f := mustBegin(t, s, Row{Kind: KindPurchase, Card: cardA, AmountFen: 300})
	if err := s.Finish(ctx, f.ID, StateFailed, "", "9401 insufficient balance"); err != nil {
		t.Fatal(err)
	}
	if err := s.Finish(ctx, f.ID, StateFailed, "", ""); err != nil {
		t.Errorf("repeated failed: %v", err)
	}
	if err := s.Finish(ctx, f.ID, StateDone, "01020304", ""); !errors.Is(err, ErrFinal) {
		t.Errorf("failed → done: %v, want ErrFinal", err)
	}

	// Bad targets and unknown rows.
	i := mustBegin(t, s, loadRow(cardA, "c2"))
	for _, st := range []string{StateIntent, "", "DONE", "ok"} {
		if err := s.Finish(ctx, i.ID, st, "", ""); err == nil {
			t.Errorf("Finish to %q accepted", st)
		}
	}
	for _, id := range []string{testTerminal + "-999", "000000000002-1", "nonsense", testTerminal + "-01", testTerminal + "-0", ""} {
		if err := s.Finish(ctx, id, StateDone, "01020304", ""); !errors.Is(err, ErrNotFound) {
			t.Errorf("Finish(%q): %v, want ErrNotFound", id, err)
		}
		if _, err := s.Get(ctx, id); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(%q): %v, want ErrNotFound", id, err)
		}
	}
}

func TestFinishNotApplied(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	r := mustBegin(t, s, loadRow(cardA, "c1"))
	if err := s.FinishNotApplied(ctx, r.ID, "", ""); err == nil {
		t.Error("empty proof accepted")
	}
	if err := s.FinishNotApplied(ctx, r.ID, `{"mac1":"AABBCCDD"}`, "counter unchanged"); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, s, r.ID); got.State != StateFailed || got.Proof != `{"mac1":"AABBCCDD"}` {
		t.Errorf("%+v", got)
	}
	if err := s.FinishNotApplied(ctx, r.ID, `{"mac1":"AABBCCDD"}`, ""); err != nil {
		t.Errorf("repeat: %v", err)
	}
	if err := s.FinishNotApplied(ctx, r.ID, `{"mac1":"00000000"}`, ""); !errors.Is(err, ErrFinal) {
		t.Errorf("other proof: %v, want ErrFinal", err)
	}

	// A load that failed without proof may get it later.
	r2 := mustBegin(t, s, loadRow(cardA, "c2"))
	if err := s.Finish(ctx, r2.ID, StateFailed, "", "9302 MAC2 rejected"); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishNotApplied(ctx, r2.ID, "probe", ""); err != nil {
		t.Errorf("attach proof: %v", err)
	}
	if got := mustGet(t, s, r2.ID); got.Proof != "probe" || got.Detail != "9302 MAC2 rejected" {
		t.Errorf("%+v", got)
	}

	// Proof is for loads only.
	p := mustBegin(t, s, Row{Kind: KindPurchase, Card: cardA, AmountFen: 1})
	if err := s.FinishNotApplied(ctx, p.ID, "probe", ""); err == nil {
		t.Error("proof accepted on a purchase")
	}
}

// TestFinishOutlivesCancel: the card answered; a tap deadline that expired
// meanwhile must not lose the answer.
func TestFinishOutlivesCancel(t *testing.T) {
	s, _ := newStore(t)
	r := mustBegin(t, s, loadRow(cardA, "c1"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Finish(ctx, r.ID, StateDone, "01020304", ""); err != nil {
		t.Fatalf("Finish with a cancelled ctx: %v", err)
	}
	if got := mustGet(t, s, r.ID); got.State != StateDone {
		t.Errorf("state %s", got.State)
	}
	// Begin, by contrast, gives up: nothing has been sent to the card.
	if _, err := s.Begin(ctx, loadRow(cardA, "c2")); !errors.Is(err, context.Canceled) {
		t.Errorf("Begin with a cancelled ctx: %v", err)
	}
}

func TestBeginValidation(t *testing.T) {
	s, _ := newStore(t)
	for _, tc := range []struct {
		name string
		row  Row
	}{
		{"no kind", Row{Card: cardA}},
		{"bad kind", Row{Kind: "refund", Card: cardA}},
		{"no card", Row{Kind: KindRead}},
		{"load not intent", func() Row { r := loadRow(cardA, "c"); r.State = StateDone; return r }()},
		{"purchase unknown", Row{Kind: KindPurchase, Card: cardA, AmountFen: 1, State: StateUnknown}},
		{"read unknown", Row{Kind: KindRead, Card: cardA, State: StateUnknown}},
		{"load without credit", func() Row { r := loadRow(cardA, ""); return r }()},
		{"load of nothing", func() Row { r := loadRow(cardA, "c"); r.AmountFen = 0; return r }()},
		{"negative amount", Row{Kind: KindAccess, Card: cardA, AmountFen: -1}},
		{"intent with TAC", Row{Kind: KindPurchase, Card: cardA, AmountFen: 1, TAC: "01020304"}},
		{"proof at begin", Row{Kind: KindRead, Card: cardA, Proof: "x"}},
		{"bad card time", Row{Kind: KindRead, Card: cardA, Time: "2025-01-02"}},
	} {
		_, err := s.Begin(context.Background(), tc.row)
		if err == nil {
			t.Errorf("%s: accepted", tc.name)
			continue
		}
		// Errors reach logs: the card number is masked in them.
		if strings.Contains(err.Error(), cardA) {
			t.Errorf("%s: error shows the full card number: %v", tc.name, err)
		}
	}
	// The defaults: money rows start as intent, records as done.
	if r := mustBegin(t, s, Row{Kind: KindPurchase, Card: cardA, AmountFen: 1}); r.State != StateIntent {
		t.Errorf("purchase began %s", r.State)
	}
	if r := mustBegin(t, s, Row{Kind: KindAccess, Card: cardA}); r.State != StateDone {
		t.Errorf("access began %s", r.State)
	}
	if r := mustBegin(t, s, Row{Kind: KindAccess, Card: cardA, State: StateFailed, Detail: "denied: lost"}); r.State != StateFailed {
		t.Errorf("access began %s", r.State)
	}
}

func TestUnresolved(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	a1 := mustBegin(t, s, loadRow(cardA, "c1"))                                 // stays intent
	b1 := mustBegin(t, s, loadRow(cardB, "c2"))                                 // other card
	a2 := mustBegin(t, s, Row{Kind: KindPurchase, Card: cardA, AmountFen: 100}) // → unknown
	a3 := mustBegin(t, s, Row{Kind: KindPurchase, Card: cardA, AmountFen: 200}) // → done
	a4 := mustBegin(t, s, loadRow(cardA, "c3"))                                 // → failed
	mustBegin(t, s, Row{Kind: KindRead, Card: cardA})                           // done record
	mustBegin(t, s, Row{Kind: KindAccess, Card: cardA, State: StateIntent})     // not money
	a5 := mustBegin(t, s, loadRow(cardA, "c4"))                                 // → unknown
	_ = b1
	for _, f := range []struct {
		id, state, tac string
	}{{a2.ID, StateUnknown, ""}, {a3.ID, StateDone, "01020304"}, {a4.ID, StateFailed, ""}, {a5.ID, StateUnknown, ""}} {
		if err := s.Finish(ctx, f.id, f.state, f.tac, ""); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Unresolved(ctx, cardA)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{a1.ID, a2.ID, a5.ID}; fmt.Sprint(ids(got)) != fmt.Sprint(want) {
		t.Errorf("Unresolved(A) = %v, want %v", ids(got), want)
	}
	if got, _ := s.Unresolved(ctx, "3101999999999999"); len(got) != 0 {
		t.Errorf("Unresolved(unknown card) = %v", ids(got))
	}
	if _, err := s.Unresolved(ctx, ""); err == nil {
		t.Error("Unresolved(\"\") accepted")
	}
}

func TestRecoverInterrupted(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	l := mustBegin(t, s, loadRow(cardA, "c1"))
	a := mustBegin(t, s, Row{Kind: KindAccess, Card: cardA, State: StateIntent})
	d := mustBegin(t, s, Row{Kind: KindRead, Card: cardA})
	n, err := s.RecoverInterrupted(ctx)
	if err != nil || n != 2 {
		t.Fatalf("RecoverInterrupted = %d, %v; want 2", n, err)
	}
	if r := mustGet(t, s, l.ID); r.State != StateUnknown || !strings.Contains(r.Detail, "interrupted") {
		t.Errorf("load: %+v", r)
	}
	if r := mustGet(t, s, a.ID); r.State != StateFailed {
		t.Errorf("access: %s", r.State)
	}
	if r := mustGet(t, s, d.ID); r.State != StateDone || r.Detail != "" {
		t.Errorf("done row touched: %+v", r)
	}
	// The unknown load can still be settled from the card.
	if err := s.Finish(ctx, l.ID, StateDone, "01020304", ""); err != nil {
		t.Error(err)
	}
	if n, _ := s.RecoverInterrupted(ctx); n != 0 {
		t.Errorf("second RecoverInterrupted settled %d", n)
	}
}

// TestIDsAcrossReopen: ids are terminal-seq, unique and increasing, and a
// number is never given twice, even after its row was purged.
func TestIDsAcrossReopen(t *testing.T) {
	s, path := newStore(t)
	ctx := context.Background()
	var last int64
	seen := map[string]bool{}
	check := func(r Row) {
		t.Helper()
		if r.Seq <= last || seen[r.ID] || r.ID != fmt.Sprintf("%s-%d", testTerminal, r.Seq) {
			t.Fatalf("row %s (seq %d) after seq %d", r.ID, r.Seq, last)
		}
		last, seen[r.ID] = r.Seq, true
	}
	for range 3 {
		check(mustBegin(t, s, Row{Kind: KindRead, Card: cardA}))
	}
	s = reopen(t, s, path)
	for range 3 {
		check(mustBegin(t, s, Row{Kind: KindRead, Card: cardA}))
	}
	// Ack and purge everything, the newest row included.
	if _, err := s.Unacked(ctx, 100); err != nil {
		t.Fatal(err)
	}
	var all []string
	for id := range seen {
		all = append(all, id)
	}
	if err := s.Ack(ctx, all); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Purge(ctx, time.Now().Add(time.Hour)); err != nil || n != 6 {
		t.Fatalf("Purge = %d, %v", n, err)
	}
	s = reopen(t, s, path)
	check(mustBegin(t, s, Row{Kind: KindRead, Card: cardA}))
	if last != 7 {
		t.Errorf("seq after purge and reopen = %d, want 7", last)
	}
}

func TestList(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	for i := range 5 {
		mustBegin(t, s, Row{Kind: KindRead, Card: cardA, BalanceFen: int64(i)})
	}
	p1, err := s.List(ctx, 0, 2)
	if err != nil {
		t.Fatal(err)
	}
	p2, _ := s.List(ctx, p1[len(p1)-1].Seq, 2)
	p3, _ := s.List(ctx, p2[len(p2)-1].Seq, 2)
	var seqs []int64
	for _, r := range append(append(p1, p2...), p3...) {
		seqs = append(seqs, r.Seq)
	}
	if fmt.Sprint(seqs) != "[5 4 3 2 1]" {
		t.Errorf("pages = %v", seqs)
	}
	if _, err := s.List(ctx, 0, 0); err == nil {
		t.Error("limit 0 accepted")
	}
}

func TestOutbox(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	r1 := mustBegin(t, s, Row{Kind: KindRead, Card: cardA})
	intent := mustBegin(t, s, loadRow(cardA, "c1"))
	r3 := mustBegin(t, s, Row{Kind: KindAccess, Card: cardB})
	r4 := mustBegin(t, s, Row{Kind: KindPurchase, Card: cardB, AmountFen: 100})
	if err := s.Finish(ctx, r4.ID, StateUnknown, "", ""); err != nil {
		t.Fatal(err)
	}
	if d, _ := s.QueueDepth(ctx); d != 3 {
		t.Errorf("QueueDepth = %d, want 3 (intent rows wait)", d)
	}
	if o, err := s.Owed(ctx); err != nil || o != (Owed{Rows: 4}) {
		t.Errorf("Owed = %v, %v; want rows 4 (the intent row too)", o, err)
	}
	got, err := s.Unacked(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{r1.ID, r3.ID}; fmt.Sprint(ids(got)) != fmt.Sprint(want) {
		t.Errorf("Unacked(2) = %v, want %v", ids(got), want)
	}
	all, _ := s.Unacked(ctx, 100)
	if want := []string{r1.ID, r3.ID, r4.ID}; fmt.Sprint(ids(all)) != fmt.Sprint(want) {
		t.Errorf("Unacked(100) = %v, want %v", ids(all), want)
	}

	// The host acks r1 and r4 (and an id it made up); twice.
	for range 2 {
		if err := s.Ack(ctx, []string{r1.ID, r4.ID, "000000000001-999", "garbage", intent.ID}); err != nil {
			t.Fatal(err)
		}
	}
	if d, _ := s.QueueDepth(ctx); d != 1 {
		t.Errorf("QueueDepth after ack = %d, want 1", d)
	}
	if o, _ := s.Owed(ctx); o != (Owed{Rows: 2}) {
		t.Errorf("Owed after ack = %v, want rows 2 (r3 and the intent row)", o)
	}
	if r := mustGet(t, s, r1.ID); !r.Acked {
		t.Error("r1 not acked")
	}
	if r := mustGet(t, s, intent.ID); r.Acked {
		t.Error("an intent row was acked")
	}

	// r4 was uploaded as unknown; settling it puts it back in the outbox.
	if err := s.Finish(ctx, r4.ID, StateDone, "01020304", ""); err != nil {
		t.Fatal(err)
	}
	got, _ = s.Unacked(ctx, 100)
	if want := []string{r3.ID, r4.ID}; fmt.Sprint(ids(got)) != fmt.Sprint(want) || got[1].State != StateDone {
		t.Errorf("after settling: %v", got)
	}

	// A row settled while its old version is on the wire stays owed after
	// the ack of that upload.
	r5 := mustBegin(t, s, loadRow(cardB, "c5"))
	if err := s.Finish(ctx, r5.ID, StateUnknown, "", ""); err != nil {
		t.Fatal(err)
	}
	wire, _ := s.Unacked(ctx, 100) // r3, r4(done), r5(unknown) go up
	if len(wire) != 3 || wire[2].State != StateUnknown {
		t.Fatalf("upload = %v", wire)
	}
	if err := s.Finish(ctx, r5.ID, StateDone, "0A0B0C0D", ""); err != nil { // the card came back meanwhile
		t.Fatal(err)
	}
	if err := s.Ack(ctx, ids(wire)); err != nil {
		t.Fatal(err)
	}
	got, _ = s.Unacked(ctx, 100)
	if len(got) != 1 || got[0].ID != r5.ID || got[0].State != StateDone || got[0].TAC != "0A0B0C0D" {
		t.Fatalf("after the race: %+v", got)
	}
	if err := s.Ack(ctx, []string{r5.ID}); err != nil {
		t.Fatal(err)
	}
	if d, _ := s.QueueDepth(ctx); d != 0 {
		t.Errorf("QueueDepth at the end = %d", d)
	}
	if o, _ := s.Owed(ctx); o != (Owed{Rows: 1, Completions: 1}) || o.Total() != 2 {
		t.Errorf("Owed at the end = %v, want rows 1 (the intent row, never sent) and completions 1 (r5's TAC)", o)
	}
	if err := s.Ack(ctx, nil); err != nil {
		t.Error(err)
	}
	if _, err := s.Unacked(ctx, 0); err == nil {
		t.Error("limit 0 accepted")
	}
}

func TestPurge(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	old := time.Now().Add(-200 * 24 * time.Hour)
	s.now = func() time.Time { return old }
	oldAcked := mustBegin(t, s, Row{Kind: KindRead, Card: cardA})
	oldUnacked := mustBegin(t, s, Row{Kind: KindRead, Card: cardA})
	oldUnknown := mustBegin(t, s, Row{Kind: KindPurchase, Card: cardA, AmountFen: 1})
	oldIntent := mustBegin(t, s, Row{Kind: KindPurchase, Card: cardA, AmountFen: 2})
	oldOwed := mustBegin(t, s, loadRow(cardA, "c1"))
	oldReported := mustBegin(t, s, loadRow(cardA, "c2"))
	s.now = time.Now
	newAcked := mustBegin(t, s, Row{Kind: KindRead, Card: cardA})
	if err := s.Finish(ctx, oldUnknown.ID, StateUnknown, "", ""); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{oldOwed.ID, oldReported.ID} {
		if err := s.Finish(ctx, id, StateDone, "01020304", ""); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.MarkCompletionReported(ctx, oldReported.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Unacked(ctx, 100); err != nil {
		t.Fatal(err)
	}
	if err := s.Ack(ctx, []string{oldAcked.ID, oldUnknown.ID, oldIntent.ID, oldOwed.ID, oldReported.ID, newAcked.ID}); err != nil {
		t.Fatal(err)
	}
	n, err := s.Purge(ctx, time.Now().Add(-180*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("Purge deleted %d, want 2", n)
	}
	for _, id := range []string{oldAcked.ID, oldReported.ID} {
		if _, err := s.Get(ctx, id); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s survived: %v", id, err)
		}
	}
	for _, id := range []string{oldUnacked.ID, oldUnknown.ID, oldIntent.ID, oldOwed.ID, newAcked.ID} {
		if _, err := s.Get(ctx, id); err != nil {
			t.Errorf("%s purged: %v", id, err)
		}
	}
}

func TestCompletions(t *testing.T) {
	s, path := newStore(t)
	ctx := context.Background()
	done := mustBegin(t, s, loadRow(cardA, "c1"))
	notApplied := mustBegin(t, s, loadRow(cardA, "c2"))
	failedBare := mustBegin(t, s, loadRow(cardA, "c3"))
	unknown := mustBegin(t, s, loadRow(cardA, "c4"))
	mustBegin(t, s, loadRow(cardA, "c5")) // intent
	purchase := mustBegin(t, s, Row{Kind: KindPurchase, Card: cardA, AmountFen: 1})
	for _, err := range []error{
		s.Finish(ctx, done.ID, StateDone, "01020304", ""),
		s.FinishNotApplied(ctx, notApplied.ID, "probe", ""),
		s.Finish(ctx, failedBare.ID, StateFailed, "", "host refused"),
		s.Finish(ctx, unknown.ID, StateUnknown, "", ""),
		s.Finish(ctx, purchase.ID, StateDone, "01020304", ""),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	s = reopen(t, s, path) // owed completions survive a restart
	got, err := s.CompletionsOwed(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{done.ID, notApplied.ID}; fmt.Sprint(ids(got)) != fmt.Sprint(want) {
		t.Errorf("CompletionsOwed = %v, want %v", ids(got), want)
	}
	if got, _ := s.CompletionsOwed(ctx, 1); len(got) != 1 || got[0].ID != done.ID {
		t.Errorf("limit 1: %v", ids(got))
	}
	for range 2 {
		if err := s.MarkCompletionReported(ctx, done.ID); err != nil {
			t.Fatal(err)
		}
	}
	if r := mustGet(t, s, done.ID); !r.CompletionReported {
		t.Error("not marked")
	}
	got, _ = s.CompletionsOwed(ctx, 10)
	if fmt.Sprint(ids(got)) != fmt.Sprint([]string{notApplied.ID}) {
		t.Errorf("after marking: %v", ids(got))
	}
	for _, id := range []string{failedBare.ID, unknown.ID, purchase.ID} {
		if err := s.MarkCompletionReported(ctx, id); err == nil {
			t.Errorf("marked %s, which owes nothing", id)
		}
	}
	if err := s.MarkCompletionReported(ctx, testTerminal+"-999"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown id: %v", err)
	}
}

func TestHostRow(t *testing.T) {
	s, _ := newStore(t)
	r := mustBegin(t, s, loadRow(cardA, "c1"))
	h := r.HostRow()
	want := time.Date(2025, 1, 2, 3, 4, 5, 0, time.Local).Format(time.RFC3339)
	if h.ID != r.ID || h.Kind != KindLoad || h.State != StateIntent || h.Card != cardA || h.Counter != 5 ||
		h.BalanceFen != 1000 || h.AmountFen != 5000 || h.CreditID != "c1" || h.Time != want {
		t.Errorf("HostRow = %+v", h)
	}
	rd := mustBegin(t, s, Row{Kind: KindRead, Card: cardA})
	if got := rd.HostRow().Time; got != rd.Created.Format(time.RFC3339) {
		t.Errorf("read row time %s", got)
	}
	// A purchase's PSAM terminal goes up: the host verifies its TAC with it.
	p := mustBegin(t, s, Row{Kind: KindPurchase, Card: cardA, Purse: "EP", AmountFen: 100, BalanceFen: 1000, PSAMTerminal: "0000000000AA"})
	if got := p.HostRow().PSAMTerminal; got != "0000000000AA" {
		t.Errorf("purchase HostRow PSAM terminal %q; want 0000000000AA", got)
	}
}

// TestRefusedByHost: a row the host refused in the version it was sent is
// kept with the reason, leaves the outbox and the queue depth, is listed for
// the operator and never purged; once it changes it is owed again.
func TestRefusedByHost(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	read := mustBegin(t, s, Row{Kind: KindRead, Card: cardA})
	load := mustBegin(t, s, loadRow(cardA, "c1"))
	if err := s.Finish(ctx, load.ID, StateUnknown, "", "no answer"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Unacked(ctx, 10); err != nil {
		t.Fatal(err)
	}
	// Not handed out yet: a refusal of a row never sent is ignored.
	late := mustBegin(t, s, Row{Kind: KindRead, Card: cardB})
	marked, err := s.RefusedByHost(ctx, []HostRefusal{{ID: read.ID, Reason: "bad_row: time"}, {ID: load.ID, Reason: "row_settled: differs"},
		{ID: late.ID, Reason: "x"}, {ID: "garbage", Reason: "x"}})
	if err != nil || len(marked) != 2 {
		t.Fatalf("marked %v (%v), want the two rows handed out", marked, err)
	}
	// Marked once: the same refusal again marks nothing new (logged once).
	if again, err := s.RefusedByHost(ctx, []HostRefusal{{ID: read.ID, Reason: "bad_row: time"}}); err != nil || len(again) != 0 {
		t.Fatalf("second refusal marked %v (%v)", again, err)
	}
	if r := mustGet(t, s, read.ID); r.HostRefused != "bad_row: time" || r.Acked {
		t.Fatalf("refused row: %+v", r)
	}
	if d, _ := s.QueueDepth(ctx); d != 1 {
		t.Fatalf("queue depth %d, want 1 (the row not sent yet)", d)
	}
	if got, _ := s.Unacked(ctx, 10); fmt.Sprint(ids(got)) != fmt.Sprint([]string{late.ID}) {
		t.Fatalf("Unacked %v, want only %s", ids(got), late.ID)
	}
	if got, err := s.HostRefusedRows(ctx, 10); err != nil || fmt.Sprint(ids(got)) != fmt.Sprint([]string{read.ID, load.ID}) {
		t.Fatalf("HostRefusedRows %v (%v)", ids(got), err)
	}
	if n, err := s.Purge(ctx, time.Now().Add(time.Hour)); err != nil || n != 0 {
		t.Fatalf("Purge deleted %d (%v): a refused row is kept", n, err)
	}
	// The unknown load settles on a later tap: its new version is owed.
	if err := s.Finish(ctx, load.ID, StateDone, "0A0B0C0D", "recovered"); err != nil {
		t.Fatal(err)
	}
	if r := mustGet(t, s, load.ID); r.HostRefused != "" {
		t.Fatalf("a changed row still shows the old refusal: %q", r.HostRefused)
	}
	if got, _ := s.Unacked(ctx, 10); fmt.Sprint(ids(got)) != fmt.Sprint([]string{load.ID, late.ID}) {
		t.Fatalf("Unacked after the change %v", ids(got))
	}
}

// TestBeginCardNumbers: the journal takes a card number of 8 to 20 digits
// (a T-Union card's 19) or a UID, as the host does, and refuses before
// anything is written a number the host would refuse: too short, too
// long, or dressed up with spaces, a sign or digits of another script,
// naming the reason with the number masked.
func TestBeginCardNumbers(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	for _, card := range []string{cardtest.TUnion, "31010000", "31049906000000000060", "uid:04A1B2C3"} {
		r := mustBegin(t, s, Row{Kind: KindPurchase, Card: card, Purse: "EP", AmountFen: 150})
		if got := mustGet(t, s, r.ID); got.Card != card {
			t.Errorf("row of card %s stored with card %q", card, got.Card)
		}
	}
	refused := maps.Clone(cardtest.Refused)
	refused[""] = "empty"
	for card, reason := range refused {
		_, err := s.Begin(ctx, Row{Kind: KindPurchase, Card: card, Purse: "EP", AmountFen: 150})
		if err == nil || !strings.Contains(err.Error(), reason) {
			t.Errorf("Begin of card %+q: %v, want %q", card, err, reason)
		} else if strings.Contains(err.Error(), strings.TrimSpace(card)) && card != "" {
			t.Errorf("Begin of card %+q: error shows the number: %v", card, err)
		}
	}
	if rows, err := s.List(ctx, 0, 100); err != nil || len(rows) != 4 {
		t.Fatalf("%d rows in the journal (%v), want the 4 good ones", len(rows), err)
	}
}
