// Package kvtest is the contract test suite for kv.Store implementations.
// Every implementation must pass Run; it is what keeps Memory and Redis
// behaviourally interchangeable.
package kvtest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"math"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imsrv/imsrv/platform/kv"
)

const (
	// ttl is the short expiry used by expiry tests. Assertions never depend on
	// how quickly a key expires, only that it eventually does (see waitTimeout)
	// and that it is still present while less than ttl has elapsed.
	ttl = 150 * time.Millisecond
	// waitTimeout bounds how long a test waits for an expiry to be observed.
	waitTimeout = 5 * time.Second
	// workers is the number of goroutines used by concurrency tests.
	workers = 50
)

// Run runs the contract suite against the stores returned by newStore, which
// is called once per subtest and must return a fresh, usable store; it should
// register the store's Close with t.Cleanup. Subtests run in parallel, so
// newStore must be safe for concurrent use. Every subtest uses its own random
// key prefix and deletes the keys it touched, so concurrent runs may share one
// server.
func Run(t *testing.T, newStore func(t *testing.T) kv.Store) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, s kv.Store, ks *keyspace)
	}{
		{"GetMissing", testGetMissing},
		{"SetGet", testSetGet},
		{"SetOverwritesValue", testSetOverwritesValue},
		{"SetOverwriteClearsTTL", testSetOverwriteClearsTTL},
		{"SetOverwriteAddsTTL", testSetOverwriteAddsTTL},
		{"SetReplacesHash", testSetReplacesHash},
		{"TTLExpiry", testTTLExpiry},
		{"NegativeTTL", testNegativeTTL},
		{"SetNX", testSetNX},
		{"SetNXAfterExpiry", testSetNXAfterExpiry},
		{"SetNXOnHash", testSetNXOnHash},
		{"SetNXContention", testSetNXContention},
		{"Del", testDel},
		{"CompareAndDelete", testCompareAndDelete},
		{"CompareAndDeleteOnHash", testCompareAndDeleteOnHash},
		{"CompareAndDeleteContention", testCompareAndDeleteContention},
		{"Incr", testIncr},
		{"IncrFixedWindow", testIncrFixedWindow},
		{"IncrExistingKeyKeepsNoTTL", testIncrExistingKeyKeepsNoTTL},
		{"IncrZeroTTL", testIncrZeroTTL},
		{"IncrErrors", testIncrErrors},
		{"IncrConcurrent", testIncrConcurrent},
		{"Hash", testHash},
		{"HashDelLastFieldRemovesKey", testHashDelLastFieldRemovesKey},
		{"HGetAllReturnsCopy", testHGetAllReturnsCopy},
		{"HIncrBy", testHIncrBy},
		{"HashWrongType", testHashWrongType},
		{"HashCreatedWithoutTTL", testHashCreatedWithoutTTL},
		{"HIncrByConcurrent", testHIncrByConcurrent},
		{"Ping", testPing},
		{"CanceledContext", testCanceledContext},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			tc.fn(t, s, newKeyspace(t, s))
		})
	}
}

// keyspace hands out keys under a random per-test prefix and deletes every
// key it handed out when the test ends.
type keyspace struct {
	prefix string
	mu     sync.Mutex
	used   []string
}

func newKeyspace(t *testing.T, s kv.Store) *keyspace {
	ks := &keyspace{prefix: "kvtest:" + rand.Text() + ":"}
	// Registered after newStore's cleanup, so it runs before the store closes.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		ks.mu.Lock()
		defer ks.mu.Unlock()
		if _, err := s.Del(ctx, ks.used...); err != nil {
			t.Errorf("cleanup: Del(%d keys): %v", len(ks.used), err)
		}
	})
	return ks
}

// key returns the prefixed key for name and records it for cleanup.
func (ks *keyspace) key(name string) string {
	k := ks.prefix + name
	ks.mu.Lock()
	ks.used = append(ks.used, k)
	ks.mu.Unlock()
	return k
}

func testGetMissing(t *testing.T, s kv.Store, ks *keyspace) {
	wantNotFound(t, s, ks.key("missing"))
}

