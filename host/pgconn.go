package host

import (
	"context"
	"database/sql/driver"
	"regexp"
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
// leaving alone a '?' inside a string literal (E-strings' backslash escapes too), a
// dollar-quoted body, a quoted identifier or a comment.
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
	for i := 0; i < len(query); {
		if end := skipQuoted(query, i); end > i {
			b.WriteString(query[i:end])
			i = end
			continue
		}
		if query[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
		} else {
			b.WriteByte(query[i])
		}
		i++
	}
	q := b.String()
	rebound.Store(query, q)
	return q
}

// skipQuoted returns the end of the literal, quoted identifier or comment
// that starts at query[i] (the end of query if it is not closed), or i when
// none starts there.
func skipQuoted(query string, i int) int {
	rest := query[i:]
	word := i > 0 && isIdentByte(query[i-1]) // inside a name: no E'' or $tag$ starts here
	switch {
	case rest[0] == '\'' || rest[0] == '"':
		// To the closing quote; a doubled quote inside is an escaped one
		// and simply closes and reopens.
		return closeAt(query, i+1, string(rest[0]))
	case !word && len(rest) > 1 && (rest[0] == 'E' || rest[0] == 'e') && rest[1] == '\'':
		for j := i + 2; j < len(query); j++ {
			switch query[j] {
			case '\\':
				j++
			case '\'':
				return j + 1
			}
		}
		return len(query)
	case strings.HasPrefix(rest, "--"):
		if j := strings.IndexByte(rest, '\n'); j >= 0 {
			return i + j
		}
		return len(query)
	case strings.HasPrefix(rest, "/*"):
		return closeAt(query, i+2, "*/")
	case rest[0] == '$' && !word:
		if tag := dollarTag.FindString(rest); tag != "" {
			return closeAt(query, i+len(tag), tag)
		}
	}
	return i
}

// closeAt is the index just past the first closing text in query from i,
// or the end of query when it never comes.
func closeAt(query string, i int, closing string) int {
	if j := strings.Index(query[i:], closing); j >= 0 {
		return i + j + len(closing)
	}
	return len(query)
}

// dollarTag is the opening of a dollar-quoted body: $$ or $tag$ ($1 is a
// parameter, not a tag).
var dollarTag = regexp.MustCompile(`^\$([A-Za-z_][A-Za-z0-9_]*)?\$`)

func isIdentByte(c byte) bool {
	return c == '_' || c == '$' || c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
}
