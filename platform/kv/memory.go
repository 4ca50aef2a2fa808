package kv

import (
	"context"
	"fmt"
	"maps"
	"math"
	"strconv"
	"sync"
	"time"
)

// Sweep tuning for Memory. Expired entries are removed lazily when touched;
// in addition, every sweepEvery writes the store inspects up to sweepBatch
// entries (starting at Go's randomised map iteration point) and drops the
// expired ones. Because a sweep examines more entries than were written since
// the previous one, expired keys that are never touched again cannot
// accumulate without bound.
const (
	sweepEvery = 64
	sweepBatch = 256
)

var _ Store = (*Memory)(nil)

// Memory is an in-process Store for single-process deployments and tests.
// It mirrors the Redis semantics the Redis implementation relies on: string and
// hash values live in one keyspace, type mismatches fail with ErrWrongType and
// hashes are created without a TTL.
//
// Memory starts no goroutines; expiry is enforced on access and by an
// amortised sweep performed during writes. The zero value is not usable; call
// NewMemory.
type Memory struct {
	mu     sync.Mutex
	items  map[string]memItem
	writes int // writes since the last sweep
}

// memItem is one key. Exactly one of str or hash is meaningful: hash is non-nil
// for hash keys and nil for string keys.
type memItem struct {
	str      string
	hash     map[string]string
	expireAt time.Time // zero means no expiry
}

func (it memItem) expired(now time.Time) bool {
	return !it.expireAt.IsZero() && !now.Before(it.expireAt)
}

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory {
	return &Memory{items: make(map[string]memItem)}
}

// Get implements Store.
func (m *Memory) Get(ctx context.Context, key string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	it, ok := m.lookup(key, time.Now())
	if !ok {
		return "", ErrNotFound
	}
	if it.hash != nil {
		return "", fmt.Errorf("kv memory: get %q: %w", key, ErrWrongType)
	}
	return it.str, nil
}

