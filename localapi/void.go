package localapi

import (
	"context"
	"errors"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/cardd/cardd/money"
	"github.com/cardd/cardd/offline"
)

// Voider voids a sale (冲正) for POST /v1/purchase/void: the daemon's
// (daemon/void.go), in mode pos. Its errors wrap offline's refusals
// (offline.ErrVoided and the others), which the API answers with their
// status.
type Voider interface {
	Void(ctx context.Context, req VoidRequest) (VoidOutcome, error)
}

// VoidRequest is the body of POST /v1/purchase/void.
type VoidRequest struct {
	// Sale is the journal row id of the sale; "" voids the last sale.
	Sale string `json:"sale,omitempty"`
	// Amount is the refund in yuan; "" is the whole sale.
	Amount string `json:"amount,omitempty"`
	// Cashier names who voided, for the journal and the shift.
	Cashier string `json:"cashier,omitempty"`
	// AmountFen is Amount in fen (0: the whole sale), set by the API.
	AmountFen int64 `json:"-"`
}

// maxCashierLen bounds a cashier's id: a badge number or a name.
const maxCashierLen = 64

// VoidOutcome is what became of a void.
type VoidOutcome struct {
	Void      string `json:"void"` // the void's id
	Sale      string `json:"sale"` // the sale's journal row id
	Card      string `json:"card"` // masked
	AmountFen int64  `json:"amount_fen"`
	Amount    string `json:"amount"`
	// State is offline's: owed (the host has not answered: offline, the
	// refund follows when it does), refunded, or refused (HostReason).
	State      string `json:"state"`
	Credit     string `json:"credit,omitempty"` // the host's refund credit
	HostReason string `json:"host_reason,omitempty"`
	// Loaded says the refund is on the card already: it was still on the
	// reader. Otherwise it loads at the card's next tap, at any terminal.
	Loaded bool `json:"loaded"`
	// BalanceFen is the card's balance after the refund, when Loaded.
	BalanceFen *int64 `json:"balance_fen,omitempty"`
}

func (s *Server) void(w http.ResponseWriter, r *http.Request, _ credential) {
	var req VoidRequest
	if !decode(w, r, &req) {
		return
	}
	if req.Amount != "" {
		fen, err := money.Parse(req.Amount)
		if err != nil || fen <= 0 {
			fail(w, http.StatusBadRequest, "amount %q: want yuan above 0 with at most two decimals, like \"12.50\", or none for the whole sale", req.Amount)
			return
		}
		req.AmountFen = fen
	}
	if n := utf8.RuneCountInString(req.Cashier); n > maxCashierLen || !utf8.ValidString(req.Cashier) {
		fail(w, http.StatusBadRequest, "cashier: want UTF-8 text of at most %d characters", maxCashierLen)
		return
	}
	if s.Voids == nil {
		fail(w, http.StatusConflict, "voids need mode pos; this terminal runs mode %s", s.Base.Mode)
		return
	}
	ctx := r.Context()
	if s.VoidTimeout > 0 {
		// The void may wait for the host and for a tap of the card present,
		// longer than the server's write timeout allows a request: its
		// answer gets its own bound.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.VoidTimeout)
		defer cancel()
		_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(s.VoidTimeout + 5*time.Second))
	}
	out, err := s.Voids.Void(ctx, req)
	switch {
	case errors.Is(err, offline.ErrNotFound):
		fail(w, http.StatusNotFound, "%v", err)
	case errors.Is(err, offline.ErrVoidAmount):
		fail(w, http.StatusBadRequest, "%v", err)
	case errors.Is(err, offline.ErrVoided), errors.Is(err, offline.ErrVoidWindow), errors.Is(err, offline.ErrNotVoidable):
		fail(w, http.StatusConflict, "%v", err)
	case err != nil:
		fail(w, http.StatusInternalServerError, "void failed: %v", err)
	default:
		s.Hub.Publish(Event{Type: EventVoid, Void: &out})
		writeJSON(w, http.StatusOK, out)
	}
}
