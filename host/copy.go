package host

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/big"
	"slices"
	"strconv"
	"strings"

	"github.com/cardd/cardd/internal/migrate"
	"github.com/cardd/cardd/redact"
)

// Moving a host up: CopyStore copies every row of an SQLite host store into
// an empty PostgreSQL one, keys and ids as they are, in one PostgreSQL
// transaction that commits only when the copy is shown to equal its source.
// The pull cursor a terminal holds is a changes.seq, so with the seqs kept
// and the sequence moved past them, a terminal pointed at the new host
// (the same URL, behind which the instances now run) pulls on from where
// it was: nothing repeated, nothing skipped.
//
// The tables, their columns and the order they are filled in are read from
// the two schemas, not listed here: a table added to the migrations is
// copied and checked without a change to this file, and two schemas that
// differ are refused before anything is written.

// ErrTargetNotEmpty is wrapped when the PostgreSQL store already holds rows:
// a copy never merges into a live host.
var ErrTargetNotEmpty = errors.New("the target store is not empty")

// ErrCopyMismatch is wrapped when the copy, read back, differs from its
// source: the transaction was rolled back and the report says where.
var ErrCopyMismatch = errors.New("the copy differs from its source")

// SchemaMismatchError refuses a copy between stores at different schema
// versions, or whose tables or columns differ.
type SchemaMismatchError struct {
	SourceVersion, TargetVersion int
	Detail                       string // what differs, when the versions agree
}

// Error says both versions and what differs.
func (e *SchemaMismatchError) Error() string {
	if e.SourceVersion != e.TargetVersion {
		return fmt.Sprintf("the source store is at schema version %d, the target at %d: run the same cardhost on both", e.SourceVersion, e.TargetVersion)
	}
	return fmt.Sprintf("both stores are at schema version %d, but their schemas differ: %s", e.SourceVersion, e.Detail)
}

// CopyOptions tune CopyStore.
type CopyOptions struct {
	// BatchRows is how many rows one INSERT carries (0: 1000). A batch's
	// parameters stay under PostgreSQL's 65535.
	BatchRows int
}

// CopyReport is what CopyStore found, table by table and card by card.
type CopyReport struct {
	SchemaVersion int
	Tables        []TableCopy
	Cards         int      // cards whose credits, journal and ledger were compared
	CardDiffs     []string // one line per difference, card numbers masked
	Sequences     []SequenceMove
}

// TableCopy is one table's rows and checks on both sides.
type TableCopy struct {
	Table                  string
	SourceRows, TargetRows int64
	// Sums are the totals of every integer column (money, counters, ids),
	// as decimal text: a sum never overflows in the comparison.
	Sums []ColumnSum
	// SourceDigest and TargetDigest sum a hash of every row, in any
	// order: equal only when every value of every row arrived.
	SourceDigest, TargetDigest string
}

// ColumnSum is one integer column's total on both sides.
type ColumnSum struct {
	Column         string
	Source, Target string
}

// SequenceMove is a sequence set past the largest id copied, so the next
// row the host writes gets Next.
type SequenceMove struct {
	Table, Column string
	Next          int64
}

// OK reports whether the table's copy equals its source.
func (t TableCopy) OK() bool {
	if t.SourceRows != t.TargetRows || t.SourceDigest != t.TargetDigest {
		return false
	}
	for _, s := range t.Sums {
		if s.Source != s.Target {
			return false
		}
	}
	return true
}

// OK reports whether every table and every card agree.
func (r *CopyReport) OK() bool {
	for _, t := range r.Tables {
		if !t.OK() {
			return false
		}
	}
	return len(r.CardDiffs) == 0
}

// Write prints the report for an operator: one line per table, then the
// cards and the sequences.
func (r *CopyReport) Write(w io.Writer) {
	fmt.Fprintf(w, "schema version %d\n%-16s %10s %10s  %-6s %-6s\n", r.SchemaVersion, "table", "source", "target", "sums", "rows")
	for _, t := range r.Tables {
		sums, rows := "ok", "ok"
		var bad []string
		for _, s := range t.Sums {
			if s.Source != s.Target {
				sums = "DIFFER"
				bad = append(bad, fmt.Sprintf("%s %s != %s", s.Column, s.Source, s.Target))
			}
		}
		if t.SourceDigest != t.TargetDigest {
			rows = "DIFFER"
		}
		fmt.Fprintf(w, "%-16s %10d %10d  %-6s %-6s", t.Table, t.SourceRows, t.TargetRows, sums, rows)
		if len(bad) > 0 {
			fmt.Fprintf(w, " (%s)", strings.Join(bad, "; "))
		}
		fmt.Fprintln(w)
	}
	if len(r.CardDiffs) == 0 {
		fmt.Fprintf(w, "cards: %d compared (credits by state, journal amounts, ledger), all equal\n", r.Cards)
	} else {
		fmt.Fprintf(w, "cards: %d compared, %d differences:\n", r.Cards, len(r.CardDiffs))
		for _, d := range r.CardDiffs {
			fmt.Fprintf(w, "  %s\n", d)
		}
	}
	for _, s := range r.Sequences {
		fmt.Fprintf(w, "next %s.%s: %d\n", s.Table, s.Column, s.Next)
	}
}

