package host

import (
	"context"
	"database/sql/driver"
	"strconv"
	"strings"
	gosync "sync"

	"github.com/jackc/pgx/v5/stdlib"
)

// The host's SQL is written once, with SQLite's and database/sql's usual
// '?' placeholders, and runs on both stores: on PostgreSQL every statement
// is rewritten to $1, $2, ... on its way to pgx. Doing it under
// database/sql, in the one connection type, means no query can be sent
// without it, and the money rules above keep a single text.

// rebindConnector hands out pgx connections that rewrite placeholders.
type rebindConnector struct{ driver.Connector }

// Connect opens a pgx connection wrapped in rebindConn.
func (c rebindConnector) Connect(ctx context.Context) (driver.Conn, error) {
	cn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return rebindConn{cn.(*stdlib.Conn)}, nil
}

// rebindConn is a pgx stdlib connection whose statements are rebound; every
// other method (transactions, ping, session reset, argument checks) is
// pgx's own.
type rebindConn struct{ *stdlib.Conn }

func (c rebindConn) Prepare(query string) (driver.Stmt, error) {
	return c.Conn.Prepare(rebind(query))
}

func (c rebindConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	return c.Conn.PrepareContext(ctx, rebind(query))
}

func (c rebindConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	return c.Conn.ExecContext(ctx, rebind(query), args)
}

func (c rebindConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	return c.Conn.QueryContext(ctx, rebind(query), args)
}

// rebound caches rewritten statements: the host sends the same few dozen
// texts millions of times.
var rebound gosync.Map // string -> string

// rebind turns each '?' placeholder of query into $n, n counting from 1,
// leaving alone a '?' inside a string literal, a quoted identifier or a
// comment.
func rebind(query string) string {
	if !strings.Contains(query, "?") {
		return query
	}
	if q, ok := rebound.Load(query); ok {
		return q.(string)
	}
	var b strings.Builder
	b.Grow(len(query) + 16)
	n := 0
	for i := 0; i < len(query); i++ {
		ch := query[i]
		switch {
		case ch == '\'' || ch == '"':
			// To the closing quote; a doubled quote inside is an escaped
			// one and simply closes and reopens.
			j := strings.IndexByte(query[i+1:], ch)
			if j < 0 {
				b.WriteString(query[i:])
				i = len(query)
				continue
			}
			b.WriteString(query[i : i+j+2])
			i += j + 1
		case ch == '-' && i+1 < len(query) && query[i+1] == '-':
			j := strings.IndexByte(query[i:], '\n')
			if j < 0 {
				j = len(query) - i
			}
			b.WriteString(query[i : i+j])
			i += j - 1
		case ch == '?':
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
		default:
			b.WriteByte(ch)
		}
	}
	q := b.String()
	rebound.Store(query, q)
	return q
}
