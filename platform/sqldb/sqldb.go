// Package sqldb is the small SQL contract module stores are written against.
// Two dialects implement it: PostgreSQL (pgx v5 pool) and SQLite
// (modernc.org/sqlite, WAL, busy timeout). Queries use PostgreSQL-style
// positional placeholders ($1, $2, ...) and portable SQL; the SQLite adapter
// rewrites placeholders. Only DDL (migrations/<dialect>/) differs per dialect.
package sqldb

import (
	"context"
	"errors"
)

var (
	// ErrNoRows is returned by Row.Scan when the query matched nothing.
	ErrNoRows = errors.New("sqldb: no rows")
	// ErrUnique wraps a unique-constraint violation; errors.Is(err, ErrUnique).
	ErrUnique = errors.New("sqldb: unique constraint violated")
)

// Dialect names.
const (
	Postgres = "postgres"
	SQLite   = "sqlite"
)

// Querier runs statements; DB and Tx both satisfy it.
type Querier interface {
	// Exec runs a statement and returns the number of affected rows.
	Exec(ctx context.Context, query string, args ...any) (int64, error)
	Query(ctx context.Context, query string, args ...any) (Rows, error)
	QueryRow(ctx context.Context, query string, args ...any) Row
}

// DB is an open database.
type DB interface {
	Querier
	// InTx runs fn in a transaction: committed when fn returns nil, rolled back otherwise.
	InTx(ctx context.Context, fn func(tx Querier) error) error
	Dialect() string
	Ping(ctx context.Context) error
	Close() error
}

// Rows iterates a result set. Close must be called (it is safe to call twice).
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

// Row is the result of QueryRow; Scan returns ErrNoRows when nothing matched.
type Row interface {
	Scan(dest ...any) error
}
