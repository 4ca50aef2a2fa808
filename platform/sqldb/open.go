package sqldb

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Open opens the database named by url and picks the dialect from its scheme:
//
//	postgres://user:pass@host:5432/db?sslmode=disable   PostgreSQL (also postgresql://)
//	sqlite://data/imsrv.db                               SQLite, path relative to the working directory
//	sqlite:///var/lib/imsrv/imsrv.db                     SQLite, absolute path
//
// PostgreSQL URLs are passed to OpenPostgres unchanged, so every libpq/pgx
// URL parameter works. A SQLite URL carries nothing but the file path (no
// query, no host); the file and its directory are created if missing.
func Open(ctx context.Context, url string) (DB, error) {
	scheme, rest, ok := strings.Cut(url, "://")
	if !ok {
		return nil, errors.New("sqldb: database URL has no scheme; want postgres://, postgresql:// or sqlite://")
	}
	switch strings.ToLower(scheme) {
	case "postgres", "postgresql":
		db, err := OpenPostgres(ctx, url)
		if err != nil {
			return nil, err
		}
		return db, nil
	case "sqlite":
		if rest == "" || strings.ContainsAny(rest, "?#") {
			return nil, fmt.Errorf("sqldb: database URL %q: want sqlite://relative/path.db or sqlite:///absolute/path.db", url)
		}
		db, err := OpenSQLite(ctx, rest)
		if err != nil {
			return nil, err
		}
		return db, nil
	default:
		// Only the scheme is quoted: the rest of the URL may hold a password.
		return nil, fmt.Errorf("sqldb: unsupported database URL scheme %q; want postgres://, postgresql:// or sqlite://", scheme)
	}
}
