package sqldb

import "testing"

func TestRewritePlaceholders(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"none", "SELECT 1", "SELECT 1"},
		{"simple", "SELECT * FROM t WHERE a = $1 AND b = $2", "SELECT * FROM t WHERE a = ?1 AND b = ?2"},
		{"reused and out of order", "VALUES ($2, $1, $2)", "VALUES (?2, ?1, ?2)"},
		{"multi-digit", "IN ($9, $10, $123)", "IN (?9, ?10, ?123)"},
		{"no space", "a=$1,b=$2", "a=?1,b=?2"},
		{"at end", "LIMIT $1", "LIMIT ?1"},
		{"at start", "$1", "?1"},
		{"string literal", "SELECT '$1', $1", "SELECT '$1', ?1"},
		{"escaped quote in literal", "SELECT 'it''s $1', $2", "SELECT 'it''s $1', ?2"},
		{"empty literal", "SELECT '', $1", "SELECT '', ?1"},
		{"double-quoted identifier", `SELECT "$1" FROM t WHERE x = $1`, `SELECT "$1" FROM t WHERE x = ?1`},
		{"escaped double quote", `SELECT "a""$1" , $1`, `SELECT "a""$1" , ?1`},
		{"backquoted identifier", "SELECT `$1`, $1", "SELECT `$1`, ?1"},
		{"bracketed identifier", "SELECT [$1], $1", "SELECT [$1], ?1"},
		{"line comment", "SELECT $1 -- $2\nFROM t WHERE b = $2", "SELECT ?1 -- $2\nFROM t WHERE b = ?2"},
		{"line comment at end", "SELECT $1 -- $2", "SELECT ?1 -- $2"},
		{"block comment", "SELECT /* $1 */ $2", "SELECT /* $1 */ ?2"},
		{"unterminated literal", "SELECT '$1", "SELECT '$1"},
		{"unterminated comment", "SELECT $1 /* $2", "SELECT ?1 /* $2"},
		{"dollar without digit", "SELECT $name, $ , $1", "SELECT $name, $ , ?1"},
		{"dollar in identifier", "SELECT a$1, $1", "SELECT a$1, ?1"},
		{"dollar after non-ASCII identifier", "SELECT é$1, $1", "SELECT é$1, ?1"},
		{"minus and slash operators", "SELECT $1 - $2 / $3", "SELECT ?1 - ?2 / ?3"},
		{"negative", "SELECT -$1", "SELECT -?1"},
		{"cast-like", "SELECT ($1)", "SELECT (?1)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := rewritePlaceholders(tt.in); got != tt.want {
				t.Errorf("rewritePlaceholders(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func BenchmarkRewritePlaceholders(b *testing.B) {
	const query = "INSERT INTO users (name, email, email_key, pwd_hash, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5) RETURNING uid"
	for b.Loop() {
		rewritePlaceholders(query)
	}
}
