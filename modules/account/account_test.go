package account_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/imsrv/imsrv/migrations"
	"github.com/imsrv/imsrv/modules/account"
	"github.com/imsrv/imsrv/platform/sqldb"
	"github.com/imsrv/imsrv/platform/sqldb/sqldbtest"
)

// The suite runs on every SQL dialect: SQLite always, PostgreSQL when
// IMSRV_TEST_POSTGRES_URL is set (sqldbtest.Postgres skips otherwise).
var dbBackends = []struct {
	name string
	open func(t testing.TB) sqldb.DB
}{
	{"sqlite", sqldbtest.SQLite},
	{"postgres", sqldbtest.Postgres},
}

// eachDB runs f as a parallel subtest per dialect on a freshly migrated database.
func eachDB(t *testing.T, f func(t *testing.T, s *account.Store, db sqldb.DB)) {
	t.Helper()
	for _, b := range dbBackends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			db := b.open(t)
			if _, err := sqldb.Migrate(t.Context(), db, migrations.FS); err != nil {
				t.Fatalf("migrate: %v", err)
			}
			f(t, account.NewStore(db), db)
		})
	}
}

func create(t *testing.T, s *account.Store, name, email, password string) account.User {
	t.Helper()
	u, err := s.Create(t.Context(), account.NewUser{Name: name, Email: email, Password: password})
	if err != nil {
		t.Fatalf("Create(%q, %q): %v", name, email, err)
	}
	return u
}

func TestValidateName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"alice", true},
		{"Alice_Smith-2", true},
		{"张三", true},
		{"李小龍の友達", true},
		{"a b", true},     // inner spaces are fine
		{"1a", true},      // digits with something else
		{"a1", true},      // digits with something else
		{"007bond", true}, // digits with something else
		{"😀", true},       // any printable rune
		{strings.Repeat("字", 32), true},
		{strings.Repeat("a", 32), true},
		{"", false},
		{"0", false},                     // digits only: search would take it for a uid
		{"1001", false},                  // digits only
		{"123456789012", false},          // digits only
		{strings.Repeat("字", 33), false}, // too long (runes, not bytes)
		{strings.Repeat("a", 33), false}, // too long
		{" alice", false},                // leading space
		{"alice ", false},                // trailing space
		{"\u3000张三", false},              // leading ideographic space
		{"a\nb", false},                  // control characters
		{"a\tb", false},
		{"a\x00b", false},
		{"a\x7fb", false},
		{"a\u0085b", false}, // C1 control
		{"\xff\xfe", false}, // not UTF-8
	} {
		err := account.ValidateName(tc.name)
		if tc.ok && err != nil {
			t.Errorf("ValidateName(%q) = %v, want ok", tc.name, err)
		}
		if !tc.ok && !errors.Is(err, account.ErrInvalid) {
			t.Errorf("ValidateName(%q) = %v, want ErrInvalid", tc.name, err)
		}
	}
}

func TestValidatePassword(t *testing.T) {
	for _, tc := range []struct {
		pw string
		ok bool
	}{
		{"secret", true},             // 6, the minimum
		{"pass word", true},          // spaces are part of the password
		{"  lead and trail  ", true}, // even around it
		{"      ", true},             // six spaces
		{"密码密码密码", true},             // 6 runes
		{"ñandú!", true},             // 6 runes, 8 bytes
		{"~!@#$%^&*()", true},
		{strings.Repeat("x", 128), true}, // the maximum
		{strings.Repeat("密", 128), true}, // the maximum, in runes
		{"", false},
		{"12345", false},                  // too short
		{"密码密码密", false},                  // 5 runes although 15 bytes
		{strings.Repeat("x", 129), false}, // too long
		{strings.Repeat("密", 129), false}, // too long in runes
		{"secret\n", false},               // control characters
		{"sec\tret", false},
		{"sec\x00ret", false},
		{"\x7fsecret", false},
		{"secret\r", false},
		{"\xff\xfe\xfd\xfc\xfb\xfa", false}, // not UTF-8
	} {
		err := account.ValidatePassword(tc.pw)
		if tc.ok && err != nil {
			t.Errorf("ValidatePassword(%q) = %v, want ok", tc.pw, err)
		}
		if !tc.ok && !errors.Is(err, account.ErrInvalid) {
			t.Errorf("ValidatePassword(%q) = %v, want ErrInvalid", tc.pw, err)
		}
	}
}

