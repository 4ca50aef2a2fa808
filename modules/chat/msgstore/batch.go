package msgstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/imsrv/imsrv/platform/sqldb"
)

// request is one queued Append (or one MaxBatch-sized part of it).
type request struct {
	ctx    context.Context
	drafts []Draft
	queued time.Time
	done   chan result // buffered: Run never blocks handing over a result
}

type result struct {
	msgs []Message
	err  error
}

func (r *request) finish(msgs []Message, err error) { r.done <- result{msgs, err} }

// Append stores drafts durably, in order, and returns them as stored: with
// ID, ThreadID (the private thread of sender and receiver, created if
// missing), Seq and CreatedAt. A draft whose (Sender, ClientID) was stored
// before, or appears earlier in the same call or batch, returns the
// original message (an idempotent resend) and stores nothing.
//
// Append returns only after the commit. Its drafts are stored in one
// transaction (all or none) unless there are more than Config.MaxBatch of
// them: then they are stored MaxBatch at a time, in order, and an error may
// leave an earlier part stored (a resend returns it). Append fails with
// ErrInvalid (nothing stored) if any draft is invalid, with ErrNoUser if a
// user does not exist, with ErrNotRunning once Run has stopped, and with
// ctx's error if ctx ends first; after ctx ends the messages may still be
// stored, but success is never reported for a message that was not
// committed. Before Run has started, Append queues and waits (so that
// starting Run in a goroutine races with nothing).
func (s *Store) Append(ctx context.Context, drafts []Draft) ([]Message, error) {
	for i, d := range drafts {
		if err := s.validate(d); err != nil {
			return nil, fmt.Errorf("draft %d: %w", i, err)
		}
	}
	if len(drafts) == 0 {
		return nil, nil
	}
	if len(drafts) <= s.cfg.MaxBatch {
		return s.append(ctx, drafts)
	}
	out := make([]Message, 0, len(drafts))
	for start := 0; start < len(drafts); start += s.cfg.MaxBatch {
		msgs, err := s.append(ctx, drafts[start:min(start+s.cfg.MaxBatch, len(drafts))])
		if err != nil {
			return nil, err
		}
		out = append(out, msgs...)
	}
	return out, nil
}

// append queues one request and waits for its result.
func (s *Store) append(ctx context.Context, drafts []Draft) ([]Message, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("msgstore: append: %w", err)
	}
	// A copy: the caller may reuse its slice once Append has returned,
	// which it may do (ctx) before Run is done with the request.
	drafts = slices.Clone(drafts)
	r := &request{ctx: ctx, drafts: drafts, queued: time.Now(), done: make(chan result, 1)}
	// The read lock keeps Run from declaring the queue closed while we may
	// still send on it; Run closes s.stop first, so a sender blocked on a
	// full queue gives up instead of holding Run up.
	s.mu.RLock()
	if s.stopped {
		s.mu.RUnlock()
		return nil, ErrNotRunning
	}
	select {
	case s.queue <- r:
		s.mu.RUnlock()
	case <-s.stop:
		s.mu.RUnlock()
		return nil, ErrNotRunning
	case <-ctx.Done():
		s.mu.RUnlock()
		return nil, fmt.Errorf("msgstore: append: %w", ctx.Err())
	}
	select {
	case res := <-r.done:
		return res.msgs, res.err
	case <-ctx.Done():
		return nil, fmt.Errorf("msgstore: append: %w (the messages may still be stored)", ctx.Err())
	}
}

// Run is the group-commit loop: it stores queued drafts in batches until
// ctx ends, then stops accepting new ones, stores everything already queued
// (every pending Append gets its result) and returns nil. Database work is
// not canceled by ctx; each batch transaction is bounded by
// Config.CommitTimeout. Run may be called once.
func (s *Store) Run(ctx context.Context) error {
	// Not under mu: before Run starts, senders may be blocked on a full
	// queue holding it for reading.
	if !s.started.CompareAndSwap(false, true) {
		return errors.New("msgstore: Run called twice")
	}

	dbctx := context.WithoutCancel(ctx)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var carry *request // the request that did not fit the previous batch
	for {
		first := carry
		carry = nil
		if first == nil {
			select {
			case first = <-s.queue:
			case <-ctx.Done():
			}
		}
		if first == nil {
			break
		}
		var batch []*request
		batch, carry = s.collect(ctx, first, timer)
		s.commit(dbctx, batch)
	}

	// Stop accepting: wake senders blocked on a full queue, then wait for
	// every sender to leave the critical section. After that nothing is
	// added to the queue, and what it holds is drained.
	close(s.stop)
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
	for {
		first := carry
		carry = nil
		if first == nil {
			select {
			case first = <-s.queue:
			default:
			}
		}
		if first == nil {
			return nil
		}
		var batch []*request
		batch, carry = s.collect(context.Background(), first, nil)
		s.commit(dbctx, batch)
	}
}

