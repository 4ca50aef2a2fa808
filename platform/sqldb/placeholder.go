package sqldb

import "strings"

// rewritePlaceholders turns the PostgreSQL positional placeholders of query
// ($1, $2, ...) into SQLite's numbered ones (?1, ?2, ...), which bind to the
// same arguments: a placeholder may be repeated or appear out of order.
//
// SQLite parses "$1" too, but as a named TCL-style variable (whose name
// would swallow a following "::" or "(...)"); "?1" is SQLite's own
// positional form and binds by number.
//
// String literals ('$1'), quoted identifiers ("$1", `$1`, [$1]) and
// comments are copied unchanged, as is a '$' inside an identifier (a$1) or
// not followed by a digit.
func rewritePlaceholders(query string) string {
	if !strings.Contains(query, "$") {
		return query
	}
	var b strings.Builder
	done := 0 // query[:done] is in b
	for i := 0; i < len(query); {
		switch c := query[i]; {
		case c == '\'' || c == '"' || c == '`':
			i = quotedEnd(query, i, c)
		case c == '[':
			i = closingEnd(query, i+1, "]")
		case c == '-' && strings.HasPrefix(query[i:], "--"):
			i = closingEnd(query, i+2, "\n")
		case c == '/' && strings.HasPrefix(query[i:], "/*"):
			i = closingEnd(query, i+2, "*/")
		case c == '$' && i+1 < len(query) && isDigit(query[i+1]) && (i == 0 || !isIdentByte(query[i-1])):
			b.Grow(len(query))
			b.WriteString(query[done:i])
			b.WriteByte('?')
			i++
			done = i
		default:
			i++
		}
	}
	if done == 0 {
		return query
	}
	b.WriteString(query[done:])
	return b.String()
}

// quotedEnd returns the index just past the token quoted with q that starts
// at query[start]; a doubled quote stands for itself. An unterminated token
// runs to the end of query.
func quotedEnd(query string, start int, q byte) int {
	for i := start + 1; i < len(query); i++ {
		if query[i] != q {
			continue
		}
		if i+1 < len(query) && query[i+1] == q {
			i++ // escaped quote
			continue
		}
		return i + 1
	}
	return len(query)
}

// closingEnd returns the index just past the first occurrence of closing in
// query[from:], or len(query) if there is none.
func closingEnd(query string, from int, closing string) int {
	if k := strings.Index(query[from:], closing); k >= 0 {
		return from + k + len(closing)
	}
	return len(query)
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// isIdentByte reports whether c can be part of an unquoted identifier; bytes
// of multi-byte UTF-8 characters count, as they do for SQLite.
func isIdentByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || isDigit(c) || c == '_' || c == '$' || c >= 0x80
}
