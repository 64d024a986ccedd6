package host

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cardd/cardd/apdu/epurse"
	"github.com/cardd/cardd/hostapi"
)

// copyJournalRows is how many journal rows the fixture adds beyond those
// the API wrote: several batches of the copy.
const copyJournalRows = 2500

// populate fills e's SQLite store with a row in every table, through the
// store's own rules where a test helper drives them, and returns a pull
// cursor a terminal holds from before the copy.
func populate(t *testing.T, e *env) string {
	t.Helper()
	ctx := context.Background()
	now := time.Now()
	e.addTerminalB()
	e.mustCall(hostapi.PathHeartbeat, hostapi.HeartbeatRequest{Version: "test", QueueDepth: 3}, nil)

	// Credits in every state, with an applied, a void and an open
	// authorization, and a purse counter.
	consumed := e.addCredit(5000)
	li, resp := e.authorize(consumed, 5000)
	tac := e.credit(resp)
	e.mustCall(hostapi.PathLoadComplete, tacRequest(consumed, li.OnlineCounter, tac), nil)
	cancelled := e.addCredit(300)
	if err := e.st.CancelCredit(ctx, cancelled, "operator test", now); err != nil {
		t.Fatal(err)
	}
	open := e.addCredit(700)
	e.authorize(open, 700)
	e.authorize(open, 700) // voids the first
	var cursor hostapi.PullResponse
	e.mustCall(hostapi.PathPull, hostapi.PullRequest{}, &cursor)
	e.addCredit(1200)
	// The approval threshold (settings), a credit awaiting approval and an
	// approved one.
	if err := e.st.SetApprovalThreshold(ctx, 2000, "operator chief", now); err != nil {
		t.Fatal(err)
	}
	e.addCredit(2500)
	if err := e.st.ApproveCredit(ctx, e.addCredit(2600), "operator chief", "", now); err != nil {
		t.Fatal(err)
	}
	// A subsidy batch, with its card's credit bound to its purse and window.
	if _, _, err := e.st.AddSubsidy(ctx, NewSubsidy{ID: "copy-batch", AmountFen: 600, Purse: epurse.PurseEP, NotBefore: now, Expires: now.Add(time.Hour),
		Cards: []string{testNumber}}, "operator test", now); err != nil {
		t.Fatal(err)
	}

	// Deny, undeny, deny again: three changes and a row in deny.
	other := "6222020000000017"
	for _, step := range []func() error{
		func() error { _, err := e.st.Deny(ctx, other, "lost", "operator test", now); return err },
		func() error { return e.st.Undeny(ctx, other, "operator test", now) },
		func() error { _, err := e.st.Deny(ctx, "6222020000000025", "stolen", "operator test", now); return err },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.st.SetAccessList(ctx, []byte(accessList), "test", now); err != nil {
		t.Fatal(err)
	}

	// An M1 wallet with a credit and an applied load.
	m1, err := e.st.RegisterM1(ctx, "04A1B2C3", "李四", "operator test", now)
	if err != nil {
		t.Fatal(err)
	}
	m1Credit, err := e.st.AddCredit(ctx, m1.Number, 800, "cash", "operator test", now)
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, e.st.db, `INSERT INTO m1_loads (credit, card, terminal, ref, seq, old_balance_fen, amount_fen, time, state, created, closed)
		VALUES (?, ?, ?, 'ref-1', 41, 2500, 800, '20260101120000', 'applied', ?, ?)`, m1Credit.ID, m1.Number, testTerm, dbTime(now), dbTime(now))

	// A kiosk top-up and the sim provider's order of it.
	mustExec(t, e.st.db, `INSERT INTO topup_orders (id, terminal, key, card, amount_fen, provider, qr, state, created, expires)
		VALUES ('tp-1', ?, 'k1', ?, 2000, 'sim', 'http://pay/tp-1', 'unpaid', ?, ?)`, testTerm, testNumber, dbTime(now), dbTime(now.Add(time.Minute)))
	mustExec(t, e.st.db, `INSERT INTO paysim_orders (id, amount_fen, description, state, created) VALUES ('tp-1', 2000, '充值', 'unpaid', ?)`, dbTime(now))

	// A cashier's closed shift (班结) and the rows it counted.
	mustExec(t, e.st.db, `INSERT INTO shifts (terminal, shift, cashier, opened, closed, count, sum_fen, body, received)
		VALUES (?, 1, 'C007', '2026-12-04T11:00:00Z', '2026-12-04T13:00:00Z', 1, 1, '{}', ?)`, testTerm, dbTime(now))
	mustExec(t, e.st.db, `INSERT INTO shift_rows (terminal, shift, row_id) VALUES (?, 1, 'r-000000')`, testTerm)

	// Journal rows: a busy POS's purchases.
	tx, err := e.st.db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for i := range copyJournalRows {
		_, err := tx.Exec(`INSERT INTO journal (terminal, id, kind, state, card, purse, counter, balance_fen, amount_fen, credit_id, tac, detail, time, received, updated, term_serial)
			VALUES (?, ?, 'purchase', 'done', ?, 'EP', ?, ?, ?, '', 'A1B2C3D4', '{"item":"饭"}', ?, ?, ?, ?)`,
			testTerm, fmt.Sprintf("r-%06d", i), testNumber, i, 100000-i, 1+i%900, dbTime(now), dbTime(now), dbTime(now), i+1)
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	// The refund of a voided sale, the first of them.
	voided := e.proved(hostapi.JournalRow{ID: "r-000000", Card: testNumber, Purse: "EP", AmountFen: 1, TermSerial: 1, Time: now.Format(time.RFC3339)})
	mustExec(t, e.st.db, `UPDATE journal SET tac = ?, time = ? WHERE terminal = ? AND id = ?`, voided.TAC, voided.Time, testTerm, voided.ID)
	if _, _, err := e.st.refund(ctx, testTerm, voidRequest("v-1", voided, 1), e.keys, now); err != nil {
		t.Fatal(err)
	}
	// Balance alerts: a card's own threshold, which both purchases below
	// cross (an alert each, queued).
	e.setAlerts("http://127.0.0.1:1/hook", 0)
	if err := e.st.SetCardAlert(ctx, testNumber, 9000, false, "operator test", now); err != nil {
		t.Fatal(err)
	}
	// Reconciliation: two ED purchases uploaded with a counter and a PSAM
	// serial skipped between them (a gap each, moves, serials, books), and
	// an alarm acknowledged.
	for i, ctr := range []uint16{1, 3} {
		sale := purchaseRow(fmt.Sprint("ed-", i))
		sale.Purse, sale.Counter, sale.TermSerial, sale.PSAMTerminal = "ED", ctr, 5001+uint32(2*i), testPSAMHex
		e.upload(e.proved(sale))
	}
	list, err := e.st.Alarms(ctx, false)
	if err != nil || len(list) == 0 {
		t.Fatalf("alarms %v, %v", list, err)
	}
	if err := e.st.AckAlarm(ctx, list[0].ID, "operator test", "looked", now); err != nil {
		t.Fatal(err)
	}
	// A lost card's replacement, settled with its credit and a debt.
	mustExec(t, e.st.db, `INSERT INTO replacements (old, new, reported, deny_seq, replaced, settle_until, state, reported_fen, credit, credited_fen,
		settled, settled_why, debt_fen, actor, reason) VALUES ('6222020000000025', '6222020000000033', ?, 3, ?, ?, 'settled', 8320, 'cr-replaced', 7120, ?, 'window', 500, 'operator test', '')`,
		dbTime(now), dbTime(now), dbTime(now), dbTime(now))
	// A card's close (销户), closed: its refund due with the credits the
	// close cancelled. On the fixture's other card (the test card takes
	// credits after the copy, which a closed card refuses): a copy does
	// not ask whether the host would close an M1 wallet.
	mustExec(t, e.st.db, `INSERT INTO closes (card, state, operator, reason, requested, refund_fen, terminal, journal_id, closed, tac_check, credits_fen)
		VALUES (?, 'closed', 'operator test', 'graduated', ?, 4860, ?, 'r-000001', ?, 'ok', 300)`, m1.Number, dbTime(now), testTerm, dbTime(now))
	return cursor.NextCursor
}

func mustExec(t *testing.T, db *sql.DB, query string, args ...any) {
	t.Helper()
	if _, err := db.Exec(query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// dump is every row of every table, each as text, sorted: what the test
// compares between the stores, by its own reading, not the copy's.
func dump(t *testing.T, st *Store, tables []string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, table := range tables {
		rows, err := st.db.Query(`SELECT * FROM ` + table)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals, err := scanRow(rows, len(cols))
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			for i, v := range vals {
				if bs, ok := v.([]byte); ok {
					v = string(bs)
				}
				fmt.Fprintf(&b, "%s=%#v ", cols[i], v)
			}
			out[table] = append(out[table], b.String())
		}
		rows.Close()
		slices.Sort(out[table])
	}
	return out
}

// sqliteTables lists the tables of an SQLite store's schema.
func sqliteTables(t *testing.T, st *Store) []string {
	t.Helper()
	rows, err := st.db.Query(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\' ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	names, err := scanStrings(rows)
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// pullAll pulls from cursor to the end of the feed, as a terminal does.
func (e *env) pullAll(cursor string) (changes []string, next string) {
	e.t.Helper()
	for {
		var r hostapi.PullResponse
		e.mustCall(hostapi.PathPull, hostapi.PullRequest{Cursor: cursor}, &r)
		for _, d := range r.Deny {
			changes = append(changes, fmt.Sprintf("deny %s %v %s", d.Card, d.Denied, d.Reason))
		}
		for _, c := range r.Credits {
			changes = append(changes, fmt.Sprintf("credit %s %s %d", c.ID, c.State, c.AmountFen))
		}
		cursor = r.NextCursor
		if !r.More {
			return changes, cursor
		}
	}
}

// TestCopyStore: a populated SQLite host copied into PostgreSQL is the same
// row for row; a terminal pulling with a cursor from before the copy gets
// what it would have got from the SQLite host, then the changes made
// after, each once; new rows number on; a request replayed after the move
// is still refused.
func TestCopyStore(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	before := populate(t, e)
	wantPulled, end := e.pullAll(before)
	if len(wantPulled) < 4 {
		t.Fatalf("the fixture's feed after the cursor: %q", wantPulled)
	}
	// A signed request the SQLite host has seen, captured for a replay.
	body, _ := json.Marshal(hostapi.HeartbeatRequest{Version: "test"})
	at, nonce := time.Now(), newNonce()
	if status, b := e.send(e.signedRaw(hostapi.PathHeartbeat, body, testTerm, e.secret, at, nonce)); status != http.StatusOK {
		t.Fatalf("heartbeat: %d %s", status, b)
	}
	tables := sqliteTables(t, e.st)
	want := dump(t, e.st, tables)
	var maxIDs [4]int64
	for i, q := range []string{`SELECT max(seq) FROM credits`, `SELECT max(seq) FROM changes`, `SELECT max(id) FROM ledger`, `SELECT max(id) FROM authorizations`} {
		if err := e.st.db.QueryRow(q).Scan(&maxIDs[i]); err != nil {
			t.Fatal(err)
		}
	}

	pg, err := Open(postgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	report, err := CopyStore(ctx, e.st, pg, CopyOptions{BatchRows: 400})
	if err != nil {
		pg.Close()
		t.Fatal(err)
	}
	var printed strings.Builder
	report.Write(&printed)
	t.Logf("report:\n%s", printed.String())
	if !report.OK() || report.SchemaVersion != schemaVersion || report.Cards != 2 {
		t.Fatalf("report: %+v", report)
	}

	// Every table of the schema was copied and checked, and the fixture
	// put rows in each: a table added to the migrations fails here until
	// the fixture fills it (and the copy shows it copied).
	var reported []string
	for _, tc := range report.Tables {
		reported = append(reported, tc.Table)
		if tc.SourceRows == 0 || tc.SourceRows != tc.TargetRows || int(tc.SourceRows) != len(want[tc.Table]) {
			t.Errorf("table %s: %d rows copied of %d, the fixture has %d", tc.Table, tc.TargetRows, tc.SourceRows, len(want[tc.Table]))
		}
	}
	slices.Sort(reported)
	if !slices.Equal(reported, tables) {
		t.Fatalf("copied tables %v, the schema has %v", reported, tables)
	}
	var pgTables []string
	rows, err := pg.db.Query(`SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_name <> 'schema_version' ORDER BY table_name`)
	if err != nil {
		t.Fatal(err)
	}
	if pgTables, err = scanStrings(rows); err != nil || !slices.Equal(pgTables, tables) {
		t.Fatalf("PostgreSQL tables %v (%v), SQLite %v", pgTables, err, tables)
	}
	got := dump(t, pg, tables)
	for _, table := range tables {
		if !slices.Equal(got[table], want[table]) {
			t.Errorf("table %s differs after the copy:\nsqlite:   %q\npostgres: %q", table, want[table], got[table])
		}
	}

	// The terminal moves to the PostgreSQL host.
	e.close()
	e.st, e.dsn = pg, pg.path
	e.srv = httptest.NewServer(NewHandler(pg, e.keys, e.opt))
	e.wantUnauthorized(e.signedRaw(hostapi.PathHeartbeat, body, testTerm, e.secret, at, nonce), "replayed")
	if pulled, next := e.pullAll(before); !slices.Equal(pulled, wantPulled) || next != end {
		t.Fatalf("pull from the old cursor on PostgreSQL: %q to %s, the SQLite host gave %q to %s", pulled, next, wantPulled, end)
	}
	id := e.addCredit(900)
	e.authorize(id, 900)
	if pulled, _ := e.pullAll(end); !slices.Equal(pulled, []string{"credit " + id + " pending 900"}) {
		t.Fatalf("after the copy a new credit pulled as %q", pulled)
	}
	for i, q := range []string{`SELECT seq FROM credits WHERE id = ?`, `SELECT seq FROM changes WHERE credit = ?`, `SELECT id FROM ledger WHERE credit = ? AND event = 'added'`, `SELECT id FROM authorizations WHERE credit = ?`} {
		var n int64
		if err := pg.db.QueryRow(q, id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != maxIDs[i]+1 {
			t.Errorf("%s: %d, want %d (the SQLite host's next)", q, n, maxIDs[i]+1)
		}
	}

	// A second copy into the same database is refused, naming a table,
	// and changes nothing.
	again := dump(t, pg, tables)
	src, err := Open(filepath.Join(e.dir, DBFile))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if _, err := CopyStore(ctx, src, pg, CopyOptions{}); !errors.Is(err, ErrTargetNotEmpty) || !strings.Contains(err.Error(), "table access_list has rows") {
		t.Fatalf("copy into a non-empty store: %v", err)
	}
	if after := dump(t, pg, tables); fmt.Sprint(after) != fmt.Sprint(again) {
		t.Fatal("a refused copy changed the target")
	}
}

// newCopyPair is a populated SQLite store and an empty PostgreSQL one.
func newCopyPair(t *testing.T) (*env, *Store) {
	t.Helper()
	e := newEnv(t, Options{})
	populate(t, e)
	pg, err := Open(postgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pg.Close() })
	return e, pg
}

// wantEmpty fails unless every table of st is empty but for the rows its
// migrations seeded (the built-in products).
func wantEmpty(t *testing.T, st *Store, tables []string) {
	t.Helper()
	for table, rows := range dump(t, st, tables) {
		if _, seeded := schemaSeeds[table]; seeded {
			var n int
			if err := st.db.QueryRow(`SELECT count(*) FROM ` + table + ` WHERE NOT (` + schemaSeeds[table] + `)`).Scan(&n); err != nil || n > 0 {
				t.Fatalf("table %s has %d rows beyond its seeds after a failed copy (%v)", table, n, err)
			}
			continue
		}
		if len(rows) > 0 {
			t.Fatalf("table %s has %d rows after a failed copy", table, len(rows))
		}
	}
}

// TestCopyStoreRefusesOtherVersions: stores at different schema versions
// are refused, saying both, before anything is written.
func TestCopyStoreRefusesOtherVersions(t *testing.T) {
	e, pg := newCopyPair(t)
	mustExec(t, e.st.db, fmt.Sprintf(`PRAGMA user_version = %d`, schemaVersion-1))
	_, err := CopyStore(context.Background(), e.st, pg, CopyOptions{})
	var mm *SchemaMismatchError
	if !errors.As(err, &mm) || mm.SourceVersion != schemaVersion-1 || mm.TargetVersion != schemaVersion ||
		!strings.Contains(err.Error(), fmt.Sprintf("source store is at schema version %d, the target at %d", schemaVersion-1, schemaVersion)) {
		t.Fatalf("copy across versions: %v", err)
	}
	wantEmpty(t, pg, sqliteTables(t, e.st))
}

// TestCopyStoreRefusesOtherSchemas: at one version, a table only one side
// has is refused by name.
func TestCopyStoreRefusesOtherSchemas(t *testing.T) {
	e, pg := newCopyPair(t)
	mustExec(t, pg.db, `CREATE TABLE added_later (id BIGINT PRIMARY KEY)`)
	_, err := CopyStore(context.Background(), e.st, pg, CopyOptions{})
	var mm *SchemaMismatchError
	if !errors.As(err, &mm) || !strings.Contains(err.Error(), "added_later") {
		t.Fatalf("copy into another schema: %v", err)
	}
	wantEmpty(t, pg, sqliteTables(t, e.st))
}

// TestCopyStoreCatchesADifference: a target that changes what it is given
// (here a trigger adding a fen to every journal amount) fails the copy
// with the table and the card named, and nothing stays written.
func TestCopyStoreCatchesADifference(t *testing.T) {
	e, pg := newCopyPair(t)
	mustExec(t, pg.db, `CREATE FUNCTION skim() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.amount_fen := NEW.amount_fen + 1; RETURN NEW; END $$`)
	mustExec(t, pg.db, `CREATE TRIGGER skim BEFORE INSERT ON journal FOR EACH ROW EXECUTE FUNCTION skim()`)
	report, err := CopyStore(context.Background(), e.st, pg, CopyOptions{})
	if !errors.Is(err, ErrCopyMismatch) || report == nil || report.OK() {
		t.Fatalf("copy through a skimming target: %v", err)
	}
	var printed strings.Builder
	report.Write(&printed)
	out := printed.String()
	for _, want := range []string{"journal ", "DIFFER", "amount_fen", "card 3101********3456 journal purchase"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, testNumber) {
		t.Errorf("report shows a whole card number:\n%s", out)
	}
	wantEmpty(t, pg, sqliteTables(t, e.st))
}
