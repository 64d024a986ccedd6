package offline

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

func creditIDs(cs []Credit) string {
	var out []string
	for _, c := range cs {
		out = append(out, fmt.Sprintf("%s:%d", c.ID, c.AmountFen))
	}
	return strings.Join(out, " ")
}

func TestCredits(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	t0 := time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)
	if err := s.PutCredits(ctx, []Credit{
		{ID: "c3", Card: cardA, AmountFen: 300, Created: t0.Add(3 * time.Minute)},
		{ID: "c1", Card: cardA, AmountFen: 100, Note: "wechat", Created: t0.Add(time.Minute)},
		{ID: "c2", Card: cardA, AmountFen: 200, Created: t0.Add(2 * time.Minute)},
		{ID: "b1", Card: cardB, AmountFen: 900, Created: t0},
	}); err != nil {
		t.Fatal(err)
	}
	got, err := s.CreditsFor(ctx, cardA)
	if err != nil {
		t.Fatal(err)
	}
	if s := creditIDs(got); s != "c1:100 c2:200 c3:300" {
		t.Errorf("CreditsFor(A) = %s", s)
	}
	if got[0].Note != "wechat" || !got[0].Created.Equal(t0.Add(time.Minute)) || got[0].Card != cardA {
		t.Errorf("c1 = %+v", got[0])
	}
	// Upsert: c2 changes amount, nothing duplicates.
	if err := s.PutCredits(ctx, []Credit{{ID: "c2", Card: cardA, AmountFen: 250, Created: t0.Add(2 * time.Minute)}}); err != nil {
		t.Fatal(err)
	}
	if err := s.DropCredits(ctx, []string{"c3", "nope"}); err != nil {
		t.Fatal(err)
	}
	got, _ = s.CreditsFor(ctx, cardA)
	if s := creditIDs(got); s != "c1:100 c2:250" {
		t.Errorf("after upsert and drop: %s", s)
	}
	// A bad credit spoils the whole batch.
	if err := s.PutCredits(ctx, []Credit{{ID: "c9", Card: cardA, AmountFen: 1}, {ID: "c10", Card: cardA, AmountFen: 0}}); err == nil {
		t.Error("zero credit accepted")
	}
	got, _ = s.CreditsFor(ctx, cardA)
	if s := creditIDs(got); s != "c1:100 c2:250" {
		t.Errorf("after a refused batch: %s", s)
	}

	// A credit with a load in flight, in doubt or done is not offered; a
	// failed load frees it again.
	l := mustBegin(t, s, loadRow(cardA, "c1"))
	if got, _ := s.CreditsFor(ctx, cardA); creditIDs(got) != "c2:250" {
		t.Errorf("with c1 in intent: %s", creditIDs(got))
	}
	if err := s.Finish(ctx, l.ID, StateFailed, "", ""); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.CreditsFor(ctx, cardA); creditIDs(got) != "c1:100 c2:250" {
		t.Errorf("after c1 failed: %s", creditIDs(got))
	}
	l2 := mustBegin(t, s, loadRow(cardA, "c1"))
	if err := s.Finish(ctx, l2.ID, StateDone, "01020304", ""); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.CreditsFor(ctx, cardA); creditIDs(got) != "c2:250" {
		t.Errorf("after c1 done: %s", creditIDs(got))
	}
	if got, _ := s.CreditsFor(ctx, cardB); creditIDs(got) != "b1:900" {
		t.Errorf("CreditsFor(B) = %s", creditIDs(got))
	}
}