// collect gathers a batch starting with first: whatever is queued, then, if
// the batch is not full and timer is not nil, what arrives until MaxWait
// after first was queued, up to MaxBatch drafts. (A first request that
// waited in the queue through the previous transaction does not wait
// again.) It returns the batch and the request that did not fit, if any.
func (s *Store) collect(ctx context.Context, first *request, timer *time.Timer) ([]*request, *request) {
	batch := []*request{first}
	n := len(first.drafts)
	add := func(r *request) *request {
		if n+len(r.drafts) > s.cfg.MaxBatch {
			return r
		}
		batch = append(batch, r)
		n += len(r.drafts)
		return nil
	}
	waiting := false
	defer func() {
		if waiting {
			timer.Stop()
		}
	}()
	for n < s.cfg.MaxBatch {
		select {
		case r := <-s.queue:
			if carry := add(r); carry != nil {
				return batch, carry
			}
			continue
		default:
		}
		if timer == nil {
			break
		}
		if !waiting {
			wait := s.cfg.MaxWait - time.Since(first.queued)
			if wait <= 0 {
				break
			}
			timer.Reset(wait)
			waiting = true
		}
		select {
		case r := <-s.queue:
			if carry := add(r); carry != nil {
				return batch, carry
			}
		case <-timer.C:
			waiting = false
			return batch, nil
		case <-ctx.Done():
			return batch, nil
		}
	}
	return batch, nil
}

// commit stores a batch and hands every request its result. Requests whose
// caller has gone are dropped first: nothing of theirs is stored.
func (s *Store) commit(ctx context.Context, reqs []*request) {
	live := reqs[:0]
	for _, r := range reqs {
		if err := r.ctx.Err(); err != nil {
			r.finish(nil, err)
			continue
		}
		live = append(live, r)
	}
	if len(live) > 0 {
		s.commitOrSplit(ctx, live)
	}
}

// commitOrSplit stores reqs in one transaction. If that fails, a single
// request gets the error; several are retried in two halves (in order, so
// per-thread order is kept), so that one failing request cannot fail the
// others. When the database cannot even be pinged, every request fails at
// once instead.
func (s *Store) commitOrSplit(ctx context.Context, reqs []*request) {
	reqs, err := s.store(ctx, reqs)
	if err == nil {
		return
	}
	if len(reqs) == 1 {
		s.stats.failed.Add(1)
		s.log.WarnContext(ctx, "msgstore: storing messages failed", "drafts", len(reqs[0].drafts), "err", err)
		reqs[0].finish(nil, fmt.Errorf("msgstore: store messages: %w", err))
		return
	}
	pctx, cancel := context.WithTimeout(ctx, s.cfg.CommitTimeout)
	perr := s.db.Ping(pctx)
	cancel()
	if perr != nil {
		s.stats.failed.Add(uint64(len(reqs)))
		s.log.WarnContext(ctx, "msgstore: storing a batch failed, database unreachable", "requests", len(reqs), "err", err, "ping", perr)
		for _, r := range reqs {
			r.finish(nil, fmt.Errorf("msgstore: store messages: %w", err))
		}
		return
	}
	s.stats.retries.Add(1)
	s.log.DebugContext(ctx, "msgstore: batch failed, retrying in halves", "requests", len(reqs), "err", err)
	h := len(reqs) / 2
	s.commitOrSplit(ctx, reqs[:h])
	s.commitOrSplit(ctx, reqs[h:])
}

// missingThreadsError reports pairs of a batch that have no thread yet.
type missingThreadsError struct{ pairs []pair }

func (e *missingThreadsError) Error() string {
	return fmt.Sprintf("%d private threads missing", len(e.pairs))
}

// errDuplicate aborts an optimistic batch transaction in which a draft
// turned out to be stored already.
var errDuplicate = errors.New("a draft was stored before")

