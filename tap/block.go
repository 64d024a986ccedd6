package tap

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/cardd/cardd/apdu"
	"github.com/cardd/cardd/apdu/epurse"
	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/redact"
)

// ErrCardBlocked refuses a card whose e-purse application is blocked on
// the chip: blocked on this tap (a card on the deny list, Runner.block), or
// earlier, at any terminal (its SELECT answers 6283). A blocked card is
// refused with or without a deny list.
var ErrCardBlocked = errors.New("card blocked")

// BlockHost is what the on-chip block needs from the host; *sync.Client
// is one.
type BlockHost interface {
	CardBlock(ctx context.Context, req hostapi.CardBlockRequest) (hostapi.CardBlockResponse, error)
}

// BlockReport is what the block step did with a denied card.
type BlockReport struct {
	// Blocked: the card answered 9000 to APPLICATION BLOCK; it answers
	// 6283 to every terminal from now on.
	Blocked bool
	Mode    string // hostapi.BlockTemporary or BlockPermanent, when Blocked
	// NotBlocked says why the card was left as it was (host unreachable,
	// host refused, card refused); it is still refused on this tap.
	NotBlocked string
}

// block is the step after the money on a card refused for the deny list:
// when the Loader has a BlockHost, the card's e-purse application is
// blocked on the chip (GET CHALLENGE, the host's MAC over the challenge,
// APPLICATION BLOCK), so that terminals which never pulled the list
// refuse it too. The host answers only for a card on its own deny list,
// within the Loader's host timeout. An unreachable host, a refusal or a
// card that does not take the MAC leave the card as it was (refused all
// the same, blocked on a later tap); the tap's error then stays the
// denial. Every command is in the tap's card session.
func (r *Runner) block(ctx context.Context, t apdu.Transmitter, res *Result) {
	l := r.Loader
	if l == nil || l.BlockHost == nil || res.Read == nil || !errors.Is(res.Err, ErrCardDenied) || errors.Is(res.Err, ErrCardBlocked) {
		return
	}
	card := res.Read.Info.CardNumber
	rep := &BlockReport{}
	res.Block = rep
	log := r.logger().With("card", redact.CardNumber(card))
	mode, err := blockCard(ctx, t, l, card)
	if err != nil {
		rep.NotBlocked = err.Error()
		log.Warn("deny-listed card not blocked on the chip; refused all the same", "err", err)
		return
	}
	rep.Blocked, rep.Mode = true, mode
	log.Warn("deny-listed card blocked on the chip (APPLICATION BLOCK)", "mode", mode)
	res.Err = fmt.Errorf("%w on the chip just now: %w", ErrCardBlocked, res.Err)
}

// blockCard runs the exchange and returns the mode the card was blocked
// in. The card keeps its challenge for the next command only, so nothing
// goes to the card between GET CHALLENGE and APPLICATION BLOCK.
func blockCard(ctx context.Context, t apdu.Transmitter, l *Loader, card string) (string, error) {
	ch, err := epurse.GetChallenge(t)
	if err != nil {
		return "", err
	}
	hctx, cancel := l.hostCtx(ctx)
	resp, err := l.BlockHost.CardBlock(hctx, hostapi.CardBlockRequest{Card: card, Challenge: hex.EncodeToString(ch[:])})
	cancel()
	if err != nil {
		return "", fmt.Errorf("host: %w", err)
	}
	var mode epurse.BlockMode
	switch resp.Mode {
	case hostapi.BlockTemporary:
		mode = epurse.BlockTemporary
	case hostapi.BlockPermanent:
		mode = epurse.BlockPermanent
	default:
		return "", fmt.Errorf("host answered block mode %q", resp.Mode)
	}
	var mac [4]byte
	if b, err := hex.DecodeString(resp.MAC); err != nil || len(b) != len(mac) {
		return "", fmt.Errorf("host answered a MAC that is not 4 bytes of hex")
	} else {
		copy(mac[:], b)
	}
	if err := epurse.ApplicationBlock(t, mode, mac); err != nil {
		return "", err
	}
	return resp.Mode, nil
}