// Set implements Store.
func (m *Memory) Set(ctx context.Context, key, value string, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkTTL(ttl); err != nil {
		return fmt.Errorf("kv memory: set %q: %w", key, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	m.items[key] = memItem{str: value, expireAt: deadline(now, ttl)}
	m.wrote(now)
	return nil
}

// SetNX implements Store.
func (m *Memory) SetNX(ctx context.Context, key, value string, ttl time.Duration) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if err := checkTTL(ttl); err != nil {
		return false, fmt.Errorf("kv memory: setnx %q: %w", key, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	if _, ok := m.lookup(key, now); ok {
		return false, nil
	}
	m.items[key] = memItem{str: value, expireAt: deadline(now, ttl)}
	m.wrote(now)
	return true, nil
}

// Del implements Store.
func (m *Memory) Del(ctx context.Context, keys ...string) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	var n int64
	for _, key := range keys {
		if _, ok := m.lookup(key, now); ok {
			delete(m.items, key)
			n++
		}
	}
	return n, nil
}

// CompareAndDelete implements Store. Like the Redis script it mirrors, it
// fails with ErrWrongType when key holds a hash.
func (m *Memory) CompareAndDelete(ctx context.Context, key, value string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	it, ok := m.lookup(key, time.Now())
	switch {
	case !ok:
		return false, nil
	case it.hash != nil:
		return false, fmt.Errorf("kv memory: compare-and-delete %q: %w", key, ErrWrongType)
	case it.str != value:
		return false, nil
	}
	delete(m.items, key)
	return true, nil
}

// Incr implements Store.
func (m *Memory) Incr(ctx context.Context, key string, ttl time.Duration) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := checkTTL(ttl); err != nil {
		return 0, fmt.Errorf("kv memory: incr %q: %w", key, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	it, ok := m.lookup(key, now)
	if !ok {
		m.items[key] = memItem{str: "1", expireAt: deadline(now, ttl)}
		m.wrote(now)
		return 1, nil
	}
	if it.hash != nil {
		return 0, fmt.Errorf("kv memory: incr %q: %w", key, ErrWrongType)
	}
	n, err := addInt(it.str, 1)
	if err != nil {
		return 0, fmt.Errorf("kv memory: incr %q: %w", key, err)
	}
	it.str = strconv.FormatInt(n, 10)
	m.items[key] = it // keeps expireAt: an existing key keeps its TTL
	m.wrote(now)
	return n, nil
}

// HSet implements Store. A hash created by HSet has no TTL; setting a field of
// an existing hash keeps the hash's TTL.
func (m *Memory) HSet(ctx context.Context, key, field, value string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	h, err := m.hashForWrite(key, now)
	if err != nil {
		return fmt.Errorf("kv memory: hset %q: %w", key, err)
	}
	h[field] = value
	m.wrote(now)
	return nil
}

// HGetAll implements Store. The returned map is a copy owned by the caller.
func (m *Memory) HGetAll(ctx context.Context, key string) (map[string]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	it, ok := m.lookup(key, time.Now())
	if !ok {
		return map[string]string{}, nil
	}
	if it.hash == nil {
		return nil, fmt.Errorf("kv memory: hgetall %q: %w", key, ErrWrongType)
	}
	return maps.Clone(it.hash), nil
}

// HDel implements Store. Removing the last field deletes the key, as in Redis.
func (m *Memory) HDel(ctx context.Context, key string, fields ...string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	it, ok := m.lookup(key, time.Now())
	if !ok {
		return nil
	}
	if it.hash == nil {
		return fmt.Errorf("kv memory: hdel %q: %w", key, ErrWrongType)
	}
	for _, f := range fields {
		delete(it.hash, f)
	}
	if len(it.hash) == 0 {
		delete(m.items, key)
	}
	return nil
}

// HIncrBy implements Store. Like HSet, it creates a missing hash without a TTL.
func (m *Memory) HIncrBy(ctx context.Context, key, field string, delta int64) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	h, err := m.hashForWrite(key, now)
	if err != nil {
		return 0, fmt.Errorf("kv memory: hincrby %q: %w", key, err)
	}
	cur, ok := h[field]
	if !ok {
		cur = "0"
	}
	n, err := addInt(cur, delta)
	if err != nil {
		return 0, fmt.Errorf("kv memory: hincrby %q field %q: %w", key, field, err)
	}
	h[field] = strconv.FormatInt(n, 10)
	m.wrote(now)
	return n, nil
}

// Ping implements Store; an in-memory store is always reachable.
func (m *Memory) Ping(ctx context.Context) error {
	return ctx.Err()
}

// Close implements Store. It is a no-op: Memory holds no external resources,
// and its contents remain accessible after Close.
func (m *Memory) Close() error {
	return nil
}

// lookup returns the live item for key, deleting it if it has expired.
// m.mu must be held.
func (m *Memory) lookup(key string, now time.Time) (memItem, bool) {
	it, ok := m.items[key]
	if !ok {
		return memItem{}, false
	}
	if it.expired(now) {
		delete(m.items, key)
		return memItem{}, false
	}
	return it, true
}

// hashForWrite returns the hash stored at key, creating an empty one without a
// TTL when key is missing. It fails with ErrWrongType when key holds a string.
// m.mu must be held.
func (m *Memory) hashForWrite(key string, now time.Time) (map[string]string, error) {
	it, ok := m.lookup(key, now)
	if !ok {
		it = memItem{hash: make(map[string]string)}
		m.items[key] = it
		return it.hash, nil
	}
	if it.hash == nil {
		return nil, ErrWrongType
	}
	return it.hash, nil
}

// wrote records a write and, every sweepEvery writes, drops expired entries
// from a bounded sample of the map. m.mu must be held.
func (m *Memory) wrote(now time.Time) {
	m.writes++
	if m.writes < sweepEvery {
		return
	}
	m.writes = 0
	scanned := 0
	for key, it := range m.items {
		if it.expired(now) {
			delete(m.items, key)
		}
		scanned++
		if scanned >= sweepBatch {
			break
		}
	}
}

// deadline converts a relative ttl into an absolute expiry; 0 means none.
func deadline(now time.Time, ttl time.Duration) time.Time {
	if ttl == 0 {
		return time.Time{}
	}
	return now.Add(ttl)
}

// addInt parses s as a base-10 int64 and adds delta, failing with
// ErrNotInteger when s is not an integer or the sum would overflow.
func addInt(s string, delta int64) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, ErrNotInteger
	}
	if (delta > 0 && n > math.MaxInt64-delta) || (delta < 0 && n < math.MinInt64-delta) {
		return 0, ErrNotInteger
	}
	return n + delta, nil
}
