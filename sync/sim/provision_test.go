package sim

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestProvisionSplitsEveryCountOverWorkers(t *testing.T) {
	h := newTestHost(t, 0, 0, 0, 0)
	st := h.st
	ctx := context.Background()
	// Counts that do not divide by the workers: the remainders must not
	// be lost.
	p, err := Provision(ctx, st, h.keys, t.TempDir(), 7, 5, 2, 1000, 150, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Terminals) != 7 || len(p.Cards) != 5 || p.Credits != 10 {
		t.Fatalf("provisioned %d terminals, %d cards, %d credits; want 7, 5, 10", len(p.Terminals), len(p.Cards), p.Credits)
	}
	terms, err := st.Terminals(ctx)
	if err != nil || len(terms) != 7 {
		t.Fatalf("the host holds %d terminals (%v), want 7", len(terms), err)
	}
	for _, c := range p.Cards {
		crs, err := st.Credits(ctx, c.Number())
		if err != nil || len(crs) != 2 {
			t.Errorf("card %s: %d credits at the host (%v), want 2", c.Number(), len(crs), err)
		}
	}
}

// failingRegistry refuses every terminal.
type failingRegistry struct{ Issuer }

var errRefused = errors.New("refused")

func (failingRegistry) AddTerminal(context.Context, string, string, time.Time) error {
	return errRefused
}

func TestProvisionReturnsTheFirstError(t *testing.T) {
	_, err := Provision(context.Background(), failingRegistry{}, nil, t.TempDir(), 10, 0, 0, 1000, 150, 4)
	if !errors.Is(err, errRefused) {
		t.Fatalf("Provision = %v, want the registry's error", err)
	}
}
