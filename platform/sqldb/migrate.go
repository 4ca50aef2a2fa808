package sqldb

import (
	"cmp"
	"context"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

// migrationLockKey is the PostgreSQL advisory lock Migrate holds in each of
// its transactions, so that processes migrating the same database at once
// take turns. The value spells "imsrv_mg".
const migrationLockKey int64 = 0x696d7372765f6d67

// migration is one schema migration file.
type migration struct {
	version int64
	name    string // descriptive part of the file name: "users"
	file    string // path in the migrations FS: "postgres/0001_users.sql"
	sql     string
}

// Migrate brings the schema of db up to date with the migrations in fsys and
// returns the paths (relative to fsys) of the files it applied, in order.
//
// Migrations live in fsys under a directory named after db.Dialect() and are
// named NNNN_name.sql, NNNN being the version: migrations are applied in
// ascending version order and each version at most once. Other files are
// ignored. A file may hold several statements. Each migration runs in its
// own transaction together with its row in the schema_migrations table, so a
// failing migration leaves no trace and stops Migrate, whose error names the
// file; the migrations before it stay applied.
//
// Several processes may migrate the same database concurrently: on
// PostgreSQL every Migrate transaction holds an advisory lock, on SQLite the
// transactions are IMMEDIATE and thus serialized.
func Migrate(ctx context.Context, db DB, fsys fs.FS) (applied []string, err error) {
	migrations, err := readMigrations(fsys, db.Dialect())
	if err != nil {
		return nil, err
	}

	done := make(map[int64]bool)
	err = db.InTx(ctx, func(tx Querier) error {
		if err := lockMigrations(ctx, tx, db.Dialect()); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INTEGER PRIMARY KEY,
			name       TEXT    NOT NULL,
			applied_at BIGINT  NOT NULL
		)`); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, "SELECT version FROM schema_migrations")
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var v int64
			if err := rows.Scan(&v); err != nil {
				return err
			}
			done[v] = true
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("sqldb: migrate: schema_migrations: %w", err)
	}

	for _, m := range migrations {
		if done[m.version] {
			continue
		}
		ran, err := applyMigration(ctx, db, m)
		if err != nil {
			return applied, fmt.Errorf("sqldb: migrate %s: %w", m.file, err)
		}
		if ran {
			applied = append(applied, m.file)
		}
	}
	return applied, nil
}

// applyMigration runs m and records it, unless another process recorded it
// since Migrate looked. It reports whether it ran m.
func applyMigration(ctx context.Context, db DB, m migration) (ran bool, err error) {
	err = db.InTx(ctx, func(tx Querier) error {
		if err := lockMigrations(ctx, tx, db.Dialect()); err != nil {
			return err
		}
		var n int64
		if err := tx.QueryRow(ctx, "SELECT COUNT(*) FROM schema_migrations WHERE version = $1", m.version).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
		if _, err := tx.Exec(ctx, m.sql); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
			m.version, m.name, time.Now().Unix()); err != nil {
			return err
		}
		ran = true
		return nil
	})
	if err != nil {
		return false, err
	}
	return ran, nil
}

// lockMigrations takes the migration lock for the rest of the transaction.
// SQLite needs none: its transactions already exclude each other.
func lockMigrations(ctx context.Context, tx Querier, dialect string) error {
	if dialect != Postgres {
		return nil
	}
	_, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", migrationLockKey)
	return err
}

// readMigrations reads the migrations of dialect from fsys, sorted by
// version.
func readMigrations(fsys fs.FS, dialect string) ([]migration, error) {
	entries, err := fs.ReadDir(fsys, dialect)
	if err != nil {
		return nil, fmt.Errorf("sqldb: migrate: %w", err)
	}
	var migrations []migration
	for _, e := range entries {
		if e.IsDir() || path.Ext(e.Name()) != ".sql" {
			continue
		}
		file := path.Join(dialect, e.Name())
		version, name, err := parseMigrationName(e.Name())
		if err != nil {
			return nil, fmt.Errorf("sqldb: migrate %s: %w", file, err)
		}
		body, err := fs.ReadFile(fsys, file)
		if err != nil {
			return nil, fmt.Errorf("sqldb: migrate: %w", err)
		}
		migrations = append(migrations, migration{version: version, name: name, file: file, sql: string(body)})
	}
	slices.SortFunc(migrations, func(a, b migration) int { return cmp.Compare(a.version, b.version) })
	for i := 1; i < len(migrations); i++ {
		if prev, m := migrations[i-1], migrations[i]; prev.version == m.version {
			return nil, fmt.Errorf("sqldb: migrate: %s and %s have the same version", prev.file, m.file)
		}
	}
	return migrations, nil
}

// parseMigrationName splits a migration file name, NNNN_name.sql, into its
// version and name.
func parseMigrationName(base string) (version int64, name string, err error) {
	digits, name, ok := strings.Cut(strings.TrimSuffix(base, ".sql"), "_")
	if !ok || name == "" || digits == "" || strings.Trim(digits, "0123456789") != "" {
		return 0, "", fmt.Errorf("file name is not NNNN_name.sql")
	}
	version, err = strconv.ParseInt(digits, 10, 64)
	if err != nil || version <= 0 {
		return 0, "", fmt.Errorf("file name is not NNNN_name.sql: bad version %q", digits)
	}
	return version, name, nil
}