func testSetGet(t *testing.T, s kv.Store, ks *keyspace) {
	values := map[string]string{
		"empty":   "",
		"ascii":   "hello",
		"unicode": "héllo, 世界 ✓",
		"binary":  "nul\x00byte\xff",
		"large":   strings.Repeat("x", 64<<10),
	}
	for name, v := range values {
		k := ks.key(name)
		mustSet(t, s, k, v, 0)
		if got := mustGet(t, s, k); got != v {
			t.Errorf("Get(%s) = %q (len %d), want %q (len %d)", name, abbrev(got), len(got), abbrev(v), len(v))
		}
	}
}

func testSetOverwritesValue(t *testing.T, s kv.Store, ks *keyspace) {
	k := ks.key("k")
	mustSet(t, s, k, "first", 0)
	mustSet(t, s, k, "second", 0)
	if got := mustGet(t, s, k); got != "second" {
		t.Errorf("Get after overwrite = %q, want %q", got, "second")
	}
}

func testSetOverwriteClearsTTL(t *testing.T, s kv.Store, ks *keyspace) {
	k := ks.key("k")
	mustSet(t, s, k, "short-lived", ttl)
	mustSet(t, s, k, "permanent", 0)
	time.Sleep(3 * ttl)
	if got := mustGet(t, s, k); got != "permanent" {
		t.Errorf("Get = %q, want %q (Set with ttl 0 must clear the previous TTL)", got, "permanent")
	}
}

func testSetOverwriteAddsTTL(t *testing.T, s kv.Store, ks *keyspace) {
	k := ks.key("k")
	mustSet(t, s, k, "permanent", 0)
	mustSet(t, s, k, "short-lived", ttl)
	waitNotFound(t, s, k)
}

func testSetReplacesHash(t *testing.T, s kv.Store, ks *keyspace) {
	k := ks.key("k")
	mustHSet(t, s, k, "f", "v")
	mustSet(t, s, k, "string", 0)
	if got := mustGet(t, s, k); got != "string" {
		t.Errorf("Get = %q, want %q", got, "string")
	}
}

func testTTLExpiry(t *testing.T, s kv.Store, ks *keyspace) {
	ctx := t.Context()
	k := ks.key("k")
	start := time.Now()
	mustSet(t, s, k, "v", ttl)
	got, err := s.Get(ctx, k)
	if time.Since(start) < ttl && (err != nil || got != "v") {
		t.Errorf("Get before expiry = %q, %v; want %q, nil", got, err, "v")
	}
	waitNotFound(t, s, k)
	if n, err := s.Del(ctx, k); err != nil || n != 0 {
		t.Errorf("Del(expired) = %d, %v; want 0, nil", n, err)
	}
}

func testNegativeTTL(t *testing.T, s kv.Store, ks *keyspace) {
	ctx := t.Context()
	k := ks.key("k")
	if err := s.Set(ctx, k, "v", -time.Second); err == nil {
		t.Error("Set with negative ttl: want error, got nil")
	}
	if _, err := s.SetNX(ctx, k, "v", -time.Second); err == nil {
		t.Error("SetNX with negative ttl: want error, got nil")
	}
	if _, err := s.Incr(ctx, k, -time.Second); err == nil {
		t.Error("Incr with negative ttl: want error, got nil")
	}
	wantNotFound(t, s, k)
}

func testSetNX(t *testing.T, s kv.Store, ks *keyspace) {
	ctx := t.Context()
	k := ks.key("k")
	if ok, err := s.SetNX(ctx, k, "first", 0); err != nil || !ok {
		t.Fatalf("SetNX(missing) = %v, %v; want true, nil", ok, err)
	}
	if ok, err := s.SetNX(ctx, k, "second", 0); err != nil || ok {
		t.Fatalf("SetNX(existing) = %v, %v; want false, nil", ok, err)
	}
	if got := mustGet(t, s, k); got != "first" {
		t.Errorf("Get = %q, want %q (a failed SetNX must not modify the key)", got, "first")
	}
}

