// Package queryplan lets a test ask SQLite how it plans exactly the
// statements a store sends, and find the ones that read a whole table: a
// query that runs with a card in the field must cost the same with a
// million rows as with none (issue 13 item 4). It is for tests; a store
// never imports it.
package queryplan

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/mattn/go-sqlite3"
)

// Recorder is a go-sqlite3 driver that keeps the text of every statement
// sent through it. Register it under a name of its own and open the store
// with that name.
type Recorder struct {
	sqlite3.SQLiteDriver
	mu    sync.Mutex
	stmts []string
}

// Open opens a connection of the embedded driver that records.
func (d *Recorder) Open(name string) (driver.Conn, error) {
	c, err := d.SQLiteDriver.Open(name)
	if err != nil {
		return nil, err
	}
	return &recordingConn{SQLiteConn: c.(*sqlite3.SQLiteConn), d: d}, nil
}

func (d *Recorder) add(q string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stmts = append(d.stmts, q)
}

// Take returns the statements recorded since the last Take.
func (d *Recorder) Take() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := d.stmts
	d.stmts = nil
	return out
}

type recordingConn struct {
	*sqlite3.SQLiteConn
	d *Recorder
}

func (c *recordingConn) Prepare(q string) (driver.Stmt, error) {
	c.d.add(q)
	return c.SQLiteConn.Prepare(q)
}

func (c *recordingConn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	c.d.add(q)
	return c.SQLiteConn.PrepareContext(ctx, q)
}

func (c *recordingConn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	c.d.add(q)
	return c.SQLiteConn.ExecContext(ctx, q, args)
}

func (c *recordingConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	c.d.add(q)
	return c.SQLiteConn.QueryContext(ctx, q, args)
}

// FullScans returns the plan lines of q that read a whole table or a whole
// index ("SCAN journal", "SCAN journal USING INDEX ..."): only a SEARCH
// reads a bounded part. Statements without a plan of their own (BEGIN,
// COMMIT, PRAGMA) have none.
func FullScans(db *sql.DB, q string) ([]string, error) {
	verb := strings.ToUpper(strings.Fields(q)[0])
	if !slices.Contains([]string{"SELECT", "UPDATE", "DELETE", "INSERT"}, verb) {
		return nil, nil
	}
	args := make([]any, strings.Count(q, "?"))
	rows, err := db.Query("EXPLAIN QUERY PLAN "+q, args...)
	if err != nil {
		return nil, fmt.Errorf("EXPLAIN QUERY PLAN %s: %w", OneLine(q), err)
	}
	defer rows.Close()
	var scans []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			return nil, err
		}
		if strings.HasPrefix(detail, "SCAN ") && detail != "SCAN CONSTANT ROW" {
			scans = append(scans, detail)
		}
	}
	return scans, rows.Err()
}

// OneLine is a statement on one line, for a test's message.
func OneLine(q string) string { return strings.Join(strings.Fields(q), " ") }
