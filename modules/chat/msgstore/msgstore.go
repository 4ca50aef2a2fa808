// Package msgstore keeps the chat module's 1:1 messages durably in SQL:
// private threads (one per pair of users), messages with a per-thread,
// gap-free sequence number and a per-sender idempotency key, and each user's
// delivery cursor per thread.
//
// Writes go through a group-commit loop (Run): Append queues drafts on a
// bounded channel, Run gathers up to Config.MaxBatch of them (waiting at most
// Config.MaxWait after the first was queued) and stores the whole batch in
// one transaction of a fixed, small number of statements, whatever its size:
// on PostgreSQL BEGIN, one SELECT ... FOR UPDATE locking the batch's threads
// in id order, one UPDATE ... RETURNING taking their seqs, one multi-row
// INSERT ... RETURNING, COMMIT: five round trips for up to a few thousand
// messages. A stored message thus costs a share of one commit instead of a
// commit of its own. Idempotency is optimistic: the INSERT skips keys stored
// before (ON CONFLICT DO NOTHING); if it skipped any, the transaction is
// redone with one more SELECT that finds them first (and later batches keep
// doing that until one finds none), so seqs never have gaps.
//
// Guarantees: Append reports success only after the commit; messages of one
// thread get seqs (and ids) in queue order, so the messages of a sender who
// waits for each Append are stored in the order sent; one failing request
// does not fail the others of its batch (the batch is retried in halves).
//
// Tables chat_thread, chat_message and chat_cursor come from
// migrations/<dialect>/0003_messages.sql; thread creation checks the account
// module's users table.
package msgstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/imsrv/imsrv/platform/sqldb"
)

var (
	// ErrNotMember is returned when a user asks for a thread they are not
	// a member of.
	ErrNotMember = errors.New("msgstore: not a member of the thread")
	// ErrNoThread is returned when a thread id names no thread.
	ErrNoThread = errors.New("msgstore: no such thread")
	// ErrNoUser is returned when a thread would be created for a user that
	// does not exist.
	ErrNoUser = errors.New("msgstore: no such user")
	// ErrInvalid is wrapped by errors about invalid input (content or
	// client id empty, too long or not UTF-8, sender == receiver, a bad
	// limit); the message says what is wrong.
	ErrInvalid = errors.New("msgstore: invalid")
	// ErrNotRunning is returned by Append once Run has stopped.
	ErrNotRunning = errors.New("msgstore: store is not running")
)

// ThreadPrivate is the type of a 1:1 thread.
const ThreadPrivate = "private"

// Limits and defaults.
const (
	// DefaultMaxBatch is Config.MaxBatch's default.
	DefaultMaxBatch = 512
	// DefaultMaxWait is Config.MaxWait's default.
	DefaultMaxWait = 2 * time.Millisecond
	// DefaultQueueLen is Config.QueueLen's default.
	DefaultQueueLen = 8192
	// DefaultMaxContent is Config.MaxContent's default.
	DefaultMaxContent = 16384
	// DefaultCommitTimeout is Config.CommitTimeout's default.
	DefaultCommitTimeout = 30 * time.Second
	// MaxClientID is the longest client id accepted, in bytes.
	MaxClientID = 64
	// MaxPage is the largest page Threads, Messages and Undelivered
	// return; larger limits are lowered to it.
	MaxPage = 1000
	// maxMaxBatch caps Config.MaxBatch so that every per-thread statement
	// of a batch fits the parameter limits of both dialects in one go.
	maxMaxBatch = 10000
)

// Config tunes the group-commit loop. Zero values take the defaults.
type Config struct {
	// MaxBatch is the most drafts stored in one transaction (default 512,
	// at most 10000). An Append of more drafts is stored in several
	// transactions, in order.
	MaxBatch int
	// MaxWait is how long the batcher waits to fill a batch after the
	// first item was queued (default 2ms). Negative means do not wait:
	// commit what is queued.
	MaxWait time.Duration
	// QueueLen is the number of pending Append calls queued before Append
	// blocks (backpressure; default 8192).
	QueueLen int
	// MaxContent is the longest message content accepted, in bytes
	// (default 16384).
	MaxContent int
	// CommitTimeout bounds one batch transaction, retries excluded
	// (default 30s).
	CommitTimeout time.Duration
}

