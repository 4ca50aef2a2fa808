package kv

import (
	"context"
	"time"
)

// WithPrefix returns a Store that puts prefix in front of every key it passes
// to s (hash fields are unchanged). Several deployments, or parallel test
// runs, can share one Redis this way (config key redis.prefix).
func WithPrefix(s Store, prefix string) Store {
	if prefix == "" {
		return s
	}
	return &prefixed{s: s, p: prefix}
}

type prefixed struct {
	s Store
	p string
}

func (x *prefixed) Get(ctx context.Context, key string) (string, error) {
	return x.s.Get(ctx, x.p+key)
}

func (x *prefixed) Set(ctx context.Context, key, value string, ttl time.Duration) error {
	return x.s.Set(ctx, x.p+key, value, ttl)
}

func (x *prefixed) SetNX(ctx context.Context, key, value string, ttl time.Duration) (bool, error) {
	return x.s.SetNX(ctx, x.p+key, value, ttl)
}

func (x *prefixed) Del(ctx context.Context, keys ...string) (int64, error) {
	full := make([]string, len(keys))
	for i, k := range keys {
		full[i] = x.p + k
	}
	return x.s.Del(ctx, full...)
}

func (x *prefixed) CompareAndDelete(ctx context.Context, key, value string) (bool, error) {
	return x.s.CompareAndDelete(ctx, x.p+key, value)
}

func (x *prefixed) Incr(ctx context.Context, key string, ttl time.Duration) (int64, error) {
	return x.s.Incr(ctx, x.p+key, ttl)
}

func (x *prefixed) HSet(ctx context.Context, key, field, value string) error {
	return x.s.HSet(ctx, x.p+key, field, value)
}

func (x *prefixed) HGetAll(ctx context.Context, key string) (map[string]string, error) {
	return x.s.HGetAll(ctx, x.p+key)
}

func (x *prefixed) HDel(ctx context.Context, key string, fields ...string) error {
	return x.s.HDel(ctx, x.p+key, fields...)
}

func (x *prefixed) HIncrBy(ctx context.Context, key, field string, delta int64) (int64, error) {
	return x.s.HIncrBy(ctx, x.p+key, field, delta)
}

func (x *prefixed) Ping(ctx context.Context) error { return x.s.Ping(ctx) }
func (x *prefixed) Close() error                   { return x.s.Close() }
