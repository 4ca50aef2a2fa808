package chatstore_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/imsrv/imsrv/migrations"
	"github.com/imsrv/imsrv/modules/chat/chatstore"
	"github.com/imsrv/imsrv/platform/sqldb"
	"github.com/imsrv/imsrv/platform/sqldb/sqldbtest"
)

// env is one test database with the schema migrated and a store on it.
type env struct {
	t  *testing.T
	db sqldb.DB
	s  *chatstore.Store
	n  int // users created
}

// forEachDialect runs fn against a fresh, migrated SQLite database and, when
// IMSRV_TEST_POSTGRES_URL is set, a fresh PostgreSQL schema.
func forEachDialect(t *testing.T, fn func(t *testing.T, e *env)) {
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
			if _, err := sqldb.Migrate(t.Context(), db, migrations.FS); err != nil {
				t.Fatal(err)
			}
			fn(t, &env{t: t, db: db, s: chatstore.New(db)})
		})
	}
}

// user inserts a user and returns its profile.
func (e *env) user(name string) chatstore.Profile {
	e.t.Helper()
	e.n++
	p := chatstore.Profile{Name: name, Nick: "nick-" + name, Desc: "desc of " + name, Sex: e.n % 2, Icon: ":/res/head_" + name + ".jpg"}
	err := e.db.QueryRow(e.t.Context(),
		`INSERT INTO users (name, email, email_key, pwd_hash, nick, descr, sex, icon, created_at, updated_at)
		 VALUES ($1, $2, $3, 'x', $4, $5, $6, $7, 1, 1) RETURNING uid`,
		name, name+"@Example.com", name+"@example.com", p.Nick, p.Desc, p.Sex, p.Icon).Scan(&p.UID)
	if err != nil {
		e.t.Fatalf("create user %s: %v", name, err)
	}
	return p
}

func (e *env) apply(from, to chatstore.Profile, greeting, remark string) {
	e.t.Helper()
	if err := e.s.Apply(e.t.Context(), from.UID, to.UID, greeting, remark); err != nil {
		e.t.Fatalf("Apply(%d -> %d): %v", from.UID, to.UID, err)
	}
}

func (e *env) pending(uid int32) []chatstore.Application {
	e.t.Helper()
	apps, err := e.s.PendingApplications(e.t.Context(), uid)
	if err != nil {
		e.t.Fatalf("PendingApplications(%d): %v", uid, err)
	}
	return apps
}

func (e *env) friends(uid int32) []chatstore.Friend {
	e.t.Helper()
	fs, err := e.s.Friends(e.t.Context(), uid)
	if err != nil {
		e.t.Fatalf("Friends(%d): %v", uid, err)
	}
	return fs
}

func (e *env) areFriends(a, b int32) bool {
	e.t.Helper()
	ok, err := e.s.AreFriends(e.t.Context(), a, b)
	if err != nil {
		e.t.Fatalf("AreFriends(%d, %d): %v", a, b, err)
	}
	return ok
}

// status returns friend_apply.status of from's application to to, or -1.
func (e *env) status(from, to int32) int {
	e.t.Helper()
	var st int
	err := e.db.QueryRow(e.t.Context(), `SELECT status FROM friend_apply WHERE from_uid = $1 AND to_uid = $2`, from, to).Scan(&st)
	if errors.Is(err, sqldb.ErrNoRows) {
		return -1
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return st
}

func (e *env) count(query string, args ...any) int64 {
	e.t.Helper()
	var n int64
	if err := e.db.QueryRow(e.t.Context(), query, args...).Scan(&n); err != nil {
		e.t.Fatalf("%s: %v", query, err)
	}
	return n
}

func TestApplyApproveFlow(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		sqy, ocz := e.user("sqy"), e.user("ocz")

		e.apply(sqy, ocz, "hi, I am sqy", "ocz from work")
		if got := e.pending(sqy.UID); len(got) != 0 {
			t.Fatalf("applicant's pending list = %+v, want empty", got)
		}
		apps := e.pending(ocz.UID)
		if len(apps) != 1 {
			t.Fatalf("pending = %+v, want 1 application", apps)
		}
		a := apps[0]
		if a.Profile != sqy || a.Greeting != "hi, I am sqy" || a.Status != chatstore.StatusPending || a.CreatedAt <= 0 {
			t.Fatalf("pending[0] = %+v, want applicant %+v, greeting, pending, created_at set", a, sqy)
		}
		if e.areFriends(sqy.UID, ocz.UID) || e.areFriends(ocz.UID, sqy.UID) {
			t.Fatal("friends before approval")
		}

		applicant, approver, err := e.s.Approve(ctx, ocz.UID, sqy.UID, "兄弟")
		if err != nil {
			t.Fatalf("Approve: %v", err)
		}
		if applicant != sqy || approver != ocz {
			t.Fatalf("Approve profiles = %+v, %+v; want %+v, %+v", applicant, approver, sqy, ocz)
		}
		if got := e.pending(ocz.UID); len(got) != 0 {
			t.Fatalf("pending after approval = %+v", got)
		}
		if st := e.status(sqy.UID, ocz.UID); st != chatstore.StatusApproved {
			t.Fatalf("application status = %d, want approved", st)
		}
		if got, want := e.friends(ocz.UID), []chatstore.Friend{{Profile: sqy, Remark: "兄弟"}}; !slices.Equal(got, want) {
			t.Fatalf("approver's friends = %+v, want %+v", got, want)
		}
		if got, want := e.friends(sqy.UID), []chatstore.Friend{{Profile: ocz, Remark: "ocz from work"}}; !slices.Equal(got, want) {
			t.Fatalf("applicant's friends = %+v, want %+v", got, want)
		}
		if !e.areFriends(sqy.UID, ocz.UID) || !e.areFriends(ocz.UID, sqy.UID) {
			t.Fatal("AreFriends false after approval")
		}
	})
}