func (c Config) withDefaults() Config {
	if c.MaxBatch <= 0 {
		c.MaxBatch = DefaultMaxBatch
	}
	c.MaxBatch = min(c.MaxBatch, maxMaxBatch)
	if c.MaxWait == 0 {
		c.MaxWait = DefaultMaxWait
	}
	if c.QueueLen <= 0 {
		c.QueueLen = DefaultQueueLen
	}
	if c.MaxContent <= 0 {
		c.MaxContent = DefaultMaxContent
	}
	if c.CommitTimeout <= 0 {
		c.CommitTimeout = DefaultCommitTimeout
	}
	return c
}

// Message is a stored message.
type Message struct {
	// ID is the server message id (1018/1019 message_id), unique across
	// threads. Within a thread ids increase with Seq.
	ID int64
	// ThreadID is the private thread of Sender and Receiver.
	ThreadID int64
	// Seq is the message's position in its thread: 1, 2, 3, ... with no gaps.
	Seq      int64
	Sender   int32
	Receiver int32
	// ClientID is the sender's id for the message (msgid / unique_id),
	// unique per sender.
	ClientID string
	Content  string
	// CreatedAt is when the message was stored, in Unix milliseconds.
	CreatedAt int64
	// Duplicate is set by Append on a draft whose (Sender, ClientID) was
	// stored before (or earlier in the same batch): the message is that
	// stored one, and must not be delivered a second time.
	Duplicate bool
}

// Draft is a message to store.
type Draft struct {
	Sender, Receiver int32
	ClientID         string
	Content          string
}

// Thread is a conversation. Private threads have User1 < User2.
type Thread struct {
	ID    int64
	Type  string
	User1 int32
	User2 int32
}

// Stats are counters of the group-commit loop since New.
type Stats struct {
	// Batches is the number of batch transactions committed.
	Batches uint64
	// Messages is the number of messages stored (duplicates excluded).
	Messages uint64
	// Duplicates is the number of drafts answered with an already stored
	// message.
	Duplicates uint64
	// Retries is the number of batch transactions that failed and were
	// retried in smaller parts.
	Retries uint64
	// Failed is the number of Append requests answered with an error by Run.
	Failed uint64
}

// Store keeps threads, messages and delivery cursors in SQL.
type Store struct {
	db      sqldb.DB
	cfg     Config
	log     *slog.Logger
	pg      bool
	queue   chan *request
	stop    chan struct{} // closed when Run stops accepting requests
	started atomic.Bool   // Run has been called
	mu      sync.RWMutex  // guards stopped; held for reading while sending on queue
	stopped bool          // Run accepts no more requests
	// checkDups makes batches look up stored duplicates before inserting
	// (set after resends were seen).
	checkDups atomic.Bool
	stats     struct{ batches, messages, duplicates, retries, failed atomic.Uint64 }
	timeNow   func() time.Time
}

// New returns a store on db. It does no I/O and starts nothing: Append works
// while Run runs. A nil logger discards.
func New(db sqldb.DB, cfg Config, logger *slog.Logger) *Store {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.withDefaults()
	pg := db.Dialect() == sqldb.Postgres
	return &Store{
		db:      db,
		cfg:     cfg,
		log:     logger,
		pg:      pg,
		queue:   make(chan *request, cfg.QueueLen),
		stop:    make(chan struct{}),
		timeNow: time.Now,
	}
}

// Stats returns the loop's counters.
func (s *Store) Stats() Stats {
	return Stats{
		Batches:    s.stats.batches.Load(),
		Messages:   s.stats.messages.Load(),
		Duplicates: s.stats.duplicates.Load(),
		Retries:    s.stats.retries.Load(),
		Failed:     s.stats.failed.Load(),
	}
}

// validate checks a draft.
func (s *Store) validate(d Draft) error {
	switch {
	case d.Sender <= 0 || d.Receiver <= 0:
		return fmt.Errorf("%w: sender %d or receiver %d is not a valid uid", ErrInvalid, d.Sender, d.Receiver)
	case d.Sender == d.Receiver:
		return fmt.Errorf("%w: sender and receiver are the same user %d", ErrInvalid, d.Sender)
	}
	if err := validateText("client id", d.ClientID, MaxClientID); err != nil {
		return err
	}
	return validateText("content", d.Content, s.cfg.MaxContent)
}

