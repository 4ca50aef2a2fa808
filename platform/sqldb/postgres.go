package sqldb

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// pgUniqueViolation is the SQLSTATE of a unique-constraint violation.
const pgUniqueViolation = "23505"

// PostgresDB is a DB backed by a pgx connection pool.
type PostgresDB struct {
	pool *pgxpool.Pool
}

var _ DB = (*PostgresDB)(nil)

// OpenPostgres connects to the PostgreSQL database at url, a libpq URL
// ("postgres://user:pass@host:5432/db?sslmode=disable") or keyword/value
// string. Query parameters pgx does not know about, such as search_path, are
// sent to the server as run-time parameters; pool_max_conns and the other
// pgxpool settings are honoured. The connection is verified with a ping.
func OpenPostgres(ctx context.Context, url string) (*PostgresDB, error) {
	// Errors do not repeat url: it may carry a password.
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("sqldb postgres: parse url: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("sqldb postgres: open: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("sqldb postgres: connect: %w", err)
	}
	return &PostgresDB{pool: pool}, nil
}

// Dialect returns Postgres.
func (db *PostgresDB) Dialect() string { return Postgres }

// Ping checks that the database is reachable.
func (db *PostgresDB) Ping(ctx context.Context) error {
	return pgError("ping", db.pool.Ping(ctx))
}

// Close closes every connection of the pool, waiting for connections in use
// to be released.
func (db *PostgresDB) Close() error {
	db.pool.Close()
	return nil
}

// Exec runs a statement and returns the number of affected rows. A query
// without arguments is sent with the simple protocol and may hold several
// statements separated by semicolons.
func (db *PostgresDB) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	return pgQuerier{db.pool}.Exec(ctx, query, args...)
}

// Query runs a query that returns rows.
func (db *PostgresDB) Query(ctx context.Context, query string, args ...any) (Rows, error) {
	return pgQuerier{db.pool}.Query(ctx, query, args...)
}

// QueryRow runs a query expected to return at most one row. Errors are
// reported by Row.Scan.
func (db *PostgresDB) QueryRow(ctx context.Context, query string, args ...any) Row {
	return pgQuerier{db.pool}.QueryRow(ctx, query, args...)
}

// InTx runs fn in a transaction at the server's default isolation level
// (read committed unless configured otherwise). The transaction is committed
// when fn returns nil and rolled back when fn returns an error (which InTx
// returns unchanged) or panics.
func (db *PostgresDB) InTx(ctx context.Context, fn func(tx Querier) error) error {
	tx, err := db.pool.BeginTx(ctx, pgx.TxOptions{})
	if err != nil {
		return pgError("begin", err)
	}
	done := false
	defer func() {
		if !done {
			// fn failed or panicked. The rollback error is dropped: fn's error
			// is the one worth reporting, and pgx discards a broken connection.
			// The rollback must go out even when ctx is what made fn fail.
			_ = tx.Rollback(context.WithoutCancel(ctx))
		}
	}()
	if err := fn(pgQuerier{tx}); err != nil {
		return err
	}
	done = true
	if err := tx.Commit(ctx); err != nil {
		return pgError("commit", err)
	}
	return nil
}

// pgxQuerier is the query API shared by *pgxpool.Pool and pgx.Tx.
type pgxQuerier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// pgQuerier adapts a pool or a transaction to Querier, mapping errors.
type pgQuerier struct{ q pgxQuerier }

func (p pgQuerier) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	tag, err := p.q.Exec(ctx, query, args...)
	if err != nil {
		return 0, pgError("exec", err)
	}
	return tag.RowsAffected(), nil
}

func (p pgQuerier) Query(ctx context.Context, query string, args ...any) (Rows, error) {
	rows, err := p.q.Query(ctx, query, args...)
	if err != nil {
		return nil, pgError("query", err)
	}
	return pgRows{rows}, nil
}

func (p pgQuerier) QueryRow(ctx context.Context, query string, args ...any) Row {
	return pgRow{p.q.QueryRow(ctx, query, args...)}
}

// pgRows adapts pgx.Rows to Rows.
type pgRows struct{ rows pgx.Rows }

func (r pgRows) Next() bool { return r.rows.Next() }
func (r pgRows) Close()     { r.rows.Close() }

func (r pgRows) Scan(dest ...any) error {
	if err := r.rows.Scan(dest...); err != nil {
		return fmt.Errorf("sqldb postgres: scan: %w", err)
	}
	return nil
}

func (r pgRows) Err() error { return pgError("query", r.rows.Err()) }

// pgRow adapts pgx.Row to Row.
type pgRow struct{ row pgx.Row }

func (r pgRow) Scan(dest ...any) error { return pgError("query row", r.row.Scan(dest...)) }

// pgError maps pgx errors onto the package contract: pgx.ErrNoRows becomes
// ErrNoRows, a unique violation matches ErrUnique (and still unwraps to the
// *pgconn.PgError), anything else is wrapped with op for context.
func pgError(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNoRows
	}
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok && pgErr.Code == pgUniqueViolation {
		return fmt.Errorf("sqldb postgres: %s: %w: %w", op, ErrUnique, err)
	}
	return fmt.Errorf("sqldb postgres: %s: %w", op, err)
}