// feedSequences are the target's sequences that no identity column owns,
// and the column each numbers: changes_seq gives changes.seq under the
// feed's commit-order lock (schema_postgres.go).
var feedSequences = map[string][2]string{"changes_seq": {"changes", "seq"}}

// CopyStore copies the SQLite store from into the empty PostgreSQL store
// to and checks the copy: per table the row count, the sum of every
// integer column and a digest of every row; per card the credits by state,
// the journal's amounts and the ledger. Any difference rolls the copy back
// and is returned as ErrCopyMismatch with the report. Then each identity
// column and the change feed's sequence are moved past the largest value
// copied, so the host numbers on where the SQLite host stopped.
//
// The source is read in one transaction that holds SQLite's write lock, so
// the copy is one instant of it; but a host process still running on the
// file would go on writing after the copy ends, and that would be lost:
// stop it first (SQLiteHolder, asked before from is opened, names such a
// process). Nothing is written to the source.
func CopyStore(ctx context.Context, from, to *Store, opts CopyOptions) (*CopyReport, error) {
	if from.postgres || !to.postgres {
		return nil, errors.New("copy: the source must be an SQLite store and the target a PostgreSQL one")
	}
	if opts.BatchRows <= 0 {
		opts.BatchRows = 1000
	}
	src, err := from.db.BeginTx(ctx, nil) // IMMEDIATE: no writer meanwhile
	if err != nil {
		return nil, fmt.Errorf("copy: source %s: %w", from.path, err)
	}
	defer src.Rollback()
	dst, err := to.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("copy: target %s: %w", to.path, err)
	}
	defer dst.Rollback()

	c := &copier{ctx: ctx, src: src, dst: dst, batch: opts.BatchRows}
	report, err := c.run()
	if err != nil {
		return report, err
	}
	if err := dst.Commit(); err != nil {
		return report, fmt.Errorf("copy: commit: %w", err)
	}
	return report, nil
}

// copier is one CopyStore: the two transactions and what it learnt of the
// schemas.
type copier struct {
	ctx      context.Context
	src, dst *sql.Tx
	batch    int
	tables   []*tableSchema // in foreign key order: referenced tables first
}

// tableSchema is one table as both stores have it.
type tableSchema struct {
	name     string
	cols     []string
	ints     []string        // integer columns: summed
	bytea    map[string]bool // target columns that take bytes
	identity []string        // target identity columns
	refs     []string        // tables its foreign keys reference
}

func (c *copier) run() (*CopyReport, error) {
	sv, err := migrate.UserVersion{}.Get(c.ctx, c.src)
	if err != nil {
		return nil, fmt.Errorf("copy: source: %w", err)
	}
	tv, err := pgVersion{}.Get(c.ctx, c.dst) // also waits for a migration under way
	if err != nil {
		return nil, fmt.Errorf("copy: target: %w", err)
	}
	if sv != tv {
		return nil, &SchemaMismatchError{SourceVersion: sv, TargetVersion: tv}
	}
	if err := c.readSchemas(sv); err != nil {
		return nil, err
	}
	if err := c.lockEmptyTarget(); err != nil {
		return nil, err
	}
	report := &CopyReport{SchemaVersion: sv}
	for _, t := range c.tables {
		tc, err := c.copyTable(t)
		if err != nil {
			return report, err
		}
		report.Tables = append(report.Tables, tc)
	}
	if err := c.compareCards(report); err != nil {
		return report, err
	}
	if !report.OK() {
		return report, fmt.Errorf("copy: %w: nothing was written to the target", ErrCopyMismatch)
	}
	if err := c.moveSequences(report); err != nil {
		return report, err
	}
	for _, t := range c.tables {
		// A new database has no statistics: the planner would guess
		// until autovacuum came by.
		if _, err := c.dst.ExecContext(c.ctx, `ANALYZE `+quoteIdent(t.name)); err != nil {
			return report, fmt.Errorf("copy: analyze %s: %w", t.name, err)
		}
	}
	return report, nil
}

