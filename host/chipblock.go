package host

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/cardd/cardd/apdu/epurse"
	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/redact"
)

// EventChipBlock is the ledger's record of an APPLICATION BLOCK MAC given
// to a terminal for a denied card: when, which terminal (the actor), and
// the mode (detail). The terminal's own log says whether the card took it;
// the card answers 6283 at every terminal from then on.
const EventChipBlock = "chip_block"

// chipBlockMode is the block the host MACs: temporary (P2 00), so that an
// issuer's desk holding the maintenance key can lift it after a card
// reported lost by mistake is lifted from the deny list (cardhost card
// undeny). To every terminal it is the same refusal.
const chipBlockMode = epurse.BlockTemporary

// cardBlock is /v1/card/block: the MAC of APPLICATION BLOCK for a card on
// the deny list, over the challenge the card gave. A card not denied is
// 409 card_not_denied, so a terminal (or whoever holds its secret) cannot
// block a card the operator did not deny; an M1 wallet or a card the host
// never issued has no key here (400, 404). Each MAC is in the ledger.
// A request replayed is refused 401 by the nonce rule (verify) before it
// gets here.
func (h *Handler) cardBlock(ctx context.Context, term string, body []byte, now time.Time) (any, error) {
	var req hostapi.CardBlockRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	if err := hostapi.CheckCardNumber(req.Card); err != nil {
		return nil, badCard(err)
	}
	var challenge [epurse.ChallengeLen]byte
	if b, err := hex.DecodeString(req.Challenge); err != nil || len(b) != len(challenge) {
		return nil, badRequest("challenge: want %d bytes as %d hex digits", len(challenge), 2*len(challenge))
	} else {
		copy(challenge[:], b)
	}
	resp, err := h.store.chipBlock(ctx, term, req.Card, challenge, h.rules.Keys, now)
	if err != nil {
		return nil, err
	}
	h.log.Warn("card blocked on the chip: APPLICATION BLOCK MAC given", "terminal", term, "card", redact.CardNumber(req.Card), "mode", resp.Mode, "reason", resp.Reason)
	return resp, nil
}

// chipBlock checks that the card may be blocked, computes the MAC and
// records it in the ledger, in one transaction.
func (s *Store) chipBlock(ctx context.Context, term, number string, challenge [epurse.ChallengeLen]byte, keys *Keys, now time.Time) (resp hostapi.CardBlockResponse, err error) {
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		denied, reason, err := denyState(tx, number)
		if err != nil {
			return err
		}
		if !denied {
			return conflict(hostapi.CodeCardNotDenied, "card %s is not on the deny list: the host blocks on the chip only a card the operator denied", redact.CardNumber(number))
		}
		cd, err := card(tx, number)
		if errors.Is(err, ErrNotFound) {
			return notFound("card %s was not issued by this host: its maintenance key is not here", redact.CardNumber(number))
		}
		if err != nil {
			return err
		}
		if cd.Kind == CardM1 {
			return badRequest("card %s is an M1 wallet: it has no application to block", redact.CardNumber(number))
		}
		serial, err := cd.serial()
		if err != nil {
			return err
		}
		mac, err := keys.blockMAC(serial, challenge, chipBlockMode)
		if errors.Is(err, ErrNoMaintenanceKey) {
			return refuse(http.StatusServiceUnavailable, hostapi.CodeNoMaintenanceKey, "%v", err)
		}
		if err != nil {
			return err
		}
		resp = hostapi.CardBlockResponse{Mode: hostapi.BlockTemporary, MAC: strings.ToUpper(hex.EncodeToString(mac[:])), Reason: reason}
		return addLedger(tx, ledgerEntry{Time: now, Actor: terminalActor(term), Event: EventChipBlock, Card: number,
			Detail: fmt.Sprintf("APPLICATION BLOCK (%s) MAC given to terminal %s; denied: %s", chipBlockMode, term, reason)})
	})
	return resp, err
}