func testSetNXAfterExpiry(t *testing.T, s kv.Store, ks *keyspace) {
	ctx := t.Context()
	k := ks.key("k")
	if ok, err := s.SetNX(ctx, k, "first", ttl); err != nil || !ok {
		t.Fatalf("SetNX(missing) = %v, %v; want true, nil", ok, err)
	}
	waitFor(t, "SetNX to succeed once the previous value expired", func() bool {
		ok, err := s.SetNX(ctx, k, "second", 0)
		if err != nil {
			t.Fatalf("SetNX: %v", err)
		}
		return ok
	})
	if got := mustGet(t, s, k); got != "second" {
		t.Errorf("Get = %q, want %q", got, "second")
	}
}

func testSetNXOnHash(t *testing.T, s kv.Store, ks *keyspace) {
	k := ks.key("k")
	mustHSet(t, s, k, "f", "v")
	if ok, err := s.SetNX(t.Context(), k, "v", 0); err != nil || ok {
		t.Errorf("SetNX(hash key) = %v, %v; want false, nil", ok, err)
	}
	if got := mustHGetAll(t, s, k); !maps.Equal(got, map[string]string{"f": "v"}) {
		t.Errorf("HGetAll = %v, want map[f:v]", got)
	}
}

func testSetNXContention(t *testing.T, s kv.Store, ks *keyspace) {
	ctx := t.Context()
	k := ks.key("lock")
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		winners []string
		start   = make(chan struct{})
	)
	for i := range workers {
		wg.Go(func() {
			<-start
			v := "worker-" + strconv.Itoa(i)
			ok, err := s.SetNX(ctx, k, v, time.Minute)
			if err != nil {
				t.Errorf("SetNX: %v", err)
				return
			}
			if ok {
				mu.Lock()
				winners = append(winners, v)
				mu.Unlock()
			}
		})
	}
	close(start)
	wg.Wait()
	if len(winners) != 1 {
		t.Fatalf("%d of %d concurrent SetNX calls succeeded (%v), want exactly 1", len(winners), workers, winners)
	}
	if got := mustGet(t, s, k); got != winners[0] {
		t.Errorf("Get = %q, want the winner's value %q", got, winners[0])
	}
}

func testDel(t *testing.T, s kv.Store, ks *keyspace) {
	ctx := t.Context()
	a, b, h, missing := ks.key("a"), ks.key("b"), ks.key("h"), ks.key("missing")
	if n, err := s.Del(ctx, missing); err != nil || n != 0 {
		t.Errorf("Del(missing) = %d, %v; want 0, nil", n, err)
	}
	if n, err := s.Del(ctx); err != nil || n != 0 {
		t.Errorf("Del() = %d, %v; want 0, nil", n, err)
	}
	mustSet(t, s, a, "1", 0)
	mustSet(t, s, b, "2", time.Minute)
	mustHSet(t, s, h, "f", "v")
	if n, err := s.Del(ctx, a, b, h, missing); err != nil || n != 3 {
		t.Errorf("Del(a, b, h, missing) = %d, %v; want 3, nil", n, err)
	}
	wantNotFound(t, s, a)
	wantNotFound(t, s, b)
	if got := mustHGetAll(t, s, h); len(got) != 0 {
		t.Errorf("HGetAll(deleted hash) = %v, want empty", got)
	}
	mustSet(t, s, a, "1", 0)
	if n, err := s.Del(ctx, a, a); err != nil || n != 1 {
		t.Errorf("Del(a, a) = %d, %v; want 1, nil", n, err)
	}
}

func testCompareAndDelete(t *testing.T, s kv.Store, ks *keyspace) {
	ctx := t.Context()
	k := ks.key("k")
	if ok, err := s.CompareAndDelete(ctx, k, "v"); err != nil || ok {
		t.Errorf("CompareAndDelete(missing) = %v, %v; want false, nil", ok, err)
	}
	mustSet(t, s, k, "v", time.Minute)
	if ok, err := s.CompareAndDelete(ctx, k, "other"); err != nil || ok {
		t.Errorf("CompareAndDelete(wrong value) = %v, %v; want false, nil", ok, err)
	}
	if got := mustGet(t, s, k); got != "v" {
		t.Errorf("Get after failed CompareAndDelete = %q, want %q", got, "v")
	}
	if ok, err := s.CompareAndDelete(ctx, k, "v"); err != nil || !ok {
		t.Errorf("CompareAndDelete(right value) = %v, %v; want true, nil", ok, err)
	}
	wantNotFound(t, s, k)
	if ok, err := s.CompareAndDelete(ctx, k, "v"); err != nil || ok {
		t.Errorf("CompareAndDelete(already deleted) = %v, %v; want false, nil", ok, err)
	}
}