// store runs the batch transaction for reqs and, on success, hands each
// request its messages. Requests for which a thread cannot be created
// (a user does not exist) get ErrNoUser and are left out. On error it
// returns the requests it left unanswered and the error.
func (s *Store) store(ctx context.Context, reqs []*request) ([]*request, error) {
	created := false
	dupRetries := 0
	for {
		b := newBatch(reqs, s.checkDups.Load())
		tctx, cancel := context.WithTimeout(ctx, s.cfg.CommitTimeout)
		err := s.db.InTx(tctx, func(tx sqldb.Querier) error { return s.runBatch(tctx, tx, b) })
		var missing *missingThreadsError
		switch {
		case err == nil:
			cancel()
		case errors.Is(err, errDuplicate) && dupRetries < 3:
			// Resends: look them up first, in this batch and the next
			// ones, until a batch has none. (More than one retry only
			// when another process stores the same key concurrently.)
			cancel()
			dupRetries++
			s.checkDups.Store(true)
			continue
		case errors.As(err, &missing) && !created:
			// Create the threads in a transaction of their own, so that
			// the batch transaction never waits on another one's insert
			// while holding thread locks; then try again.
			err = s.createMissing(tctx, missing.pairs)
			cancel()
			if err != nil {
				return reqs, err
			}
			created = true
			continue
		case errors.As(err, &missing):
			// Still missing after creation: a user does not exist.
			cancel()
			reqs = s.failMissing(reqs, missing.pairs)
			if len(reqs) == 0 {
				return nil, nil
			}
			continue
		default:
			cancel()
			return reqs, err
		}
		if b.checkDups && b.found == 0 {
			s.checkDups.Store(false)
		}
		s.stats.batches.Add(1)
		s.stats.messages.Add(uint64(b.stored))
		s.stats.duplicates.Add(uint64(len(b.drafts) - b.stored))
		off := 0
		for _, r := range reqs {
			r.finish(b.msgs[off:off+len(r.drafts):off+len(r.drafts)], nil)
			off += len(r.drafts)
		}
		return nil, nil
	}
}

// createMissing creates the private threads of pairs.
func (s *Store) createMissing(ctx context.Context, pairs []pair) error {
	chunk := s.chunkRows(2)
	for start := 0; start < len(pairs); start += chunk {
		part := pairs[start:min(start+chunk, len(pairs))]
		if err := createThreads(ctx, s.db, s.timeNow().UnixMilli(), part); err != nil {
			return err
		}
	}
	return nil
}

// failMissing answers the requests with a draft between one of pairs with
// ErrNoUser and returns the others.
func (s *Store) failMissing(reqs []*request, pairs []pair) []*request {
	bad := make(map[pair]bool, len(pairs))
	for _, p := range pairs {
		bad[p] = true
	}
	var keep []*request
	for _, r := range reqs {
		var p pair
		failed := false
		for _, d := range r.drafts {
			if p = pairOf(d.Sender, d.Receiver); bad[p] {
				failed = true
				break
			}
		}
		if failed {
			s.stats.failed.Add(1)
			r.finish(nil, fmt.Errorf("%w: %d or %d", ErrNoUser, p.user1, p.user2))
			continue
		}
		keep = append(keep, r)
	}
	return keep
}

// dedupKey is a message's idempotency key.
type dedupKey struct {
	sender   int32
	clientID string
}

// batch is the drafts of several requests, flattened in queue order, and
// what runBatch makes of them.
type batch struct {
	drafts    []Draft
	checkDups bool      // look up stored duplicates before inserting
	msgs      []Message // result per draft
	stored    int       // new messages inserted
	found     int       // drafts found stored before (checkDups only)
}

func newBatch(reqs []*request, checkDups bool) *batch {
	n := 0
	for _, r := range reqs {
		n += len(r.drafts)
	}
	b := &batch{drafts: make([]Draft, 0, n), checkDups: checkDups}
	for _, r := range reqs {
		b.drafts = append(b.drafts, r.drafts...)
	}
	return b
}

// threadRow is a thread of a batch: its id and the seq of the last message
// stored in it so far.
type threadRow struct {
	id      int64
	lastSeq int64
	count   int64 // new messages of the batch in the thread
}

