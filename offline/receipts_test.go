package offline

import (
	"context"
	"errors"
	"testing"
	"time"
)

var topup = NewReceipt{Kind: "topup", Body: []byte(`{"amount_fen":5000}`)}

// A load's receipt is queued with its done row, once, and never for a load
// that did not happen.
func TestFinishPrintQueuesWithTheRow(t *testing.T) {
	s, path := newStore(t)
	ctx := context.Background()
	r := mustBegin(t, s, loadRow("3101000000000001", "c1"))
	if _, err := s.NextReceipt(ctx); !errors.Is(err, ErrNotFound) {
		t.Fatalf("NextReceipt before the load: %v, want ErrNotFound", err)
	}
	if err := s.FinishPrint(ctx, r.ID, StateDone, "AABBCCDD", "", topup); err != nil {
		t.Fatal(err)
	}
	// The same answer again (a caller unsure its Finish landed) adds nothing.
	if err := s.FinishPrint(ctx, r.ID, StateDone, "AABBCCDD", "", topup); err != nil {
		t.Fatal(err)
	}
	s = reopen(t, s, path)
	got, err := s.NextReceipt(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got.JournalID != r.ID || got.Kind != "topup" || string(got.Body) != string(topup.Body) || got.State != ReceiptQueued || got.Copy {
		t.Errorf("queued receipt %+v, want a queued topup original of row %s", got, r.ID)
	}
	if n, err := s.ReceiptsWaiting(ctx); err != nil || n != 1 {
		t.Errorf("ReceiptsWaiting = %d, %v; want 1", n, err)
	}

	// A load that failed or is unknown prints nothing.
	for _, state := range []string{StateFailed, StateUnknown} {
		r := mustBegin(t, s, loadRow("3101000000000002", "c-"+state))
		if err := s.FinishPrint(ctx, r.ID, state, "", "", topup); err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := s.ReceiptsWaiting(ctx); n != 1 {
		t.Errorf("%d receipts waiting after a failed and an unknown load, want still 1", n)
	}
	if err := s.FinishPrint(ctx, r.ID, StateDone, "AABBCCDD", "", NewReceipt{}); err == nil {
		t.Error("FinishPrint with an empty receipt: no error")
	}
}

// An unknown row later found done by recovery queues its receipt then.
func TestFinishPrintAfterUnknown(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	r := mustBegin(t, s, loadRow("3101000000000001", "c1"))
	if err := s.Finish(ctx, r.ID, StateUnknown, "", "torn"); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishPrint(ctx, r.ID, StateDone, "01020304", "recovered", topup); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.ReceiptsWaiting(ctx); n != 1 {
		t.Errorf("%d receipts waiting, want 1", n)
	}
}

// The worker's moves: queued → sending → printed, or back to queued; a
// receipt being sent when the process died is not sent again.
func TestReceiptMoves(t *testing.T) {
	s, path := newStore(t)
	ctx := context.Background()
	a, err := s.QueueReceipt(ctx, NewReceipt{Kind: "test", Body: []byte("{}")})
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.QueueReceipt(ctx, NewReceipt{Kind: "test", Body: []byte(`{"n":2}`)})
	if err != nil {
		t.Fatal(err)
	}
	next, err := s.NextReceipt(ctx)
	if err != nil || next.ID != a {
		t.Fatalf("NextReceipt = %d, %v; want the oldest, %d", next.ID, err, a)
	}
	if err := s.MarkPrinted(ctx, a); !errors.Is(err, ErrFinal) {
		t.Errorf("MarkPrinted of a queued receipt: %v, want ErrFinal", err)
	}
	if err := s.MarkSending(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkSending(ctx, a); !errors.Is(err, ErrFinal) {
		t.Errorf("MarkSending twice: %v, want ErrFinal", err)
	}
	if next, err := s.NextReceipt(ctx); err != nil || next.ID != b {
		t.Errorf("NextReceipt while %d is sending = %d, %v; want %d", a, next.ID, err, b)
	}
	if err := s.MarkNotPrinted(ctx, a, "paper out"); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetReceipt(ctx, a)
	if err != nil || got.State != ReceiptQueued || got.Attempts != 1 || got.LastError != "paper out" {
		t.Errorf("after a failed attempt: %+v, %v; want queued, 1 attempt, the reason", got, err)
	}
	if err := s.MarkSending(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkPrinted(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkSending(ctx, b); err != nil {
		t.Fatal(err)
	}
	// The process dies here: b may be on paper.
	s = reopen(t, s, path)
	if n, err := s.RecoverSending(ctx); err != nil || n != 1 {
		t.Fatalf("RecoverSending = %d, %v; want 1", n, err)
	}
	if got, _ := s.GetReceipt(ctx, b); got.State != ReceiptUnknown {
		t.Errorf("receipt being sent at the crash is %s, want unknown", got.State)
	}
	if _, err := s.NextReceipt(ctx); !errors.Is(err, ErrNotFound) {
		t.Errorf("NextReceipt after recovery: %v, want nothing to print", err)
	}
	if _, err := s.GetReceipt(ctx, 999); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetReceipt(999): %v, want ErrNotFound", err)
	}
}

// Reprint queues a copy; the last receipt is the newest original.
func TestReprintLast(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	if _, err := s.LastReceipt(ctx); !errors.Is(err, ErrNotFound) {
		t.Fatalf("LastReceipt of an empty queue: %v, want ErrNotFound", err)
	}
	r := mustBegin(t, s, loadRow("3101000000000001", "c1"))
	if err := s.FinishPrint(ctx, r.ID, StateDone, "AABBCCDD", "", topup); err != nil {
		t.Fatal(err)
	}
	last, err := s.LastReceipt(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.Reprint(ctx, last.ID)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := s.GetReceipt(ctx, c)
	if err != nil || !cp.Copy || cp.JournalID != r.ID || string(cp.Body) != string(topup.Body) || cp.State != ReceiptQueued {
		t.Errorf("copy %+v, %v; want a queued copy of row %s's receipt", cp, err, r.ID)
	}
	// A copy is not "the last receipt": reprinting twice gives two copies
	// of the same original.
	if again, _ := s.LastReceipt(ctx); again.ID != last.ID {
		t.Errorf("LastReceipt after a reprint = %d, want the original %d", again.ID, last.ID)
	}
	if _, err := s.Reprint(ctx, 999); !errors.Is(err, ErrNotFound) {
		t.Errorf("Reprint(999): %v, want ErrNotFound", err)
	}
}

func TestPurgeReceiptsKeepsQueued(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	old := time.Now()
	a, _ := s.QueueReceipt(ctx, NewReceipt{Kind: "test", Body: []byte("{}")})
	b, _ := s.QueueReceipt(ctx, NewReceipt{Kind: "test", Body: []byte("{}")})
	if err := s.MarkSending(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkPrinted(ctx, a); err != nil {
		t.Fatal(err)
	}
	n, err := s.PurgeReceipts(ctx, old.Add(time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("PurgeReceipts = %d, %v; want the printed one", n, err)
	}
	if _, err := s.GetReceipt(ctx, b); err != nil {
		t.Errorf("queued receipt purged: %v", err)
	}
}