func TestReapplyRefreshes(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		a, b := e.user("a"), e.user("b")
		e.apply(a, b, "first", "r1")
		first := e.pending(b.UID)[0]
		e.apply(a, b, "second", "r2")
		apps := e.pending(b.UID)
		if len(apps) != 1 || apps[0].Greeting != "second" || apps[0].CreatedAt != first.CreatedAt {
			t.Fatalf("after re-apply pending = %+v, want one with greeting %q and created_at %d", apps, "second", first.CreatedAt)
		}

		// An application no longer pending (approved, friendship since
		// gone) goes back to pending with a new creation time.
		if _, err := e.db.Exec(t.Context(), `UPDATE friend_apply SET status = 1, created_at = 5 WHERE from_uid = $1`, a.UID); err != nil {
			t.Fatal(err)
		}
		if got := e.pending(b.UID); len(got) != 0 {
			t.Fatalf("pending = %+v, want none", got)
		}
		e.apply(a, b, "third", "r3")
		apps = e.pending(b.UID)
		if len(apps) != 1 || apps[0].Greeting != "third" || apps[0].CreatedAt == 5 {
			t.Fatalf("after re-apply pending = %+v, want one with greeting %q, created_at renewed", apps, "third")
		}

		if _, _, err := e.s.Approve(t.Context(), b.UID, a.UID, "rb"); err != nil {
			t.Fatal(err)
		}
		if got := e.friends(a.UID); len(got) != 1 || got[0].Remark != "r3" {
			t.Fatalf("applicant's friends = %+v, want remark r3", got)
		}
	})
}

func TestApplyErrors(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		a, b := e.user("a"), e.user("b")

		if err := e.s.Apply(ctx, a.UID, a.UID, "", ""); !errors.Is(err, chatstore.ErrSelf) {
			t.Errorf("apply to self: %v, want ErrSelf", err)
		}
		if err := e.s.Apply(ctx, a.UID, 99999, "", ""); !errors.Is(err, chatstore.ErrNoUser) {
			t.Errorf("apply to missing uid: %v, want ErrNoUser", err)
		}
		if err := e.s.Apply(ctx, 99999, a.UID, "", ""); !errors.Is(err, chatstore.ErrNoUser) {
			t.Errorf("apply from missing uid: %v, want ErrNoUser", err)
		}
		if n := e.count(`SELECT COUNT(*) FROM friend_apply`); n != 0 {
			t.Fatalf("%d applications after failed applies", n)
		}

		e.apply(a, b, "", "")
		if _, _, err := e.s.Approve(ctx, b.UID, a.UID, ""); err != nil {
			t.Fatal(err)
		}
		for _, dir := range [][2]int32{{a.UID, b.UID}, {b.UID, a.UID}} {
			if err := e.s.Apply(ctx, dir[0], dir[1], "again", "x"); !errors.Is(err, chatstore.ErrAlreadyFriends) {
				t.Errorf("apply %d -> %d when friends: %v, want ErrAlreadyFriends", dir[0], dir[1], err)
			}
		}
		if st := e.status(a.UID, b.UID); st != chatstore.StatusApproved {
			t.Errorf("application status = %d after refused re-apply, want approved", st)
		}
		if st := e.status(b.UID, a.UID); st != -1 {
			t.Errorf("refused application was stored (status %d)", st)
		}
	})
}

