package host

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/cardd/cardd/hostapi"
)

// closedShift is a shift of three sales, rows 11, 12 and 13 of testTerm,
// 12.50 each as purchaseRow makes them.
func closedShift() hostapi.ShiftRequest {
	closed := time.Now().Add(-time.Minute).UTC()
	return hostapi.ShiftRequest{Shift: 4, Cashier: "C007", Opened: closed.Add(-8 * time.Hour).Format(time.RFC3339Nano),
		Closed: closed.Format(time.RFC3339Nano), ShiftTotals: hostapi.ShiftTotals{Count: 3, SumFen: 3750,
			Groups:   []hostapi.ShiftGroup{{Period: "lunch", Class: "staff", Count: 1, SumFen: 1250}, {Period: "lunch", Class: "student", Count: 2, SumFen: 2500}},
			PINCount: 1, PINFen: 1250, InDoubtCount: 1, InDoubtFen: 600},
		Rows: []string{testTerm + "-11", testTerm + "-12", testTerm + "-13"}}
}

// TestShiftUpload: a closed shift is stored once per terminal and shift
// id (the same copy again is acked, a changed one 409 shift_differs), and
// listed with its check against the journal rows the host holds: pending
// while one of its rows is missing, ok once they add up, mismatch for
// totals the rows do not give. A shift that does not hold together is 400
// and stores nothing.
func TestShiftUpload(t *testing.T) { eachStore(t, testShiftUpload) }

func testShiftUpload(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	e.upload(purchaseRow("11"), purchaseRow("12"))
	req := closedShift()
	var resp hostapi.ShiftResponse
	e.mustCall(hostapi.PathShift, req, &resp)
	if resp.Shift != 4 {
		t.Fatalf("answer %+v", resp)
	}
	check := func(want string, held int, sum int64) {
		t.Helper()
		list, err := e.st.Shifts(ctx, "")
		if err != nil || len(list) != 1 {
			t.Fatalf("Shifts = %+v %v", list, err)
		}
		sh := list[0]
		if sh.Terminal != testTerm || sh.Summary.Cashier != "C007" || sh.Summary.SumFen != 3750 || sh.Summary.PINCount != 1 ||
			sh.Check.State != want || sh.Check.Held != held || sh.Check.SumFen != sum || sh.Check.Rows != 3 {
			t.Fatalf("shift %+v; want check %s with %d rows held of %d fen", sh, want, held, sum)
		}
	}
	check(ShiftPending, 2, 2500)
	// Row 13 arrives in doubt first: still pending, not a mismatch.
	r13 := purchaseRow("13")
	r13.State, r13.TAC = "unknown", ""
	if resp := e.upload(r13); len(resp.Acked) != 1 {
		t.Fatalf("unknown row 13: %+v", resp)
	}
	check(ShiftPending, 3, 2500)
	if resp := e.upload(purchaseRow("13")); len(resp.Acked) != 1 {
		t.Fatalf("done row 13 after its unknown copy: %+v", resp)
	}
	check(ShiftOK, 3, 3750)
	e.mustCall(hostapi.PathShift, req, &resp) // the same copy: acked
	changed := closedShift()
	changed.InDoubtCount = 0
	e.wantRefusal(hostapi.PathShift, changed, http.StatusConflict, hostapi.CodeShiftDiffers)
	check(ShiftOK, 3, 3750)
	if n := e.count("shift_rows", "1 = 1"); n != 3 {
		t.Errorf("%d shift rows stored, want 3", n)
	}

	// Totals the rows do not give: 3 sales of 40.00 claimed.
	greedy := closedShift()
	greedy.Shift, greedy.SumFen, greedy.Groups[1].SumFen = 5, 4000, 2750
	e.mustCall(hostapi.PathShift, greedy, &resp)
	// A shift that counts a sale the host holds failed.
	r14 := purchaseRow("14")
	r14.State, r14.TAC = "failed", ""
	e.upload(r14)
	failed := closedShift()
	failed.Shift, failed.Rows[2] = 6, testTerm+"-14"
	e.mustCall(hostapi.PathShift, failed, &resp)
	list, err := e.st.Shifts(ctx, testTerm)
	if err != nil || len(list) != 3 {
		t.Fatalf("Shifts(%s) = %+v %v", testTerm, list, err)
	}
	for _, sh := range list {
		want := map[int64]string{4: ShiftOK, 5: ShiftMismatch, 6: ShiftMismatch}[sh.Summary.Shift]
		if sh.Check.State != want {
			t.Errorf("shift %d: check %+v, want %s", sh.Summary.Shift, sh.Check, want)
		}
	}
	if list, err := e.st.Shifts(ctx, "000000000002"); err != nil || len(list) != 0 {
		t.Errorf("another terminal's shifts: %+v %v", list, err)
	}

	for name, mod := range map[string]func(*hostapi.ShiftRequest){
		"no id":             func(r *hostapi.ShiftRequest) { r.Shift = 0 },
		"no cashier":        func(r *hostapi.ShiftRequest) { r.Cashier = "" },
		"cashier escapes":   func(r *hostapi.ShiftRequest) { r.Cashier = "C0\x1b[2J07" },
		"cashier not text":  func(r *hostapi.ShiftRequest) { r.Cashier = "C0\xff07" },
		"closed first":      func(r *hostapi.ShiftRequest) { r.Closed, r.Opened = r.Opened, r.Closed },
		"groups off":        func(r *hostapi.ShiftRequest) { r.Groups[0].SumFen++ },
		"a row short":       func(r *hostapi.ShiftRequest) { r.Rows = r.Rows[:2] },
		"a row twice":       func(r *hostapi.ShiftRequest) { r.Rows[2] = r.Rows[1] },
		"another's row":     func(r *hostapi.ShiftRequest) { r.Rows[0] = "000000000002-11" },
		"a negative amount": func(r *hostapi.ShiftRequest) { r.VoidFen = -1 },
	} {
		bad := closedShift()
		bad.Shift = 9
		mod(&bad)
		e.wantRefusal(hostapi.PathShift, bad, http.StatusBadRequest, hostapi.CodeBadRequest)
		if n := e.count("shifts", "shift = 9 OR shift = 0"); n != 0 {
			t.Errorf("%s: stored", name)
		}
	}
}
