package msgstore_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imsrv/imsrv/migrations"
	"github.com/imsrv/imsrv/modules/chat/msgstore"
	"github.com/imsrv/imsrv/platform/sqldb"
	"github.com/imsrv/imsrv/platform/sqldb/sqldbtest"
)

// env is one test database with the schema migrated.
type env struct {
	t       testing.TB
	db      sqldb.DB
	dialect string
	n       int // users created
}

var openDB = map[string]func(testing.TB) sqldb.DB{
	sqldb.SQLite:   sqldbtest.SQLite,
	sqldb.Postgres: sqldbtest.Postgres,
}

// forEachDialect runs fn against a fresh, migrated SQLite database and, when
// IMSRV_TEST_POSTGRES_URL is set, a fresh PostgreSQL schema.
func forEachDialect(t *testing.T, fn func(t *testing.T, e *env)) {
	t.Helper()
	t.Parallel()
	for _, dialect := range []string{sqldb.SQLite, sqldb.Postgres} {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			fn(t, newEnv(t, dialect))
		})
	}
}

func newEnv(t testing.TB, dialect string) *env {
	db := openDB[dialect](t)
	if _, err := sqldb.Migrate(t.Context(), db, migrations.FS); err != nil {
		t.Fatal(err)
	}
	return &env{t: t, db: db, dialect: dialect}
}

// users inserts n users in one statement and returns their uids.
func (e *env) users(n int) []int32 {
	e.t.Helper()
	var q strings.Builder
	q.WriteString(`INSERT INTO users (name, email, email_key, pwd_hash, created_at, updated_at) VALUES `)
	var args []any
	for i := range n {
		e.n++
		if i > 0 {
			q.WriteByte(',')
		}
		fmt.Fprintf(&q, "($%d, $%d, $%d, 'x', 1, 1)", 3*i+1, 3*i+2, 3*i+3)
		name := fmt.Sprintf("user%d", e.n)
		args = append(args, name, name+"@example.com", name+"@example.com")
	}
	q.WriteString(` RETURNING uid`)
	rows, err := e.db.Query(e.t.Context(), q.String(), args...)
	if err != nil {
		e.t.Fatalf("create users: %v", err)
	}
	defer rows.Close()
	var uids []int32
	for rows.Next() {
		var uid int32
		if err := rows.Scan(&uid); err != nil {
			e.t.Fatal(err)
		}
		uids = append(uids, uid)
	}
	if err := rows.Err(); err != nil {
		e.t.Fatal(err)
	}
	slices.Sort(uids)
	return uids
}

// store returns a store on the database whose Run runs until the test ends.
func (e *env) store(cfg msgstore.Config) *msgstore.Store {
	e.t.Helper()
	s := msgstore.New(e.db, cfg, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	e.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			e.t.Errorf("Run: %v", err)
		}
	})
	return s
}

func (e *env) count(query string, args ...any) int64 {
	e.t.Helper()
	var n int64
	if err := e.db.QueryRow(e.t.Context(), query, args...).Scan(&n); err != nil {
		e.t.Fatalf("%s: %v", query, err)
	}
	return n
}

func text(from, to int32, clientID, content string) msgstore.Draft {
	return msgstore.Draft{Sender: from, Receiver: to, ClientID: clientID, Content: content}
}

func mustAppend(t testing.TB, s *msgstore.Store, drafts ...msgstore.Draft) []msgstore.Message {
	t.Helper()
	msgs, err := s.Append(t.Context(), drafts)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	if len(msgs) != len(drafts) {
		t.Fatalf("Append returned %d messages for %d drafts", len(msgs), len(drafts))
	}
	return msgs
}

// allMessages returns every stored message in id order.
func (e *env) allMessages() []msgstore.Message {
	e.t.Helper()
	rows, err := e.db.Query(e.t.Context(),
		`SELECT id, thread_id, seq, sender, receiver, client_id, content, created_at FROM chat_message ORDER BY id`)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	var msgs []msgstore.Message
	for rows.Next() {
		var m msgstore.Message
		if err := rows.Scan(&m.ID, &m.ThreadID, &m.Seq, &m.Sender, &m.Receiver, &m.ClientID, &m.Content, &m.CreatedAt); err != nil {
			e.t.Fatal(err)
		}
		msgs = append(msgs, m)
	}
	if err := rows.Err(); err != nil {
		e.t.Fatal(err)
	}
	return msgs
}