func TestEmailKey(t *testing.T) {
	if got := account.EmailKey("  Alice@Example.COM "); got != "alice@example.com" {
		t.Fatalf("EmailKey = %q", got)
	}
}

func TestCreate(t *testing.T) {
	eachDB(t, func(t *testing.T, s *account.Store, db sqldb.DB) {
		ctx := t.Context()
		u := create(t, s, "张三", " Zhang.San@Example.com ", "密码 with space")
		if u.UID != 1001 {
			t.Fatalf("first uid = %d, want 1001", u.UID)
		}
		want := account.User{UID: 1001, Name: "张三", Email: "Zhang.San@Example.com", Nick: "张三"}
		if u != want {
			t.Fatalf("Create = %+v, want %+v", u, want)
		}
		u2, err := s.Create(ctx, account.NewUser{Name: "bob", Email: "bob@example.com", Password: "secret-2", Icon: ":/res/head_2.jpg"})
		if err != nil {
			t.Fatal(err)
		}
		if u2.UID <= u.UID || u2.Icon != ":/res/head_2.jpg" {
			t.Fatalf("second user %+v: uid must grow past %d and keep the icon", u2, u.UID)
		}
		for _, got := range []account.User{mustByUID(t, s, u.UID), mustByName(t, s, "张三")} {
			if got != want {
				t.Fatalf("stored user %+v, want %+v", got, want)
			}
		}
		// The password is stored as an argon2id hash, never in clear.
		var hash string
		if err := db.QueryRow(ctx, `SELECT pwd_hash FROM users WHERE uid = $1`, u.UID).Scan(&hash); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(hash, "$argon2id$") || strings.Contains(hash, "密码") {
			t.Fatalf("pwd_hash %q is not an argon2id hash", hash)
		}
		// Same password, different salt.
		create(t, s, "carol", "carol@example.com", "密码 with space")
		var hash2 string
		if err := db.QueryRow(ctx, `SELECT pwd_hash FROM users WHERE name = $1`, "carol").Scan(&hash2); err != nil {
			t.Fatal(err)
		}
		if hash2 == hash {
			t.Fatal("two users with one password have the same hash: no salt")
		}
	})
}

func mustByUID(t *testing.T, s *account.Store, uid int32) account.User {
	t.Helper()
	u, err := s.ByUID(t.Context(), uid)
	if err != nil {
		t.Fatalf("ByUID(%d): %v", uid, err)
	}
	return u
}

func mustByName(t *testing.T, s *account.Store, name string) account.User {
	t.Helper()
	u, err := s.ByName(t.Context(), name)
	if err != nil {
		t.Fatalf("ByName(%q): %v", name, err)
	}
	return u
}

func TestCreateTaken(t *testing.T) {
	eachDB(t, func(t *testing.T, s *account.Store, db sqldb.DB) {
		ctx := t.Context()
		alice := create(t, s, "alice", "Alice@Example.com", "secret-1")
		for _, nu := range []account.NewUser{
			{Name: "alice", Email: "other@example.com", Password: "secret-1"},      // same name
			{Name: "alice2", Email: "alice@example.com", Password: "secret-1"},     // same e-mail, other case
			{Name: "alice3", Email: "ALICE@EXAMPLE.COM", Password: "secret-1"},     // same e-mail, upper case
			{Name: "alice4", Email: "  Alice@Example.com  ", Password: "secret-1"}, // same e-mail, spaces
		} {
			if _, err := s.Create(ctx, nu); !errors.Is(err, account.ErrTaken) {
				t.Errorf("Create(%q, %q) = %v, want ErrTaken", nu.Name, nu.Email, err)
			}
		}
		for _, tc := range []struct {
			name, email string
			want        bool
		}{
			{"alice", "nobody@example.com", true},
			{"nobody", "ALICE@example.COM", true},
			{"nobody", "nobody@example.com", false},
		} {
			got, err := s.Taken(ctx, tc.name, tc.email)
			if err != nil || got != tc.want {
				t.Errorf("Taken(%q, %q) = %v, %v; want %v", tc.name, tc.email, got, err, tc.want)
			}
		}
		// The refused attempts left the original account alone.
		if u := mustByUID(t, s, alice.UID); u != alice {
			t.Fatalf("account changed: %+v, want %+v", u, alice)
		}
		// User names are compared exactly (only e-mails ignore case), on
		// every dialect alike.
		if _, err := s.Create(ctx, account.NewUser{Name: "Alice", Email: "big-alice@example.com", Password: "secret-1"}); err != nil {
			t.Fatalf("Create(Alice) next to alice: %v", err)
		}
	})
}

