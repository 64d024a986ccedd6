package sync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/money"
	"github.com/cardd/cardd/offline"
	"github.com/cardd/cardd/redact"
)

// Void sends a void to the host, which answers its refund credit.
func (c *Client) Void(ctx context.Context, req hostapi.VoidRequest) (hostapi.VoidResponse, error) {
	var r hostapi.VoidResponse
	err := c.call(ctx, hostapi.PathVoid, req, &r)
	return r, err
}

// VoidRequest is the host's form of void v of sale, with the PSAM's
// terminal id the host verifies the sale's TAC with.
func VoidRequest(v offline.Void, sale offline.Row) hostapi.VoidRequest {
	return hostapi.VoidRequest{ID: v.ID, Sale: sale.HostRow(), PSAMTerminal: sale.PSAMTerminal, AmountFen: v.AmountFen,
		Time: v.Created.Format(time.RFC3339)}
}

// VoidStore is what SendVoid needs of the terminal's store.
type VoidStore interface {
	Get(ctx context.Context, id string) (offline.Row, error)
	GetVoid(ctx context.Context, id string) (offline.Void, error)
	VoidRefunded(ctx context.Context, id, credit string) error
	VoidRefusedByHost(ctx context.Context, id, reason string) error
}

// SendVoid sends owed void v with its sale and records the host's answer:
// refunded with the credit, or refused for good (a 4xx the same void
// cannot change: the sale refunded already, not a sale the host holds so).
// It returns the void as recorded then. An error means no answer (the host
// unreachable, a 5xx, a 401 from a skewed clock, a 429): the void stays
// owed and goes again.
func SendVoid(ctx context.Context, c *Client, st VoidStore, v offline.Void, log *slog.Logger) (offline.Void, error) {
	sale, err := st.Get(ctx, v.SaleID)
	if err != nil {
		return v, fmt.Errorf("void %s: its sale: %w", v.ID, err)
	}
	req := VoidRequest(v, sale)
	resp, err := c.Void(ctx, req)
	if refusesPSAMTerminal(err) {
		// A host older than the journal row's field: the void carries the
		// PSAM's id on its own, as such a host knows it.
		req.Sale.PSAMTerminal = ""
		resp, err = c.Void(ctx, req)
	}
	var he *HostError
	switch {
	case err == nil:
		if err := st.VoidRefunded(ctx, v.ID, resp.Credit.ID); err != nil {
			return v, err
		}
		log.Info("void refunded by the host", "void", v.ID, "sale", v.SaleID, "card", redact.CardNumber(v.Card),
			"credit", resp.Credit.ID, "amount", money.Format(resp.Credit.AmountFen))
	case errors.As(err, &he) && he.Status >= 400 && he.Status < 500 &&
		he.Status != http.StatusUnauthorized && he.Status != http.StatusTooManyRequests:
		if err := st.VoidRefusedByHost(ctx, v.ID, he.Code+": "+he.Reason); err != nil {
			return v, err
		}
		log.Error("host refused a void; kept here, not sent again", "void", v.ID, "sale", v.SaleID, "code", he.Code, "reason", he.Reason)
	default:
		return v, err
	}
	return st.GetVoid(ctx, v.ID)
}

// sendVoids sends up to limit owed voids; it stops at the first that got
// no answer.
func (s *Syncer) sendVoids(ctx context.Context, limit int) error {
	owed, err := s.Store.OwedVoids(ctx, limit)
	if err != nil {
		return err
	}
	for _, v := range owed {
		if _, err := SendVoid(ctx, s.Client, s.Store, v, s.logger()); err != nil {
			return err
		}
	}
	return nil
}
