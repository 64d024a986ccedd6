package host

import (
	"context"
	"database/sql"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mattn/go-sqlite3"

	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/internal/queryplan"
)

var (
	hostRecorder         = &queryplan.Recorder{SQLiteDriver: sqlite3.SQLiteDriver{}}
	registerHostRecorder sync.Once
)

// loadRequests are the requests of a load, as a terminal sends them while
// the card waits: each prepares what it needs (not recorded), then sends
// the request whose statements are checked. An M1 wallet's load is there
// too: its authorization holds the card as an e-purse's does.
var loadRequests = []struct {
	name    string
	prepare func(e *env) any // the request body
	path    string
	// after settles what the request left open, when a next one would
	// be refused for it (an M1 wallet has one open load at most).
	after func(e *env, body any)
}{
	{"card credits", func(e *env) any { return hostapi.CardCreditsRequest{Card: testNumber} }, hostapi.PathCardCredits, nil},
	{"authorize", func(e *env) any {
		id := e.addCredit(100)
		return authorizeRequest(id, e.initLoad(100), 100, loadTime())
	}, hostapi.PathLoadAuthorize, nil},
	{"authorize again (the same MAC2)", func(e *env) any {
		id := e.addCredit(100)
		req := authorizeRequest(id, e.initLoad(100), 100, loadTime())
		e.mustCall(hostapi.PathLoadAuthorize, req, nil)
		return req
	}, hostapi.PathLoadAuthorize, nil},
	{"complete with the TAC", func(e *env) any {
		id := e.addCredit(100)
		li, resp := e.authorize(id, 100)
		return tacRequest(id, li.OnlineCounter, e.credit(resp))
	}, hostapi.PathLoadComplete, nil},
	{"complete not applied", func(e *env) any {
		id := e.addCredit(100)
		li, _ := e.authorize(id, 100)
		return probeRequest(id, li.OnlineCounter, e.initLoad(0), 0)
	}, hostapi.PathLoadComplete, nil},
	{"M1 authorize", func(e *env) any {
		id := e.addM1Credit(100)
		return m1Authorize(id, newRef(), 1000, 100)
	}, hostapi.PathLoadAuthorize, func(e *env, body any) {
		req := body.(hostapi.LoadAuthorizeRequest)
		e.mustCall(hostapi.PathLoadComplete, m1Complete(req.CreditID, req.Ref, 1000, true), nil)
	}},
	{"M1 complete", func(e *env) any {
		id, ref := e.addM1Credit(100), newRef()
		e.mustCall(hostapi.PathLoadAuthorize, m1Authorize(id, ref, 1000, 100), nil)
		return m1Complete(id, ref, 1100, false)
	}, hostapi.PathLoadComplete, nil},
}

// newRef is a fresh M1 authorization ref.
func newRef() string { return strings.ToUpper(newNonce()[:16]) }

// TestLoadQueriesSearchAnIndex asks SQLite for the plan of every statement
// the host runs for the requests of a load (authentication included) and
// fails on a full scan of a table: the card waits for each answer, and the
// host's tables only grow (issue 13 item 4, as the terminal's
// TestTapQueriesSearchAnIndex).
func TestLoadQueriesSearchAnIndex(t *testing.T) {
	registerHostRecorder.Do(func() { sql.Register("cardhost-recorded", hostRecorder) })
	e := newEnv(t, Options{})
	ctx := context.Background()
	if _, err := e.st.RegisterM1(ctx, "04a1b2c3", "", "operator test", time.Now()); err != nil {
		t.Fatal(err)
	}
	// Reopen the host's database through the recording driver.
	e.close()
	st, err := openDriver("cardhost-recorded", filepath.Join(e.dir, DBFile))
	if err != nil {
		t.Fatal(err)
	}
	e.st, e.srv = st, httptest.NewServer(NewHandler(st, e.keys, e.opt))
	// Some loads of every kind first, so that no table is empty when the
	// plans are asked for.
	for range 20 {
		for _, r := range loadRequests {
			body := r.prepare(e)
			e.mustCall(r.path, body, nil)
			if r.after != nil {
				r.after(e, body)
			}
		}
	}
	for _, r := range loadRequests {
		body := r.prepare(e)
		hostRecorder.Take()
		e.mustCall(r.path, body, nil)
		stmts := hostRecorder.Take()
		if r.after != nil {
			r.after(e, body)
		}
		if len(stmts) == 0 {
			t.Fatalf("%s: no statement recorded: the recording driver is not in use", r.name)
		}
		for _, q := range stmts {
			scan, err := queryplan.FullScans(e.st.db, q)
			if err != nil {
				t.Fatal(err)
			}
			if len(scan) > 0 {
				t.Errorf("%s: %s\n\tscans: %s", r.name, queryplan.OneLine(q), strings.Join(scan, "; "))
			}
		}
	}
}
