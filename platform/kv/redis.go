package kv

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/rueidis"
)

var _ Store = (*Redis)(nil)

// compareAndDeleteScript deletes KEYS[1] only if it holds ARGV[1]. GET raises
// WRONGTYPE when the key holds a hash, which surfaces as ErrWrongType.
const compareAndDeleteScript = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
	return redis.call('DEL', KEYS[1])
end
return 0
`

// incrScript increments KEYS[1] and, only when this call created the key,
// sets its expiry to ARGV[1] milliseconds (0 = none). An existing key keeps its
// TTL, which gives fixed-window counter semantics.
const incrScript = `
local created = redis.call('EXISTS', KEYS[1]) == 0
local n = redis.call('INCR', KEYS[1])
if created and tonumber(ARGV[1]) > 0 then
	redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return n
`

// Redis is a Store backed by a Redis server (or any server speaking its
// protocol) through rueidis. It is required whenever roles run in more than
// one process.
type Redis struct {
	client           rueidis.Client
	compareAndDelete *rueidis.Lua
	incr             *rueidis.Lua
}

// NewRedis connects to the server at url, a redis:// or rediss:// URL as
// understood by rueidis.ParseURL, e.g. "redis://user:pass@host:6379/0".
// Client-side caching is disabled. The caller must Close the returned store.
func NewRedis(url string) (*Redis, error) {
	opt, err := rueidis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("kv redis: parse url: %w", redactURLError(err))
	}
	opt.DisableCache = true
	client, err := rueidis.NewClient(opt)
	if err != nil {
		return nil, fmt.Errorf("kv redis: connect: %w", err)
	}
	return &Redis{
		client:           client,
		compareAndDelete: rueidis.NewLuaScript(compareAndDeleteScript),
		incr:             rueidis.NewLuaScript(incrScript),
	}, nil
}

// Get implements Store.
func (r *Redis) Get(ctx context.Context, key string) (string, error) {
	v, err := r.client.Do(ctx, r.client.B().Get().Key(key).Build()).ToString()
	if rueidis.IsRedisNil(err) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", wrapRedisErr("get", key, err)
	}
	return v, nil
}

// Set implements Store.
func (r *Redis) Set(ctx context.Context, key, value string, ttl time.Duration) error {
	if err := checkTTL(ttl); err != nil {
		return fmt.Errorf("kv redis: set %q: %w", key, err)
	}
	cmd := r.client.B().Set().Key(key).Value(value)
	var err error
	if ttl > 0 {
		err = r.client.Do(ctx, cmd.PxMilliseconds(millis(ttl)).Build()).Error()
	} else {
		err = r.client.Do(ctx, cmd.Build()).Error()
	}
	if err != nil {
		return wrapRedisErr("set", key, err)
	}
	return nil
}

// SetNX implements Store using SET key value NX [PX ttl].
func (r *Redis) SetNX(ctx context.Context, key, value string, ttl time.Duration) (bool, error) {
	if err := checkTTL(ttl); err != nil {
		return false, fmt.Errorf("kv redis: setnx %q: %w", key, err)
	}
	cmd := r.client.B().Set().Key(key).Value(value).Nx()
	var err error
	if ttl > 0 {
		err = r.client.Do(ctx, cmd.PxMilliseconds(millis(ttl)).Build()).Error()
	} else {
		err = r.client.Do(ctx, cmd.Build()).Error()
	}
	switch {
	case rueidis.IsRedisNil(err): // NX condition not met
		return false, nil
	case err != nil:
		return false, wrapRedisErr("setnx", key, err)
	}
	return true, nil
}

// Del implements Store.
func (r *Redis) Del(ctx context.Context, keys ...string) (int64, error) {
	if len(keys) == 0 {
		return 0, nil // DEL requires at least one key
	}
	n, err := r.client.Do(ctx, r.client.B().Del().Key(keys...).Build()).AsInt64()
	if err != nil {
		return 0, fmt.Errorf("kv redis: del %q: %w", keys, mapRedisErr(err))
	}
	return n, nil
}

// CompareAndDelete implements Store with a Lua script, so the comparison and
// the deletion are atomic.
func (r *Redis) CompareAndDelete(ctx context.Context, key, value string) (bool, error) {
	n, err := r.compareAndDelete.Exec(ctx, r.client, []string{key}, []string{value}).AsInt64()
	if err != nil {
		return false, wrapRedisErr("compare-and-delete", key, err)
	}
	return n == 1, nil
}

// Incr implements Store with a Lua script, so the increment and the expiry of
// a newly created counter are atomic.
func (r *Redis) Incr(ctx context.Context, key string, ttl time.Duration) (int64, error) {
	if err := checkTTL(ttl); err != nil {
		return 0, fmt.Errorf("kv redis: incr %q: %w", key, err)
	}
	ms := "0"
	if ttl > 0 {
		ms = strconv.FormatInt(millis(ttl), 10)
	}
	n, err := r.incr.Exec(ctx, r.client, []string{key}, []string{ms}).AsInt64()
	if err != nil {
		return 0, wrapRedisErr("incr", key, err)
	}
	return n, nil
}

// HSet implements Store.
func (r *Redis) HSet(ctx context.Context, key, field, value string) error {
	err := r.client.Do(ctx, r.client.B().Hset().Key(key).FieldValue().FieldValue(field, value).Build()).Error()
	if err != nil {
		return wrapRedisErr("hset", key, err)
	}
	return nil
}

// HGetAll implements Store.
func (r *Redis) HGetAll(ctx context.Context, key string) (map[string]string, error) {
	m, err := r.client.Do(ctx, r.client.B().Hgetall().Key(key).Build()).AsStrMap()
	if err != nil {
		return nil, wrapRedisErr("hgetall", key, err)
	}
	if m == nil {
		m = map[string]string{}
	}
	return m, nil
}

// HDel implements Store.
func (r *Redis) HDel(ctx context.Context, key string, fields ...string) error {
	if len(fields) == 0 {
		return nil // HDEL requires at least one field
	}
	err := r.client.Do(ctx, r.client.B().Hdel().Key(key).Field(fields...).Build()).Error()
	if err != nil {
		return wrapRedisErr("hdel", key, err)
	}
	return nil
}

// HIncrBy implements Store.
func (r *Redis) HIncrBy(ctx context.Context, key, field string, delta int64) (int64, error) {
	n, err := r.client.Do(ctx, r.client.B().Hincrby().Key(key).Field(field).Increment(delta).Build()).AsInt64()
	if err != nil {
		return 0, fmt.Errorf("kv redis: hincrby %q field %q: %w", key, field, mapRedisErr(err))
	}
	return n, nil
}

// Ping implements Store.
func (r *Redis) Ping(ctx context.Context) error {
	if err := r.client.Do(ctx, r.client.B().Ping().Build()).Error(); err != nil {
		return fmt.Errorf("kv redis: ping: %w", err)
	}
	return nil
}

// Close implements Store. It closes the underlying connections; the store must
// not be used afterwards.
func (r *Redis) Close() error {
	r.client.Close()
	return nil
}

// millis converts a positive ttl to whole milliseconds, rounding up so that a
// sub-millisecond ttl still expires rather than being rejected by Redis.
func millis(ttl time.Duration) int64 {
	ms := ttl.Milliseconds()
	if ttl%time.Millisecond != 0 {
		ms++
	}
	return ms
}

// wrapRedisErr adds the operation and key to err after mapping it onto the
// package's sentinel errors.
func wrapRedisErr(op, key string, err error) error {
	return fmt.Errorf("kv redis: %s %q: %w", op, key, mapRedisErr(err))
}

// mapRedisErr translates Redis type and integer errors, including those raised
// inside Lua scripts, into ErrWrongType and ErrNotInteger so that callers see
// the same errors from every Store. Other errors are returned unchanged.
func mapRedisErr(err error) error {
	rerr, ok := rueidis.IsRedisErr(err)
	if !ok {
		return err
	}
	switch msg := rerr.Error(); {
	case strings.Contains(msg, "WRONGTYPE"):
		return ErrWrongType
	case strings.Contains(msg, "not an integer"), strings.Contains(msg, "would overflow"):
		return ErrNotInteger
	}
	return err
}