// validateText checks that s is 1..maxLen bytes of UTF-8 without NUL
// (PostgreSQL text cannot hold NUL).
func validateText(field, s string, maxLen int) error {
	switch {
	case s == "":
		return fmt.Errorf("%w: %s is empty", ErrInvalid, field)
	case len(s) > maxLen:
		return fmt.Errorf("%w: %s is %d bytes long, at most %d allowed", ErrInvalid, field, len(s), maxLen)
	case !utf8.ValidString(s):
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalid, field)
	}
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return fmt.Errorf("%w: %s contains a NUL byte", ErrInvalid, field)
		}
	}
	return nil
}

// pageLimit checks a page size and caps it at MaxPage.
func pageLimit(limit int) (int, error) {
	if limit <= 0 {
		return 0, fmt.Errorf("%w: limit %d, want at least 1", ErrInvalid, limit)
	}
	return min(limit, MaxPage), nil
}

// pair is a private thread's users, user1 < user2.
type pair struct{ user1, user2 int32 }

func pairOf(a, b int32) pair {
	if a > b {
		a, b = b, a
	}
	return pair{a, b}
}

// PrivateThread finds or creates the private thread of a and b. Concurrent
// callers (in any process) get the same thread: the UNIQUE (user1_id,
// user2_id) constraint decides. Errors: ErrInvalid (a == b, or not a uid),
// ErrNoUser.
func (s *Store) PrivateThread(ctx context.Context, a, b int32) (Thread, error) {
	if a <= 0 || b <= 0 || a == b {
		return Thread{}, fmt.Errorf("%w: no private thread between %d and %d", ErrInvalid, a, b)
	}
	p := pairOf(a, b)
	t := Thread{Type: ThreadPrivate, User1: p.user1, User2: p.user2}
	const find = `SELECT id, type FROM chat_thread WHERE user1_id = $1 AND user2_id = $2`
	err := s.db.QueryRow(ctx, find, p.user1, p.user2).Scan(&t.ID, &t.Type)
	if err == nil {
		return t, nil
	}
	if !errors.Is(err, sqldb.ErrNoRows) {
		return Thread{}, fmt.Errorf("msgstore: private thread %d-%d: %w", p.user1, p.user2, err)
	}
	if err := createThreads(ctx, s.db, s.timeNow().UnixMilli(), []pair{p}); err != nil {
		return Thread{}, fmt.Errorf("msgstore: private thread %d-%d: %w", p.user1, p.user2, err)
	}
	// Found now unless a user does not exist: the insert either made the
	// row or waited for the concurrent transaction that did.
	err = s.db.QueryRow(ctx, find, p.user1, p.user2).Scan(&t.ID, &t.Type)
	if errors.Is(err, sqldb.ErrNoRows) {
		return Thread{}, fmt.Errorf("%w: %d or %d", ErrNoUser, p.user1, p.user2)
	}
	if err != nil {
		return Thread{}, fmt.Errorf("msgstore: private thread %d-%d: %w", p.user1, p.user2, err)
	}
	return t, nil
}

// createThreads inserts the private threads of pairs whose users exist,
// leaving existing threads alone, in one statement. It reports nothing about
// which pairs it made: callers look them up afterwards.
func createThreads(ctx context.Context, q sqldb.Querier, now int64, pairs []pair) error {
	args := make([]any, 0, 1+2*len(pairs))
	args = append(args, now)
	for _, p := range pairs {
		args = append(args, p.user1, p.user2)
	}
	query := `INSERT INTO chat_thread (user1_id, user2_id, created_at)
		SELECT v.column1, v.column2, $1 FROM (VALUES ` + valuesList(true, 2, len(pairs), "INTEGER", "INTEGER") + `) AS v
		WHERE EXISTS (SELECT 1 FROM users WHERE uid = v.column1) AND EXISTS (SELECT 1 FROM users WHERE uid = v.column2)
		ON CONFLICT (user1_id, user2_id) DO NOTHING`
	if _, err := q.Exec(ctx, query, args...); err != nil {
		return fmt.Errorf("create threads: %w", err)
	}
	return nil
}