// readSchemas learns the tables from both stores and refuses any
// difference of table or column names.
func (c *copier) readSchemas(version int) error {
	srcTables, err := queryStrings(c.ctx, c.src, `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\' ORDER BY name`)
	if err != nil {
		return fmt.Errorf("copy: source tables: %w", err)
	}
	dstTables, err := queryStrings(c.ctx, c.dst, `SELECT table_name FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' AND table_name <> 'schema_version' ORDER BY table_name`)
	if err != nil {
		return fmt.Errorf("copy: target tables: %w", err)
	}
	mismatch := func(detail string) error {
		return &SchemaMismatchError{SourceVersion: version, TargetVersion: version, Detail: detail}
	}
	if !slices.Equal(srcTables, dstTables) {
		return mismatch(fmt.Sprintf("tables %v in the source, %v in the target", srcTables, dstTables))
	}
	byName := map[string]*tableSchema{}
	for _, name := range srcTables {
		t, err := c.readTable(name)
		if err != nil {
			return err
		}
		dstCols, err := queryStrings(c.ctx, c.dst, `SELECT column_name FROM information_schema.columns
			WHERE table_schema = current_schema() AND table_name = ? ORDER BY column_name`, name)
		if err != nil {
			return fmt.Errorf("copy: target columns of %s: %w", name, err)
		}
		if srcCols := slices.Sorted(slices.Values(t.cols)); !slices.Equal(srcCols, dstCols) {
			return mismatch(fmt.Sprintf("table %s has columns %v in the source, %v in the target", name, srcCols, dstCols))
		}
		byName[name] = t
	}
	c.tables, err = foreignKeyOrder(byName)
	return err
}

// readTable reads one table's columns and foreign keys from the source and
// the types of its columns from the target.
func (c *copier) readTable(name string) (*tableSchema, error) {
	t := &tableSchema{name: name, bytea: map[string]bool{}}
	rows, err := c.src.QueryContext(c.ctx, `SELECT name FROM pragma_table_info(?) ORDER BY cid`, name)
	if err != nil {
		return nil, fmt.Errorf("copy: source columns of %s: %w", name, err)
	}
	t.cols, err = scanStrings(rows)
	if err != nil {
		return nil, fmt.Errorf("copy: source columns of %s: %w", name, err)
	}
	if t.refs, err = queryStrings(c.ctx, c.src, `SELECT DISTINCT "table" FROM pragma_foreign_key_list(?) ORDER BY 1`, name); err != nil {
		return nil, fmt.Errorf("copy: foreign keys of %s: %w", name, err)
	}
	rows, err = c.dst.QueryContext(c.ctx, `SELECT column_name, data_type, is_identity FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position`, name)
	if err != nil {
		return nil, fmt.Errorf("copy: target columns of %s: %w", name, err)
	}
	defer rows.Close()
	for rows.Next() {
		var col, typ, ident string
		if err := rows.Scan(&col, &typ, &ident); err != nil {
			return nil, err
		}
		switch typ {
		case "bigint", "integer", "smallint":
			t.ints = append(t.ints, col)
		case "bytea":
			t.bytea[col] = true
		}
		if ident == "YES" {
			t.identity = append(t.identity, col)
		}
	}
	return t, rows.Err()
}

// foreignKeyOrder sorts the tables so that each comes after every table it
// references: the target's foreign keys are checked row by row.
func foreignKeyOrder(byName map[string]*tableSchema) ([]*tableSchema, error) {
	var out []*tableSchema
	placed := map[string]bool{}
	for len(out) < len(byName) {
		progress := false
		for _, name := range slices.Sorted(maps.Keys(byName)) {
			t := byName[name]
			if placed[name] || slices.ContainsFunc(t.refs, func(r string) bool { return r != name && !placed[r] }) {
				continue
			}
			placed[name], progress = true, true
			out = append(out, t)
		}
		if !progress {
			return nil, errors.New("copy: the tables' foreign keys form a cycle")
		}
	}
	return out, nil
}