func testCompareAndDeleteOnHash(t *testing.T, s kv.Store, ks *keyspace) {
	k := ks.key("k")
	mustHSet(t, s, k, "f", "v")
	if _, err := s.CompareAndDelete(t.Context(), k, "v"); !errors.Is(err, kv.ErrWrongType) {
		t.Errorf("CompareAndDelete(hash key) error = %v, want ErrWrongType", err)
	}
}

func testCompareAndDeleteContention(t *testing.T, s kv.Store, ks *keyspace) {
	ctx := t.Context()
	k := ks.key("lock")
	mustSet(t, s, k, "owner", time.Minute)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		deleted int
		start   = make(chan struct{})
	)
	for range workers {
		wg.Go(func() {
			<-start
			ok, err := s.CompareAndDelete(ctx, k, "owner")
			if err != nil {
				t.Errorf("CompareAndDelete: %v", err)
				return
			}
			if ok {
				mu.Lock()
				deleted++
				mu.Unlock()
			}
		})
	}
	close(start)
	wg.Wait()
	if deleted != 1 {
		t.Errorf("%d of %d concurrent CompareAndDelete calls succeeded, want exactly 1", deleted, workers)
	}
}

func testIncr(t *testing.T, s kv.Store, ks *keyspace) {
	k := ks.key("counter")
	for want := int64(1); want <= 3; want++ {
		if got := mustIncr(t, s, k, time.Minute); got != want {
			t.Fatalf("Incr = %d, want %d", got, want)
		}
	}
	if got := mustGet(t, s, k); got != "3" {
		t.Errorf("Get = %q, want %q", got, "3")
	}
	existing := ks.key("existing")
	mustSet(t, s, existing, "41", 0)
	if got := mustIncr(t, s, existing, 0); got != 42 {
		t.Errorf("Incr(%q) = %d, want 42", "41", got)
	}
	negative := ks.key("negative")
	mustSet(t, s, negative, "-1", 0)
	if got := mustIncr(t, s, negative, 0); got != 0 {
		t.Errorf("Incr(%q) = %d, want 0", "-1", got)
	}
}

// testIncrFixedWindow checks that the TTL is applied when Incr creates the
// counter and is neither replaced nor extended by later increments.
func testIncrFixedWindow(t *testing.T, s kv.Store, ks *keyspace) {
	k := ks.key("window")
	if got := mustIncr(t, s, k, ttl); got != 1 {
		t.Fatalf("first Incr = %d, want 1", got)
	}
	if got := mustIncr(t, s, k, time.Hour); got != 2 {
		t.Fatalf("second Incr = %d, want 2", got)
	}
	// Still expires on the first call's schedule, not after an hour.
	waitNotFound(t, s, k)
	if got := mustIncr(t, s, k, time.Hour); got != 1 {
		t.Errorf("Incr after the window expired = %d, want 1 (a new window)", got)
	}
}

func testIncrExistingKeyKeepsNoTTL(t *testing.T, s kv.Store, ks *keyspace) {
	k := ks.key("k")
	mustSet(t, s, k, "5", 0)
	if got := mustIncr(t, s, k, ttl); got != 6 {
		t.Fatalf("Incr = %d, want 6", got)
	}
	time.Sleep(3 * ttl)
	if got := mustGet(t, s, k); got != "6" {
		t.Errorf("Get = %q, want %q (Incr must not add a TTL to an existing key)", got, "6")
	}
}

func testIncrZeroTTL(t *testing.T, s kv.Store, ks *keyspace) {
	k := ks.key("k")
	if got := mustIncr(t, s, k, 0); got != 1 {
		t.Fatalf("Incr = %d, want 1", got)
	}
	time.Sleep(3 * ttl)
	if got := mustGet(t, s, k); got != "1" {
		t.Errorf("Get = %q, want %q (ttl 0 means no expiry)", got, "1")
	}
}

