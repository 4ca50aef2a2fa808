// Package chatstore keeps the chat module's friend data in SQL: friend
// applications (1009/1011), their approval (1013/1014/1015) and the friend
// lists with each side's remark ("back") that login (1006) returns.
//
// Tables friend_apply and friend come from migrations/<dialect>/0002_friends.sql;
// public profiles are read from the account module's users table.
package chatstore

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/imsrv/imsrv/platform/sqldb"
)

var (
	// ErrSelf is returned by Apply when a user applies to themself.
	ErrSelf = errors.New("chatstore: cannot befriend yourself")
	// ErrAlreadyFriends is returned by Apply and Approve when the two users
	// are already friends.
	ErrAlreadyFriends = errors.New("chatstore: already friends")
	// ErrNoApplication is returned by Approve when there is no pending
	// application from the applicant to the approver.
	ErrNoApplication = errors.New("chatstore: no pending application")
	// ErrNoUser is returned when a user named by uid or name does not exist.
	ErrNoUser = errors.New("chatstore: no such user")
	// ErrInvalid is wrapped by errors about invalid input (a greeting or
	// remark too long, not UTF-8 or holding control characters); the
	// message names the field.
	ErrInvalid = errors.New("chatstore: invalid")
)

// Application status values (friend_apply.status).
const (
	StatusPending  = 0
	StatusApproved = 1
)

// MaxTextLen is the longest greeting or remark accepted, in characters (runes).
const MaxTextLen = 64

// Profile is a user's public profile: everything but the e-mail and password.
type Profile struct {
	UID  int32
	Name string
	Nick string
	Desc string
	Sex  int
	Icon string
}

// Application is a friend application as its target sees it.
type Application struct {
	// Profile is the applicant's.
	Profile
	// Greeting is the applicant's greeting (1009 applyname).
	Greeting string
	// Status is StatusPending or StatusApproved.
	Status int
	// CreatedAt is when the application was made, in Unix milliseconds.
	CreatedAt int64
}

// Friend is an entry of a user's friend list.
type Friend struct {
	// Profile is the friend's.
	Profile
	// Remark is the list owner's remark ("back") for this friend.
	Remark string
}

// Store keeps friend applications and friendships in SQL.
type Store struct {
	db sqldb.DB
}

// New returns a store on db. It does no I/O.
func New(db sqldb.DB) *Store {
	return &Store{db: db}
}

// profileColumns are the users columns of a Profile, in scan order; the
// table is aliased u in every query using them.
const profileColumns = `u.uid, u.name, u.nick, u.descr, u.sex, u.icon`

// profileDest returns the scan destinations matching profileColumns.
func profileDest(p *Profile) []any {
	return []any{&p.UID, &p.Name, &p.Nick, &p.Desc, &p.Sex, &p.Icon}
}

// validateText checks a greeting or remark; field names it in the error.
func validateText(field, s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalid, field)
	}
	if n := utf8.RuneCountInString(s); n > MaxTextLen {
		return fmt.Errorf("%w: %s is %d characters long, at most %d allowed", ErrInvalid, field, n, MaxTextLen)
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return fmt.Errorf("%w: %s contains control character %U", ErrInvalid, field, r)
		}
	}
	return nil
}

// Apply records (or refreshes) from's application to to, with from's
// greeting (1009 applyname) and from's remark for to (1009 bakname). A
// repeated application updates greeting and remark and moves it back to
// pending; a pending application keeps its creation time.
// Errors: ErrInvalid, ErrSelf, ErrNoUser (to, or from, does not exist),
// ErrAlreadyFriends.
func (s *Store) Apply(ctx context.Context, from, to int32, greeting, remark string) error {
	if err := validateText("greeting", greeting); err != nil {
		return err
	}
	if err := validateText("remark", remark); err != nil {
		return err
	}
	if from == to {
		return ErrSelf
	}
	now := time.Now().UnixMilli()
	err := s.db.InTx(ctx, func(tx sqldb.Querier) error {
		var n int64
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM users WHERE uid = $1`, to).Scan(&n); err != nil {
			return fmt.Errorf("look up user %d: %w", to, err)
		}
		if n == 0 {
			return fmt.Errorf("%w: %d", ErrNoUser, to)
		}
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM users WHERE uid = $1`, from).Scan(&n); err != nil {
			return fmt.Errorf("look up user %d: %w", from, err)
		}
		if n == 0 {
			return fmt.Errorf("%w: %d", ErrNoUser, from)
		}
		friends, err := areFriends(ctx, tx, from, to)
		if err != nil {
			return err
		}
		if friends {
			return ErrAlreadyFriends
		}
		_, err = tx.Exec(ctx,
			`INSERT INTO friend_apply (from_uid, to_uid, greeting, remark, status, created_at, updated_at)
			 VALUES ($1, $2, $3, $4, 0, $5, $5)
			 ON CONFLICT (from_uid, to_uid) DO UPDATE SET
			   greeting   = excluded.greeting,
			   remark     = excluded.remark,
			   created_at = CASE WHEN friend_apply.status = 0 THEN friend_apply.created_at ELSE excluded.created_at END,
			   status     = 0,
			   updated_at = excluded.updated_at`,
			from, to, greeting, remark, now)
		if err != nil {
			return fmt.Errorf("save application: %w", err)
		}
		return nil
	})
	if err != nil {
		return wrap(err, "apply %d -> %d", from, to)
	}
	return nil
}