func TestInvalidText(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		a, b := e.user("a"), e.user("b")
		long := strings.Repeat("好", 65)
		cases := []struct {
			greeting, remark, field string
		}{
			{long, "", "greeting"},
			{"", long, "remark"},
			{"", "a\nb", "remark"},
			{"tab\there", "", "greeting"},
			{"", "\x7f", "remark"},
			{"bad \xff utf-8", "", "greeting"},
			{"", "\u0085", "remark"},
		}
		for _, c := range cases {
			err := e.s.Apply(ctx, a.UID, b.UID, c.greeting, c.remark)
			if !errors.Is(err, chatstore.ErrInvalid) || !strings.Contains(err.Error(), c.field) {
				t.Errorf("Apply(%q, %q) = %v, want ErrInvalid naming %s", c.greeting, c.remark, err, c.field)
			}
		}
		if n := e.count(`SELECT COUNT(*) FROM friend_apply`); n != 0 {
			t.Fatalf("%d applications stored from invalid input", n)
		}

		// 64 characters are fine, however many bytes they take.
		ok := strings.Repeat("好", 64)
		e.apply(a, b, ok, ok)
		if _, _, err := e.s.Approve(ctx, b.UID, a.UID, long); !errors.Is(err, chatstore.ErrInvalid) || !strings.Contains(err.Error(), "remark") {
			t.Fatalf("Approve with long remark: %v, want ErrInvalid naming remark", err)
		}
		if e.areFriends(a.UID, b.UID) || len(e.pending(b.UID)) != 1 {
			t.Fatal("refused approval changed something")
		}
		if _, _, err := e.s.Approve(ctx, b.UID, a.UID, ok); err != nil {
			t.Fatal(err)
		}
		if got := e.friends(a.UID); len(got) != 1 || got[0].Remark != ok {
			t.Fatalf("friends = %+v, want the 64-character remark", got)
		}
	})
}

func TestApproveErrors(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		a, b, c := e.user("a"), e.user("b"), e.user("c")

		if _, _, err := e.s.Approve(ctx, b.UID, a.UID, ""); !errors.Is(err, chatstore.ErrNoApplication) {
			t.Errorf("approve without application: %v, want ErrNoApplication", err)
		}
		if _, _, err := e.s.Approve(ctx, b.UID, 99999, ""); !errors.Is(err, chatstore.ErrNoApplication) {
			t.Errorf("approve missing applicant: %v, want ErrNoApplication", err)
		}
		if _, _, err := e.s.Approve(ctx, b.UID, b.UID, ""); !errors.Is(err, chatstore.ErrNoApplication) {
			t.Errorf("approve self: %v, want ErrNoApplication", err)
		}

		e.apply(a, b, "hello", "rb")
		// The applicant cannot approve their own application.
		if _, _, err := e.s.Approve(ctx, a.UID, b.UID, ""); !errors.Is(err, chatstore.ErrNoApplication) {
			t.Errorf("applicant approving: %v, want ErrNoApplication", err)
		}
		// Nor can a third user.
		if _, _, err := e.s.Approve(ctx, c.UID, a.UID, ""); !errors.Is(err, chatstore.ErrNoApplication) {
			t.Errorf("third user approving: %v, want ErrNoApplication", err)
		}
		if st := e.status(a.UID, b.UID); st != chatstore.StatusPending {
			t.Fatalf("status = %d after refused approvals, want pending", st)
		}

		if _, _, err := e.s.Approve(ctx, b.UID, a.UID, "ra"); err != nil {
			t.Fatal(err)
		}
		// Approving twice changes nothing.
		if _, _, err := e.s.Approve(ctx, b.UID, a.UID, "other"); !errors.Is(err, chatstore.ErrAlreadyFriends) {
			t.Errorf("second approval: %v, want ErrAlreadyFriends", err)
		}
		// Even with an application pending again (left from a race with Apply).
		if _, err := e.db.Exec(ctx, `UPDATE friend_apply SET status = 0, greeting = 'stale' WHERE from_uid = $1`, a.UID); err != nil {
			t.Fatal(err)
		}
		if got := e.pending(b.UID); len(got) != 0 {
			t.Errorf("pending = %+v: an application from a friend is listed", got)
		}
		if _, _, err := e.s.Approve(ctx, b.UID, a.UID, "other"); !errors.Is(err, chatstore.ErrAlreadyFriends) {
			t.Errorf("approval of stale application: %v, want ErrAlreadyFriends", err)
		}
		if st := e.status(a.UID, b.UID); st != chatstore.StatusPending {
			t.Errorf("refused approval changed the application (status %d)", st)
		}
		if got := e.friends(b.UID); len(got) != 1 || got[0].Remark != "ra" {
			t.Errorf("approver's friends = %+v, want one with remark ra", got)
		}
		if got := e.friends(a.UID); len(got) != 1 || got[0].Remark != "rb" {
			t.Errorf("applicant's friends = %+v, want one with remark rb", got)
		}
		if n := e.count(`SELECT COUNT(*) FROM friend`); n != 2 {
			t.Errorf("%d friend rows, want 2", n)
		}
	})
}