func testIncrErrors(t *testing.T, s kv.Store, ks *keyspace) {
	ctx := t.Context()
	for name, v := range map[string]string{
		"text":     "abc",
		"empty":    "",
		"float":    "1.5",
		"overflow": strconv.FormatInt(math.MaxInt64, 10),
	} {
		k := ks.key(name)
		mustSet(t, s, k, v, 0)
		if _, err := s.Incr(ctx, k, 0); !errors.Is(err, kv.ErrNotInteger) {
			t.Errorf("Incr(%q) error = %v, want ErrNotInteger", v, err)
		}
		if got := mustGet(t, s, k); got != v {
			t.Errorf("Get after failed Incr = %q, want %q", got, v)
		}
	}
	h := ks.key("hash")
	mustHSet(t, s, h, "f", "1")
	if _, err := s.Incr(ctx, h, 0); !errors.Is(err, kv.ErrWrongType) {
		t.Errorf("Incr(hash key) error = %v, want ErrWrongType", err)
	}
}

func testIncrConcurrent(t *testing.T, s kv.Store, ks *keyspace) {
	const perWorker = 20
	ctx := t.Context()
	k := ks.key("counter")
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		seen = make(map[int64]bool)
	)
	for range workers {
		wg.Go(func() {
			for range perWorker {
				n, err := s.Incr(ctx, k, time.Minute)
				if err != nil {
					t.Errorf("Incr: %v", err)
					return
				}
				mu.Lock()
				seen[n] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	const total = workers * perWorker
	if got := mustGet(t, s, k); got != strconv.Itoa(total) {
		t.Errorf("Get = %q, want %q", got, strconv.Itoa(total))
	}
	if len(seen) != total {
		t.Errorf("Incr returned %d distinct values, want %d", len(seen), total)
	}
}

func testHash(t *testing.T, s kv.Store, ks *keyspace) {
	ctx := t.Context()
	k := ks.key("h")
	got, err := s.HGetAll(ctx, k)
	if err != nil || got == nil || len(got) != 0 {
		t.Fatalf("HGetAll(missing) = %#v, %v; want empty non-nil map, nil", got, err)
	}
	mustHSet(t, s, k, "a", "1")
	mustHSet(t, s, k, "b", "2")
	mustHSet(t, s, k, "empty", "")
	wantHash(t, s, k, map[string]string{"a": "1", "b": "2", "empty": ""})
	mustHSet(t, s, k, "a", "3")
	wantHash(t, s, k, map[string]string{"a": "3", "b": "2", "empty": ""})
	if err := s.HDel(ctx, k, "a", "missing"); err != nil {
		t.Fatalf("HDel: %v", err)
	}
	if err := s.HDel(ctx, k); err != nil {
		t.Fatalf("HDel with no fields: %v", err)
	}
	wantHash(t, s, k, map[string]string{"b": "2", "empty": ""})
	if err := s.HDel(ctx, ks.key("missing"), "f"); err != nil {
		t.Errorf("HDel(missing key): %v", err)
	}
}

func testHashDelLastFieldRemovesKey(t *testing.T, s kv.Store, ks *keyspace) {
	ctx := t.Context()
	k := ks.key("h")
	mustHSet(t, s, k, "f", "v")
	if err := s.HDel(ctx, k, "f"); err != nil {
		t.Fatalf("HDel: %v", err)
	}
	if n, err := s.Del(ctx, k); err != nil || n != 0 {
		t.Errorf("Del after removing the last field = %d, %v; want 0, nil (key should be gone)", n, err)
	}
	// The key is gone, so it can now hold a string.
	mustSet(t, s, k, "string", 0)
}

func testHGetAllReturnsCopy(t *testing.T, s kv.Store, ks *keyspace) {
	k := ks.key("h")
	mustHSet(t, s, k, "f", "v")
	got := mustHGetAll(t, s, k)
	got["f"] = "changed"
	got["extra"] = "x"
	wantHash(t, s, k, map[string]string{"f": "v"})
}

func testHIncrBy(t *testing.T, s kv.Store, ks *keyspace) {
	ctx := t.Context()
	k := ks.key("h")
	if got := mustHIncrBy(t, s, k, "n", 5); got != 5 {
		t.Errorf("HIncrBy(missing key) = %d, want 5", got)
	}
	if got := mustHIncrBy(t, s, k, "n", -7); got != -2 {
		t.Errorf("HIncrBy(-7) = %d, want -2", got)
	}
	if got := mustHIncrBy(t, s, k, "zero", 0); got != 0 {
		t.Errorf("HIncrBy(missing field, 0) = %d, want 0", got)
	}
	mustHSet(t, s, k, "set", "10")
	if got := mustHIncrBy(t, s, k, "set", 1); got != 11 {
		t.Errorf("HIncrBy(HSet field) = %d, want 11", got)
	}
	mustHSet(t, s, k, "text", "abc")
	if _, err := s.HIncrBy(ctx, k, "text", 1); !errors.Is(err, kv.ErrNotInteger) {
		t.Errorf("HIncrBy(non-integer field) error = %v, want ErrNotInteger", err)
	}
	mustHSet(t, s, k, "max", strconv.FormatInt(math.MaxInt64, 10))
	if _, err := s.HIncrBy(ctx, k, "max", 1); !errors.Is(err, kv.ErrNotInteger) {
		t.Errorf("HIncrBy overflow error = %v, want ErrNotInteger", err)
	}
	mustHSet(t, s, k, "min", strconv.FormatInt(math.MinInt64, 10))
	if _, err := s.HIncrBy(ctx, k, "min", -1); !errors.Is(err, kv.ErrNotInteger) {
		t.Errorf("HIncrBy underflow error = %v, want ErrNotInteger", err)
	}
	wantHash(t, s, k, map[string]string{
		"n":    "-2",
		"zero": "0",
		"set":  "11",
		"text": "abc",
		"max":  strconv.FormatInt(math.MaxInt64, 10),
		"min":  strconv.FormatInt(math.MinInt64, 10),
	})
}

func testHashWrongType(t *testing.T, s kv.Store, ks *keyspace) {
	ctx := t.Context()
	str := ks.key("string")
	mustSet(t, s, str, "v", 0)
	if err := s.HSet(ctx, str, "f", "v"); !errors.Is(err, kv.ErrWrongType) {
		t.Errorf("HSet(string key) error = %v, want ErrWrongType", err)
	}
	if _, err := s.HGetAll(ctx, str); !errors.Is(err, kv.ErrWrongType) {
		t.Errorf("HGetAll(string key) error = %v, want ErrWrongType", err)
	}
	if err := s.HDel(ctx, str, "f"); !errors.Is(err, kv.ErrWrongType) {
		t.Errorf("HDel(string key) error = %v, want ErrWrongType", err)
	}
	if _, err := s.HIncrBy(ctx, str, "f", 1); !errors.Is(err, kv.ErrWrongType) {
		t.Errorf("HIncrBy(string key) error = %v, want ErrWrongType", err)
	}
	if got := mustGet(t, s, str); got != "v" {
		t.Errorf("Get after failed hash operations = %q, want %q", got, "v")
	}

	h := ks.key("hash")
	mustHSet(t, s, h, "f", "v")
	if _, err := s.Get(ctx, h); !errors.Is(err, kv.ErrWrongType) {
		t.Errorf("Get(hash key) error = %v, want ErrWrongType", err)
	}
}

// testHashCreatedWithoutTTL checks that HSet and HIncrBy on a key whose
// previous string value expired create a fresh hash with no TTL.
func testHashCreatedWithoutTTL(t *testing.T, s kv.Store, ks *keyspace) {
	hset, hincr := ks.key("hset"), ks.key("hincr")
	mustSet(t, s, hset, "expiring", ttl)
	mustSet(t, s, hincr, "expiring", ttl)
	waitNotFound(t, s, hset)
	waitNotFound(t, s, hincr)
	mustHSet(t, s, hset, "f", "v")
	mustHIncrBy(t, s, hincr, "n", 1)
	time.Sleep(3 * ttl)
	wantHash(t, s, hset, map[string]string{"f": "v"})
	wantHash(t, s, hincr, map[string]string{"n": "1"})
}

func testHIncrByConcurrent(t *testing.T, s kv.Store, ks *keyspace) {
	const perWorker = 20
	ctx := t.Context()
	k := ks.key("h")
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() {
			own := "w" + strconv.Itoa(i)
			for range perWorker {
				if _, err := s.HIncrBy(ctx, k, "shared", 1); err != nil {
					t.Errorf("HIncrBy(shared): %v", err)
					return
				}
				if _, err := s.HIncrBy(ctx, k, own, 2); err != nil {
					t.Errorf("HIncrBy(%s): %v", own, err)
					return
				}
			}
		})
	}
	wg.Wait()
	want := map[string]string{"shared": strconv.Itoa(workers * perWorker)}
	for i := range workers {
		want["w"+strconv.Itoa(i)] = strconv.Itoa(2 * perWorker)
	}
	wantHash(t, s, k, want)
}

func testPing(t *testing.T, s kv.Store, _ *keyspace) {
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("Ping: %v", err)
	}
}