// checkThreads checks every thread's stored messages: seqs 1..n in id
// order, last_seq = n, sender and receiver the thread's users.
func (e *env) checkThreads() {
	e.t.Helper()
	byThread := map[int64][]msgstore.Message{}
	for _, m := range e.allMessages() {
		byThread[m.ThreadID] = append(byThread[m.ThreadID], m)
	}
	for tid, msgs := range byThread {
		var u1, u2 int32
		var last int64
		if err := e.db.QueryRow(e.t.Context(), `SELECT user1_id, user2_id, last_seq FROM chat_thread WHERE id = $1`, tid).Scan(&u1, &u2, &last); err != nil {
			e.t.Fatalf("thread %d: %v", tid, err)
		}
		for i, m := range msgs {
			if m.Seq != int64(i+1) {
				e.t.Fatalf("thread %d: message %d (id %d) has seq %d, want %d", tid, i, m.ID, m.Seq, i+1)
			}
			if !(m.Sender == u1 && m.Receiver == u2 || m.Sender == u2 && m.Receiver == u1) {
				e.t.Fatalf("thread %d (%d, %d) holds message %+v", tid, u1, u2, m)
			}
		}
		if last != int64(len(msgs)) {
			e.t.Fatalf("thread %d: last_seq %d, %d messages", tid, last, len(msgs))
		}
	}
}

func TestAppendBasics(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		u := e.users(3)
		a, b, c := u[0], u[1], u[2]
		s := e.store(msgstore.Config{})
		before := time.Now().UnixMilli()
		msgs := mustAppend(t, s, text(a, b, "m1", "hello"), text(b, a, "m1", "hi 你好"), text(c, a, "x", "yo"))
		if msgs[0].ThreadID != msgs[1].ThreadID || msgs[0].ThreadID == msgs[2].ThreadID {
			t.Fatalf("threads: %+v", msgs)
		}
		if msgs[0].Seq != 1 || msgs[1].Seq != 2 || msgs[2].Seq != 1 {
			t.Fatalf("seqs: %+v", msgs)
		}
		if !(msgs[0].ID < msgs[1].ID && msgs[1].ID < msgs[2].ID) {
			t.Fatalf("ids not increasing in draft order: %+v", msgs)
		}
		for i, m := range msgs {
			if m.CreatedAt < before || m.CreatedAt > time.Now().UnixMilli() {
				t.Fatalf("message %d: created_at %d", i, m.CreatedAt)
			}
		}
		if m := msgs[1]; m.Sender != b || m.Receiver != a || m.ClientID != "m1" || m.Content != "hi 你好" {
			t.Fatalf("message 1 = %+v", m)
		}
		if got := e.allMessages(); !slices.Equal(got, msgs) {
			t.Fatalf("stored %+v\nreturned %+v", got, msgs)
		}
		th, err := s.PrivateThread(t.Context(), b, a)
		if err != nil {
			t.Fatal(err)
		}
		if want := (msgstore.Thread{ID: msgs[0].ThreadID, Type: "private", User1: a, User2: b}); th != want {
			t.Fatalf("PrivateThread = %+v, want %+v", th, want)
		}
		if n := e.count(`SELECT COUNT(*) FROM chat_thread`); n != 2 {
			t.Fatalf("%d threads, want 2", n)
		}
		if msgs, err := s.Append(t.Context(), nil); err != nil || len(msgs) != 0 {
			t.Fatalf("Append(nil) = %v, %v", msgs, err)
		}
		e.checkThreads()
	})
}

