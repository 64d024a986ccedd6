package integration

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	epursesim "github.com/cardd/cardd/apdu/epurse/sim"
	"github.com/cardd/cardd/internal/tlsgen"
	"github.com/cardd/cardd/sync/sim"
)

// TestFleetAgainstServe runs the fleet simulator's binary against two
// `cardhost serve` instances on one host directory, over TLS with the CA
// given as cardd takes it: 30 terminals racing for the credits of 6 cards
// they hold at once (--shared-cards), with heartbeats, pulls and journal
// uploads between and a terminal draining a backlog of 1,200 journal
// rows, then 60 captured requests replayed to the other
// instance. It needs no pcscd: the cards are simulated in memory. Every
// credit the host holds consumed rose its card's balance by exactly its
// amount (the saved card files against the host's credits), none was
// applied twice, every load settled, every replay was refused, the
// backlog drained.
func TestFleetAgainstServe(t *testing.T) {
	w := newHostWorld(t)
	files, err := tlsgen.Write(t.TempDir(), []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	a := startServe(t, w.hostDir, "--tls-cert", files.Cert, "--tls-key", files.Key)
	b := startServe(t, w.hostDir, "--tls-cert", files.Cert, "--tls-key", files.Key)
	cards, out := filepath.Join(t.TempDir(), "cards"), filepath.Join(t.TempDir(), "report.json")
	cmd := exec.Command(binary(t, "cardfleet"), "--dir", w.hostDir, "--host", a, "--host", b, "--ca-file", files.CA,
		"--terminals", "30", "--cards", "6", "--credits", "4", "--amount", "2.50", "--shared-cards",
		"--rate", "10", "--duration", "3s", "--mix", "heartbeat=1,pull=1,journal=1,load=4", "--replay", "60", "--backlog-rows", "1200",
		"--card-dir", cards, "--json", out)
	text, err := cmd.CombinedOutput()
	t.Logf("cardfleet:\n%s", text)
	if err != nil {
		t.Fatalf("cardfleet: %v", err)
	}
	b2, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var rep sim.Report
	if err := json.Unmarshal(b2, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Replay == nil || rep.Replay.Sent != 60 || rep.Replay.Refused != 60 || rep.Replay.Accepted != 0 {
		t.Errorf("replay %+v: want 60 sent, 60 refused", rep.Replay)
	}
	if l := rep.Loads; l.Applied == 0 || l.Doubled != 0 || l.Unsettled != 0 || l.Consumed != l.Applied {
		t.Errorf("loads %+v: want some applied, each consumed once, none unsettled", l)
	}
	if b := rep.Backlog; b == nil || !b.Drained || b.Acked != 1200 {
		t.Errorf("backlog %+v: want 1200 rows acked", b)
	}
	if rep.Kinds[sim.KindJournal].OK == 0 || rep.Kinds[sim.KindPull].OK == 0 || rep.Kinds[sim.KindHeartbeat].OK == 0 {
		t.Errorf("kinds %+v: want heartbeats, pulls and journal uploads answered", rep.Kinds)
	}
	entries, err := os.ReadDir(cards)
	if err != nil || len(entries) != 6 {
		t.Fatalf("card dir holds %d files (%v), want 6", len(entries), err)
	}
	var books []sim.CardBalance
	for _, e := range entries {
		f, err := epursesim.LoadCardFile(filepath.Join(cards, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		c, err := w.host.Card(context.Background(), f.Info.CardNumber)
		if err != nil {
			t.Fatal(err)
		}
		books = append(books, sim.CardBalance{Number: c.Number, Initial: c.InitialBalanceFen, Balance: f.EPBalance})
	}
	_, total, err := sim.CheckBooks(context.Background(), w.host, books)
	if err != nil {
		t.Error(err)
	}
	if total != rep.Loads.AppliedFen {
		t.Errorf("the host consumed %d fen in all, the fleet's cards applied %d", total, rep.Loads.AppliedFen)
	}
}
