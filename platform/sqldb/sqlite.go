package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// sqliteBusyTimeoutMillis is how long a statement waits for a lock held by
// another connection before failing with SQLITE_BUSY.
const sqliteBusyTimeoutMillis = 10000

// SQLiteDB is a DB backed by a SQLite file (modernc.org/sqlite, pure Go).
//
// The database runs in WAL mode with synchronous=NORMAL and foreign keys on.
// Transactions start with BEGIN IMMEDIATE, so a transaction takes the write
// lock up front and concurrent writers queue on the busy timeout instead of
// failing when a read lock cannot be upgraded. Readers never block writers
// and vice versa; writers are serialized by SQLite.
type SQLiteDB struct {
	db *sql.DB
}

var _ DB = (*SQLiteDB)(nil)

// OpenSQLite opens, creating it if needed, the SQLite database file at path
// (relative paths are resolved against the working directory), creating its
// parent directory if missing. In-memory databases are not supported: every
// pooled connection would see a different one.
func OpenSQLite(ctx context.Context, path string) (*SQLiteDB, error) {
	if path == "" || path == ":memory:" {
		return nil, fmt.Errorf("sqldb sqlite: open %q: want a file path", path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqldb sqlite: open %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o750); err != nil {
		return nil, fmt.Errorf("sqldb sqlite: open %s: %w", abs, err)
	}
	db, err := sql.Open("sqlite", sqliteDSN(abs))
	if err != nil {
		return nil, fmt.Errorf("sqldb sqlite: open %s: %w", abs, err)
	}
	// WAL lets readers run in parallel with each other and with the single
	// writer, so a few connections per CPU are useful; writers beyond the
	// first wait in the busy handler. Connections are kept open: each new one
	// re-runs the pragmas.
	conns := max(4, runtime.GOMAXPROCS(0))
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	// The first connection switches the file to WAL; do it now, alone, and
	// surface a bad path or a file that is not a database here.
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("sqldb sqlite: open %s: %w", abs, err)
	}
	return &SQLiteDB{db: db}, nil
}

// sqliteDSN returns the modernc.org/sqlite data source name for the file at
// the absolute path abs. The file: URI form escapes characters such as '?'
// in the path; the underscore parameters are interpreted by the driver.
func sqliteDSN(abs string) string {
	q := url.Values{}
	q.Set("_busy_timeout", strconv.Itoa(sqliteBusyTimeoutMillis))
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", "NORMAL")
	q.Set("_foreign_keys", "1")
	q.Set("_txlock", "immediate")
	p := filepath.ToSlash(abs)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p // file:///C:/dir/x.db on Windows
	}
	u := url.URL{Scheme: "file", Path: p, RawQuery: q.Encode()}
	return u.String()
}

// Dialect returns SQLite.
func (db *SQLiteDB) Dialect() string { return SQLite }

// Ping checks that the database file is usable.
func (db *SQLiteDB) Ping(ctx context.Context) error {
	return sqliteError("ping", db.db.PingContext(ctx))
}

// Close closes the database.
func (db *SQLiteDB) Close() error {
	if err := db.db.Close(); err != nil {
		return fmt.Errorf("sqldb sqlite: close: %w", err)
	}
	return nil
}

// Exec runs a statement and returns the number of affected rows. A query
// may hold several statements separated by semicolons.
func (db *SQLiteDB) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	return sqliteQuerier{db.db}.Exec(ctx, query, args...)
}

// Query runs a query that returns rows.
func (db *SQLiteDB) Query(ctx context.Context, query string, args ...any) (Rows, error) {
	return sqliteQuerier{db.db}.Query(ctx, query, args...)
}

// QueryRow runs a query expected to return at most one row. Errors are
// reported by Row.Scan.
func (db *SQLiteDB) QueryRow(ctx context.Context, query string, args ...any) Row {
	return sqliteQuerier{db.db}.QueryRow(ctx, query, args...)
}

// InTx runs fn in a BEGIN IMMEDIATE transaction. The transaction is
// committed when fn returns nil and rolled back when fn returns an error
// (which InTx returns unchanged) or panics.
func (db *SQLiteDB) InTx(ctx context.Context, fn func(tx Querier) error) error {
	tx, err := db.db.BeginTx(ctx, nil)
	if err != nil {
		return sqliteError("begin", err)
	}
	done := false
	defer func() {
		if !done {
			// fn failed or panicked; its error is the one worth reporting.
			_ = tx.Rollback()
		}
	}()
	if err := fn(sqliteQuerier{tx}); err != nil {
		return err
	}
	done = true
	if err := tx.Commit(); err != nil {
		// database/sql rolls the transaction back by itself when ctx ends;
		// report that rather than "transaction has already been committed".
		if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(err, sql.ErrTxDone) {
			err = ctxErr
		}
		return sqliteError("commit", err)
	}
	return nil
}

// sqlQuerier is the query API shared by *sql.DB and *sql.Tx.
type sqlQuerier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// sqliteQuerier adapts a database or a transaction to Querier, rewriting
// placeholders and mapping errors.
type sqliteQuerier struct{ q sqlQuerier }

func (s sqliteQuerier) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := s.q.ExecContext(ctx, rewritePlaceholders(query), args...)
	if err != nil {
		return 0, sqliteError("exec", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, sqliteError("rows affected", err)
	}
	return n, nil
}

func (s sqliteQuerier) Query(ctx context.Context, query string, args ...any) (Rows, error) {
	rows, err := s.q.QueryContext(ctx, rewritePlaceholders(query), args...)
	if err != nil {
		return nil, sqliteError("query", err)
	}
	return sqliteRows{rows}, nil
}

func (s sqliteQuerier) QueryRow(ctx context.Context, query string, args ...any) Row {
	return sqliteRow{s.q.QueryRowContext(ctx, rewritePlaceholders(query), args...)}
}

// sqliteRows adapts *sql.Rows to Rows.
type sqliteRows struct{ rows *sql.Rows }

func (r sqliteRows) Next() bool { return r.rows.Next() }
func (r sqliteRows) Close()     { _ = r.rows.Close() }

func (r sqliteRows) Scan(dest ...any) error {
	if err := r.rows.Scan(dest...); err != nil {
		return fmt.Errorf("sqldb sqlite: scan: %w", err)
	}
	return nil
}

func (r sqliteRows) Err() error { return sqliteError("query", r.rows.Err()) }

// sqliteRow adapts *sql.Row to Row.
type sqliteRow struct{ row *sql.Row }

func (r sqliteRow) Scan(dest ...any) error { return sqliteError("query row", r.row.Scan(dest...)) }

// sqliteError maps database/sql and SQLite errors onto the package contract:
// sql.ErrNoRows becomes ErrNoRows, a UNIQUE or PRIMARY KEY constraint failure
// matches ErrUnique (and still unwraps to the *sqlite.Error), anything else
// is wrapped with op for context.
func sqliteError(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNoRows
	}
	if sqliteErr, ok := errors.AsType[*sqlite.Error](err); ok {
		switch sqliteErr.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return fmt.Errorf("sqldb sqlite: %s: %w: %w", op, ErrUnique, err)
		}
	}
	return fmt.Errorf("sqldb sqlite: %s: %w", op, err)
}