func TestAppendConcurrentSeq(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		u := e.users(12)
		s := e.store(msgstore.Config{MaxBatch: 64})
		const senders, perSender = 20, 40
		var wg sync.WaitGroup
		errs := make(chan error, 2*senders)
		// Phase 1: 20 senders into the one thread of u[0] and u[1].
		// Phase 2: 20 senders into many threads among u[2:].
		for phase := range 2 {
			for g := range senders {
				wg.Go(func() {
					var last = map[int64]int64{}
					for k := range perSender {
						var d msgstore.Draft
						if phase == 0 {
							from, to := u[0], u[1]
							if g%2 == 1 {
								from, to = to, from
							}
							d = text(from, to, fmt.Sprintf("p%d-g%d-%d", phase, g, k), "same thread")
						} else {
							from := u[2+g%10]
							to := u[2+(g+1+k%9)%10]
							d = text(from, to, fmt.Sprintf("p%d-g%d-%d", phase, g, k), "many threads")
						}
						drafts := []msgstore.Draft{d}
						if k%7 == 0 { // sometimes two at once
							d2 := d
							d2.ClientID += "b"
							drafts = append(drafts, d2)
						}
						msgs, err := s.Append(t.Context(), drafts)
						if err != nil {
							errs <- err
							return
						}
						for _, m := range msgs {
							// One goroutine's messages follow each other in its threads.
							if m.Seq <= last[m.ThreadID] {
								errs <- fmt.Errorf("sender %d: seq %d after %d in thread %d", g, m.Seq, last[m.ThreadID], m.ThreadID)
								return
							}
							last[m.ThreadID] = m.Seq
						}
					}
				})
			}
			wg.Wait()
		}
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		perPhase := senders * (perSender + (perSender+6)/7)
		if n := e.count(`SELECT COUNT(*) FROM chat_message`); n != int64(2*perPhase) {
			t.Fatalf("%d messages stored, want %d", n, 2*perPhase)
		}
		e.checkThreads()
		if st := s.Stats(); st.Batches == 0 || st.Messages != uint64(2*perPhase) {
			t.Fatalf("stats %+v", st)
		}
	})
}

func TestIdempotentResend(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		u := e.users(2)
		a, b := u[0], u[1]
		s := e.store(msgstore.Config{MaxBatch: 4, MaxWait: time.Minute})

		// Same call: the second draft with the key returns the first.
		msgs := mustAppend(t, s, text(a, b, "k1", "one"), text(a, b, "k1", "one again"), text(a, b, "k2", "two"), text(b, a, "k1", "other sender"))
		if !sameStored(msgs[1], msgs[0]) || msgs[0].Content != "one" || msgs[2].Seq != 2 || msgs[3].Seq != 3 {
			t.Fatalf("same-call duplicate: %+v", msgs)
		}
		if msgs[0].Duplicate || !msgs[1].Duplicate || msgs[2].Duplicate || msgs[3].Duplicate {
			t.Fatalf("Duplicate flags: %+v", msgs)
		}

		// Same batch, different calls: MaxBatch 4 and a long MaxWait make
		// the four calls one batch.
		var wg sync.WaitGroup
		res := make([][]msgstore.Message, 4)
		for i := range 4 {
			wg.Go(func() {
				res[i] = mustAppend(t, s, text(a, b, "k3", fmt.Sprintf("try %d", i)))
			})
		}
		wg.Wait()
		fresh := 0
		for i := range res {
			if !sameStored(res[i][0], res[0][0]) {
				t.Fatalf("same-batch duplicates differ: %+v vs %+v", res[i], res[0])
			}
			if !res[i][0].Duplicate {
				fresh++
			}
		}
		if fresh != 1 {
			t.Fatalf("%d of 4 same-batch resends were reported as new, want exactly 1", fresh)
		}
		if res[0][0].Seq != 4 {
			t.Fatalf("k3 has seq %d, want 4", res[0][0].Seq)
		}

		// Later: the original comes back, even with other content.
		again := mustAppend(t, s, text(a, b, "k1", "changed"), text(a, b, "k4", "new"), text(a, b, "k2", "two"), text(a, b, "k3", "?"))
		if !sameStored(again[0], msgs[0]) || !sameStored(again[2], msgs[2]) || !sameStored(again[3], res[0][0]) {
			t.Fatalf("resend: %+v, originals %+v", again, msgs)
		}
		if again[1].Seq != 5 {
			t.Fatalf("new message after resends has seq %d, want 5", again[1].Seq)
		}
		if n := e.count(`SELECT COUNT(*) FROM chat_message`); n != 5 {
			t.Fatalf("%d rows, want 5", n)
		}
		if st := s.Stats(); st.Messages != 5 || st.Duplicates != 1+3+3 {
			t.Fatalf("stats %+v", st)
		}
		e.checkThreads()
	})
}