// lockEmptyTarget locks every target table against writers (a host
// instance started too early waits, bounded by its lock_timeout) and then
// refuses a table that holds a row.
func (c *copier) lockEmptyTarget() error {
	names := make([]string, len(c.tables))
	for i, t := range c.tables {
		names[i] = quoteIdent(t.name)
	}
	if _, err := c.dst.ExecContext(c.ctx, `LOCK TABLE `+strings.Join(names, ", ")+` IN EXCLUSIVE MODE`); err != nil {
		return fmt.Errorf("copy: locking the target's tables: %w", err)
	}
	for _, t := range c.tables {
		var rows bool
		where := ""
		if seed, ok := schemaSeeds[t.name]; ok {
			where = ` WHERE NOT (` + seed + `)`
		}
		if err := c.dst.QueryRowContext(c.ctx, `SELECT EXISTS (SELECT 1 FROM `+quoteIdent(t.name)+where+`)`).Scan(&rows); err != nil {
			return fmt.Errorf("copy: target %s: %w", t.name, err)
		}
		if rows {
			return fmt.Errorf("copy: %w: table %s has rows; copy only into a new database (nothing was changed)", ErrTargetNotEmpty, t.name)
		}
	}
	// The rows the migrations seeded come from the source, as it holds
	// them (edited, maybe): the target's go.
	for name, seed := range schemaSeeds {
		if _, err := c.dst.ExecContext(c.ctx, `DELETE FROM `+quoteIdent(name)+` WHERE `+seed); err != nil {
			return fmt.Errorf("copy: target %s: %w", name, err)
		}
	}
	return nil
}

// schemaSeeds are the rows a new database holds from its migrations, per
// table: an empty target may have them.
var schemaSeeds = map[string]string{
	"products": `actor = 'schema'`,
}