func TestCreateInvalid(t *testing.T) {
	eachDB(t, func(t *testing.T, s *account.Store, db sqldb.DB) {
		for _, nu := range []account.NewUser{
			{Name: "", Email: "a@example.com", Password: "secret-1"},
			{Name: "12345", Email: "a@example.com", Password: "secret-1"},
			{Name: "a\nb", Email: "a@example.com", Password: "secret-1"},
			{Name: " padded", Email: "a@example.com", Password: "secret-1"},
			{Name: "dave", Email: "a@example.com", Password: "short"},
			{Name: "dave", Email: "a@example.com", Password: "bad\x00password"},
			{Name: "dave", Email: "a@example.com", Password: "secret-1", Icon: strings.Repeat("i", account.MaxIconLen+1)},
			{Name: "dave", Email: "a@example.com", Password: "secret-1", Icon: "icon\n"},
		} {
			if _, err := s.Create(t.Context(), nu); !errors.Is(err, account.ErrInvalid) {
				t.Errorf("Create(%+v) = %v, want ErrInvalid", nu, err)
			}
		}
		var n int64
		if err := db.QueryRow(t.Context(), `SELECT COUNT(*) FROM users`).Scan(&n); err != nil || n != 0 {
			t.Fatalf("%d users stored after invalid creates (err %v)", n, err)
		}
	})
}

func TestAuthenticate(t *testing.T) {
	eachDB(t, func(t *testing.T, s *account.Store, db sqldb.DB) {
		ctx := t.Context()
		erin := create(t, s, "erin", "Erin@Example.com", " pass word ")
		for _, email := range []string{"Erin@Example.com", "erin@example.com", "  ERIN@EXAMPLE.COM "} {
			u, err := s.Authenticate(ctx, email, " pass word ")
			if err != nil || u != erin {
				t.Fatalf("Authenticate(%q, right) = %+v, %v; want %+v", email, u, err, erin)
			}
		}
		for _, pw := range []string{"pass word", "passwo rd", " PASS WORD ", "", " pass word  "} {
			if _, err := s.Authenticate(ctx, "erin@example.com", pw); !errors.Is(err, account.ErrBadCredentials) {
				t.Errorf("Authenticate(wrong %q) = %v, want ErrBadCredentials", pw, err)
			}
		}
		if _, err := s.Authenticate(ctx, "nobody@example.com", " pass word "); !errors.Is(err, account.ErrBadCredentials) {
			t.Fatalf("Authenticate(unknown) = %v, want ErrBadCredentials", err)
		}
	})
}

func TestMatch(t *testing.T) {
	eachDB(t, func(t *testing.T, s *account.Store, db sqldb.DB) {
		ctx := t.Context()
		fay := create(t, s, "fay", "Fay@Example.com", "secret-1")
		create(t, s, "gus", "gus@example.com", "secret-1")
		for _, email := range []string{"Fay@Example.com", "fay@example.com", " FAY@example.com "} {
			if uid, err := s.Match(ctx, email, "fay"); err != nil || uid != fay.UID {
				t.Fatalf("Match(%q, fay) = %d, %v; want %d", email, uid, err, fay.UID)
			}
		}
		for _, tc := range []struct{ email, name string }{
			{"fay@example.com", "gus"},    // another user's name
			{"fay@example.com", "Fay"},    // names are exact
			{"fay@example.com", "nobody"}, // no such name
			{"nobody@example.com", "fay"}, // no such e-mail
			{"gus@example.com", "fay"},    // swapped
		} {
			if uid, err := s.Match(ctx, tc.email, tc.name); !errors.Is(err, account.ErrMismatch) || uid != 0 {
				t.Errorf("Match(%q, %q) = %d, %v; want ErrMismatch", tc.email, tc.name, uid, err)
			}
		}
	})
}