func TestCrossedApplications(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		a, b := e.user("a"), e.user("b")
		e.apply(a, b, "from a", "a's remark for b")
		e.apply(b, a, "from b", "b's remark for a")

		if _, _, err := e.s.Approve(ctx, b.UID, a.UID, "b approves"); err != nil {
			t.Fatal(err)
		}
		if st := e.status(a.UID, b.UID); st != chatstore.StatusApproved {
			t.Errorf("approved application status = %d", st)
		}
		if st := e.status(b.UID, a.UID); st != chatstore.StatusApproved {
			t.Errorf("crossed application status = %d, want approved", st)
		}
		if len(e.pending(a.UID)) != 0 || len(e.pending(b.UID)) != 0 {
			t.Error("pending applications left after crossed approval")
		}
		if _, _, err := e.s.Approve(ctx, a.UID, b.UID, "a approves"); !errors.Is(err, chatstore.ErrAlreadyFriends) {
			t.Errorf("approving the crossed application: %v, want ErrAlreadyFriends", err)
		}
		if got := e.friends(b.UID); len(got) != 1 || got[0].Remark != "b approves" {
			t.Errorf("b's friends = %+v", got)
		}
		if got := e.friends(a.UID); len(got) != 1 || got[0].Remark != "a's remark for b" {
			t.Errorf("a's friends = %+v", got)
		}

		// Without an application of its own, the crossed one is not approved.
		c, d := e.user("c"), e.user("d")
		e.apply(c, d, "", "")
		if _, _, err := e.s.Approve(ctx, c.UID, d.UID, ""); !errors.Is(err, chatstore.ErrNoApplication) {
			t.Errorf("approve with only the crossed application: %v, want ErrNoApplication", err)
		}
		if st := e.status(c.UID, d.UID); st != chatstore.StatusPending {
			t.Errorf("crossed application status = %d after refused approval, want pending", st)
		}
	})
}

func TestListsOrdered(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		me := e.user("me")
		var others []chatstore.Profile
		for i := range 4 {
			others = append(others, e.user(fmt.Sprintf("u%d", i)))
		}
		// Applications made in the order 2, 0, 3, 1.
		for i, k := range []int{2, 0, 3, 1} {
			e.apply(others[k], me, fmt.Sprintf("g%d", k), fmt.Sprintf("r%d", k))
			if _, err := e.db.Exec(ctx, `UPDATE friend_apply SET created_at = $1 WHERE from_uid = $2`, int64(1000+i), others[k].UID); err != nil {
				t.Fatal(err)
			}
		}
		var got []int32
		for _, a := range e.pending(me.UID) {
			got = append(got, a.UID)
		}
		want := []int32{others[2].UID, others[0].UID, others[3].UID, others[1].UID}
		if !slices.Equal(got, want) {
			t.Fatalf("pending order = %v, want oldest first %v", got, want)
		}

		for _, k := range []int{3, 1, 2, 0} {
			if _, _, err := e.s.Approve(ctx, me.UID, others[k].UID, fmt.Sprintf("back%d", k)); err != nil {
				t.Fatal(err)
			}
		}
		fs := e.friends(me.UID)
		if len(fs) != 4 {
			t.Fatalf("friends = %+v", fs)
		}
		for i, f := range fs {
			if f.Profile != others[i] || f.Remark != fmt.Sprintf("back%d", i) {
				t.Errorf("friends[%d] = %+v, want %+v with remark back%d", i, f, others[i], i)
			}
		}
		if got := e.friends(others[0].UID); len(got) != 1 || got[0].Remark != "r0" {
			t.Errorf("friends of u0 = %+v", got)
		}
		if got := e.friends(99999); len(got) != 0 {
			t.Errorf("friends of missing uid = %+v", got)
		}
	})
}

