package status_test

import (
	"context"
	"crypto/rand"
	"os"
	"testing"

	"github.com/redis/rueidis"

	"github.com/imsrv/imsrv/modules/status/statustest"
	"github.com/imsrv/imsrv/platform/kv"
)

// The suite runs on every kv.Store implementation.
var kvBackends = []struct {
	name string
	open func(t *testing.T) kv.Store
}{
	{"memory", func(t *testing.T) kv.Store {
		s := kv.NewMemory()
		t.Cleanup(func() { _ = s.Close() })
		return s
	}},
	{"redis", openRedis},
}

// openRedis returns a Redis store under a fresh random key prefix whose keys
// are deleted when the test ends. It skips without IMSRV_TEST_REDIS_URL.
func openRedis(t *testing.T) kv.Store {
	t.Helper()
	url := os.Getenv("IMSRV_TEST_REDIS_URL")
	if url == "" {
		t.Skip("IMSRV_TEST_REDIS_URL not set; skipping Redis test")
	}
	s, err := kv.NewRedis(url)
	if err != nil {
		t.Fatalf("redis: %v", err)
	}
	prefix := "test-status-" + rand.Text() + ":"
	t.Cleanup(func() {
		_ = s.Close()
		dropRedisPrefix(t, url, prefix)
	})
	return kv.WithPrefix(s, prefix)
}

// dropRedisPrefix deletes every key under prefix.
func dropRedisPrefix(t *testing.T, url, prefix string) {
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

// TestService runs the status.Service contract suite on every KV backend,
// against the module in process and through its gRPC client and server.
func TestService(t *testing.T) {
	for _, b := range kvBackends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			t.Run("local", func(t *testing.T) {
				t.Parallel()
				statustest.Run(t, b.open, statustest.Local)
			})
			t.Run("grpc", func(t *testing.T) {
				t.Parallel()
				statustest.Run(t, b.open, statustest.OverGRPC)
			})
		})
	}
	// Once over a real TCP connection, dialed as in production.
	t.Run("memory/tcp", func(t *testing.T) {
		t.Parallel()
		statustest.Run(t, kvBackends[0].open, statustest.OverTCP)
	})
}
