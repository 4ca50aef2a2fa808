// Package account owns user accounts: creation with a unique name and a
// case-insensitively unique e-mail, password hashing and checking, password
// reset and profile lookup. It is a data module used by gate (register, login,
// reset) and chat (profiles, search); it has no role of its own.
package account

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Sentinel errors; compare with errors.Is.
var (
	// ErrInvalid wraps a validation failure; the message says which field.
	ErrInvalid = errors.New("account: invalid")
	// ErrTaken: the user name or the e-mail is already registered (llfc 1005).
	ErrTaken = errors.New("account: user name or e-mail taken")
	// ErrNotFound: no such user.
	ErrNotFound = errors.New("account: no such user")
	// ErrBadCredentials: wrong e-mail or password (llfc 1009).
	ErrBadCredentials = errors.New("account: wrong e-mail or password")
	// ErrMismatch: the user name and the e-mail do not belong to one account (llfc 1007).
	ErrMismatch = errors.New("account: user name and e-mail do not match")
)

// Limits on account fields.
const (
	MinPasswordLen = 6
	MaxPasswordLen = 128
	MaxNameLen     = 32
	MaxIconLen     = 512
)

// User is an account's public profile plus its e-mail.
type User struct {
	UID   int32
	Name  string
	Email string
	Nick  string
	Desc  string
	Sex   int
	Icon  string
}

// NewUser is what registration provides.
type NewUser struct {
	Name     string
	Email    string // already validated and trimmed by the caller or by Create
	Password string
	Icon     string
}

// ValidatePassword applies the only password policy: 6-128 characters and no
// control characters. Whatever string the client sends is the password (the Qt
// client scrambles it before sending; it may contain spaces).
func ValidatePassword(p string) error {
	n := utf8.RuneCountInString(p)
	if !utf8.ValidString(p) || n < MinPasswordLen || n > MaxPasswordLen {
		return fmt.Errorf("%w: password must be %d-%d characters", ErrInvalid, MinPasswordLen, MaxPasswordLen)
	}
	if strings.IndexFunc(p, unicode.IsControl) >= 0 {
		return fmt.Errorf("%w: password contains a control character", ErrInvalid)
	}
	return nil
}

// ValidateName checks a user name: 1-32 characters, no control characters,
// no surrounding spaces, and not all digits (chat search treats a string of
// digits as a uid, so such a name could never be found).
func ValidateName(name string) error {
	n := utf8.RuneCountInString(name)
	switch {
	case !utf8.ValidString(name) || n == 0 || n > MaxNameLen:
		return fmt.Errorf("%w: user name must be 1-%d characters", ErrInvalid, MaxNameLen)
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return fmt.Errorf("%w: user name contains a control character", ErrInvalid)
	case strings.TrimSpace(name) != name:
		return fmt.Errorf("%w: user name has leading or trailing spaces", ErrInvalid)
	case strings.Trim(name, "0123456789") == "":
		return fmt.Errorf("%w: user name cannot be only digits", ErrInvalid)
	}
	return nil
}

func validateIcon(icon string) error {
	if len(icon) > MaxIconLen || !utf8.ValidString(icon) || strings.IndexFunc(icon, unicode.IsControl) >= 0 {
		return fmt.Errorf("%w: icon must be at most %d bytes of text", ErrInvalid, MaxIconLen)
	}
	return nil
}