func TestSetPassword(t *testing.T) {
	eachDB(t, func(t *testing.T, s *account.Store, db sqldb.DB) {
		ctx := t.Context()
		hal := create(t, s, "hal", "hal@example.com", "old-secret")
		if err := s.SetPassword(ctx, hal.UID, "新的 secret"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Authenticate(ctx, "hal@example.com", "old-secret"); !errors.Is(err, account.ErrBadCredentials) {
			t.Fatalf("old password after reset = %v, want ErrBadCredentials", err)
		}
		if u, err := s.Authenticate(ctx, "hal@example.com", "新的 secret"); err != nil || u.UID != hal.UID {
			t.Fatalf("new password = %+v, %v", u, err)
		}
		if err := s.SetPassword(ctx, hal.UID, "short"); !errors.Is(err, account.ErrInvalid) {
			t.Fatalf("SetPassword(short) = %v, want ErrInvalid", err)
		}
		if err := s.SetPassword(ctx, hal.UID, "ctl\x01chars"); !errors.Is(err, account.ErrInvalid) {
			t.Fatalf("SetPassword(control) = %v, want ErrInvalid", err)
		}
		// A refused reset changes nothing.
		if _, err := s.Authenticate(ctx, "hal@example.com", "新的 secret"); err != nil {
			t.Fatalf("password changed by a refused reset: %v", err)
		}
		for _, uid := range []int32{0, -1, hal.UID + 1000} {
			if err := s.SetPassword(ctx, uid, "whatever-1"); !errors.Is(err, account.ErrNotFound) {
				t.Errorf("SetPassword(uid %d) = %v, want ErrNotFound", uid, err)
			}
		}
	})
}

func TestLookups(t *testing.T) {
	eachDB(t, func(t *testing.T, s *account.Store, db sqldb.DB) {
		ctx := t.Context()
		ivy := create(t, s, "ivy", "ivy@example.com", "secret-1")
		if u := mustByUID(t, s, ivy.UID); u != ivy {
			t.Fatalf("ByUID = %+v, want %+v", u, ivy)
		}
		if u := mustByName(t, s, "ivy"); u != ivy {
			t.Fatalf("ByName = %+v, want %+v", u, ivy)
		}
		for _, uid := range []int32{0, -1, 1000, ivy.UID + 1} {
			if _, err := s.ByUID(ctx, uid); !errors.Is(err, account.ErrNotFound) {
				t.Errorf("ByUID(%d) = %v, want ErrNotFound", uid, err)
			}
		}
		for _, name := range []string{"Ivy", "ivy ", "iv", "", "ivy@example.com"} {
			if _, err := s.ByName(ctx, name); !errors.Is(err, account.ErrNotFound) {
				t.Errorf("ByName(%q) = %v, want ErrNotFound", name, err)
			}
		}
	})
}

// TestConcurrentCreate: racing registrations of one name yield exactly one
// account; distinct ones all succeed with distinct positive uids from 1001.
func TestConcurrentCreate(t *testing.T) {
	eachDB(t, func(t *testing.T, s *account.Store, db sqldb.DB) {
		const n = 8
		var wg sync.WaitGroup
		sameName := make([]error, n)
		distinct := make([]account.User, n)
		distinctErr := make([]error, n)
		for i := range n {
			wg.Go(func() {
				_, sameName[i] = s.Create(t.Context(), account.NewUser{
					Name: "race", Email: fmt.Sprintf("race%d@example.com", i), Password: "secret-1",
				})
			})
			wg.Go(func() {
				distinct[i], distinctErr[i] = s.Create(t.Context(), account.NewUser{
					Name: fmt.Sprintf("user%d", i), Email: fmt.Sprintf("user%d@example.com", i), Password: "secret-1",
				})
			})
		}
		wg.Wait()
		ok := 0
		for _, err := range sameName {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, account.ErrTaken):
				t.Errorf("racing Create = %v, want nil or ErrTaken", err)
			}
		}
		if ok != 1 {
			t.Fatalf("%d racing creates of one name succeeded, want 1", ok)
		}
		uids := map[int32]bool{}
		for i, u := range distinct {
			if distinctErr[i] != nil {
				t.Fatalf("Create(user%d) = %v", i, distinctErr[i])
			}
			if u.UID < 1001 || uids[u.UID] {
				t.Fatalf("uid %d: want distinct uids from 1001", u.UID)
			}
			uids[u.UID] = true
		}
	})
}
