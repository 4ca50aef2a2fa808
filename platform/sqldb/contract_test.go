package sqldb_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/imsrv/imsrv/platform/sqldb"
	"github.com/imsrv/imsrv/platform/sqldb/sqldbtest"
)

// forEachDialect runs the contract test fn against a fresh SQLite database
// and, when IMSRV_TEST_POSTGRES_URL is set, a fresh PostgreSQL schema.
func forEachDialect(t *testing.T, fn func(t *testing.T, db sqldb.DB)) {
	t.Helper()
	t.Parallel()
	open := map[string]func(testing.TB) sqldb.DB{
		sqldb.SQLite:   sqldbtest.SQLite,
		sqldb.Postgres: sqldbtest.Postgres,
	}
	for _, dialect := range []string{sqldb.SQLite, sqldb.Postgres} {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			db := open[dialect](t)
			if got := db.Dialect(); got != dialect {
				t.Fatalf("Dialect() = %q, want %q", got, dialect)
			}
			fn(t, db)
		})
	}
}

// createItems creates the items table used by most tests: portable DDL.
func createItems(t *testing.T, db sqldb.DB) {
	t.Helper()
	mustExec(t, db, `CREATE TABLE items (
		id   INTEGER PRIMARY KEY,
		name TEXT    NOT NULL UNIQUE,
		n    BIGINT  NOT NULL DEFAULT 0,
		flag INTEGER NOT NULL DEFAULT 0
	)`)
}

func mustExec(t *testing.T, q sqldb.Querier, query string, args ...any) int64 {
	t.Helper()
	n, err := q.Exec(t.Context(), query, args...)
	if err != nil {
		t.Fatalf("Exec(%q): %v", query, err)
	}
	return n
}