func TestConcurrentApprove(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		a, b := e.user("a"), e.user("b")
		e.apply(a, b, "hello", "ra")

		const n = 10
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				_, _, errs[i] = e.s.Approve(ctx, b.UID, a.UID, fmt.Sprintf("remark %d", i))
			})
		}
		wg.Wait()
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil:
				if winner >= 0 {
					t.Errorf("approvals %d and %d both succeeded", winner, i)
				}
				winner = i
			case !errors.Is(err, chatstore.ErrAlreadyFriends):
				t.Errorf("approval %d: %v, want success or ErrAlreadyFriends", i, err)
			}
		}
		if winner < 0 {
			t.Fatal("no approval succeeded")
		}
		if c := e.count(`SELECT COUNT(*) FROM friend`); c != 2 {
			t.Errorf("%d friend rows, want 2", c)
		}
		if got := e.friends(b.UID); len(got) != 1 || got[0].Remark != fmt.Sprintf("remark %d", winner) {
			t.Errorf("approver's friends = %+v, want the winner's remark %d", got, winner)
		}
		if got := e.friends(a.UID); len(got) != 1 || got[0].Remark != "ra" {
			t.Errorf("applicant's friends = %+v", got)
		}
		if st := e.status(a.UID, b.UID); st != chatstore.StatusApproved {
			t.Errorf("application status = %d", st)
		}
	})
}

// Both users approve each other's application at the same time: exactly one
// approval wins, without a deadlock.
func TestConcurrentCrossedApprove(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		const pairs = 10
		type pair struct{ a, b chatstore.Profile }
		ps := make([]pair, pairs)
		for i := range ps {
			ps[i] = pair{e.user(fmt.Sprintf("a%d", i)), e.user(fmt.Sprintf("b%d", i))}
			e.apply(ps[i].a, ps[i].b, "", "a->b")
			e.apply(ps[i].b, ps[i].a, "", "b->a")
		}
		errs := make([][2]error, pairs)
		var wg sync.WaitGroup
		for i, p := range ps {
			wg.Go(func() { _, _, errs[i][0] = e.s.Approve(ctx, p.b.UID, p.a.UID, "b approves") })
			wg.Go(func() { _, _, errs[i][1] = e.s.Approve(ctx, p.a.UID, p.b.UID, "a approves") })
		}
		wg.Wait()
		for i, p := range ps {
			ok := 0
			for _, err := range errs[i] {
				if err == nil {
					ok++
				} else if !errors.Is(err, chatstore.ErrAlreadyFriends) {
					t.Errorf("pair %d: %v, want success or ErrAlreadyFriends", i, err)
				}
			}
			if ok != 1 {
				t.Errorf("pair %d: %d approvals succeeded, want 1", i, ok)
			}
			if c := e.count(`SELECT COUNT(*) FROM friend WHERE uid = $1 OR friend_uid = $1`, p.a.UID); c != 2 {
				t.Errorf("pair %d: %d friend rows, want 2", i, c)
			}
			if c := e.count(`SELECT COUNT(*) FROM friend_apply WHERE status = 0 AND (from_uid = $1 OR to_uid = $1)`, p.a.UID); c != 0 {
				t.Errorf("pair %d: %d applications still pending", i, c)
			}
		}
	})
}

func TestProfile(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		a := e.user("alice")
		e.user("bob")
		p, err := e.s.Profile(ctx, a.UID)
		if err != nil || p != a {
			t.Errorf("Profile(%d) = %+v, %v; want %+v", a.UID, p, err, a)
		}
		p, err = e.s.ProfileByName(ctx, "alice")
		if err != nil || p != a {
			t.Errorf("ProfileByName(alice) = %+v, %v; want %+v", p, err, a)
		}
		if _, err := e.s.Profile(ctx, 99999); !errors.Is(err, chatstore.ErrNoUser) {
			t.Errorf("Profile(missing) = %v, want ErrNoUser", err)
		}
		for _, name := range []string{"Alice", "ali", "alice ", ""} {
			if _, err := e.s.ProfileByName(ctx, name); !errors.Is(err, chatstore.ErrNoUser) {
				t.Errorf("ProfileByName(%q) = %v, want ErrNoUser", name, err)
			}
		}
	})
}