func testCanceledContext(t *testing.T, s kv.Store, ks *keyspace) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	k := ks.key("k")
	if err := s.Set(ctx, k, "v", 0); !errors.Is(err, context.Canceled) {
		t.Errorf("Set with canceled context error = %v, want context.Canceled", err)
	}
	if _, err := s.Get(ctx, k); !errors.Is(err, context.Canceled) {
		t.Errorf("Get with canceled context error = %v, want context.Canceled", err)
	}
	if err := s.Ping(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Ping with canceled context error = %v, want context.Canceled", err)
	}
}

func mustGet(t *testing.T, s kv.Store, key string) string {
	t.Helper()
	v, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return v
}

func mustSet(t *testing.T, s kv.Store, key, value string, ttl time.Duration) {
	t.Helper()
	if err := s.Set(t.Context(), key, value, ttl); err != nil {
		t.Fatalf("Set(%q, ttl %v): %v", key, ttl, err)
	}
}

func mustIncr(t *testing.T, s kv.Store, key string, ttl time.Duration) int64 {
	t.Helper()
	n, err := s.Incr(t.Context(), key, ttl)
	if err != nil {
		t.Fatalf("Incr(%q, ttl %v): %v", key, ttl, err)
	}
	return n
}

func mustHSet(t *testing.T, s kv.Store, key, field, value string) {
	t.Helper()
	if err := s.HSet(t.Context(), key, field, value); err != nil {
		t.Fatalf("HSet(%q, %q): %v", key, field, err)
	}
}