// Threads lists uid's threads with id > afterID in ascending id order, at
// most limit (capped at MaxPage) of them; more reports whether there are
// further ones. Errors: ErrInvalid (limit < 1).
func (s *Store) Threads(ctx context.Context, uid int32, afterID int64, limit int) (threads []Thread, more bool, err error) {
	limit, err = pageLimit(limit)
	if err != nil {
		return nil, false, err
	}
	rows, err := s.db.Query(ctx,
		`SELECT id, type, user1_id, user2_id FROM chat_thread
		 WHERE (user1_id = $1 OR user2_id = $1) AND id > CAST($2 AS BIGINT)
		 ORDER BY id LIMIT $3`, uid, afterID, limit+1)
	if err != nil {
		return nil, false, fmt.Errorf("msgstore: threads of %d: %w", uid, err)
	}
	defer rows.Close()
	for rows.Next() {
		var t Thread
		if err := rows.Scan(&t.ID, &t.Type, &t.User1, &t.User2); err != nil {
			return nil, false, fmt.Errorf("msgstore: threads of %d: %w", uid, err)
		}
		threads = append(threads, t)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("msgstore: threads of %d: %w", uid, err)
	}
	if len(threads) > limit {
		return threads[:limit], true, nil
	}
	return threads, false, nil
}

// messageColumns are a Message's chat_message columns, in scan order; the
// table is aliased m in every query using them.
const messageColumns = `m.id, m.thread_id, m.seq, m.sender, m.receiver, m.client_id, m.content, m.created_at`

func messageDest(m *Message) []any {
	return []any{&m.ID, &m.ThreadID, &m.Seq, &m.Sender, &m.Receiver, &m.ClientID, &m.Content, &m.CreatedAt}
}