func count(t *testing.T, q sqldb.Querier, table string) int64 {
	t.Helper()
	var n int64
	if err := q.QueryRow(t.Context(), "SELECT COUNT(*) FROM "+table).Scan(&n); err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

func TestExecRowsAffected(t *testing.T) {
	forEachDialect(t, func(t *testing.T, db sqldb.DB) {
		createItems(t, db)
		steps := []struct {
			query string
			args  []any
			want  int64
		}{
			{"INSERT INTO items (id, name, n) VALUES (1, 'a', 10), (2, 'b', 20), (3, 'c', 30)", nil, 3},
			{"UPDATE items SET n = n + 1 WHERE n > $1", []any{15}, 2},
			{"UPDATE items SET flag = 1 WHERE name = $1", []any{"nobody"}, 0},
			{"DELETE FROM items WHERE id = $1", []any{1}, 1},
		}
		for _, s := range steps {
			if got := mustExec(t, db, s.query, s.args...); got != s.want {
				t.Errorf("Exec(%q) = %d rows, want %d", s.query, got, s.want)
			}
		}
	})
}

func TestMultiStatementExec(t *testing.T) {
	forEachDialect(t, func(t *testing.T, db sqldb.DB) {
		mustExec(t, db, `
			CREATE TABLE a (id INTEGER PRIMARY KEY);
			CREATE TABLE b (id INTEGER PRIMARY KEY);
			INSERT INTO a (id) VALUES (1);
			INSERT INTO b (id) VALUES (1), (2);`)
		if got := count(t, db, "a") + count(t, db, "b"); got != 3 {
			t.Errorf("rows after multi-statement Exec = %d, want 3", got)
		}
	})
}

func TestQueryScan(t *testing.T) {
	type item struct {
		id   int64
		name string
		n    int64
		flag bool // stored as INTEGER 0/1, the portable boolean
	}
	want := []item{
		{1, "plain", math.MaxInt64, true},
		{2, "it's 'quoted' — ünïcode", math.MinInt64, false},
		{3, "", -1, true},
	}
	forEachDialect(t, func(t *testing.T, db sqldb.DB) {
		createItems(t, db)
		for _, it := range want {
			flag := 0
			if it.flag {
				flag = 1
			}
			mustExec(t, db, "INSERT INTO items (id, name, n, flag) VALUES ($1, $2, $3, $4)", it.id, it.name, it.n, flag)
		}

		rows, err := db.Query(t.Context(), "SELECT id, name, n, flag FROM items ORDER BY id")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var got []item
		for rows.Next() {
			var it item
			var flag int64
			if err := rows.Scan(&it.id, &it.name, &it.n, &flag); err != nil {
				t.Fatal(err)
			}
			it.flag = flag != 0
			got = append(got, it)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close() // a second Close is harmless
		if !slices.Equal(got, want) {
			t.Errorf("rows = %+v, want %+v", got, want)
		}

		// Narrower integer destinations work too.
		var id int
		var flag int32
		if err := db.QueryRow(t.Context(), "SELECT id, flag FROM items WHERE name = $1", "plain").Scan(&id, &flag); err != nil {
			t.Fatal(err)
		}
		if id != 1 || flag != 1 {
			t.Errorf("id, flag = %d, %d; want 1, 1", id, flag)
		}

		// An empty result set is not an error for Query.
		rows, err = db.Query(t.Context(), "SELECT id FROM items WHERE id < 0")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		if rows.Next() {
			t.Error("Next() = true on an empty result")
		}
		if err := rows.Err(); err != nil {
			t.Error(err)
		}
	})
}

func TestQueryRowNoRows(t *testing.T) {
	forEachDialect(t, func(t *testing.T, db sqldb.DB) {
		createItems(t, db)
		var name string
		err := db.QueryRow(t.Context(), "SELECT name FROM items WHERE id = $1", 42).Scan(&name)
		if !errors.Is(err, sqldb.ErrNoRows) {
			t.Errorf("QueryRow on no rows: %v, want ErrNoRows", err)
		}
		err = db.InTx(t.Context(), func(tx sqldb.Querier) error {
			return tx.QueryRow(t.Context(), "SELECT name FROM items WHERE id = $1", 42).Scan(&name)
		})
		if !errors.Is(err, sqldb.ErrNoRows) {
			t.Errorf("QueryRow on no rows in a transaction: %v, want ErrNoRows", err)
		}
	})
}

func TestErrUnique(t *testing.T) {
	forEachDialect(t, func(t *testing.T, db sqldb.DB) {
		createItems(t, db)
		mustExec(t, db, "INSERT INTO items (id, name) VALUES (1, 'a')")

		_, err := db.Exec(t.Context(), "INSERT INTO items (id, name) VALUES (2, 'a')")
		if !errors.Is(err, sqldb.ErrUnique) {
			t.Errorf("duplicate UNIQUE column: %v, want ErrUnique", err)
		}
		// The driver's message, which names the constraint, is kept.
		if err != nil && !strings.Contains(err.Error(), "items") {
			t.Errorf("duplicate UNIQUE column: %q does not name the table or constraint", err)
		}

		_, err = db.Exec(t.Context(), "INSERT INTO items (id, name) VALUES (1, 'b')")
		if !errors.Is(err, sqldb.ErrUnique) {
			t.Errorf("duplicate PRIMARY KEY: %v, want ErrUnique", err)
		}

		var id int64
		err = db.QueryRow(t.Context(), "INSERT INTO items (id, name) VALUES (3, 'a') RETURNING id").Scan(&id)
		if !errors.Is(err, sqldb.ErrUnique) {
			t.Errorf("duplicate in INSERT ... RETURNING: %v, want ErrUnique", err)
		}

		err = db.InTx(t.Context(), func(tx sqldb.Querier) error {
			_, err := tx.Exec(t.Context(), "INSERT INTO items (id, name) VALUES (4, 'a')")
			return err
		})
		if !errors.Is(err, sqldb.ErrUnique) {
			t.Errorf("duplicate in a transaction: %v, want ErrUnique", err)
		}

		// Other constraint violations are not ErrUnique.
		_, err = db.Exec(t.Context(), "INSERT INTO items (id, name) VALUES (5, NULL)")
		if err == nil || errors.Is(err, sqldb.ErrUnique) {
			t.Errorf("NOT NULL violation: %v, want an error other than ErrUnique", err)
		}
		if got := count(t, db, "items"); got != 1 {
			t.Errorf("items = %d, want 1", got)
		}
	})
}

func TestInTx(t *testing.T) {
	forEachDialect(t, func(t *testing.T, db sqldb.DB) {
		createItems(t, db)
		ctx := t.Context()

		t.Run("commit", func(t *testing.T) {
			err := db.InTx(ctx, func(tx sqldb.Querier) error {
				mustExec(t, tx, "INSERT INTO items (id, name) VALUES (1, 'committed')")
				// The transaction sees its own writes.
				if got := count(t, tx, "items"); got != 1 {
					t.Errorf("items inside the transaction = %d, want 1", got)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if got := count(t, db, "items"); got != 1 {
				t.Errorf("items after commit = %d, want 1", got)
			}
		})

		t.Run("rollback", func(t *testing.T) {
			errBoom := errors.New("boom")
			err := db.InTx(ctx, func(tx sqldb.Querier) error {
				mustExec(t, tx, "INSERT INTO items (id, name) VALUES (2, 'rolled back')")
				return fmt.Errorf("wrapped: %w", errBoom)
			})
			if !errors.Is(err, errBoom) {
				t.Errorf("InTx = %v, want fn's error", err)
			}
			if got := count(t, db, "items"); got != 1 {
				t.Errorf("items after rollback = %d, want 1", got)
			}
		})

		t.Run("panic", func(t *testing.T) {
			func() {
				defer func() {
					if p := recover(); p != "boom" {
						t.Errorf("recovered %v, want the panic of fn", p)
					}
				}()
				_ = db.InTx(ctx, func(tx sqldb.Querier) error {
					mustExec(t, tx, "INSERT INTO items (id, name) VALUES (3, 'panicked')")
					panic("boom")
				})
			}()
			if got := count(t, db, "items"); got != 1 {
				t.Errorf("items after panic = %d, want 1", got)
			}
			// The transaction is gone, so writers are not locked out.
			mustExec(t, db, "INSERT INTO items (id, name) VALUES (4, 'after panic')")
		})

		t.Run("canceled", func(t *testing.T) {
			ctx, cancel := context.WithCancel(ctx)
			err := db.InTx(ctx, func(tx sqldb.Querier) error {
				mustExec(t, tx, "INSERT INTO items (id, name) VALUES (5, 'canceled')")
				cancel()
				return nil
			})
			if !errors.Is(err, context.Canceled) {
				t.Errorf("InTx with a context canceled before commit = %v, want context.Canceled", err)
			}
			if got := count(t, db, "items"); got != 2 {
				t.Errorf("items after canceled commit = %d, want 2", got)
			}
		})
	})
}

func TestInsertReturning(t *testing.T) {
	forEachDialect(t, func(t *testing.T, db sqldb.DB) {
		// Generated keys are the one thing the DDL cannot spell portably.
		ddl := map[string]string{
			sqldb.Postgres: "CREATE TABLE seq (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, name TEXT NOT NULL)",
			sqldb.SQLite:   "CREATE TABLE seq (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL)",
		}
		mustExec(t, db, ddl[db.Dialect()])

		for i, name := range []string{"first", "second"} {
			var id int64
			var got string
			err := db.QueryRow(t.Context(), "INSERT INTO seq (name) VALUES ($1) RETURNING id, name", name).Scan(&id, &got)
			if err != nil {
				t.Fatal(err)
			}
			if id != int64(i+1) || got != name {
				t.Errorf("RETURNING = %d, %q; want %d, %q", id, got, i+1, name)
			}
		}

		// RETURNING several rows, inside a transaction.
		err := db.InTx(t.Context(), func(tx sqldb.Querier) error {
			rows, err := tx.Query(t.Context(), "INSERT INTO seq (name) VALUES ('x'), ('y') RETURNING id")
			if err != nil {
				return err
			}
			defer rows.Close()
			var ids []int64
			for rows.Next() {
				var id int64
				if err := rows.Scan(&id); err != nil {
					return err
				}
				ids = append(ids, id)
			}
			if err := rows.Err(); err != nil {
				return err
			}
			slices.Sort(ids)
			if !slices.Equal(ids, []int64{3, 4}) {
				t.Errorf("RETURNING ids = %v, want [3 4]", ids)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

func TestPlaceholders(t *testing.T) {
	forEachDialect(t, func(t *testing.T, db sqldb.DB) {
		createItems(t, db)
		// $2 before $1, and $2 used twice. (PostgreSQL wants a reused
		// parameter to have one type: id and flag are both INTEGER.)
		mustExec(t, db, "INSERT INTO items (id, flag, name) VALUES ($2, $2, $1)", "seven", 7)

		var id, flag int64
		var name, literal string
		err := db.QueryRow(t.Context(), `SELECT id, flag, name, '$1 and $2' FROM items -- $3 in a comment
			WHERE id = $1 AND flag = $1 /* $9 */ AND name <> '$1'`, 7).Scan(&id, &flag, &name, &literal)
		if err != nil {
			t.Fatal(err)
		}
		if id != 7 || flag != 7 || name != "seven" || literal != "$1 and $2" {
			t.Errorf("got %d, %d, %q, %q; want 7, 7, \"seven\", \"$1 and $2\"", id, flag, name, literal)
		}

		// Ten or more placeholders, in reverse: $1 must not match $10.
		args := make([]any, 12)
		marks := make([]string, 12)
		for i := range args {
			args[i] = int64(100 + i)
			marks[len(marks)-1-i] = fmt.Sprintf("$%d", i+1)
		}
		for _, arg := range args {
			mustExec(t, db, "INSERT INTO items (id, name) VALUES ($1, $2)", arg, fmt.Sprint(arg))
		}
		var sum int64
		query := "SELECT SUM(id) FROM items WHERE id IN (" + strings.Join(marks, ", ") + ")"
		if err := db.QueryRow(t.Context(), query, args...).Scan(&sum); err != nil {
			t.Fatal(err)
		}
		if want := int64(12*100 + 66); sum != want {
			t.Errorf("%s = %d, want %d", query, sum, want)
		}
	})
}

// TestConcurrentInserts checks that parallel writers wait for each other
// instead of failing (SQLITE_BUSY on SQLite).
func TestConcurrentInserts(t *testing.T) {
	const writers, perWriter = 20, 10
	forEachDialect(t, func(t *testing.T, db sqldb.DB) {
		createItems(t, db)
		ctx := t.Context()
		inserts := map[string]func(id int64) error{
			"exec": func(id int64) error {
				_, err := db.Exec(ctx, "INSERT INTO items (id, name) VALUES ($1, $2)", id, fmt.Sprint("exec-", id))
				return err
			},
			"tx": func(id int64) error {
				return db.InTx(ctx, func(tx sqldb.Querier) error {
					// Read before write: the read lock must not need upgrading.
					var n int64
					if err := tx.QueryRow(ctx, "SELECT COUNT(*) FROM items").Scan(&n); err != nil {
						return err
					}
					_, err := tx.Exec(ctx, "INSERT INTO items (id, name, n) VALUES ($1, $2, $3)", id, fmt.Sprint("tx-", id), n)
					return err
				})
			},
		}
		base := int64(0)
		for _, mode := range []string{"exec", "tx"} {
			insert := inserts[mode]
			var wg sync.WaitGroup
			errs := make(chan error, writers*perWriter)
			for w := range int64(writers) {
				first := base + w*perWriter
				wg.Go(func() {
					for id := first; id < first+perWriter; id++ {
						if err := insert(id); err != nil {
							errs <- fmt.Errorf("%s insert %d: %w", mode, id, err)
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			base += writers * perWriter
			if got := count(t, db, "items"); got != base {
				t.Errorf("after %s inserts: %d rows, want %d", mode, got, base)
			}
		}
	})
}