// Approve lets approver accept applicant's pending application, in one
// transaction: the application is marked approved and both friend rows are
// inserted, the approver's with approverRemark and the applicant's with the
// remark from the application. If the approver had also applied to the
// applicant (crossed applications), that application is marked approved too.
// It returns the applicant's profile (for 1014) and the approver's (for 1015).
//
// Approving when the two are already friends returns ErrAlreadyFriends and
// changes nothing; so of several concurrent approvals of one application
// exactly one succeeds. Errors: ErrInvalid, ErrAlreadyFriends,
// ErrNoApplication (also when approver == applicant).
func (s *Store) Approve(ctx context.Context, approver, applicant int32, approverRemark string) (applicantProfile, approverProfile Profile, err error) {
	if err := validateText("remark", approverRemark); err != nil {
		return Profile{}, Profile{}, err
	}
	if approver == applicant {
		// Apply refuses such an application, so there is none.
		return Profile{}, Profile{}, fmt.Errorf("%w from yourself", ErrNoApplication)
	}
	now := time.Now().UnixMilli()
	err = s.db.InTx(ctx, func(tx sqldb.Querier) error {
		// One conditional update claims the application and, if there is
		// one, the crossed application. Concurrent approvals of either queue
		// on the rows' locks (PostgreSQL row locks, SQLite's write lock) and
		// all but the first find nothing pending any more. Taking both rows
		// in one statement (rather than one after the other) has every
		// caller lock them in the same order, so crossed approvals do not
		// deadlock.
		rows, err := tx.Query(ctx,
			`UPDATE friend_apply SET status = 1, updated_at = $1
			 WHERE status = 0 AND ((from_uid = $2 AND to_uid = $3) OR (from_uid = $3 AND to_uid = $2))
			 RETURNING from_uid, remark`,
			now, applicant, approver)
		if err != nil {
			return fmt.Errorf("claim application: %w", err)
		}
		pending := false
		var applicantRemark string
		for rows.Next() {
			var from int32
			var remark string
			if err := rows.Scan(&from, &remark); err != nil {
				rows.Close()
				return fmt.Errorf("claim application: %w", err)
			}
			if from == applicant {
				pending, applicantRemark = true, remark
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("claim application: %w", err)
		}
		// Checked after the claim so that a loser of a race sees the
		// winner's rows. A pending application left over from before the
		// friendship changes nothing either: the transaction rolls back.
		friends, err := areFriends(ctx, tx, approver, applicant)
		if err != nil {
			return err
		}
		if friends {
			return ErrAlreadyFriends
		}
		if !pending {
			// Rolls back the crossed application, should it have been claimed.
			return ErrNoApplication
		}
		_, err = tx.Exec(ctx,
			`INSERT INTO friend (uid, friend_uid, remark, created_at) VALUES ($1, $2, $3, $5), ($2, $1, $4, $5)`,
			approver, applicant, approverRemark, applicantRemark, now)
		if errors.Is(err, sqldb.ErrUnique) {
			// A concurrent approval of the crossed application won.
			return ErrAlreadyFriends
		}
		if err != nil {
			return fmt.Errorf("insert friends: %w", err)
		}
		if applicantProfile, err = loadProfile(ctx, tx, applicant); err != nil {
			return err
		}
		if approverProfile, err = loadProfile(ctx, tx, approver); err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		return Profile{}, Profile{}, wrap(err, "approve %d -> %d", applicant, approver)
	}
	return applicantProfile, approverProfile, nil
}

// PendingApplications lists every pending application to uid, oldest first,
// with the applicants' profiles. Applications from users who are already
// uid's friends are left out.
func (s *Store) PendingApplications(ctx context.Context, uid int32) ([]Application, error) {
	rows, err := s.db.Query(ctx,
		`SELECT `+profileColumns+`, a.greeting, a.status, a.created_at
		 FROM friend_apply a JOIN users u ON u.uid = a.from_uid
		 WHERE a.to_uid = $1 AND a.status = 0
		   AND NOT EXISTS (SELECT 1 FROM friend f WHERE f.uid = a.to_uid AND f.friend_uid = a.from_uid)
		 ORDER BY a.created_at, a.from_uid`, uid)
	if err != nil {
		return nil, fmt.Errorf("chatstore: pending applications of %d: %w", uid, err)
	}
	defer rows.Close()
	var apps []Application
	for rows.Next() {
		var a Application
		if err := rows.Scan(append(profileDest(&a.Profile), &a.Greeting, &a.Status, &a.CreatedAt)...); err != nil {
			return nil, fmt.Errorf("chatstore: pending applications of %d: %w", uid, err)
		}
		apps = append(apps, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("chatstore: pending applications of %d: %w", uid, err)
	}
	return apps, nil
}

// Friends lists uid's friends with uid's remark for each, ordered by friend uid.
func (s *Store) Friends(ctx context.Context, uid int32) ([]Friend, error) {
	rows, err := s.db.Query(ctx,
		`SELECT `+profileColumns+`, f.remark
		 FROM friend f JOIN users u ON u.uid = f.friend_uid
		 WHERE f.uid = $1
		 ORDER BY f.friend_uid`, uid)
	if err != nil {
		return nil, fmt.Errorf("chatstore: friends of %d: %w", uid, err)
	}
	defer rows.Close()
	var friends []Friend
	for rows.Next() {
		var f Friend
		if err := rows.Scan(append(profileDest(&f.Profile), &f.Remark)...); err != nil {
			return nil, fmt.Errorf("chatstore: friends of %d: %w", uid, err)
		}
		friends = append(friends, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("chatstore: friends of %d: %w", uid, err)
	}
	return friends, nil
}

// AreFriends reports whether a has b as a friend. After Approve the rows
// exist in both directions, so the answer is the same either way round.
func (s *Store) AreFriends(ctx context.Context, a, b int32) (bool, error) {
	ok, err := areFriends(ctx, s.db, a, b)
	if err != nil {
		return false, fmt.Errorf("chatstore: %w", err)
	}
	return ok, nil
}

func areFriends(ctx context.Context, q sqldb.Querier, a, b int32) (bool, error) {
	var n int64
	if err := q.QueryRow(ctx, `SELECT COUNT(*) FROM friend WHERE uid = $1 AND friend_uid = $2`, a, b).Scan(&n); err != nil {
		return false, fmt.Errorf("check friendship %d -> %d: %w", a, b, err)
	}
	return n > 0, nil
}

// Profile loads uid's public profile. Errors: ErrNoUser.
func (s *Store) Profile(ctx context.Context, uid int32) (Profile, error) {
	p, err := loadProfile(ctx, s.db, uid)
	if err != nil {
		return Profile{}, wrap(err, "profile")
	}
	return p, nil
}

// ProfileByName loads the public profile of the user with exactly this
// name. Errors: ErrNoUser.
func (s *Store) ProfileByName(ctx context.Context, name string) (Profile, error) {
	var p Profile
	err := s.db.QueryRow(ctx, `SELECT `+profileColumns+` FROM users u WHERE u.name = $1`, name).Scan(profileDest(&p)...)
	if errors.Is(err, sqldb.ErrNoRows) {
		return Profile{}, fmt.Errorf("%w: %q", ErrNoUser, name)
	}
	if err != nil {
		return Profile{}, fmt.Errorf("chatstore: profile %q: %w", name, err)
	}
	return p, nil
}

func loadProfile(ctx context.Context, q sqldb.Querier, uid int32) (Profile, error) {
	var p Profile
	err := q.QueryRow(ctx, `SELECT `+profileColumns+` FROM users u WHERE u.uid = $1`, uid).Scan(profileDest(&p)...)
	if errors.Is(err, sqldb.ErrNoRows) {
		return Profile{}, fmt.Errorf("%w: %d", ErrNoUser, uid)
	}
	if err != nil {
		return Profile{}, fmt.Errorf("load profile %d: %w", uid, err)
	}
	return p, nil
}

// wrap adds context to an error, except to the package's own errors, which
// are returned unchanged: they already say what went wrong.
func wrap(err error, format string, args ...any) error {
	switch {
	case errors.Is(err, ErrSelf), errors.Is(err, ErrAlreadyFriends), errors.Is(err, ErrNoApplication),
		errors.Is(err, ErrNoUser), errors.Is(err, ErrInvalid):
		return err
	}
	return fmt.Errorf("chatstore: "+format+": %w", append(args, err)...)
}
