package sqldb_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/imsrv/imsrv/platform/sqldb"
)

func TestOpenSQLiteCreatesDirectory(t *testing.T) {
	// Characters that mean something in a URI must not confuse the DSN.
	path := filepath.Join(t.TempDir(), "a b", "c?d#e%f", "test.db")
	db, err := sqldb.OpenSQLite(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(t.Context(), "CREATE TABLE t (id INTEGER)"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("database file: %v", err)
	}
}

func TestOpenSQLiteRejectsMemory(t *testing.T) {
	for _, path := range []string{"", ":memory:"} {
		if db, err := sqldb.OpenSQLite(t.Context(), path); err == nil {
			db.Close()
			t.Errorf("OpenSQLite(%q) succeeded", path)
		}
	}
}

func TestOpenSQLiteNotADatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "junk.db")
	if err := os.WriteFile(path, []byte("this is not a SQLite database, not even close......"), 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := sqldb.OpenSQLite(t.Context(), path)
	if err == nil {
		db.Close()
		t.Fatal("OpenSQLite succeeded on a file that is not a database")
	}
}

// TestSQLitePragmas checks the settings every connection gets from the DSN.
func TestSQLitePragmas(t *testing.T) {
	db, err := sqldb.OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "test.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	pragmas := []struct {
		name string
		want string
	}{
		{"journal_mode", "wal"},
		{"busy_timeout", "10000"},
		{"foreign_keys", "1"},
		{"synchronous", "1"}, // NORMAL
	}
	check := func(t *testing.T, q sqldb.Querier) {
		for _, p := range pragmas {
			var got string
			if err := q.QueryRow(t.Context(), "PRAGMA "+p.name).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != p.want {
				t.Errorf("PRAGMA %s = %q, want %q", p.name, got, p.want)
			}
		}
	}
	check(t, db)
	// A transaction holds a second connection while the pool opens others.
	err = db.InTx(t.Context(), func(tx sqldb.Querier) error {
		check(t, tx)
		check(t, db)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestSQLiteForeignKeys(t *testing.T) {
	db, err := sqldb.OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "test.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(t.Context(), `
		CREATE TABLE parent (id INTEGER PRIMARY KEY);
		CREATE TABLE child (id INTEGER PRIMARY KEY, parent INTEGER NOT NULL REFERENCES parent (id));`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(t.Context(), "INSERT INTO child (id, parent) VALUES (1, 42)"); err == nil {
		t.Error("insert violating a foreign key succeeded")
	}
}