func TestUndeliveredAndConfirm(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		u := e.users(3)
		a, b, c := u[0], u[1], u[2]
		s := e.store(msgstore.Config{})
		ctx := t.Context()

		// 1000 messages to b: from a and c, interleaved, from concurrent
		// callers; plus b's own messages, which are not b's to receive.
		var wg sync.WaitGroup
		for g := range 10 {
			wg.Go(func() {
				for k := range 100 {
					from := a
					if g%2 == 1 {
						from = c
					}
					mustAppend(t, s, text(from, b, fmt.Sprintf("g%d-%d", g, k), fmt.Sprintf("msg %d of %d", k, g)))
				}
			})
		}
		wg.Go(func() {
			for k := range 30 {
				mustAppend(t, s, text(b, a, fmt.Sprintf("own-%d", k), "from b"))
			}
		})
		wg.Wait()

		got, err := s.Undelivered(ctx, b, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1000 {
			t.Fatalf("Undelivered: %d messages, want 1000", len(got))
		}
		var want []msgstore.Message
		for _, m := range e.allMessages() {
			if m.Receiver == b {
				want = append(want, m)
			}
		}
		if !slices.Equal(got, want) {
			t.Fatal("Undelivered differs from the stored messages to b in id order")
		}
		if more, err := s.Undelivered(ctx, b, msgstore.MaxPage+5); err != nil || len(more) != 1000 {
			t.Fatalf("Undelivered(limit > 1000) = %d, %v", len(more), err)
		}
		// Paging without confirming.
		page1, err := s.UndeliveredAfter(ctx, b, 0, 600)
		if err != nil {
			t.Fatal(err)
		}
		page2, err := s.UndeliveredAfter(ctx, b, page1[len(page1)-1].ID, 600)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(append(page1, page2...), want) {
			t.Fatalf("pages of %d and %d differ from the whole", len(page1), len(page2))
		}
		// a gets only b's 30.
		if ga, err := s.Undelivered(ctx, a, 100); err != nil || len(ga) != 30 || ga[0].Sender != b {
			t.Fatalf("Undelivered(a) = %d messages, %v", len(ga), err)
		}

		// Partial confirm: thread a-b up to the 200th message of a's.
		var ab []msgstore.Message
		for _, m := range want {
			if m.Sender == a {
				ab = append(ab, m)
			}
		}
		tid := ab[0].ThreadID
		if err := s.Confirm(ctx, b, tid, ab[199].Seq); err != nil {
			t.Fatal(err)
		}
		rest, err := s.Undelivered(ctx, b, 1000)
		if err != nil {
			t.Fatal(err)
		}
		var wantRest []msgstore.Message
		for _, m := range want {
			if m.ThreadID != tid || m.Seq > ab[199].Seq {
				wantRest = append(wantRest, m)
			}
		}
		if len(wantRest) != 800 || !slices.Equal(rest, wantRest) {
			t.Fatalf("after partial confirm: %d messages, want %d", len(rest), len(wantRest))
		}
		// A cursor never moves back.
		if err := s.Confirm(ctx, b, tid, 3); err != nil {
			t.Fatal(err)
		}
		if n := e.count(`SELECT delivered_seq FROM chat_cursor WHERE uid = $1 AND thread_id = $2`, b, tid); n != ab[199].Seq {
			t.Fatalf("cursor %d after confirming less, want %d", n, ab[199].Seq)
		}
		// ConfirmMessages: the rest, both threads, in one go.
		if err := s.ConfirmMessages(ctx, b, rest); err != nil {
			t.Fatal(err)
		}
		if left, err := s.Undelivered(ctx, b, 10); err != nil || len(left) != 0 {
			t.Fatalf("after confirming all: %d left, %v", len(left), err)
		}
		// Confirming beyond the newest message does not swallow later ones.
		if err := s.Confirm(ctx, b, tid, 1<<40); err != nil {
			t.Fatal(err)
		}
		later := mustAppend(t, s, text(a, b, "later", "after the cursor"))
		if left, err := s.Undelivered(ctx, b, 10); err != nil || len(left) != 1 || left[0] != later[0] {
			t.Fatalf("after a new message: %+v, %v", left, err)
		}
		if err := s.ConfirmMessages(ctx, b, nil); err != nil {
			t.Fatal(err)
		}

		// Errors: not b's thread, no such thread; nothing confirmed then.
		if err := s.Confirm(ctx, c, tid, 5); !errors.Is(err, msgstore.ErrNotMember) {
			t.Fatalf("Confirm by non-member: %v", err)
		}
		if err := s.Confirm(ctx, b, 99999, 5); !errors.Is(err, msgstore.ErrNoThread) {
			t.Fatalf("Confirm of no thread: %v", err)
		}
		bad := []msgstore.Message{later[0], {ThreadID: 99999, Seq: 1}}
		if err := s.ConfirmMessages(ctx, b, bad); !errors.Is(err, msgstore.ErrNoThread) {
			t.Fatalf("ConfirmMessages with no thread: %v", err)
		}
		if left, err := s.Undelivered(ctx, b, 10); err != nil || len(left) != 1 {
			t.Fatalf("failed ConfirmMessages confirmed something: %+v, %v", left, err)
		}
		if n := e.count(`SELECT COUNT(*) FROM chat_cursor WHERE uid = $1`, c); n != 0 {
			t.Fatalf("non-member got %d cursor rows", n)
		}
	})
}