func TestDenyList(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	if d, _, err := s.Denied(ctx, cardA); err != nil || d {
		t.Fatalf("Denied before = %v, %v", d, err)
	}
	if err := s.SetDenied(ctx, cardA, true, "lost"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetDenied(ctx, cardA, true, "stolen"); err != nil {
		t.Fatal(err)
	}
	if d, why, _ := s.Denied(ctx, cardA); !d || why != "stolen" {
		t.Errorf("Denied = %v %q", d, why)
	}
	if d, _, _ := s.Denied(ctx, cardB); d {
		t.Error("B denied")
	}
	for range 2 {
		if err := s.SetDenied(ctx, cardA, false, ""); err != nil {
			t.Fatal(err)
		}
	}
	if d, _, _ := s.Denied(ctx, cardA); d {
		t.Error("still denied after lifting")
	}
	if err := s.SetDenied(ctx, "", true, "x"); err == nil {
		t.Error("empty card denied")
	}
}

func TestCursor(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	if c, err := s.Cursor(ctx, PullCursor); err != nil || c != "" {
		t.Fatalf("new cursor = %q, %v", c, err)
	}
	for _, v := range []string{"a", "b"} {
		if err := s.SetCursor(ctx, PullCursor, v); err != nil {
			t.Fatal(err)
		}
	}
	if c, _ := s.Cursor(ctx, PullCursor); c != "b" {
		t.Errorf("cursor = %q", c)
	}
	if c, _ := s.Cursor(ctx, "other"); c != "" {
		t.Errorf("other cursor = %q", c)
	}
	if err := s.SetCursor(ctx, "", "x"); err == nil {
		t.Error("unnamed cursor accepted")
	}
}

// TestCursorUpdated: when a cursor was last set, zero when never (a tap
// trusts the cached credits by the pull cursor's age).
func TestCursorUpdated(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	if at, err := s.CursorUpdated(ctx, PullCursor); err != nil || !at.IsZero() {
		t.Fatalf("never pulled: %v, %v; want zero", at, err)
	}
	before := time.Now()
	if err := s.ApplyPull(ctx, nil, nil, nil, "c1"); err != nil {
		t.Fatal(err)
	}
	at, err := s.CursorUpdated(ctx, PullCursor)
	if err != nil || at.Before(before.Add(-time.Second)) || at.After(time.Now().Add(time.Second)) {
		t.Fatalf("pulled at %v: %v, %v", before, at, err)
	}
	// An empty answer (a held pull with nothing new) leaves the cursor
	// where it is and still counts as a pull: the cache is fresh.
	later := at.Add(time.Minute)
	s.now = func() time.Time { return later }
	if err := s.ApplyPull(ctx, nil, nil, nil, "c1"); err != nil {
		t.Fatal(err)
	}
	if again, err := s.CursorUpdated(ctx, PullCursor); err != nil || !again.Equal(later) {
		t.Fatalf("after an empty pull at the same cursor: updated %v (%v), want %v", again, err, later)
	}
}

func TestApplyPull(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	if err := s.ApplyPull(ctx, []Credit{{ID: "a1", Card: cardA, AmountFen: 100}}, nil,
		[]DenyChange{{Card: cardB, Denied: true, Reason: "lost"}}, "c1"); err != nil {
		t.Fatal(err)
	}
	state := func() string {
		a, _ := s.CreditsFor(ctx, cardA)
		b, _ := s.CreditsFor(ctx, cardB)
		da, _, _ := s.Denied(ctx, cardA)
		db, _, _ := s.Denied(ctx, cardB)
		cur, _ := s.Cursor(ctx, PullCursor)
		return fmt.Sprintf("A[%s] B[%s] deniedA=%v deniedB=%v cursor=%s", creditIDs(a), creditIDs(b), da, db, cur)
	}
	before := state()
	if want := "A[a1:100] B[] deniedA=false deniedB=true cursor=c1"; before != want {
		t.Fatalf("after first pull: %s, want %s", before, want)
	}

	// The deny part fails after the credits were written inside the
	// transaction: nothing of the pull may land, the cursor stays.
	err := s.ApplyPull(ctx,
		[]Credit{{ID: "a2", Card: cardA, AmountFen: 200}, {ID: "b1", Card: cardB, AmountFen: 300}},
		[]string{"a1"},
		[]DenyChange{{Card: cardA, Denied: true, Reason: "lost"}, {Card: cardB, Denied: false}, {Card: "", Denied: true}},
		"c2")
	if err == nil {
		t.Fatal("pull with an empty card applied")
	}
	if after := state(); after != before {
		t.Errorf("a failed pull changed the store:\n before %s\n after  %s", before, after)
	}

	// The same pull without the bad change lands whole.
	if err := s.ApplyPull(ctx,
		[]Credit{{ID: "a2", Card: cardA, AmountFen: 200}, {ID: "b1", Card: cardB, AmountFen: 300}},
		[]string{"a1"},
		[]DenyChange{{Card: cardA, Denied: true, Reason: "lost"}, {Card: cardB, Denied: false}},
		"c2"); err != nil {
		t.Fatal(err)
	}
	if got, want := state(), "A[a2:200] B[b1:300] deniedA=true deniedB=false cursor=c2"; got != want {
		t.Errorf("after second pull: %s, want %s", got, want)
	}
}

func TestNextSerial(t *testing.T) {
	s, path := newStore(t)
	ctx := context.Background()
	var last uint32
	for i := range 6 {
		if i == 3 {
			s = reopen(t, s, path)
		}
		n, err := s.NextSerial(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n <= last {
			t.Fatalf("serial %d after %d", n, last)
		}
		last = n
	}
	if last != 6 {
		t.Errorf("sixth serial = %d", last)
	}
	// At the end of 4 bytes it wraps to 1, never 0.
	if _, err := s.db.Exec(`UPDATE counters SET value = 4294967294 WHERE name = 'serial'`); err != nil {
		t.Fatal(err)
	}
	for _, want := range []uint32{0xFFFFFFFF, 1, 2} {
		if n, err := s.NextSerial(ctx); err != nil || n != want {
			t.Errorf("NextSerial = %d, %v; want %d", n, err, want)
		}
	}
}

// TestCardClasses: a pull page's class changes land in order with its
// cursor; a clearing removes the class; a bad change spoils the page,
// cursor included.
func TestCardClasses(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	page := PullPage{Classes: []ClassChange{{cardA, "student"}, {cardB, "visitor"}, {cardA, "staff"}}, Cursor: "3"}
	if err := s.ApplyPage(ctx, page); err != nil {
		t.Fatal(err)
	}
	for card, want := range map[string]string{cardA: "staff", cardB: "visitor", "3101000000000099": ""} {
		if got, err := s.CardClass(ctx, card); err != nil || got != want {
			t.Errorf("class of %s: %q, %v; want %q", card, got, err, want)
		}
	}
	if err := s.ApplyPage(ctx, PullPage{Classes: []ClassChange{{cardB, ""}, {"", "staff"}}, Cursor: "5"}); err == nil {
		t.Fatal("a class change with no card applied")
	}
	if got, _ := s.CardClass(ctx, cardB); got != "visitor" {
		t.Errorf("after a refused page: class of B %q, want visitor still", got)
	}
	if c, _ := s.Cursor(ctx, PullCursor); c != "3" {
		t.Errorf("after a refused page: cursor %q, want 3", c)
	}
	if err := s.ApplyPage(ctx, PullPage{Classes: []ClassChange{{cardB, ""}}, Cursor: "4"}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.CardClass(ctx, cardB); got != "" {
		t.Errorf("cleared: class of B %q", got)
	}
}
