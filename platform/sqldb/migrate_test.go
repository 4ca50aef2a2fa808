package sqldb_test

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/imsrv/imsrv/migrations"
	"github.com/imsrv/imsrv/platform/sqldb"
)

func TestMigrateRealMigrations(t *testing.T) {
	forEachDialect(t, func(t *testing.T, db sqldb.DB) {
		applied, err := sqldb.Migrate(t.Context(), db, migrations.FS)
		if err != nil {
			t.Fatal(err)
		}
		if want := db.Dialect() + "/0001_users.sql"; !slices.Contains(applied, want) {
			t.Errorf("first Migrate applied %q, want it to include %q", applied, want)
		}

		applied, err = sqldb.Migrate(t.Context(), db, migrations.FS)
		if err != nil {
			t.Fatal(err)
		}
		if len(applied) != 0 {
			t.Errorf("second Migrate applied %q, want nothing", applied)
		}

		var name string
		if err := db.QueryRow(t.Context(), "SELECT name FROM schema_migrations WHERE version = $1", 1).Scan(&name); err != nil {
			t.Fatal(err)
		}
		if name != "users" {
			t.Errorf("schema_migrations name of version 1 = %q, want %q", name, "users")
		}

		// Both dialects hand out the first uid as 1001.
		var uid int64
		err = db.QueryRow(t.Context(), `INSERT INTO users (name, email, email_key, pwd_hash, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $5) RETURNING uid`,
			"alice", "Alice@example.com", "alice@example.com", "x", int64(1700000000)).Scan(&uid)
		if err != nil {
			t.Fatal(err)
		}
		if uid != 1001 {
			t.Errorf("first uid = %d, want 1001", uid)
		}
	})
}

func TestMigrateBrokenMigration(t *testing.T) {
	forEachDialect(t, func(t *testing.T, db sqldb.DB) {
		dir := db.Dialect()
		fsys := fstest.MapFS{
			dir + "/0001_first.sql": {Data: []byte(`
				CREATE TABLE first (id INTEGER PRIMARY KEY);
				INSERT INTO first (id) VALUES (1);`)},
			// The table is created, then the second statement fails.
			dir + "/0002_broken.sql": {Data: []byte(`
				CREATE TABLE second (id INTEGER PRIMARY KEY);
				INSERT INTO no_such_table (id) VALUES (1);`)},
			dir + "/0003_never.sql": {Data: []byte(`CREATE TABLE third (id INTEGER PRIMARY KEY);`)},
		}

		applied, err := sqldb.Migrate(t.Context(), db, fsys)
		if err == nil {
			t.Fatal("Migrate succeeded with a broken migration")
		}
		if !strings.Contains(err.Error(), dir+"/0002_broken.sql") {
			t.Errorf("error %q does not name the broken file", err)
		}
		if want := []string{dir + "/0001_first.sql"}; !slices.Equal(applied, want) {
			t.Errorf("applied %q, want %q", applied, want)
		}
		if got := count(t, db, "schema_migrations"); got != 1 {
			t.Errorf("schema_migrations has %d rows, want 1", got)
		}
		for _, table := range []string{"second", "third"} {
			if _, err := db.Exec(t.Context(), "SELECT 1 FROM "+table); err == nil {
				t.Errorf("table %s exists after the failed migration", table)
			}
		}

		// Once fixed, the rest applies.
		fsys[dir+"/0002_broken.sql"] = &fstest.MapFile{Data: []byte(`CREATE TABLE second (id INTEGER PRIMARY KEY);`)}
		applied, err = sqldb.Migrate(t.Context(), db, fsys)
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{dir + "/0002_broken.sql", dir + "/0003_never.sql"}; !slices.Equal(applied, want) {
			t.Errorf("applied %q, want %q", applied, want)
		}
	})
}