func mustHGetAll(t *testing.T, s kv.Store, key string) map[string]string {
	t.Helper()
	m, err := s.HGetAll(t.Context(), key)
	if err != nil {
		t.Fatalf("HGetAll(%q): %v", key, err)
	}
	return m
}

func mustHIncrBy(t *testing.T, s kv.Store, key, field string, delta int64) int64 {
	t.Helper()
	n, err := s.HIncrBy(t.Context(), key, field, delta)
	if err != nil {
		t.Fatalf("HIncrBy(%q, %q, %d): %v", key, field, delta, err)
	}
	return n
}

func wantHash(t *testing.T, s kv.Store, key string, want map[string]string) {
	t.Helper()
	if got := mustHGetAll(t, s, key); !maps.Equal(got, want) {
		t.Errorf("HGetAll(%q) = %v, want %v", key, got, want)
	}
}

func wantNotFound(t *testing.T, s kv.Store, key string) {
	t.Helper()
	if v, err := s.Get(t.Context(), key); !errors.Is(err, kv.ErrNotFound) {
		t.Errorf("Get(%q) = %q, %v; want ErrNotFound", key, abbrev(v), err)
	}
}

// waitNotFound waits until key is reported missing, failing the test if that
// does not happen within waitTimeout.
func waitNotFound(t *testing.T, s kv.Store, key string) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%q to expire", key), func() bool {
		_, err := s.Get(t.Context(), key)
		if err != nil && !errors.Is(err, kv.ErrNotFound) {
			t.Fatalf("Get(%q): %v", key, err)
		}
		return err != nil
	})
}

// waitFor polls cond until it holds, failing the test after waitTimeout.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", waitTimeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// abbrev shortens long values in failure messages.
func abbrev(s string) string {
	const limit = 64
	if len(s) <= limit {
		return s
	}
	return s[:limit] + "…"
}
