package localapi

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/money"
	"github.com/cardd/cardd/offline"
)

// Shifts is what the API needs of the cashier's shifts (班); the daemon's
// is the journal's, with the close-out receipt and the voids.
type Shifts interface {
	// OpenShift opens a shift (offline.ErrShiftOpen when one is).
	OpenShift(ctx context.Context, cashier string) (offline.Shift, error)
	// CurrentShift is the open shift; ok false when none is.
	CurrentShift(ctx context.Context) (sh offline.Shift, ok bool, err error)
	// CloseShift closes the open shift and queues its summary receipt
	// (offline.ErrNoShift when none is open).
	CloseShift(ctx context.Context) (offline.ShiftSummary, error)
}

// ShiftView is the open shift, in the status and the shift calls.
type ShiftView struct {
	ID      int64     `json:"id"`
	Cashier string    `json:"cashier"`
	Opened  time.Time `json:"opened"`
}

// ShiftOpenRequest is the body of POST /v1/shift.
type ShiftOpenRequest struct {
	Cashier string `json:"cashier"`
}

// ShiftSummaryView is a close-out as POST /v1/shift/close answers it: the
// totals in fen (hostapi.ShiftTotals) and the sum in yuan.
type ShiftSummaryView struct {
	ID      int64     `json:"id"`
	Cashier string    `json:"cashier"`
	Opened  time.Time `json:"opened"`
	Closed  time.Time `json:"closed"`
	Sum     string    `json:"sum"`
	hostapi.ShiftTotals
	// Printed is whether the summary's receipt was queued (printer.enabled).
	Printed bool `json:"printed"`
}

func shiftView(sh offline.Shift) *ShiftView {
	return &ShiftView{ID: sh.ID, Cashier: sh.Cashier, Opened: sh.Opened.UTC()}
}

func summaryView(s offline.ShiftSummary) ShiftSummaryView {
	return ShiftSummaryView{ID: s.Shift, Cashier: s.Cashier, Opened: s.Opened.UTC(), Closed: s.Closed.UTC(),
		Sum: money.Format(s.SumFen), ShiftTotals: s.ShiftTotals}
}

// shiftsOr answers 409 when the terminal keeps no shifts (not mode pos).
func (s *Server) shiftsOr(w http.ResponseWriter) bool {
	if s.Shifts == nil {
		fail(w, http.StatusConflict, "shifts need mode pos; this terminal runs mode %s", s.Base.Mode)
		return false
	}
	return true
}

func (s *Server) getShift(w http.ResponseWriter, r *http.Request, _ credential) {
	if !s.shiftsOr(w) {
		return
	}
	sh, ok, err := s.Shifts.CurrentShift(r.Context())
	switch {
	case err != nil:
		fail(w, http.StatusInternalServerError, "%v", err)
	case !ok:
		fail(w, http.StatusNotFound, "no shift is open: open one with POST /v1/shift")
	default:
		writeJSON(w, http.StatusOK, map[string]any{"shift": shiftView(sh)})
	}
}

func (s *Server) openShift(w http.ResponseWriter, r *http.Request, _ credential) {
	var req ShiftOpenRequest
	if !decode(w, r, &req) {
		return
	}
	if err := offline.CheckCashier(req.Cashier); err != nil {
		fail(w, http.StatusBadRequest, "%v", err)
		return
	}
	if !s.shiftsOr(w) {
		return
	}
	sh, err := s.Shifts.OpenShift(r.Context(), req.Cashier)
	switch {
	case errors.Is(err, offline.ErrShiftOpen):
		fail(w, http.StatusConflict, "%v: close it first (POST /v1/shift/close)", err)
		return
	case err != nil:
		fail(w, http.StatusInternalServerError, "%v", err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"shift": shiftView(sh)})
}

func (s *Server) closeShift(w http.ResponseWriter, r *http.Request, _ credential) {
	if !s.shiftsOr(w) {
		return
	}
	sum, err := s.Shifts.CloseShift(r.Context())
	switch {
	case errors.Is(err, offline.ErrNoShift):
		fail(w, http.StatusConflict, "%v: nothing to close", err)
		return
	case err != nil:
		fail(w, http.StatusInternalServerError, "%v", err)
		return
	}
	v := summaryView(sum)
	v.Printed = s.Receipts != nil
	if s.KickPrinter != nil && v.Printed {
		s.KickPrinter()
	}
	writeJSON(w, http.StatusOK, map[string]any{"summary": v})
}

// shiftStatus is the status's open shift (nil when none, or no shifts).
func (s *Server) shiftStatus(ctx context.Context) *ShiftView {
	if s.Shifts == nil {
		return nil
	}
	sh, ok, err := s.Shifts.CurrentShift(ctx)
	if err != nil || !ok {
		return nil
	}
	return shiftView(sh)
}
