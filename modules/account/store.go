package account

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/imsrv/imsrv/platform/sqldb"
)

// Store keeps accounts in SQL (table users; migrations/<dialect>/0001_users.sql).
type Store struct {
	db     sqldb.DB
	hasher *hasher

	dummyOnce sync.Once
	dummy     string // a hash verified against for unknown e-mails, so timing does not reveal them
}

// NewStore returns an account store on db. It does no I/O.
func NewStore(db sqldb.DB) *Store {
	return &Store{db: db, hasher: newHasher()}
}

// EmailKey is the form e-mails are compared in: trimmed and lower-cased.
func EmailKey(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

const userColumns = `uid, name, email, nick, descr, sex, icon`

func scanUser(row sqldb.Row) (User, error) {
	var u User
	err := row.Scan(&u.UID, &u.Name, &u.Email, &u.Nick, &u.Desc, &u.Sex, &u.Icon)
	if errors.Is(err, sqldb.ErrNoRows) {
		return User{}, ErrNotFound
	}
	return u, err
}

// Create registers a user. The name is validated and must be unique; the
// e-mail must be unique case-insensitively. The nick starts as the name.
// Errors: ErrInvalid, ErrTaken.
func (s *Store) Create(ctx context.Context, nu NewUser) (User, error) {
	email := strings.TrimSpace(nu.Email)
	if err := ValidateName(nu.Name); err != nil {
		return User{}, err
	}
	if err := ValidatePassword(nu.Password); err != nil {
		return User{}, err
	}
	if err := validateIcon(nu.Icon); err != nil {
		return User{}, err
	}
	hash, err := s.hasher.hash(ctx, nu.Password)
	if err != nil {
		return User{}, err
	}
	now := time.Now().UnixMilli()
	u := User{Name: nu.Name, Email: email, Nick: nu.Name, Icon: nu.Icon}
	err = s.db.QueryRow(ctx,
		`INSERT INTO users (name, email, email_key, pwd_hash, nick, icon, created_at, updated_at)
		 VALUES ($1, $2, $3, $4, $1, $5, $6, $6) RETURNING uid`,
		nu.Name, email, EmailKey(email), hash, nu.Icon, now).Scan(&u.UID)
	if errors.Is(err, sqldb.ErrUnique) {
		return User{}, ErrTaken
	}
	if err != nil {
		return User{}, fmt.Errorf("account: create %q: %w", nu.Name, err)
	}
	return u, nil
}

// Provision creates an account without a password (it cannot log in with
// one until a reset sets it): for bulk provisioning and load tests, where
// neither mail nor password hashing should be paid. Errors: ErrInvalid, ErrTaken.
func (s *Store) Provision(ctx context.Context, name, email string) (User, error) {
	email = strings.TrimSpace(email)
	if err := ValidateName(name); err != nil {
		return User{}, err
	}
	now := time.Now().UnixMilli()
	u := User{Name: name, Email: email, Nick: name}
	err := s.db.QueryRow(ctx,
		`INSERT INTO users (name, email, email_key, pwd_hash, nick, icon, created_at, updated_at)
		 VALUES ($1, $2, $3, '', $1, '', $4, $4) RETURNING uid`,
		name, email, EmailKey(email), now).Scan(&u.UID)
	if errors.Is(err, sqldb.ErrUnique) {
		return User{}, ErrTaken
	}
	if err != nil {
		return User{}, fmt.Errorf("account: provision %q: %w", name, err)
	}
	return u, nil
}

// Taken reports whether the name or the e-mail is already registered.
func (s *Store) Taken(ctx context.Context, name, email string) (bool, error) {
	var n int64
	err := s.db.QueryRow(ctx, `SELECT COUNT(*) FROM users WHERE name = $1 OR email_key = $2`,
		name, EmailKey(email)).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("account: check name and e-mail: %w", err)
	}
	return n > 0, nil
}

// Authenticate checks an e-mail and password. Errors: ErrBadCredentials.
func (s *Store) Authenticate(ctx context.Context, email, password string) (User, error) {
	var hash string
	var u User
	err := s.db.QueryRow(ctx, `SELECT `+userColumns+`, pwd_hash FROM users WHERE email_key = $1`, EmailKey(email)).
		Scan(&u.UID, &u.Name, &u.Email, &u.Nick, &u.Desc, &u.Sex, &u.Icon, &hash)
	if errors.Is(err, sqldb.ErrNoRows) {
		// Spend the same work as for a real account.
		if _, err := s.hasher.verify(ctx, s.dummyHash(ctx), password); err != nil {
			return User{}, err
		}
		return User{}, ErrBadCredentials
	}
	if err != nil {
		return User{}, fmt.Errorf("account: look up e-mail: %w", err)
	}
	if hash == "" { // provisioned without a password
		return User{}, ErrBadCredentials
	}
	ok, err := s.hasher.verify(ctx, hash, password)
	if err != nil {
		return User{}, fmt.Errorf("account: verify password of %d: %w", u.UID, err)
	}
	if !ok {
		return User{}, ErrBadCredentials
	}
	return u, nil
}

func (s *Store) dummyHash(ctx context.Context) string {
	s.dummyOnce.Do(func() {
		s.dummy, _ = s.hasher.hash(ctx, "imsrv-dummy-password")
	})
	return s.dummy
}

// Match returns the uid of the account with this e-mail and user name.
// Errors: ErrMismatch (no such account, or the name belongs to another e-mail).
func (s *Store) Match(ctx context.Context, email, name string) (int32, error) {
	var uid int32
	var got string
	err := s.db.QueryRow(ctx, `SELECT uid, name FROM users WHERE email_key = $1`, EmailKey(email)).Scan(&uid, &got)
	if errors.Is(err, sqldb.ErrNoRows) || (err == nil && got != name) {
		return 0, ErrMismatch
	}
	if err != nil {
		return 0, fmt.Errorf("account: look up e-mail: %w", err)
	}
	return uid, nil
}

// SetPassword replaces a user's password. Errors: ErrInvalid, ErrNotFound.
func (s *Store) SetPassword(ctx context.Context, uid int32, password string) error {
	if err := ValidatePassword(password); err != nil {
		return err
	}
	hash, err := s.hasher.hash(ctx, password)
	if err != nil {
		return err
	}
	n, err := s.db.Exec(ctx, `UPDATE users SET pwd_hash = $1, updated_at = $2 WHERE uid = $3`,
		hash, time.Now().UnixMilli(), uid)
	if err != nil {
		return fmt.Errorf("account: update password of %d: %w", uid, err)
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// ByUID returns a user's profile. Errors: ErrNotFound.
func (s *Store) ByUID(ctx context.Context, uid int32) (User, error) {
	u, err := scanUser(s.db.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE uid = $1`, uid))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return User{}, fmt.Errorf("account: load %d: %w", uid, err)
	}
	return u, err
}

// ByName returns a user's profile by exact user name. Errors: ErrNotFound.
func (s *Store) ByName(ctx context.Context, name string) (User, error) {
	u, err := scanUser(s.db.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE name = $1`, name))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return User{}, fmt.Errorf("account: load %q: %w", name, err)
	}
	return u, err
}
