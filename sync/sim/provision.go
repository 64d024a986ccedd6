package sim

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"path/filepath"
	"strings"
	gosync "sync"
	"time"

	"github.com/cardd/cardd/apdu/epurse"
	epursesim "github.com/cardd/cardd/apdu/epurse/sim"
	"github.com/cardd/cardd/host"
	"github.com/cardd/cardd/hostapi"
)

// Terminal is one terminal identity of the fleet: its id and the HMAC
// secret the host registered it with. The secret never prints.
type Terminal struct {
	ID     string
	Secret []byte
}

// String names the terminal without its secret.
func (t Terminal) String() string { return "terminal " + t.ID }

// TerminalRegistry is where terminals are registered: host.Store's
// AddTerminal, as 'cardhost terminal add' calls it.
type TerminalRegistry interface {
	AddTerminal(ctx context.Context, id, secret string, now time.Time) error
}

// Issuer issues cards and records credits for them, as 'cardhost card
// issue' and 'cardhost credit add' do through host.Store.
type Issuer interface {
	IssueCard(ctx context.Context, keys *host.Keys, req host.IssueRequest, out, actor string, now time.Time) (*epursesim.CardFile, error)
	AddCredit(ctx context.Context, number string, amountFen int64, note, actor string, now time.Time) (hostapi.Credit, error)
}

// actor is how the fleet's provisioning is named in the host's ledger.
const actor = "cardfleet"

// maxTries bounds the fresh random ids tried when one is taken already.
const maxTries = 8

// NewTerminals registers n terminals with random ids and fresh secrets
// (host.NewTerminalSecret), as 'cardhost terminal add' does.
func NewTerminals(ctx context.Context, reg TerminalRegistry, n int) ([]Terminal, error) {
	out := make([]Terminal, 0, n)
	for len(out) < n {
		secret, err := host.NewTerminalSecret()
		if err != nil {
			return out, err
		}
		t, err := addTerminal(ctx, reg, secret)
		if err != nil {
			return out, err
		}
		out = append(out, t)
	}
	return out, nil
}

// addTerminal registers one terminal under a random id, trying another id
// when one is taken.
func addTerminal(ctx context.Context, reg TerminalRegistry, secret string) (Terminal, error) {
	for range maxTries {
		var b [6]byte
		if _, err := rand.Read(b[:]); err != nil {
			return Terminal{}, err
		}
		id := strings.ToUpper(hex.EncodeToString(b[:]))
		err := reg.AddTerminal(ctx, id, secret, time.Now())
		if errors.Is(err, host.ErrExists) {
			continue
		}
		if err != nil {
			return Terminal{}, fmt.Errorf("registering terminal %s: %w", id, err)
		}
		return Terminal{ID: id, Secret: []byte(secret)}, nil
	}
	return Terminal{}, fmt.Errorf("registering a terminal: %d random ids were all taken", maxTries)
}

// IssueCards issues n campus cards with random 16-digit numbers and
// balanceFen on their EP, writing each card file (mode 0600) into dir, and
// returns them as fleet cards.
func IssueCards(ctx context.Context, is Issuer, keys *host.Keys, dir string, n int, balanceFen int64) ([]*Card, error) {
	now := time.Now()
	start := epurse.DateOf(now.AddDate(-1, 0, 0))
	expiry := epurse.DateOf(now.AddDate(4, 0, 0))
	out := make([]*Card, 0, n)
	for len(out) < n {
		f, err := issueCard(ctx, is, keys, dir, host.IssueRequest{BalanceFen: balanceFen, Start: start, Expiry: expiry}, now)
		if err != nil {
			return out, err
		}
		out = append(out, NewCard(f))
	}
	return out, nil
}

// issueCard issues one card under a random number, trying another number
// when one is taken.
func issueCard(ctx context.Context, is Issuer, keys *host.Keys, dir string, req host.IssueRequest, now time.Time) (*epursesim.CardFile, error) {
	for range maxTries {
		n, err := rand.Int(rand.Reader, big.NewInt(1e14))
		if err != nil {
			return nil, err
		}
		req.Number = fmt.Sprintf("39%014d", n)
		f, err := is.IssueCard(ctx, keys, req, filepath.Join(dir, req.Number+".json"), actor, now)
		if errors.Is(err, host.ErrExists) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("issuing a card: %w", err)
		}
		return f, nil
	}
	return nil, fmt.Errorf("issuing a card: %d random numbers were all taken", maxTries)
}

// AddCredits records perCard credits of amountFen for every card, as money
// paid online would: the loads the fleet then makes.
func AddCredits(ctx context.Context, is Issuer, cards []*Card, perCard int, amountFen int64) ([]hostapi.Credit, error) {
	var out []hostapi.Credit
	for _, c := range cards {
		for range perCard {
			cr, err := is.AddCredit(ctx, c.Number(), amountFen, "fleet", actor, time.Now())
			if err != nil {
				return out, fmt.Errorf("adding a credit: %w", err)
			}
			out = append(out, cr)
		}
	}
	return out, nil
}

// Provisioned is a fleet made by Provision.
type Provisioned struct {
	Terminals []Terminal
	Cards     []*Card
	Credits   int
}

// Provision registers terminals, issues cards (their files into dir) and
// adds perCard credits of amountFen to each, the work split over workers
// goroutines: ten thousand terminals one transaction after another take
// minutes on a database whose commits wait on the network or the disk,
// while a store that takes concurrent writers (PostgreSQL) commits them
// side by side. A store with a single writer (SQLite) gains nothing past
// 1 worker. The first error ends the work and is returned.
func Provision(ctx context.Context, st interface {
	TerminalRegistry
	Issuer
}, keys *host.Keys, dir string, terminals, cards, perCard int, balanceFen, amountFen int64, workers int) (*Provisioned, error) {
	workers = max(workers, 1)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu   gosync.Mutex
		out  Provisioned
		ferr error
		wg   gosync.WaitGroup
	)
	for w := range workers {
		// Worker w takes its share of each count.
		share := func(n int) int { return n/workers + btoi(w < n%workers) }
		wg.Go(func() {
			ts, err := NewTerminals(ctx, st, share(terminals))
			var cs []*Card
			var crs []hostapi.Credit
			if err == nil {
				cs, err = IssueCards(ctx, st, keys, dir, share(cards), balanceFen)
			}
			if err == nil {
				crs, err = AddCredits(ctx, st, cs, perCard, amountFen)
			}
			mu.Lock()
			defer mu.Unlock()
			out.Terminals = append(out.Terminals, ts...)
			out.Cards = append(out.Cards, cs...)
			out.Credits += len(crs)
			if err != nil && ferr == nil {
				ferr = err
				cancel()
			}
		})
	}
	wg.Wait()
	return &out, ferr
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
