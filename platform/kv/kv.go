// Package kv is the key-value-with-TTL contract used for codes, tokens, routes,
// locks, rate counters and the chat-node registry. Two implementations satisfy
// it: Memory (single process) and Redis (rueidis; required whenever roles run in
// more than one process). Both pass the same contract suite (kvtest).
package kv

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned by Get when the key does not exist or has expired.
var ErrNotFound = errors.New("kv: key not found")

// Store is the KV contract. A ttl of 0 means "no expiry". All methods are safe
// for concurrent use.
type Store interface {
	// Get returns the value of key or ErrNotFound.
	Get(ctx context.Context, key string) (string, error)
	// Set stores value under key, replacing any previous value and TTL.
	Set(ctx context.Context, key, value string, ttl time.Duration) error
	// SetNX stores value only if key does not exist; reports whether it did.
	SetNX(ctx context.Context, key, value string, ttl time.Duration) (bool, error)
	// Del removes keys; missing keys are not an error. Returns how many existed.
	Del(ctx context.Context, keys ...string) (int64, error)
	// CompareAndDelete deletes key only if its current value equals value
	// (atomically); reports whether it deleted.
	CompareAndDelete(ctx context.Context, key, value string) (bool, error)
	// Incr adds 1 to the integer at key (missing = 0) and returns the new value.
	// When the key is created by this call it gets ttl (fixed-window counters);
	// an existing key keeps its TTL.
	Incr(ctx context.Context, key string, ttl time.Duration) (int64, error)
	// HSet sets field in the hash at key.
	HSet(ctx context.Context, key, field, value string) error
	// HGetAll returns every field of the hash (empty map when missing).
	HGetAll(ctx context.Context, key string) (map[string]string, error)
	// HDel removes fields from the hash; missing fields are not an error.
	HDel(ctx context.Context, key string, fields ...string) error
	// HIncrBy adds delta to the integer field (missing = 0) and returns the result.
	HIncrBy(ctx context.Context, key, field string, delta int64) (int64, error)
	// Ping checks that the store is reachable.
	Ping(ctx context.Context) error
	// Close releases resources.
	Close() error
}
