package msgstore

import (
	"math/bits"
	"strconv"
	"strings"
)

// Parameters per batch statement. PostgreSQL allows 65535 and every
// statement is a network round trip, so statements are big. SQLite runs in
// process, and modernc.org/sqlite looks each parameter's name up in a list
// when binding, which makes binding quadratic in the number of parameters:
// small statements are much cheaper there.
const (
	pgParams     = 1 << 15
	sqliteParams = 128
)

// chunkRows is the number of rows of perRow parameters per statement: a
// power of two, so that padded(n) never exceeds it.
func (s *Store) chunkRows(perRow int) int {
	budget := sqliteParams
	if s.pg {
		budget = pgParams
	}
	return 1 << (bits.Len(uint(budget/perRow)) - 1)
}

// padded is the number of VALUES rows a statement for n rows gets. On
// PostgreSQL n is rounded up (by less than 1/8 above 16) so that batches of
// similar sizes share statement texts: pgx then keeps them prepared (its
// statement cache holds 512 per connection) and PostgreSQL can use generic
// plans, instead of parsing and planning a new statement of thousands of
// parameters per batch. The padding rows match nothing. SQLite prepares
// every statement anyway and gets no padding.
func (s *Store) padded(n int) int {
	if !s.pg || n <= 16 {
		return n
	}
	step := 1 << (bits.Len(uint(n)) - 4)
	return (n + step - 1) / step * step
}

// values returns the rows of a VALUES list of n rows of len(types)
// columns, numbering placeholders from $first on. On PostgreSQL every
// placeholder is cast to its column type, "(CAST($1 AS INTEGER),CAST($2 AS
// TEXT)),(...)": VALUES alone would make the columns text. SQLite needs no
// types, and parses plain "($1,$2),(...)" faster. The columns are named
// column1, column2, ... in both dialects.
func (s *Store) values(first, n int, types ...string) string {
	return valuesList(s.pg, first, n, types...)
}

func valuesList(typed bool, first, n int, types ...string) string {
	var b strings.Builder
	b.Grow(n * len(types) * 24)
	p := first
	for r := range n {
		if r > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('(')
		for c, t := range types {
			if c > 0 {
				b.WriteByte(',')
			}
			if typed {
				b.WriteString("CAST($")
				b.WriteString(strconv.Itoa(p))
				b.WriteString(" AS ")
				b.WriteString(t)
				b.WriteByte(')')
			} else {
				b.WriteByte('$')
				b.WriteString(strconv.Itoa(p))
			}
			p++
		}
		b.WriteByte(')')
	}
	return b.String()
}