func TestMigrateVersionOrder(t *testing.T) {
	forEachDialect(t, func(t *testing.T, db sqldb.DB) {
		dir := db.Dialect()
		fsys := fstest.MapFS{
			// Numeric order, not name order: 10 after 9. Run the other
			// way round, log would end up holding 9.
			dir + "/0001_log.sql":  {Data: []byte(`CREATE TABLE log (v INTEGER NOT NULL);`)},
			dir + "/9_insert.sql":  {Data: []byte(`INSERT INTO log (v) VALUES (9);`)},
			dir + "/10_update.sql": {Data: []byte(`UPDATE log SET v = 10 WHERE v = 9;`)},
			// Ignored: not .sql, a subdirectory, another dialect.
			dir + "/README.md":            {Data: []byte(`not a migration`)},
			dir + "/old/0001_old.sql":     {Data: []byte(`syntax error`)},
			"otherdialect/0001_other.sql": {Data: []byte(`syntax error`)},
		}
		applied, err := sqldb.Migrate(t.Context(), db, fsys)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{dir + "/0001_log.sql", dir + "/9_insert.sql", dir + "/10_update.sql"}
		if !slices.Equal(applied, want) {
			t.Errorf("applied %q, want %q", applied, want)
		}
		var v int64
		if err := db.QueryRow(t.Context(), "SELECT v FROM log").Scan(&v); err != nil {
			t.Fatal(err)
		}
		if v != 10 {
			t.Errorf("log.v = %d, want 10", v)
		}
	})
}

func TestMigrateInvalidFiles(t *testing.T) {
	forEachDialect(t, func(t *testing.T, db sqldb.DB) {
		dir := db.Dialect()
		tests := []struct {
			name    string
			fsys    fstest.MapFS
			wantErr string
		}{
			{"no version", fstest.MapFS{dir + "/users.sql": {}}, dir + "/users.sql"},
			{"bad version", fstest.MapFS{dir + "/v1_users.sql": {}}, dir + "/v1_users.sql"},
			{"zero version", fstest.MapFS{dir + "/0000_users.sql": {}}, dir + "/0000_users.sql"},
			{"duplicate version", fstest.MapFS{dir + "/0001_a.sql": {}, dir + "/1_b.sql": {}}, "same version"},
			{"no directory", fstest.MapFS{"elsewhere/0001_a.sql": {}}, dir},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				applied, err := sqldb.Migrate(t.Context(), db, tt.fsys)
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("Migrate = %v, want an error mentioning %q", err, tt.wantErr)
				}
				if len(applied) != 0 {
					t.Errorf("applied %q, want nothing", applied)
				}
			})
		}
	})
}

// TestMigrateConcurrent runs several Migrate calls at once on one database,
// as processes starting together would: each migration runs exactly once.
func TestMigrateConcurrent(t *testing.T) {
	const migrators = 5
	forEachDialect(t, func(t *testing.T, db sqldb.DB) {
		dir := db.Dialect()
		fsys := fstest.MapFS{
			dir + "/0001_a.sql": {Data: []byte(`CREATE TABLE a (id INTEGER PRIMARY KEY);`)},
			// Not idempotent: would fail (unique) if run twice.
			dir + "/0002_b.sql": {Data: []byte(`INSERT INTO a (id) VALUES (1);`)},
			dir + "/0003_c.sql": {Data: []byte(`CREATE TABLE c (id INTEGER PRIMARY KEY);`)},
		}
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			applied []string
		)
		for range migrators {
			wg.Go(func() {
				got, err := sqldb.Migrate(t.Context(), db, fsys)
				if err != nil {
					t.Error(err)
				}
				mu.Lock()
				applied = append(applied, got...)
				mu.Unlock()
			})
		}
		wg.Wait()
		slices.Sort(applied)
		want := []string{dir + "/0001_a.sql", dir + "/0002_b.sql", dir + "/0003_c.sql"}
		if !slices.Equal(applied, want) {
			t.Errorf("applied (all migrators) %q, want each file once: %q", applied, want)
		}
	})
}
