package sync

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/offline"
)

// shiftBatch is how many closed shifts one upload round sends: a terminal
// closes a few a day.
const shiftBatch = 20

// UploadShift sends a closed shift (POST /v1/shift).
func (c *Client) UploadShift(ctx context.Context, req hostapi.ShiftRequest) (hostapi.ShiftResponse, error) {
	var r hostapi.ShiftResponse
	err := c.call(ctx, hostapi.PathShift, req, &r)
	return r, err
}

// ShiftRequest is closed shift sh as the host takes it.
func ShiftRequest(sh offline.Shift) (hostapi.ShiftRequest, error) {
	s := sh.Summary
	if s == nil || sh.Closed.IsZero() {
		return hostapi.ShiftRequest{}, errors.New("the shift is not closed")
	}
	req := hostapi.ShiftRequest{Shift: sh.ID, Cashier: sh.Cashier,
		Opened: sh.Opened.UTC().Format(time.RFC3339Nano), Closed: sh.Closed.UTC().Format(time.RFC3339Nano),
		ShiftTotals: s.ShiftTotals, Rows: sh.Rows}
	if req.Rows == nil {
		req.Rows = []string{}
	}
	if req.Groups == nil {
		req.Groups = []hostapi.ShiftGroup{}
	}
	return req, nil
}

// uploadShifts sends the closed shifts the host has not acknowledged, as
// part of the upload loop (its backoff is the loop's). A shift the host
// refused for good (a 4xx other than 401 and 429: a copy it holds
// otherwise, a malformed one) is kept and not sent again; any other
// failure leaves it owed.
func (s *Syncer) uploadShifts(ctx context.Context) error {
	shifts, err := s.Store.UnsentShifts(ctx, shiftBatch)
	if err != nil {
		return err
	}
	for _, sh := range shifts {
		req, err := ShiftRequest(sh)
		if err != nil {
			return err
		}
		_, err = s.Client.UploadShift(ctx, req)
		var he *HostError
		switch {
		case err == nil:
			err = s.Store.ShiftUploaded(ctx, sh.ID)
		case errors.As(err, &he) && he.Status >= 400 && he.Status < 500 &&
			he.Status != http.StatusUnauthorized && he.Status != http.StatusTooManyRequests:
			s.logger().Error("host refused a closed shift", "shift", sh.ID, "cashier", sh.Cashier, "err", err)
			err = s.Store.ShiftRefused(ctx, sh.ID, err.Error())
		}
		if err != nil {
			return err
		}
	}
	return nil
}