func TestThreadsPaging(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		u := e.users(13)
		s := e.store(msgstore.Config{})
		ctx := t.Context()
		owner := u[0]

		page := func(uid int32, after int64) ([]msgstore.Thread, bool) {
			t.Helper()
			th, more, err := s.Threads(ctx, uid, after, 10)
			if err != nil {
				t.Fatal(err)
			}
			return th, more
		}
		if th, more := page(owner, 0); len(th) != 0 || more {
			t.Fatalf("no threads: %+v, more=%v", th, more)
		}
		// Threads with owner as user1 and as user2 (lower uid).
		var made []msgstore.Thread
		for _, other := range u[1:11] {
			th, err := s.PrivateThread(ctx, other, owner)
			if err != nil {
				t.Fatal(err)
			}
			made = append(made, th)
		}
		// A thread owner is not in.
		if _, err := s.PrivateThread(ctx, u[11], u[12]); err != nil {
			t.Fatal(err)
		}
		th, more := page(owner, 0)
		if !slices.Equal(th, made) || more {
			t.Fatalf("exactly 10: %+v more=%v, want %+v", th, more, made)
		}
		th11, err := s.PrivateThread(ctx, u[12], owner)
		if err != nil {
			t.Fatal(err)
		}
		made = append(made, th11)
		th, more = page(owner, 0)
		if !slices.Equal(th, made[:10]) || !more {
			t.Fatalf("11, first page: %+v more=%v", th, more)
		}
		th, more = page(owner, th[9].ID)
		if !slices.Equal(th, made[10:]) || more {
			t.Fatalf("11, second page: %+v more=%v", th, more)
		}
		if th, more = page(owner, th11.ID); len(th) != 0 || more {
			t.Fatalf("cursor at the end: %+v more=%v", th, more)
		}
		if th, more = page(owner, th11.ID+1000); len(th) != 0 || more {
			t.Fatalf("cursor past the end: %+v more=%v", th, more)
		}
		if th, more = page(u[12], 0); len(th) != 2 || more || th[0].User1 != u[11] || th[1] != th11 {
			t.Fatalf("u12's threads: %+v more=%v", th, more)
		}
		if _, _, err := s.Threads(ctx, owner, 0, 0); !errors.Is(err, msgstore.ErrInvalid) {
			t.Fatalf("limit 0: %v", err)
		}
	})
}

func TestMessagesPaging(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		u := e.users(4)
		a, b, c, d := u[0], u[1], u[2], u[3]
		s := e.store(msgstore.Config{})
		ctx := t.Context()

		th, err := s.PrivateThread(ctx, a, b)
		if err != nil {
			t.Fatal(err)
		}
		page := func(uid int32, after int64) ([]msgstore.Message, bool) {
			t.Helper()
			msgs, more, err := s.Messages(ctx, uid, th.ID, after, 10)
			if err != nil {
				t.Fatal(err)
			}
			return msgs, more
		}
		if msgs, more := page(a, 0); len(msgs) != 0 || more {
			t.Fatalf("empty thread: %+v more=%v", msgs, more)
		}
		var sent []msgstore.Message
		for i := range 10 {
			from, to := a, b
			if i%3 == 0 {
				from, to = b, a
			}
			sent = append(sent, mustAppend(t, s, text(from, to, fmt.Sprint(i), fmt.Sprint("text ", i)))...)
			// Messages of another thread interleave, ids-wise.
			mustAppend(t, s, text(c, d, fmt.Sprint(i), "elsewhere"))
		}
		if msgs, more := page(b, 0); !slices.Equal(msgs, sent) || more {
			t.Fatalf("exactly 10: %+v more=%v", msgs, more)
		}
		sent = append(sent, mustAppend(t, s, text(a, b, "10", "eleventh"))...)
		msgs, more := page(a, 0)
		if !slices.Equal(msgs, sent[:10]) || !more {
			t.Fatalf("11, first page: more=%v", more)
		}
		msgs, more = page(a, msgs[9].ID)
		if !slices.Equal(msgs, sent[10:]) || more {
			t.Fatalf("11, second page: %+v more=%v", msgs, more)
		}
		if msgs, more = page(a, sent[10].ID); len(msgs) != 0 || more {
			t.Fatalf("cursor at the end: %+v more=%v", msgs, more)
		}
		if msgs, more = page(a, sent[10].ID+1000); len(msgs) != 0 || more {
			t.Fatalf("cursor past the end: %+v more=%v", msgs, more)
		}

		// Members only.
		if _, _, err := s.Messages(ctx, c, th.ID, 0, 10); !errors.Is(err, msgstore.ErrNotMember) {
			t.Fatalf("non-member: %v", err)
		}
		if _, _, err := s.Messages(ctx, c, th.ID, 1<<40, 10); !errors.Is(err, msgstore.ErrNotMember) {
			t.Fatalf("non-member, cursor past the end: %v", err)
		}
		if _, _, err := s.Messages(ctx, a, th.ID+1000, 0, 10); !errors.Is(err, msgstore.ErrNoThread) {
			t.Fatalf("no thread: %v", err)
		}
		if _, _, err := s.Messages(ctx, a, 1<<40, 0, 10); !errors.Is(err, msgstore.ErrNoThread) {
			t.Fatalf("huge thread id: %v", err)
		}
	})
}