// runBatch is the batch transaction:
//
//  1. (only after resends were seen) one SELECT finds the drafts whose
//     (sender, client_id) is stored already;
//  2. (PostgreSQL) one SELECT ... FOR UPDATE locks the threads of the new
//     drafts in id order: every batch, in every process, locks in the same
//     order, so concurrent batches queue instead of deadlocking. (SQLite
//     transactions hold the write lock from BEGIN IMMEDIATE on.)
//  3. one UPDATE ... FROM (VALUES ...) RETURNING adds each thread's count
//     of new drafts to its last_seq and returns the new value: the drafts
//     take the seqs just below it, in draft order;
//  4. one multi-row INSERT ... ON CONFLICT (sender, client_id) DO NOTHING
//     RETURNING stores the messages. A draft not inserted was stored
//     before: the transaction is rolled back with errDuplicate and redone
//     with step 1, so that seqs stay gap-free.
//
// Each step is one statement on PostgreSQL whatever the batch size (up to
// a few thousand rows); SQLite gets statements of at most ~256 parameters,
// as its driver binds parameters in time quadratic in their number. A
// missing thread aborts the transaction with a *missingThreadsError before
// anything is written.
func (s *Store) runBatch(ctx context.Context, tx sqldb.Querier, b *batch) error {
	now := s.timeNow().UnixMilli()
	n := len(b.drafts)
	b.msgs = make([]Message, n)
	b.stored, b.found = 0, 0

	// Within the batch, later drafts with an earlier draft's key copy its
	// result: src[i] is the draft whose message draft i gets.
	first := make(map[dedupKey]int, n)
	src := make([]int, n)
	keys := make([]int, 0, n)
	for i, d := range b.drafts {
		k := dedupKey{d.Sender, d.ClientID}
		if j, ok := first[k]; ok {
			src[i] = j
			continue
		}
		first[k] = i
		src[i] = i
		keys = append(keys, i)
	}

	// 1. Stored before.
	old := make([]bool, n)
	if b.checkDups {
		if err := s.findStored(ctx, tx, b, keys, first, old); err != nil {
			return err
		}
	}

	fresh := make([]int, 0, len(keys))
	threadOf := make(map[pair]*threadRow)
	var pairs []pair
	for _, i := range keys {
		if old[i] {
			continue
		}
		fresh = append(fresh, i)
		p := pairOf(b.drafts[i].Sender, b.drafts[i].Receiver)
		t := threadOf[p]
		if t == nil {
			t = &threadRow{}
			threadOf[p] = t
			pairs = append(pairs, p)
		}
		t.count++
	}
	if len(fresh) > 0 {
		slices.SortFunc(pairs, func(a, b pair) int {
			return cmp.Or(cmp.Compare(a.user1, b.user1), cmp.Compare(a.user2, b.user2))
		})
		// 2. Lock.
		if s.pg {
			if err := s.lockThreads(ctx, tx, pairs); err != nil {
				return err
			}
		}
		// 3. Take the seqs.
		if err := s.bumpThreads(ctx, tx, pairs, threadOf); err != nil {
			return err
		}
		for _, i := range fresh {
			d := b.drafts[i]
			t := threadOf[pairOf(d.Sender, d.Receiver)]
			t.lastSeq++
			b.msgs[i] = Message{ThreadID: t.id, Seq: t.lastSeq, Sender: d.Sender, Receiver: d.Receiver,
				ClientID: d.ClientID, Content: d.Content, CreatedAt: now}
		}
		// 4. The messages.
		if err := s.insertMessages(ctx, tx, b, fresh, now); err != nil {
			return err
		}
		b.stored = len(fresh)
	}

	for i := range b.msgs {
		if src[i] != i {
			b.msgs[i] = b.msgs[src[i]]
			b.msgs[i].Duplicate = true
		} else if old[i] {
			b.msgs[i].Duplicate = true
		}
	}
	return nil
}

