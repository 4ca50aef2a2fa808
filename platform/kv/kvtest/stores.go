package kvtest

import (
	"context"
	"crypto/rand"
	"os"
	"testing"

	"github.com/redis/rueidis"

	"github.com/imsrv/imsrv/platform/kv"
)

// EnvRedisURL names the Redis server integration tests use; tests needing
// it skip when it is unset.
const EnvRedisURL = "IMSRV_TEST_REDIS_URL"

// Backend is a named way to get a fresh store for one test.
type Backend struct {
	Name string
	Open func(t *testing.T) kv.Store
}

// Backends are every kv.Store implementation, for suites that must pass on
// each: in-memory always, Redis when IMSRV_TEST_REDIS_URL is set.
var Backends = []Backend{{"memory", Memory}, {"redis", Redis}}

// Memory returns a fresh in-memory store, closed when the test ends.
func Memory(t *testing.T) kv.Store {
	s := kv.NewMemory()
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// Redis returns a store on the Redis server at IMSRV_TEST_REDIS_URL under a
// fresh random key prefix; the store is closed and its keys deleted when the
// test ends. It skips the test when the variable is unset.
func Redis(t *testing.T) kv.Store {
	t.Helper()
	url := os.Getenv(EnvRedisURL)
	if url == "" {
		t.Skip(EnvRedisURL + " not set; skipping Redis test")
	}
	s, err := kv.NewRedis(url)
	if err != nil {
		t.Fatalf("redis: %v", err)
	}
	prefix := "test-" + rand.Text() + ":"
	t.Cleanup(func() {
		_ = s.Close()
		DropPrefix(t, url, prefix)
	})
	return kv.WithPrefix(s, prefix)
}

// DropPrefix deletes every key under prefix on the Redis server at url, for
// tests that hand a prefix to something else (an App's redis.prefix).
func DropPrefix(t testing.TB, url, prefix string) {
	opt, err := rueidis.ParseURL(url)
	if err != nil {
		t.Errorf("redis cleanup: %v", err)
		return
	}
	opt.DisableCache = true
	c, err := rueidis.NewClient(opt)
	if err != nil {
		t.Errorf("redis cleanup: %v", err)
		return
	}
	defer c.Close()
	ctx := context.Background()
	var cursor uint64
	for {
		e, err := c.Do(ctx, c.B().Scan().Cursor(cursor).Match(prefix+"*").Count(1000).Build()).AsScanEntry()
		if err != nil {
			t.Errorf("redis cleanup: scan: %v", err)
			return
		}
		if len(e.Elements) > 0 {
			if err := c.Do(ctx, c.B().Del().Key(e.Elements...).Build()).Error(); err != nil {
				t.Errorf("redis cleanup: del: %v", err)
				return
			}
		}
		if cursor = e.Cursor; cursor == 0 {
			return
		}
	}
}
