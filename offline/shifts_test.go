package offline

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/internal/queryplan"
)

// sale journals a purchase of fen with facts f and finishes it in state.
func sale(t *testing.T, s *Store, card string, fen int64, f SaleFacts, state string) Row {
	t.Helper()
	r := mustBegin(t, s, Row{Kind: KindPurchase, Card: card, Purse: "EP", Counter: 1, BalanceFen: 100000,
		AmountFen: fen, Time: "20261204120000", Sale: f})
	if state == StateIntent {
		return r
	}
	tac := ""
	if state == StateDone {
		tac = "01020304"
	}
	if err := s.Finish(context.Background(), r.ID, state, tac, ""); err != nil {
		t.Fatal(err)
	}
	return mustGet(t, s, r.ID)
}

// A close-out totals exactly the shift's purchase rows: per meal period and
// class, split remainders, PIN overrides, the voids it is given, and the
// rows in doubt said apart; sales before the shift and after it are in no
// shift.
func TestShiftCloseSums(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	if _, err := s.CloseShift(ctx, CloseOptions{}); !errors.Is(err, ErrNoShift) {
		t.Fatalf("close with none open: %v, want ErrNoShift", err)
	}
	before := sale(t, s, cardA, 900, SaleFacts{Period: "lunch", Class: "student"}, StateDone)
	if before.Sale.Shift != 0 {
		t.Errorf("a sale with no shift open is in shift %d", before.Sale.Shift)
	}
	if _, err := s.OpenShift(ctx, ""); err == nil {
		t.Error("a shift opened with no cashier")
	}
	sh, err := s.OpenShift(ctx, "C007")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.OpenShift(ctx, "C008"); !errors.Is(err, ErrShiftOpen) {
		t.Fatalf("second open: %v, want ErrShiftOpen", err)
	}
	if cur, ok, err := s.CurrentShift(ctx); err != nil || !ok || cur.ID != sh.ID || cur.Cashier != "C007" {
		t.Fatalf("CurrentShift = %+v %v %v", cur, ok, err)
	}
	r := sale(t, s, cardA, 650, SaleFacts{Period: "lunch", Class: "student"}, StateDone)
	if r.Sale.Shift != sh.ID || r.Sale.Period != "lunch" || r.Sale.Class != "student" {
		t.Errorf("stored sale facts %+v, want lunch/student in shift %d", r.Sale, sh.ID)
	}
	done := []string{r.ID}
	for _, x := range []struct {
		card string
		fen  int64
		f    SaleFacts
	}{
		{cardB, 650, SaleFacts{Period: "lunch", Class: "student"}},
		{cardA, 1200, SaleFacts{Period: "lunch", Class: "staff"}},
		{cardB, 1840, SaleFacts{Period: "dinner", Class: "staff", CollectFen: 1160}},
		{cardA, 25000, SaleFacts{Period: "dinner", PINVerified: true}},
	} {
		done = append(done, sale(t, s, x.card, x.fen, x.f, StateDone).ID)
	}
	sale(t, s, cardB, 300, SaleFacts{Period: "dinner", Class: "staff"}, StateFailed)
	sale(t, s, cardA, 400, SaleFacts{Period: "dinner", Class: "staff"}, StateUnknown)
	sale(t, s, cardB, 500, SaleFacts{Period: "dinner", Class: "student", CollectFen: 100, PINVerified: true}, StateIntent)
	// Rows that are not purchases are never in a summary.
	mustBegin(t, s, loadRow(cardA, "c1"))

	var gotFrom, gotTo time.Time
	var printed ShiftSummary
	sum, err := s.CloseShift(ctx, CloseOptions{
		Voids: func(_ context.Context, from, to time.Time) (int, int64, error) {
			gotFrom, gotTo = from, to
			return 1, 650, nil
		},
		Receipt: func(sum ShiftSummary) (NewReceipt, error) {
			printed = sum
			b, err := json.Marshal(sum)
			return NewReceipt{Kind: "shift", Body: b}, err
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := ShiftSummary{Shift: sh.ID, Cashier: "C007", Opened: sh.Opened, Closed: sum.Closed, ShiftTotals: hostapi.ShiftTotals{
		Count: 5, SumFen: 650 + 650 + 1200 + 1840 + 25000,
		Groups: []ShiftGroup{
			{Period: "dinner", Class: "", Count: 1, SumFen: 25000},
			{Period: "dinner", Class: "staff", Count: 1, SumFen: 1840},
			{Period: "lunch", Class: "staff", Count: 1, SumFen: 1200},
			{Period: "lunch", Class: "student", Count: 2, SumFen: 1300},
		},
		SplitCount: 1, SplitCardFen: 1840, SplitCollectFen: 1160, PINCount: 1, PINFen: 25000,
		VoidCount: 1, VoidFen: 650, InDoubtCount: 2, InDoubtFen: 900, FailedCount: 1}}
	if !reflect.DeepEqual(sum, want) {
		t.Errorf("summary\n got %+v\nwant %+v", sum, want)
	}
	if !reflect.DeepEqual(printed, sum) {
		t.Errorf("receipt made of %+v, the close returned %+v", printed, sum)
	}
	if !gotFrom.Equal(sh.Opened) || !gotTo.Equal(sum.Closed) || !sum.Closed.After(sh.Opened) {
		t.Errorf("voids asked for [%v, %v), shift %v to %v", gotFrom, gotTo, sh.Opened, sum.Closed)
	}
	if rc, err := s.LastReceipt(ctx); err != nil || rc.Kind != "shift" || rc.State != ReceiptQueued {
		t.Errorf("queued receipt %+v %v, want the shift's, queued", rc, err)
	}
	if _, err := s.CloseShift(ctx, CloseOptions{}); !errors.Is(err, ErrNoShift) {
		t.Errorf("second close: %v, want ErrNoShift", err)
	}
	after := sale(t, s, cardA, 700, SaleFacts{Period: "dinner"}, StateDone)
	if after.Sale.Shift != 0 {
		t.Errorf("a sale after the close is in shift %d", after.Sale.Shift)
	}

	// The closed shift keeps its totals, and is owed to the host until
	// acknowledged.
	unsent, err := s.UnsentShifts(ctx, 10)
	if err != nil || len(unsent) != 1 || unsent[0].ID != sh.ID || unsent[0].Summary == nil {
		t.Fatalf("UnsentShifts = %+v %v", unsent, err)
	}
	if !reflect.DeepEqual(unsent[0].Rows, done) {
		t.Errorf("the shift's rows %q, want the sales done %q", unsent[0].Rows, done)
	}
	if got := *unsent[0].Summary; got.Count != want.Count || got.SumFen != want.SumFen || !got.Closed.Equal(sum.Closed) {
		t.Errorf("stored summary %+v", got)
	}
	if err := s.ShiftUploaded(ctx, sh.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.ShiftUploaded(ctx, sh.ID+1); !errors.Is(err, ErrNotFound) {
		t.Errorf("ShiftUploaded of a shift never closed: %v, want ErrNotFound", err)
	}
	if err := s.ShiftUploaded(ctx, sh.ID); err != nil {
		t.Errorf("second ShiftUploaded: %v", err)
	}
	if unsent, err := s.UnsentShifts(ctx, 10); err != nil || len(unsent) != 0 {
		t.Errorf("UnsentShifts after the ack = %+v %v", unsent, err)
	}
	// A second shift starts at zero.
	sh2, err := s.OpenShift(ctx, "C008")
	if err != nil {
		t.Fatal(err)
	}
	if tot, err := s.ShiftTotals(ctx, sh2.ID); err != nil || tot.Count != 0 || tot.SumFen != 0 || len(tot.Groups) != 0 {
		t.Errorf("new shift's totals %+v %v", tot, err)
	}
}

// A close whose receipt cannot be made closes nothing: the shift stays open
// and no receipt is queued.
func TestShiftCloseReceiptFails(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	sh, err := s.OpenShift(ctx, "C1")
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.CloseShift(ctx, CloseOptions{Receipt: func(ShiftSummary) (NewReceipt, error) {
		return NewReceipt{}, errors.New("no printer font")
	}})
	if err == nil {
		t.Fatal("close succeeded without its receipt")
	}
	if cur, ok, err := s.CurrentShift(ctx); err != nil || !ok || cur.ID != sh.ID {
		t.Errorf("after a failed close: %+v %v %v, want shift %d still open", cur, ok, err, sh.ID)
	}
	if _, err := s.LastReceipt(ctx); !errors.Is(err, ErrNotFound) {
		t.Errorf("a failed close queued a receipt: %v", err)
	}
}

// Sale facts belong to purchase rows only.
func TestSaleFactsPurchaseOnly(t *testing.T) {
	s, _ := newStore(t)
	r := loadRow(cardA, "c1")
	r.Sale.Period = "lunch"
	if _, err := s.Begin(context.Background(), r); err == nil {
		t.Error("a load row took a meal period")
	}
	p := Row{Kind: KindPurchase, Card: cardA, AmountFen: 100, Sale: SaleFacts{CollectFen: -1}}
	if _, err := s.Begin(context.Background(), p); err == nil {
		t.Error("a negative split rest was journaled")
	}
}

// TestShiftCloseSearchesAnIndex: the close reads only its shift's rows,
// through an index: it runs in a write transaction that taps wait for,
// and the journal holds months of rows.
func TestShiftCloseSearchesAnIndex(t *testing.T) {
	registerRecorder.Do(func() { sql.Register("cardd-offline-recorded", recorder) })
	s, err := openDriver("cardd-offline-recorded", DSN(filepath.Join(t.TempDir(), "cardd.db")))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.terminal = testTerminal
	ctx := context.Background()
	for i := range 20 {
		sale(t, s, cardA, int64(100+i), SaleFacts{Period: "lunch"}, StateDone)
	}
	sh, err := s.OpenShift(ctx, "C1")
	if err != nil {
		t.Fatal(err)
	}
	sale(t, s, cardB, 700, SaleFacts{Period: "lunch", Class: "staff"}, StateDone)
	recorder.Take()
	if _, err := s.ShiftTotals(ctx, sh.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CloseShift(ctx, CloseOptions{}); err != nil {
		t.Fatal(err)
	}
	stmts := recorder.Take()
	if len(stmts) == 0 {
		t.Fatal("no statement recorded: the recording driver is not in use")
	}
	for _, q := range stmts {
		scan, err := queryplan.FullScans(s.db, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, sc := range scan {
			if strings.Contains(sc, "journal") {
				t.Errorf("%s\n\tscans: %s", queryplan.OneLine(q), sc)
			}
		}
	}
}