func TestPrivateThreadConcurrent(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		u := e.users(3)
		a, b := u[0], u[1]
		s := e.store(msgstore.Config{})
		ctx := t.Context()
		const n = 20
		ids := make([]int64, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				x, y := a, b
				if i%2 == 1 {
					x, y = y, x
				}
				var err error
				if i%4 == 3 {
					// Appends create the thread too.
					var msgs []msgstore.Message
					msgs, err = s.Append(ctx, []msgstore.Draft{text(x, y, fmt.Sprint(i), "first")})
					if err == nil {
						ids[i] = msgs[0].ThreadID
					}
				} else {
					var th msgstore.Thread
					th, err = s.PrivateThread(ctx, x, y)
					ids[i] = th.ID
				}
				if err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		for _, id := range ids {
			if id != ids[0] || id == 0 {
				t.Fatalf("thread ids %v, want all the same", ids)
			}
		}
		if n := e.count(`SELECT COUNT(*) FROM chat_thread`); n != 1 {
			t.Fatalf("%d threads, want 1", n)
		}
		for _, args := range [][2]int32{{a, a}, {0, a}, {a, -1}} {
			if _, err := s.PrivateThread(ctx, args[0], args[1]); !errors.Is(err, msgstore.ErrInvalid) {
				t.Fatalf("PrivateThread%v: %v", args, err)
			}
		}
		if _, err := s.PrivateThread(ctx, a, 99999); !errors.Is(err, msgstore.ErrNoUser) {
			t.Fatalf("PrivateThread with no user: %v", err)
		}
		e.checkThreads()
	})
}

func TestValidation(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		u := e.users(2)
		a, b := u[0], u[1]
		s := e.store(msgstore.Config{MaxContent: 10})
		ok := text(a, b, "ok", "fine")
		for name, d := range map[string]msgstore.Draft{
			"empty content":     text(a, b, "c", ""),
			"long content":      text(a, b, "c", "12345678901"),
			"bad UTF-8 content": text(a, b, "c", "\xff\xfe"),
			"NUL content":       text(a, b, "c", "a\x00b"),
			"empty client id":   text(a, b, "", "x"),
			"long client id":    text(a, b, strings.Repeat("i", msgstore.MaxClientID+1), "x"),
			"bad client id":     text(a, b, "\xc3", "x"),
			"self":              text(a, a, "c", "x"),
			"no sender":         text(0, b, "c", "x"),
		} {
			if _, err := s.Append(t.Context(), []msgstore.Draft{ok, d}); !errors.Is(err, msgstore.ErrInvalid) {
				t.Errorf("%s: %v, want ErrInvalid", name, err)
			}
		}
		if n := e.count(`SELECT COUNT(*) FROM chat_message`); n != 0 {
			t.Fatalf("invalid calls stored %d messages", n)
		}
		// Exactly at the limits.
		mustAppend(t, s, text(a, b, strings.Repeat("i", msgstore.MaxClientID), "1234567890"), text(a, b, "é", "é"))
	})
}

