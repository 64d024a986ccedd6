package host

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cardd/cardd/apdu/epurse"
	"github.com/cardd/cardd/hostapi"
)

func TestCardClassPull(t *testing.T) { eachStore(t, testCardClassPull) }

// testCardClassPull: a class set on the card record reaches the pull in
// order with the other changes; a change and a clearing follow it; setting
// the same class again adds nothing; a card the host never issued and a
// bad name are refused and change nothing; a card issued with a class
// carries it from its first pull.
func testCardClassPull(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	if _, err := e.st.Deny(ctx, "3101000000999999", "lost", "operator test", time.Now()); err != nil {
		t.Fatal(err)
	}
	for _, class := range []string{"staff", "staff", "student", ""} {
		if _, err := e.st.SetClass(ctx, testNumber, class, "operator test", time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if c, err := e.st.Card(ctx, testNumber); err != nil || c.Class != "" {
		t.Fatalf("card %+v, %v; want the class cleared", c, err)
	}
	changed, err := e.st.SetClass(ctx, testNumber, "staff", "operator test", time.Now())
	if err != nil || !changed {
		t.Fatalf("set staff: %v, %v", changed, err)
	}
	if changed, err := e.st.SetClass(ctx, testNumber, "staff", "operator test", time.Now()); err != nil || changed {
		t.Fatalf("set staff again: changed %v, %v; want nothing changed", changed, err)
	}
	if _, err := e.st.SetClass(ctx, "3101000000999999", "staff", "operator test", time.Now()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a card never issued: %v, want ErrNotFound", err)
	}
	for _, bad := range []string{"Staff", "a.b", " staff", strings.Repeat("x", 33)} {
		if _, err := e.st.SetClass(ctx, testNumber, bad, "operator test", time.Now()); err == nil || !strings.Contains(err.Error(), bad) {
			t.Fatalf("class %q: %v, want refused naming it", bad, err)
		}
	}
	if c, _ := e.st.Card(ctx, testNumber); c.Class != "staff" {
		t.Fatalf("after the refusals the card's class is %q", c.Class)
	}

	var p hostapi.PullResponse
	e.mustCall(hostapi.PathPull, hostapi.PullRequest{}, &p)
	want := []hostapi.ClassChange{cc(testNumber, "staff"), cc(testNumber, "student"), cc(testNumber, ""), cc(testNumber, "staff")}
	if !slices.Equal(p.Classes, want) || len(p.Deny) != 1 {
		t.Fatalf("pull: classes %+v, deny %+v; want %+v", p.Classes, p.Deny, want)
	}
	cursor := p.NextCursor

	// Issued with a class: the class is its first change after the cursor.
	req := IssueRequest{Number: "3101000000654321", BalanceFen: 100, Class: "visitor",
		Start: epurse.Date{Year: 2026, Month: 1, Day: 1}, Expiry: epurse.Date{Year: 2030, Month: 1, Day: 1}}
	if _, err := e.st.IssueCard(ctx, e.keys, req, filepath.Join(e.dir, "visitor.json"), "operator test", time.Now()); err != nil {
		t.Fatal(err)
	}
	req.Number, req.Class = "3101000000654339", "Bad Class"
	if _, err := e.st.IssueCard(ctx, e.keys, req, filepath.Join(e.dir, "bad.json"), "operator test", time.Now()); err == nil {
		t.Fatal("a card issued with a bad class name")
	}
	p = hostapi.PullResponse{}
	e.mustCall(hostapi.PathPull, hostapi.PullRequest{Cursor: cursor}, &p)
	if !slices.Equal(p.Classes, []hostapi.ClassChange{cc("3101000000654321", "visitor")}) {
		t.Fatalf("after the issue: classes %+v", p.Classes)
	}
	if n := e.count("ledger", "event = ? AND card = ?", EventClassSet, testNumber); n != 4 {
		t.Fatalf("%d ledger entries of class changes, want 4", n)
	}
}

func TestCardClassWakesHeldPull(t *testing.T) { eachStore(t, testCardClassWakesHeldPull) }

// testCardClassWakesHeldPull: a held pull answers with a class change as
// it answers with a credit: a terminal learns a new class at once.
func testCardClassWakesHeldPull(t *testing.T) {
	e := newEnv(t, Options{})
	var p hostapi.PullResponse
	e.mustCall(hostapi.PathPull, hostapi.PullRequest{}, &p)
	done := make(chan hostapi.PullResponse, 1)
	go func() {
		var held hostapi.PullResponse
		if code, herr := e.call(hostapi.PathPull, hostapi.PullRequest{Cursor: p.NextCursor, WaitMS: 20000}, &held); code != http.StatusOK {
			t.Errorf("held pull: %d %+v", code, herr)
		}
		done <- held
	}()
	time.Sleep(200 * time.Millisecond)
	if _, err := e.st.SetClass(context.Background(), testNumber, "staff", "operator test", time.Now()); err != nil {
		t.Fatal(err)
	}
	held := <-done
	if !held.Held || !slices.Equal(held.Classes, []hostapi.ClassChange{cc(testNumber, "staff")}) {
		t.Fatalf("held pull answered %+v; want the class change", held)
	}
}

func TestClassMigrationKeepsFeed(t *testing.T) { eachStore(t, testClassMigrationKeepsFeed) }

// testClassMigrationKeepsFeed: a store made before classes, with deny
// changes in its feed (the newest deleted, so SQLite's AUTOINCREMENT mark
// is past the last row), migrates with every seq as it was (a terminal's
// cursor is one) and numbers on after the highest ever given; the feed
// then takes class changes, and still refuses a kind it does not know.
func testClassMigrationKeepsFeed(t *testing.T) {
	steps := &migrations
	if onPostgres(t) {
		steps = &postgresMigrations
	}
	all := *steps
	i := slices.IndexFunc(all, func(s string) bool { return strings.Contains(s, "'class'") })
	if i < 0 {
		t.Fatal("no migration adds the class kind")
	}
	*steps = all[:i]
	defer func() { *steps = all }()
	dsn := storeDSN(t, t.TempDir())
	st, err := Open(dsn)
	if err != nil {
		t.Fatal(err)
	}
	now := dbTime(time.Now())
	mustExec(t, st.db, `INSERT INTO cards (number, app_serial, holder, issued, initial_balance_fen, start_date, expiry_date)
		VALUES (?, '00000000000000000001', '', ?, 0, '20260101', '20300101')`, testNumber, now)
	for _, card := range []string{"3101000000999999", "3101000000999981", "3101000000999973"} {
		mustExec(t, st.db, `INSERT INTO changes (kind, card, denied, reason, time) VALUES ('deny', ?, 1, 'lost', ?)`, card, now)
	}
	mustExec(t, st.db, `DELETE FROM changes WHERE card = '3101000000999973'`)
	st.Close()

	*steps = all
	if st, err = Open(dsn); err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	r, err := st.pull(ctx, 0, 10)
	if err != nil || len(r.Deny) != 2 || r.Deny[1].Card != "3101000000999981" || r.NextCursor != "2" {
		t.Fatalf("the feed after the migration: %+v, %v", r, err)
	}
	if r, err = st.pull(ctx, 1, 10); err != nil || len(r.Deny) != 1 || r.Deny[0].Card != "3101000000999981" {
		t.Fatalf("from cursor 1 after the migration: %+v, %v", r, err)
	}
	if _, err := st.SetClass(ctx, testNumber, "staff", "operator test", time.Now()); err != nil {
		t.Fatal(err)
	}
	if r, err = st.pull(ctx, 2, 10); err != nil || !slices.Equal(r.Classes, []hostapi.ClassChange{cc(testNumber, "staff")}) || r.NextCursor != "4" {
		t.Fatalf("the class change after the migration: %+v, %v; want it at seq 4, after the deleted 3", r, err)
	}
	if _, err := st.db.Exec(`INSERT INTO changes (kind, card, time) VALUES ('bogus', ?, ?)`, testNumber, now); err == nil {
		t.Fatal("the feed took a change of an unknown kind")
	}
}

func cc(card, class string) hostapi.ClassChange { return hostapi.ClassChange{Card: card, Class: class} }
