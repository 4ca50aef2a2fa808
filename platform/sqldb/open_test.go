package sqldb_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imsrv/imsrv/platform/sqldb"
	"github.com/imsrv/imsrv/platform/sqldb/sqldbtest"
)

func TestOpenSQLiteURL(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	tests := []struct {
		url, file string
	}{
		{"sqlite://data/relative.db", filepath.Join(dir, "data", "relative.db")},
		{"sqlite://" + filepath.Join(dir, "abs", "absolute.db"), filepath.Join(dir, "abs", "absolute.db")},
		{"SQLite://upper.db", filepath.Join(dir, "upper.db")},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			db, err := sqldb.Open(t.Context(), tt.url)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if db.Dialect() != sqldb.SQLite {
				t.Errorf("Dialect() = %q, want %q", db.Dialect(), sqldb.SQLite)
			}
			if _, err := os.Stat(tt.file); err != nil {
				t.Errorf("database file: %v", err)
			}
		})
	}
}

func TestOpenPostgresURL(t *testing.T) {
	url := sqldbtest.PostgresURL(t)
	for _, u := range []string{url, "postgresql" + strings.TrimPrefix(url, "postgres")} {
		db, err := sqldb.Open(t.Context(), u)
		if err != nil {
			t.Fatal(err)
		}
		if db.Dialect() != sqldb.Postgres {
			t.Errorf("Dialect() = %q, want %q", db.Dialect(), sqldb.Postgres)
		}
		if err := db.Ping(t.Context()); err != nil {
			t.Error(err)
		}
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	}
}

func TestOpenInvalidURL(t *testing.T) {
	tests := []struct {
		url, wantErr string
	}{
		{"mysql://user:secret@localhost/db", `scheme "mysql"`},
		{"imsrv.db", "no scheme"},
		{"sqlite://", "sqlite://relative/path.db"},
		{"sqlite://x.db?mode=ro", "sqlite://relative/path.db"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			db, err := sqldb.Open(t.Context(), tt.url)
			if err == nil {
				db.Close()
				t.Fatal("Open succeeded")
			}
			if db != nil {
				t.Errorf("Open returned a non-nil DB with error %v", err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error %q reveals the password", err)
			}
		})
	}
}

func TestOpenPostgresBadURLHidesPassword(t *testing.T) {
	// Port 1 refuses connections at once.
	_, err := sqldb.Open(t.Context(), "postgres://user:secret@127.0.0.1:1/db?connect_timeout=5")
	if err == nil {
		t.Fatal("Open succeeded")
	}
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("error %q reveals the password", err)
	}
}