// copyTable copies one table in batches and compares the two sides.
func (c *copier) copyTable(t *tableSchema) (TableCopy, error) {
	tc := TableCopy{Table: t.name}
	cols := make([]string, len(t.cols))
	for i, col := range t.cols {
		cols[i] = quoteIdent(col)
	}
	list := strings.Join(cols, ", ")
	rows, err := c.src.QueryContext(c.ctx, `SELECT `+list+` FROM `+quoteIdent(t.name))
	if err != nil {
		return tc, fmt.Errorf("copy: reading %s: %w", t.name, err)
	}
	defer rows.Close()
	var digest rowDigest
	batch := make([]any, 0, c.batch*len(cols))
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		n := len(batch) / len(cols)
		row := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ") + ")"
		q := `INSERT INTO ` + quoteIdent(t.name) + ` (` + list + `) VALUES ` + strings.TrimSuffix(strings.Repeat(row+", ", n), ", ")
		if _, err := c.dst.ExecContext(c.ctx, q, batch...); err != nil {
			return fmt.Errorf("copy: writing %s: %w", t.name, err)
		}
		batch = batch[:0]
		return nil
	}
	for rows.Next() {
		vals, err := scanRow(rows, len(cols))
		if err != nil {
			return tc, fmt.Errorf("copy: reading %s: %w", t.name, err)
		}
		if err := digest.add(vals); err != nil {
			return tc, fmt.Errorf("copy: %s: %w", t.name, err)
		}
		for i, v := range vals {
			// SQLite keeps what it was given in a BLOB column; PostgreSQL
			// would read a string for bytea as its escaped text form.
			if s, ok := v.(string); ok && t.bytea[t.cols[i]] {
				vals[i] = []byte(s)
			}
		}
		batch = append(batch, vals...)
		tc.SourceRows++
		if len(batch) >= c.batch*len(cols) {
			if err := flush(); err != nil {
				return tc, err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return tc, fmt.Errorf("copy: reading %s: %w", t.name, err)
	}
	if err := flush(); err != nil {
		return tc, err
	}
	tc.SourceDigest = digest.String()
	return tc, c.compareTable(t, &tc, list)
}

// compareTable reads the copy back: its count and sums from each side's
// own SQL, its digest from its rows.
func (c *copier) compareTable(t *tableSchema, tc *TableCopy, list string) error {
	// CAST AS TEXT on both dialects: PostgreSQL's SUM of a bigint is a
	// numeric, SQLite's an integer; text compares them exactly.
	sel := `SELECT count(*)`
	for _, col := range t.ints {
		sel += `, CAST(COALESCE(SUM(` + quoteIdent(col) + `), 0) AS TEXT)`
	}
	sel += ` FROM ` + quoteIdent(t.name)
	src, err := scanAggregates(c.ctx, c.src, sel, len(t.ints))
	if err != nil {
		return fmt.Errorf("copy: source sums of %s: %w", t.name, err)
	}
	dst, err := scanAggregates(c.ctx, c.dst, sel, len(t.ints))
	if err != nil {
		return fmt.Errorf("copy: target sums of %s: %w", t.name, err)
	}
	if src[0] != strconv.FormatInt(tc.SourceRows, 10) {
		return fmt.Errorf("copy: %s: read %d rows, the source counts %s", t.name, tc.SourceRows, src[0])
	}
	tc.TargetRows, _ = strconv.ParseInt(dst[0], 10, 64)
	for i, col := range t.ints {
		tc.Sums = append(tc.Sums, ColumnSum{Column: col, Source: src[i+1], Target: dst[i+1]})
	}
	rows, err := c.dst.QueryContext(c.ctx, `SELECT `+list+` FROM `+quoteIdent(t.name))
	if err != nil {
		return fmt.Errorf("copy: reading back %s: %w", t.name, err)
	}
	defer rows.Close()
	var digest rowDigest
	for rows.Next() {
		vals, err := scanRow(rows, len(t.cols))
		if err != nil {
			return fmt.Errorf("copy: reading back %s: %w", t.name, err)
		}
		if err := digest.add(vals); err != nil {
			return fmt.Errorf("copy: %s: %w", t.name, err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("copy: reading back %s: %w", t.name, err)
	}
	tc.TargetDigest = digest.String()
	return nil
}

func scanAggregates(ctx context.Context, tx *sql.Tx, query string, n int) ([]string, error) {
	out := make([]string, n+1)
	ptrs := make([]any, n+1)
	for i := range out {
		ptrs[i] = &out[i]
	}
	return out, tx.QueryRowContext(ctx, query).Scan(ptrs...)
}

// cardChecks are the per-card totals compared on both sides: each query
// gives a card, a label and a value.
var cardChecks = []string{
	`SELECT card, 'credits ' || state, CAST(count(*) AS TEXT) || ' / ' || CAST(SUM(amount_fen) AS TEXT) FROM credits GROUP BY card, state`,
	`SELECT card, 'journal ' || kind, CAST(count(*) AS TEXT) || ' / ' || CAST(SUM(amount_fen) AS TEXT) FROM journal GROUP BY card, kind`,
	`SELECT card, 'ledger', CAST(count(*) AS TEXT) || ' / ' || CAST(COALESCE(SUM(amount_fen), 0) AS TEXT) FROM ledger GROUP BY card`,
}

// compareCards compares each card's credits by state, journal amounts by
// kind and ledger between the two sides.
func (c *copier) compareCards(report *CopyReport) error {
	if err := c.src.QueryRowContext(c.ctx, `SELECT count(*) FROM cards`).Scan(&report.Cards); err != nil {
		return fmt.Errorf("copy: counting cards: %w", err)
	}
	for _, q := range cardChecks {
		src, err := cardTotals(c.ctx, c.src, q)
		if err != nil {
			return fmt.Errorf("copy: source per card: %w", err)
		}
		dst, err := cardTotals(c.ctx, c.dst, q)
		if err != nil {
			return fmt.Errorf("copy: target per card: %w", err)
		}
		for _, k := range slices.Sorted(maps.Keys(src)) {
			if src[k] != dst[k] {
				report.CardDiffs = append(report.CardDiffs, fmt.Sprintf("%s: source %s, target %s", k, src[k], orNone(dst[k])))
			}
		}
		for _, k := range slices.Sorted(maps.Keys(dst)) {
			if _, ok := src[k]; !ok {
				report.CardDiffs = append(report.CardDiffs, fmt.Sprintf("%s: source none, target %s", k, dst[k]))
			}
		}
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// cardTotals runs one of cardChecks: "card 3101…3456 credits pending" ->
// "2 / 5000" (count / sum).
func cardTotals(ctx context.Context, tx *sql.Tx, query string) (map[string]string, error) {
	rows, err := tx.QueryContext(ctx, query)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var card, label, v string
		if err := rows.Scan(&card, &label, &v); err != nil {
			return nil, err
		}
		out["card "+redact.CardNumber(card)+" "+label] = v
	}
	return out, rows.Err()
}

// moveSequences sets every identity column's sequence and the change feed's
// past the largest value copied. It refuses a sequence it cannot place: a
// host that drew an id already copied would fail its inserts, or worse,
// hand a terminal a change seq below its cursor.
func (c *copier) moveSequences(report *CopyReport) error {
	type target struct{ seq, table, col string }
	var targets []target
	for _, t := range c.tables {
		for _, col := range t.identity {
			var seq string
			if err := c.dst.QueryRowContext(c.ctx, `SELECT pg_get_serial_sequence(?, ?)`, quoteIdent(t.name), col).Scan(&seq); err != nil {
				return fmt.Errorf("copy: the sequence of %s.%s: %w", t.name, col, err)
			}
			targets = append(targets, target{seq, t.name, col})
		}
	}
	free, err := queryStrings(c.ctx, c.dst, `SELECT s.relname FROM pg_class s JOIN pg_namespace n ON n.oid = s.relnamespace
		WHERE s.relkind = 'S' AND n.nspname = current_schema()
		AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = s.oid AND d.deptype IN ('a', 'i'))
		ORDER BY 1`)
	if err != nil {
		return fmt.Errorf("copy: the target's sequences: %w", err)
	}
	for _, name := range free {
		tc, ok := feedSequences[name]
		if !ok {
			return fmt.Errorf("copy: sequence %s: this cardhost does not know which column it numbers, so it cannot move it past the copy", name)
		}
		targets = append(targets, target{quoteIdent(name), tc[0], tc[1]})
	}
	// SQLite's AUTOINCREMENT never hands out a key again, even one whose
	// row is gone; nor will the copy.
	used := map[string]int64{}
	rows, err := c.src.QueryContext(c.ctx, `SELECT name, seq FROM sqlite_sequence`)
	if err != nil {
		return fmt.Errorf("copy: source sqlite_sequence: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		var seq int64
		if err := rows.Scan(&name, &seq); err != nil {
			return fmt.Errorf("copy: source sqlite_sequence: %w", err)
		}
		used[name] = seq
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("copy: source sqlite_sequence: %w", err)
	}
	for _, s := range targets {
		var copied sql.NullInt64
		if err := c.dst.QueryRowContext(c.ctx, `SELECT max(`+quoteIdent(s.col)+`) FROM `+quoteIdent(s.table)).Scan(&copied); err != nil {
			return fmt.Errorf("copy: largest %s.%s: %w", s.table, s.col, err)
		}
		last := max(copied.Int64, used[s.table])
		if last > 0 {
			// setval(last): the next value drawn is last+1.
			if _, err := c.dst.ExecContext(c.ctx, `SELECT setval(?::regclass, ?)`, s.seq, last); err != nil {
				return fmt.Errorf("copy: moving %s past %s.%s: %w", s.seq, s.table, s.col, err)
			}
		}
		report.Sequences = append(report.Sequences, SequenceMove{Table: s.table, Column: s.col, Next: last + 1})
	}
	return nil
}

// rowDigest sums a SHA-256 of each row, modulo 2^256: the same rows in any
// order give the same digest, and the two stores need not agree on an
// order (their collations differ).
type rowDigest struct{ sum big.Int }

var digestMod = new(big.Int).Lsh(big.NewInt(1), 256)

// add adds one row. Values are taken by kind, not by driver type: a text
// and the same bytes are one value (a BLOB column of SQLite may hold
// either), an integer is its decimal, NULL is its own.
func (d *rowDigest) add(vals []any) error {
	h := sha256.New()
	for _, v := range vals {
		switch v := v.(type) {
		case nil:
			h.Write([]byte{0})
		case int64:
			fmt.Fprintf(h, "\x01%d;", v)
		case string:
			fmt.Fprintf(h, "\x02%d:%s", len(v), v)
		case []byte:
			fmt.Fprintf(h, "\x02%d:%s", len(v), v)
		default:
			return fmt.Errorf("a value of type %T, which the copy does not know", v)
		}
	}
	d.sum.Add(&d.sum, new(big.Int).SetBytes(h.Sum(nil)))
	d.sum.Mod(&d.sum, digestMod)
	return nil
}

func (d *rowDigest) String() string { return fmt.Sprintf("%064x", &d.sum) }

// scanRow scans the current row's n columns as the driver gives them.
func scanRow(rows *sql.Rows, n int) ([]any, error) {
	vals := make([]any, n)
	ptrs := make([]any, n)
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	return vals, rows.Scan(ptrs...)
}

// quoteIdent quotes a table or column name read from a schema.
func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// queryStrings runs a query of one text column.
func queryStrings(ctx context.Context, tx *sql.Tx, query string, args ...any) ([]string, error) {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return scanStrings(rows)
}

func scanStrings(rows *sql.Rows) ([]string, error) {
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}
