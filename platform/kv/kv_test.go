package kv_test

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/imsrv/imsrv/platform/kv"
	"github.com/imsrv/imsrv/platform/kv/kvtest"
)

// redisURLEnv names the environment variable pointing the Redis tests at a
// server, e.g. redis://127.0.0.1:6379/0. The suite only touches keys under
// random "kvtest:" prefixes and deletes them afterwards.
const redisURLEnv = "IMSRV_TEST_REDIS_URL"

func TestMemory(t *testing.T) {
	kvtest.Run(t, func(t *testing.T) kv.Store {
		s := kv.NewMemory()
		t.Cleanup(func() { closeStore(t, s) })
		return s
	})
}

func TestRedis(t *testing.T) {
	url := redisURL(t)
	kvtest.Run(t, func(t *testing.T) kv.Store {
		s, err := kv.NewRedis(url)
		if err != nil {
			t.Fatalf("NewRedis: %v", err)
		}
		t.Cleanup(func() { closeStore(t, s) })
		return s
	})
}

func TestWithPrefix(t *testing.T) {
	t.Run("contract", func(t *testing.T) {
		kvtest.Run(t, func(t *testing.T) kv.Store {
			s := kv.WithPrefix(kv.NewMemory(), "p:")
			t.Cleanup(func() { closeStore(t, s) })
			return s
		})
	})

	t.Run("prefixes keys", func(t *testing.T) {
		ctx := t.Context()
		base := kv.NewMemory()
		s := kv.WithPrefix(base, "tenant:")
		if err := s.Set(ctx, "k", "v", 0); err != nil {
			t.Fatalf("Set: %v", err)
		}
		if got, err := base.Get(ctx, "tenant:k"); err != nil || got != "v" {
			t.Errorf("base Get(%q) = %q, %v; want %q, nil", "tenant:k", got, err, "v")
		}
		if _, err := base.Get(ctx, "k"); !errors.Is(err, kv.ErrNotFound) {
			t.Errorf("base Get(%q) error = %v, want ErrNotFound", "k", err)
		}
		if n, err := s.Del(ctx, "k", "missing"); err != nil || n != 1 {
			t.Errorf("Del = %d, %v; want 1, nil", n, err)
		}
	})

	t.Run("empty prefix returns store", func(t *testing.T) {
		base := kv.NewMemory()
		if s := kv.WithPrefix(base, ""); s != kv.Store(base) {
			t.Errorf("WithPrefix(s, \"\") = %T, want s itself", s)
		}
	})
}

func TestNewRedisErrors(t *testing.T) {
	tests := []struct {
		name, url string
	}{
		{"bad database", "redis://127.0.0.1:6379/notanumber"},
		{"unsupported scheme", "memcached://127.0.0.1:11211"},
		{"unreachable", "redis://:secret@127.0.0.1:1/0"},
		{"unparsable with password", "redis://user:secret@127.0.0.1:badport/0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := kv.NewRedis(tt.url)
			if err == nil {
				closeStore(t, s)
				t.Fatalf("NewRedis(%q) succeeded, want error", tt.url)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("NewRedis error leaks the password: %v", err)
			}
		})
	}
}

func TestOpen(t *testing.T) {
	t.Run("empty selects memory", func(t *testing.T) {
		s, err := kv.Open("")
		if err != nil {
			t.Fatalf("Open(\"\"): %v", err)
		}
		defer closeStore(t, s)
		if _, ok := s.(*kv.Memory); !ok {
			t.Errorf("Open(\"\") = %T, want *kv.Memory", s)
		}
	})

	t.Run("bad scheme", func(t *testing.T) {
		tests := []struct {
			url, wantInErr string
		}{
			{"memcached://127.0.0.1:11211", `"memcached"`},
			{"http://user:secret@example.com/", `"http"`},
			{"unix:///var/run/redis.sock", `"unix"`},
			{"/var/run/redis.sock", "no scheme"},
			{"redis://user:secret@127.0.0.1:badport/0", "invalid URL"},
		}
		for _, tt := range tests {
			s, err := kv.Open(tt.url)
			if err == nil {
				closeStore(t, s)
				t.Errorf("Open(%q) succeeded, want error", tt.url)
				continue
			}
			if !strings.Contains(err.Error(), tt.wantInErr) {
				t.Errorf("Open(%q) error = %q, want it to contain %s", tt.url, err, tt.wantInErr)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("Open(%q) error leaks the password: %v", tt.url, err)
			}
		}
	})

	t.Run("redis", func(t *testing.T) {
		url := redisURL(t)
		s, err := kv.Open(url)
		if err != nil {
			t.Fatalf("Open(redis URL): %v", err)
		}
		defer closeStore(t, s)
		if _, ok := s.(*kv.Redis); !ok {
			t.Errorf("Open(redis URL) = %T, want *kv.Redis", s)
		}
		if err := s.Ping(t.Context()); err != nil {
			t.Errorf("Ping: %v", err)
		}
	})
}

// redisURL returns the test server URL or skips the test when none is set.
func redisURL(t *testing.T) string {
	t.Helper()
	url := os.Getenv(redisURLEnv)
	if url == "" {
		t.Skip(redisURLEnv + " not set; skipping tests against a real Redis server")
	}
	return url
}

func closeStore(t *testing.T, s kv.Store) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}