// findStored looks up the stored messages with the keys of drafts keys
// (indexes into b.drafts; first maps keys back) and marks them old.
func (s *Store) findStored(ctx context.Context, tx sqldb.Querier, b *batch, keys []int, first map[dedupKey]int, old []bool) error {
	chunk := s.chunkRows(2)
	for start := 0; start < len(keys); start += chunk {
		part := keys[start:min(start+chunk, len(keys))]
		rows := s.padded(len(part))
		args := make([]any, 0, 2*rows)
		for _, i := range part {
			args = append(args, b.drafts[i].Sender, b.drafts[i].ClientID)
		}
		for len(args) < cap(args) { // padding: repeat the last key
			args = append(args, args[len(args)-2], args[len(args)-1])
		}
		rs, err := tx.Query(ctx, `SELECT `+messageColumns+` FROM chat_message m
			WHERE (m.sender, m.client_id) IN (VALUES `+s.values(1, rows, "INTEGER", "TEXT")+`)`, args...)
		if err != nil {
			return fmt.Errorf("find duplicates: %w", err)
		}
		found, err := scanMessages(rs, nil)
		if err != nil {
			return fmt.Errorf("find duplicates: %w", err)
		}
		for _, m := range found {
			i, ok := first[dedupKey{m.Sender, m.ClientID}]
			if !ok {
				return fmt.Errorf("find duplicates: unexpected row (%d, %q)", m.Sender, m.ClientID)
			}
			b.msgs[i] = m
			old[i] = true
			b.found++
		}
	}
	return nil
}

// lockThreads locks the threads of pairs FOR UPDATE in id order
// (PostgreSQL only), in one statement: the pairs of a batch never exceed
// one chunk (maxMaxBatch), which keeps the order global. Missing threads
// end the transaction with a *missingThreadsError.
func (s *Store) lockThreads(ctx context.Context, tx sqldb.Querier, pairs []pair) error {
	rows := s.padded(len(pairs))
	args := make([]any, 0, 2*rows)
	for _, p := range pairs {
		args = append(args, p.user1, p.user2)
	}
	for len(args) < cap(args) { // padding: repeat the last pair
		args = append(args, args[len(args)-2], args[len(args)-1])
	}
	rs, err := tx.Query(ctx, `SELECT user1_id, user2_id FROM chat_thread
		WHERE (user1_id, user2_id) IN (VALUES `+s.values(1, rows, "INTEGER", "INTEGER")+`)
		ORDER BY id FOR UPDATE`, args...)
	if err != nil {
		return fmt.Errorf("lock threads: %w", err)
	}
	defer rs.Close()
	found := make(map[pair]bool, len(pairs))
	for rs.Next() {
		var p pair
		if err := rs.Scan(&p.user1, &p.user2); err != nil {
			return fmt.Errorf("lock threads: %w", err)
		}
		found[p] = true
	}
	if err := rs.Err(); err != nil {
		return fmt.Errorf("lock threads: %w", err)
	}
	if len(found) < len(pairs) {
		return missingPairs(pairs, found)
	}
	return nil
}

func missingPairs(pairs []pair, found map[pair]bool) error {
	var missing []pair
	for _, p := range pairs {
		if !found[p] {
			missing = append(missing, p)
		}
	}
	return &missingThreadsError{pairs: missing}
}

// bumpThreads adds each thread's count to its last_seq and records the
// thread id and the last_seq before the batch in threadOf.
func (s *Store) bumpThreads(ctx context.Context, tx sqldb.Querier, pairs []pair, threadOf map[pair]*threadRow) error {
	chunk := s.chunkRows(3)
	found := make(map[pair]bool, len(pairs))
	for start := 0; start < len(pairs); start += chunk {
		part := pairs[start:min(start+chunk, len(pairs))]
		rows := s.padded(len(part))
		args := make([]any, 0, 3*rows)
		for _, p := range part {
			args = append(args, p.user1, p.user2, threadOf[p].count)
		}
		for len(args) < cap(args) { // padding: a pair that matches nothing
			args = append(args, 0, 0, 0)
		}
		rs, err := tx.Query(ctx, s.updateVerb()+` chat_thread SET last_seq = chat_thread.last_seq + v.column3
			FROM (VALUES `+s.values(1, rows, "INTEGER", "INTEGER", "BIGINT")+`) AS v
			WHERE chat_thread.user1_id = v.column1 AND chat_thread.user2_id = v.column2
			RETURNING id, user1_id, user2_id, last_seq`, args...)
		if err != nil {
			return fmt.Errorf("advance threads: %w", err)
		}
		for rs.Next() {
			var p pair
			var id, last int64
			if err := rs.Scan(&id, &p.user1, &p.user2, &last); err != nil {
				rs.Close()
				return fmt.Errorf("advance threads: %w", err)
			}
			t := threadOf[p]
			if t == nil || found[p] {
				rs.Close()
				return fmt.Errorf("advance threads: unexpected row (%d, %d)", p.user1, p.user2)
			}
			found[p] = true
			t.id, t.lastSeq = id, last-t.count
		}
		rs.Close()
		if err := rs.Err(); err != nil {
			return fmt.Errorf("advance threads: %w", err)
		}
	}
	if len(found) < len(pairs) {
		return missingPairs(pairs, found)
	}
	return nil
}