// poison makes the database refuse to insert a message whose content is
// "poison", a failure the store cannot see coming.
func (e *env) poison() {
	e.t.Helper()
	ddl := `CREATE TRIGGER poison BEFORE INSERT ON chat_message WHEN NEW.content = 'poison'
		BEGIN SELECT RAISE(ABORT, 'poison message'); END`
	if e.dialect == sqldb.Postgres {
		ddl = `CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $f$
			BEGIN IF NEW.content = 'poison' THEN RAISE EXCEPTION 'poison message'; END IF; RETURN NEW; END $f$;
			CREATE TRIGGER poison BEFORE INSERT ON chat_message FOR EACH ROW EXECUTE FUNCTION poison()`
	}
	if _, err := e.db.Exec(e.t.Context(), ddl); err != nil {
		e.t.Fatal(err)
	}
}

func TestFailingDraftIsolated(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		e.poison()
		u := e.users(6)
		const n = 16
		// One batch of exactly n calls: MaxBatch n, and a wait long enough
		// for all of them to be queued.
		s := e.store(msgstore.Config{MaxBatch: n, MaxWait: time.Minute})
		msgs := make([][]msgstore.Message, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				d := text(u[i%5], u[(i+1)%5], fmt.Sprint(i), fmt.Sprint("text ", i))
				switch i {
				case 5:
					d.Content = "poison"
				case 11:
					d.Receiver = 99999 // no such user
				}
				msgs[i], errs[i] = s.Append(t.Context(), []msgstore.Draft{d})
			})
		}
		wg.Wait()
		for i := range n {
			switch i {
			case 5:
				if errs[i] == nil || !strings.Contains(errs[i].Error(), "poison") {
					t.Errorf("poisoned draft: %v", errs[i])
				}
			case 11:
				if !errors.Is(errs[i], msgstore.ErrNoUser) {
					t.Errorf("draft to no user: %v", errs[i])
				}
			default:
				if errs[i] != nil || len(msgs[i]) != 1 || msgs[i][0].ID == 0 {
					t.Errorf("draft %d: %+v, %v", i, msgs[i], errs[i])
				}
			}
		}
		if got := e.count(`SELECT COUNT(*) FROM chat_message`); got != n-2 {
			t.Fatalf("%d messages stored, want %d", got, n-2)
		}
		if st := s.Stats(); st.Retries == 0 || st.Failed != 2 || st.Messages != n-2 {
			t.Fatalf("stats %+v: want retries, 2 failed", st)
		}
		e.checkThreads()
		// The poisoned call alone (a store that does not wait for a full
		// batch): it fails, the store goes on.
		s = e.store(msgstore.Config{})
		if _, err := s.Append(t.Context(), []msgstore.Draft{text(u[0], u[1], "p2", "poison")}); err == nil {
			t.Fatal("poisoned draft stored")
		}
		mustAppend(t, s, text(u[0], u[1], "after", "fine"))
		e.checkThreads()
	})
}

func TestLargeAppendSplit(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		u := e.users(3)
		s := e.store(msgstore.Config{MaxBatch: 8})
		var drafts []msgstore.Draft
		for i := range 30 {
			drafts = append(drafts, text(u[0], u[1+i%2], fmt.Sprint(i), "x"))
		}
		msgs := mustAppend(t, s, drafts...)
		for i, m := range msgs {
			if m.ClientID != fmt.Sprint(i) || m.Seq != int64(i/2+1) {
				t.Fatalf("message %d: %+v", i, m)
			}
		}
		if st := s.Stats(); st.Batches != 4 {
			t.Fatalf("%d batches, want 4", st.Batches)
		}
		e.checkThreads()
	})
}