func scanMessages(rows sqldb.Rows, msgs []Message) ([]Message, error) {
	defer rows.Close()
	for rows.Next() {
		var m Message
		if err := rows.Scan(messageDest(&m)...); err != nil {
			return nil, err
		}
		msgs = append(msgs, m)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return msgs, nil
}

// Messages lists the messages of thread threadID with id > afterID in
// ascending id order, at most limit (capped at MaxPage); more reports
// whether there are further ones. uid must be one of the thread's users.
// Errors: ErrNoThread, ErrNotMember, ErrInvalid (limit < 1).
func (s *Store) Messages(ctx context.Context, uid int32, threadID, afterID int64, limit int) (msgs []Message, more bool, err error) {
	limit, err = pageLimit(limit)
	if err != nil {
		return nil, false, err
	}
	// The membership test is part of the query; only an empty answer needs
	// a second look to tell "nothing (more) here" from an error.
	rows, err := s.db.Query(ctx,
		`SELECT `+messageColumns+`
		 FROM chat_thread t JOIN chat_message m ON m.thread_id = t.id
		 WHERE t.id = CAST($1 AS BIGINT) AND (t.user1_id = $2 OR t.user2_id = $2) AND m.id > CAST($3 AS BIGINT)
		 ORDER BY m.id LIMIT $4`, threadID, uid, afterID, limit+1)
	if err != nil {
		return nil, false, fmt.Errorf("msgstore: messages of thread %d: %w", threadID, err)
	}
	msgs, err = scanMessages(rows, nil)
	if err != nil {
		return nil, false, fmt.Errorf("msgstore: messages of thread %d: %w", threadID, err)
	}
	if len(msgs) == 0 {
		if err := s.checkMember(ctx, s.db, uid, threadID); err != nil {
			return nil, false, err
		}
		return nil, false, nil
	}
	if len(msgs) > limit {
		return msgs[:limit], true, nil
	}
	return msgs, false, nil
}

// checkMember returns ErrNoThread or ErrNotMember unless uid is a user of
// thread threadID.
func (s *Store) checkMember(ctx context.Context, q sqldb.Querier, uid int32, threadID int64) error {
	var u1, u2 int32
	err := q.QueryRow(ctx, `SELECT user1_id, user2_id FROM chat_thread WHERE id = CAST($1 AS BIGINT)`, threadID).Scan(&u1, &u2)
	switch {
	case errors.Is(err, sqldb.ErrNoRows):
		return fmt.Errorf("%w: %d", ErrNoThread, threadID)
	case err != nil:
		return fmt.Errorf("msgstore: thread %d: %w", threadID, err)
	case uid != u1 && uid != u2:
		return fmt.Errorf("%w: user %d, thread %d", ErrNotMember, uid, threadID)
	}
	return nil
}

// Undelivered lists the messages to uid that uid has not confirmed (seq
// greater than its cursor in the thread), in id order, at most limit
// (capped at MaxPage). Messages uid sent are not included.
func (s *Store) Undelivered(ctx context.Context, uid int32, limit int) ([]Message, error) {
	return s.UndeliveredAfter(ctx, uid, 0, limit)
}

// UndeliveredAfter is Undelivered for the messages with id > afterID, to
// page through more than one limit's worth without confirming. On
// PostgreSQL, messages committed concurrently with the paging may get an id
// below the cursor and be missed by this pass (never by the next one, until
// confirmed).
func (s *Store) UndeliveredAfter(ctx context.Context, uid int32, afterID int64, limit int) ([]Message, error) {
	limit, err := pageLimit(limit)
	if err != nil {
		return nil, err
	}
	// From uid's threads with anything past the cursor, walk the thread's
	// (thread_id, seq) index from the cursor on.
	rows, err := s.db.Query(ctx,
		`SELECT `+messageColumns+`
		 FROM chat_thread t
		 LEFT JOIN chat_cursor c ON c.uid = $1 AND c.thread_id = t.id
		 JOIN chat_message m ON m.thread_id = t.id AND m.seq > COALESCE(c.delivered_seq, 0)
		 WHERE (t.user1_id = $1 OR t.user2_id = $1) AND t.last_seq > COALESCE(c.delivered_seq, 0)
		   AND m.receiver = $1 AND m.id > CAST($2 AS BIGINT)
		 ORDER BY m.id LIMIT $3`, uid, afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("msgstore: undelivered to %d: %w", uid, err)
	}
	msgs, err := scanMessages(rows, nil)
	if err != nil {
		return nil, fmt.Errorf("msgstore: undelivered to %d: %w", uid, err)
	}
	return msgs, nil
}

// confirmSQL upserts cursors from n (thread id, seq) rows given as $2...:
// uid is $1. A cursor only moves forward and never past the thread's
// last_seq; threads uid is not a member of are left out.
func confirmSQL(n int) string {
	return `INSERT INTO chat_cursor (uid, thread_id, delivered_seq)
		SELECT CAST($1 AS INTEGER), t.id, CASE WHEN t.last_seq < v.column2 THEN t.last_seq ELSE v.column2 END
		FROM (VALUES ` + valuesList(true, 2, n, "BIGINT", "BIGINT") + `) AS v
		JOIN chat_thread t ON t.id = v.column1
		WHERE t.user1_id = $1 OR t.user2_id = $1
		ON CONFLICT (uid, thread_id) DO UPDATE SET delivered_seq = excluded.delivered_seq
		WHERE excluded.delivered_seq > chat_cursor.delivered_seq`
}

// Confirm records that uid has received the messages of thread threadID up
// to seq: its cursor becomes max(cursor, seq), capped at the thread's
// newest seq. Errors: ErrNoThread, ErrNotMember.
func (s *Store) Confirm(ctx context.Context, uid int32, threadID, seq int64) error {
	n, err := s.db.Exec(ctx, confirmSQL(1), uid, threadID, seq)
	if err != nil {
		return fmt.Errorf("msgstore: confirm %d in thread %d: %w", uid, threadID, err)
	}
	if n == 0 {
		// Nothing to move forward, or not a thread of uid's.
		return s.checkMember(ctx, s.db, uid, threadID)
	}
	return nil
}

// ConfirmMessages confirms, for every thread among msgs, the highest seq
// among them, in one transaction. Errors: ErrNoThread, ErrNotMember (then
// nothing is confirmed).
func (s *Store) ConfirmMessages(ctx context.Context, uid int32, msgs []Message) error {
	top := make(map[int64]int64)
	var order []int64
	for _, m := range msgs {
		if cur, ok := top[m.ThreadID]; !ok {
			order = append(order, m.ThreadID)
			top[m.ThreadID] = m.Seq
		} else if m.Seq > cur {
			top[m.ThreadID] = m.Seq
		}
	}
	if len(order) == 0 {
		return nil
	}
	const chunk = 5000 // rows per statement: 2 parameters each
	err := s.db.InTx(ctx, func(tx sqldb.Querier) error {
		for start := 0; start < len(order); start += chunk {
			part := order[start:min(start+chunk, len(order))]
			args := make([]any, 0, 1+2*len(part))
			args = append(args, uid)
			for _, id := range part {
				args = append(args, id, top[id])
			}
			n, err := tx.Exec(ctx, confirmSQL(len(part)), args...)
			if err != nil {
				return fmt.Errorf("msgstore: confirm %d: %w", uid, err)
			}
			if int(n) == len(part) {
				continue
			}
			// Some cursor did not move: already further, or an error.
			for _, id := range part {
				if err := s.checkMember(ctx, tx, uid, id); err != nil {
					return err
				}
			}
		}
		return nil
	})
	return err
}
