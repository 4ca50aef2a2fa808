// Package sqldbtest provides throwaway databases for tests of code built on
// sqldb.
//
// SQLite databases live in a temporary directory. PostgreSQL tests need a
// server, named by the IMSRV_TEST_POSTGRES_URL environment variable (for
// example postgres://postgres@127.0.0.1:5432/test?sslmode=disable); without it
// they are skipped. Each PostgreSQL test gets a fresh schema of its own,
// made the connection's search_path and dropped when the test ends, so tests
// may run in parallel against one database.
package sqldbtest

import (
	"context"
	"crypto/rand"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imsrv/imsrv/platform/sqldb"
)

// EnvPostgresURL names the environment variable holding the URL of the
// PostgreSQL database tests may use.
const EnvPostgresURL = "IMSRV_TEST_POSTGRES_URL"

// SQLite returns an empty SQLite database in a temporary directory, closed
// when the test ends.
func SQLite(t testing.TB) sqldb.DB {
	t.Helper()
	db, err := sqldb.OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "test.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	})
	return db
}

// Postgres returns a PostgreSQL database whose search_path is a fresh, empty
// schema, closed and dropped when the test ends. It skips the test when
// IMSRV_TEST_POSTGRES_URL is not set.
func Postgres(t testing.TB) sqldb.DB {
	t.Helper()
	db, err := sqldb.OpenPostgres(t.Context(), PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	// Registered after PostgresURL's cleanup, so it runs before the schema
	// is dropped.
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// PostgresURL creates a fresh schema in the database named by
// IMSRV_TEST_POSTGRES_URL and returns that URL with search_path set to the
// schema, for tests that open the database themselves (sqldb.Open, or a whole
// server started from its configuration). Whatever uses the URL must be
// closed by a cleanup registered after PostgresURL returns, so that it runs
// before the schema is dropped. It skips the test when IMSRV_TEST_POSTGRES_URL
// is not set.
func PostgresURL(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvPostgresURL)
	if base == "" {
		t.Skip(EnvPostgresURL + " not set; skipping PostgreSQL test")
	}
	schema := "test_" + strings.ToLower(rand.Text())

	// The admin connection creates and drops the schema; Postgres would
	// resolve its own statements against search_path, so it uses the plain URL.
	admin, err := sqldb.OpenPostgres(t.Context(), base)
	if err != nil {
		t.Fatalf("sqldbtest: %s: %v", EnvPostgresURL, err)
	}
	if _, err := admin.Exec(t.Context(), "CREATE SCHEMA "+schema); err != nil {
		_ = admin.Close()
		t.Fatalf("sqldbtest: %v", err)
	}
	t.Cleanup(func() {
		defer func() { _ = admin.Close() }()
		// t.Context is already canceled when cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("sqldbtest: %v", err)
		}
	})

	u, err := withSearchPath(base, schema)
	if err != nil {
		t.Fatalf("sqldbtest: %s: %v", EnvPostgresURL, err)
	}
	return u
}

// withSearchPath returns the connection string base with the search_path
// run-time parameter set to schema. base is a URL or a keyword/value string.
func withSearchPath(base, schema string) (string, error) {
	if !strings.HasPrefix(base, "postgres://") && !strings.HasPrefix(base, "postgresql://") {
		return base + " search_path=" + schema, nil
	}
	u, err := url.Parse(base)
	if err != nil {
		// Not wrapped: a *url.Error repeats the URL, password included.
		return "", errors.New("not a valid postgres:// URL")
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), nil
}