func TestRunShutdownDrains(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		u := e.users(11)
		// A small queue, so that some callers block on it when Run stops.
		s := msgstore.New(e.db, msgstore.Config{QueueLen: 4, MaxBatch: 8}, nil)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()

		// Queued before Run starts, more than the queue holds: stored once
		// it does.
		const early = 10
		earlyErrs := make(chan error, early)
		for i := range early {
			go func() {
				_, err := s.Append(t.Context(), []msgstore.Draft{text(u[0], u[1], fmt.Sprint("early", i), "queued before Run")})
				earlyErrs <- err
			}()
		}
		time.Sleep(20 * time.Millisecond) // let them fill the queue
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx) }()
		for range early {
			if err := <-earlyErrs; err != nil {
				t.Fatalf("Append before Run: %v", err)
			}
		}

		const senders = 40
		type outcome struct {
			msgs []msgstore.Message
			err  error
		}
		results := make(chan outcome, senders*50)
		var wg sync.WaitGroup
		started := make(chan struct{})
		for g := range senders {
			wg.Go(func() {
				for k := 0; ; k++ {
					if k == 3 && g == 0 {
						close(started)
					}
					msgs, err := s.Append(t.Context(), []msgstore.Draft{text(u[1+g%10], u[1+(g+1)%10], fmt.Sprintf("%d-%d", g, k), "x")})
					results <- outcome{msgs, err}
					if err != nil {
						return
					}
				}
			})
		}
		<-started
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
		case <-time.After(time.Minute):
			t.Fatal("Run did not return")
		}
		wg.Wait() // every caller got an answer
		close(results)
		stored := map[string]bool{}
		for _, m := range e.allMessages() {
			stored[m.ClientID] = true
		}
		ok := 0
		for r := range results {
			switch {
			case r.err == nil:
				ok++
				if !stored[r.msgs[0].ClientID] {
					t.Fatalf("reported stored, not in the database: %+v", r.msgs[0])
				}
			case errors.Is(r.err, msgstore.ErrNotRunning):
			default:
				t.Fatalf("Append during shutdown: %v", r.err)
			}
		}
		if n := e.count(`SELECT COUNT(*) FROM chat_message`); int64(ok+early) != n {
			t.Fatalf("%d reported stored, %d in the database", ok+early, n)
		}
		if _, err := s.Append(t.Context(), []msgstore.Draft{text(u[0], u[1], "late", "x")}); !errors.Is(err, msgstore.ErrNotRunning) {
			t.Fatalf("Append after Run: %v", err)
		}
		if err := s.Run(context.Background()); err == nil {
			t.Fatal("second Run succeeded")
		}
		e.checkThreads()
	})
}

func TestAppendContextEnds(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		u := e.users(2)
		s := msgstore.New(e.db, msgstore.Config{}, nil) // not running: Append waits
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		if _, err := s.Append(ctx, []msgstore.Draft{text(u[0], u[1], "c", "x")}); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Append with no Run: %v", err)
		}
		// The abandoned request is dropped when Run gets to it.
		rctx, rcancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Run(rctx) }()
		mustAppend(t, s, text(u[0], u[1], "d", "y"))
		rcancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if msgs := e.allMessages(); len(msgs) != 1 || msgs[0].ClientID != "d" {
			t.Fatalf("stored %+v", msgs)
		}
	})
}

// TestTwoStores runs two stores on one database, like two chat nodes:
// their batches overlap on the same threads, in opposite orders, and race
// to store the same keys (a client resending through another node).
func TestTwoStores(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		u := e.users(8)
		stores := []*msgstore.Store{e.store(msgstore.Config{MaxBatch: 16}), e.store(msgstore.Config{MaxBatch: 16})}
		const perStore, rounds = 12, 25
		type sent struct {
			key string
			msg msgstore.Message
		}
		results := make(chan sent, 2*perStore*rounds)
		var wg sync.WaitGroup
		for si, s := range stores {
			for g := range perStore {
				wg.Go(func() {
					for k := range rounds {
						// Threads among u[0..7], walked in opposite
						// directions by the two stores.
						i := (g + k) % 8
						if si == 1 {
							i = 7 - i
						}
						from, to := u[i], u[(i+3)%8]
						// Half the keys are sent through both stores.
						key := fmt.Sprintf("s%d-g%d-%d", si, g, k)
						if k%2 == 0 {
							key = fmt.Sprintf("both-g%d-%d", g, k)
							from, to = u[g%8], u[(g+1+k%7)%8]
						}
						msgs, err := s.Append(t.Context(), []msgstore.Draft{text(from, to, key, key)})
						if err != nil {
							t.Error(err)
							return
						}
						results <- sent{key, msgs[0]}
					}
				})
			}
		}
		wg.Wait()
		close(results)
		byKey := map[string]msgstore.Message{}
		for r := range results {
			if prev, ok := byKey[r.key]; ok && !sameStored(prev, r.msg) {
				t.Fatalf("key %s stored twice: %+v and %+v", r.key, prev, r.msg)
			}
			byKey[r.key] = r.msg
		}
		if n := e.count(`SELECT COUNT(*) FROM chat_message`); n != int64(len(byKey)) {
			t.Fatalf("%d rows for %d keys", n, len(byKey))
		}
		e.checkThreads()
	})
}

// sameStored reports whether a and b are the same stored message (Duplicate
// says how Append found it, not what is stored).
func sameStored(a, b msgstore.Message) bool {
	a.Duplicate, b.Duplicate = false, false
	return a == b
}