// insertMessages inserts the messages of drafts fresh (indexes into b) and
// fills in their ids. It returns errDuplicate if one of them was stored
// before.
func (s *Store) insertMessages(ctx context.Context, tx sqldb.Querier, b *batch, fresh []int, now int64) error {
	// RETURNING order is unspecified: match rows by (thread_id, seq).
	type tseq struct{ thread, seq int64 }
	at := make(map[tseq]int, len(fresh))
	for _, i := range fresh {
		at[tseq{b.msgs[i].ThreadID, b.msgs[i].Seq}] = i
	}
	chunk := s.chunkRows(6)
	for start := 0; start < len(fresh); start += chunk {
		part := fresh[start:min(start+chunk, len(fresh))]
		rows := s.padded(len(part))
		args := make([]any, 0, 1+6*rows)
		args = append(args, now)
		for _, i := range part {
			m := &b.msgs[i]
			args = append(args, m.ThreadID, m.Seq, m.Sender, m.Receiver, m.ClientID, m.Content)
		}
		for len(args) < cap(args) { // padding: rows the WHERE drops
			args = append(args, 0, 0, 0, 0, "", "")
		}
		rs, err := tx.Query(ctx, s.insertSQL(rows), args...)
		if err != nil {
			return fmt.Errorf("insert messages: %w", err)
		}
		got := 0
		for rs.Next() {
			var id int64
			var k tseq
			if err := rs.Scan(&id, &k.thread, &k.seq); err != nil {
				rs.Close()
				return fmt.Errorf("insert messages: %w", err)
			}
			i, ok := at[k]
			if !ok {
				rs.Close()
				return fmt.Errorf("insert messages: unexpected row (%d, %d)", k.thread, k.seq)
			}
			b.msgs[i].ID = id
			got++
		}
		rs.Close()
		if err := rs.Err(); err != nil {
			return fmt.Errorf("insert messages: %w", err)
		}
		if got != len(part) {
			return errDuplicate
		}
	}
	return nil
}

// insertSQL is the statement inserting rows messages: created_at is $1,
// then six parameters a row. On PostgreSQL it selects from a padded VALUES
// list, dropping the padding rows (thread id 0); on SQLite it is a plain
// multi-row INSERT.
func (s *Store) insertSQL(rows int) string {
	const (
		into = `INSERT INTO chat_message (thread_id, seq, sender, receiver, client_id, content, created_at) `
		tail = ` ON CONFLICT (sender, client_id) DO NOTHING RETURNING id, thread_id, seq`
	)
	if !s.pg {
		var b strings.Builder
		b.Grow(len(into) + len(tail) + 16 + rows*40)
		// OR FAIL: a failing row fails the statement without undoing its
		// earlier rows, so SQLite keeps no statement journal (with the
		// default ABORT it journals every page the statement changes, to a
		// temporary file beyond 64 KiB). The transaction is rolled back on
		// any error anyway.
		b.WriteString("INSERT OR FAIL")
		b.WriteString(into[len("INSERT"):])
		b.WriteString("VALUES ")
		for r := range rows {
			if r > 0 {
				b.WriteByte(',')
			}
			p := 2 + 6*r
			b.WriteString("($")
			for c := range 6 {
				if c > 0 {
					b.WriteString(",$")
				}
				b.WriteString(strconv.Itoa(p + c))
			}
			b.WriteString(",$1)")
		}
		b.WriteString(tail)
		return b.String()
	}
	return into + `SELECT v.column1, v.column2, v.column3, v.column4, v.column5, v.column6, CAST($1 AS BIGINT)
		FROM (VALUES ` + s.values(2, rows, "INTEGER", "BIGINT", "INTEGER", "INTEGER", "TEXT", "TEXT") + `) AS v
		WHERE v.column1 > 0` + tail
}

// updateVerb is UPDATE, on SQLite UPDATE OR FAIL (see insertSQL).
func (s *Store) updateVerb() string {
	if s.pg {
		return "UPDATE"
	}
	return "UPDATE OR FAIL"
}
