package sync

import (
	"encoding/json"
	"fmt"

	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/offline"
)

// NotAppliedProof is a fresh INIT FOR LOAD answer at the counter a load was
// authorized for: the card's word that the load did not happen. It travels
// in offline.Row.Proof until the host has it.
type NotAppliedProof struct {
	OldBalanceFen int64  `json:"old_balance_fen"`
	AmountFen     int64  `json:"amount_fen"`
	Random        string `json:"random"`
	MAC1          string `json:"mac1"`
}

// Encode returns the proof as stored in a journal row.
func (p NotAppliedProof) Encode() string {
	b, _ := json.Marshal(p) // plain fields: cannot fail
	return string(b)
}

// CompletionRequest builds the POST /v1/load/complete body owed for a load
// row: its TAC when the load happened, its proof when it did not. The loader
// (at once) and the sync loop (later) build it the same way from the row.
func CompletionRequest(r offline.Row) (hostapi.LoadCompleteRequest, error) {
	req := hostapi.LoadCompleteRequest{CreditID: r.CreditID, Card: r.Card, Counter: r.Counter}
	if r.Purse == hostapi.PurseM1 {
		return m1CompletionRequest(r, req)
	}
	switch {
	case r.State == offline.StateDone && r.TAC != "":
		req.TAC = r.TAC
	case r.State == offline.StateFailed && r.Proof != "":
		var p NotAppliedProof
		if err := json.Unmarshal([]byte(r.Proof), &p); err != nil {
			return req, fmt.Errorf("journal row %s: unreadable proof: %w", r.ID, err)
		}
		req.NotApplied = true
		req.ProbeOldBalanceFen, req.ProbeAmountFen, req.ProbeRandom, req.ProbeMAC1 = p.OldBalanceFen, p.AmountFen, p.Random, p.MAC1
	default:
		return req, fmt.Errorf("journal row %s (%s) owes the host no completion", r.ID, r.State)
	}
	return req, nil
}

// M1NotApplied is the proof a failed M1 wallet load carries: the balance
// the wallet held when the terminal knew the load had not happened. The
// wallet signs nothing, so it is the terminal's word, which the host takes
// for M1 loads (host/m1.go).
type M1NotApplied struct {
	BalanceFen int64 `json:"wallet_balance_fen"`
}

// Encode returns the proof as stored in a journal row.
func (p M1NotApplied) Encode() string {
	b, _ := json.Marshal(p) // one plain field: cannot fail
	return string(b)
}

// m1CompletionRequest is CompletionRequest for an M1 wallet's load row: the
// balance after it when done, the balance the wallet kept when failed.
func m1CompletionRequest(r offline.Row, req hostapi.LoadCompleteRequest) (hostapi.LoadCompleteRequest, error) {
	// An M1 row keeps its Ref where an e-purse row keeps MAC2.
	req.Purse, req.Counter, req.Ref = hostapi.PurseM1, 0, r.MAC2
	switch {
	case r.State == offline.StateDone:
		req.BalanceFen = r.BalanceFen + r.AmountFen
	case r.State == offline.StateFailed && r.Proof != "":
		var p M1NotApplied
		if err := json.Unmarshal([]byte(r.Proof), &p); err != nil {
			return req, fmt.Errorf("journal row %s: unreadable proof: %w", r.ID, err)
		}
		req.NotApplied, req.BalanceFen = true, p.BalanceFen
	default:
		return req, fmt.Errorf("journal row %s (%s) owes the host no completion", r.ID, r.State)
	}
	return req, nil
}
