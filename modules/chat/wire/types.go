package wire

import (
	"encoding/json"
	"reflect"
	"strconv"
)

// Int32 is an integer field of a client body (a uid or an id). The llfc
// clients are not consistent about sending numbers: the Qt client sends JSON
// numbers, while the web front end may send ids it keeps as strings. Int32
// therefore decodes a JSON integer (1054) or a string holding one ("1054").
// Anything else is rejected with a *json.UnmarshalTypeError: other JSON types,
// fractions and exponents (10.5, 1e3), signs other than a leading '-',
// surrounding spaces, the empty string and values outside the int32 range.
// JSON null leaves the value unchanged, as for built-in types.
//
// Int32 always encodes as a JSON number.
type Int32 int32

// UnmarshalJSON implements json.Unmarshaler.
func (v *Int32) UnmarshalJSON(data []byte) error {
	text := string(data)
	kind := "number"
	switch {
	case text == "null":
		return nil
	case len(data) > 0 && data[0] == '"':
		kind = "string"
		if err := json.Unmarshal(data, &text); err != nil {
			return err
		}
	case len(data) > 0 && (data[0] == '-' || isDigit(data[0])):
	default:
		return typeError(data, reflect.TypeFor[Int32]())
	}
	if !isInteger(text) {
		return typeError(data, reflect.TypeFor[Int32]())
	}
	n, err := strconv.ParseInt(text, 10, 32)
	if err != nil {
		return &json.UnmarshalTypeError{
			Value: kind + " " + truncate(data) + " (out of int32 range)",
			Type:  reflect.TypeFor[Int32](),
		}
	}
	*v = Int32(n)
	return nil
}

// SearchKey is the "uid" field of a search request (1007). The llfc clients
// send it as a string: a uid when it is all digits, a user name otherwise. A
// JSON integer is accepted too and kept as its decimal digits, because some
// clients send a uid they hold as a number; other JSON types are rejected with
// a *json.UnmarshalTypeError. SearchKey encodes as a JSON string.
type SearchKey string

// UnmarshalJSON implements json.Unmarshaler.
func (k *SearchKey) UnmarshalJSON(data []byte) error {
	switch {
	case string(data) == "null":
		return nil
	case len(data) > 0 && data[0] == '"':
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return err
		}
		*k = SearchKey(s)
		return nil
	case len(data) > 0 && isDigit(data[0]) && isInteger(string(data)):
		*k = SearchKey(data)
		return nil
	}
	return typeError(data, reflect.TypeFor[SearchKey]())
}

// UID reports how the server interprets the key: as a uid when it is a
// non-empty run of ASCII digits whose value fits in an int32 (leading zeros
// allowed), and as a user name otherwise. The llfc server did the same, minus
// the range check (it crashed on an oversized number).
func (k SearchKey) UID() (int32, bool) {
	s := string(k)
	if s == "" || s[0] == '-' || !isInteger(s) {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		return 0, false
	}
	return int32(n), true
}

// isInteger reports whether s is an optional '-' followed by one or more
// ASCII digits.
func isInteger(s string) bool {
	if len(s) > 0 && s[0] == '-' {
		s = s[1:]
	}
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// typeError describes a JSON value that a field of type t does not accept.
// The decoder adds the struct and field names.
func typeError(data []byte, t reflect.Type) error {
	return &json.UnmarshalTypeError{Value: jsonKind(data) + " " + truncate(data), Type: t}
}

// jsonKind names the JSON type of a syntactically valid value.
func jsonKind(data []byte) string {
	if len(data) == 0 {
		return "empty value"
	}
	switch data[0] {
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "bool"
	case 'n':
		return "null"
	}
	return "number"
}

// truncate keeps error messages short when a client sends a large value.
func truncate(data []byte) string {
	const max = 32
	if len(data) <= max {
		return string(data)
	}
	return string(data[:max]) + "..."
}
