package status_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/imsrv/imsrv/modules/status"
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

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// eachKV runs f as a parallel subtest per KV backend with a fresh module.
func eachKV(t *testing.T, cfg status.Config, f func(t *testing.T, m *status.Module, store kv.Store)) {
	t.Helper()
	for _, b := range kvBackends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			store := b.open(t)
			f(t, status.New(cfg, store, discard()), store)
		})
	}
}

// waitFor polls cond until it holds, failing after a generous bound. Expiry
// tests assert only that something eventually happens, never how fast.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func register(t *testing.T, m *status.Module, name, addr string) {
	t.Helper()
	if err := m.RegisterNode(t.Context(), status.Node{Name: name, Addr: addr}); err != nil {
		t.Fatalf("RegisterNode(%s, %s): %v", name, addr, err)
	}
}

func nodeNames(t *testing.T, m *status.Module) []string {
	t.Helper()
	nodes, err := m.Nodes(t.Context())
	if err != nil {
		t.Fatalf("Nodes: %v", err)
	}
	var names []string
	for _, n := range nodes {
		names = append(names, n.Name)
	}
	return names
}

func allocate(t *testing.T, m *status.Module, uid int32) status.Allocation {
	t.Helper()
	a, err := m.Allocate(t.Context(), uid)
	if err != nil {
		t.Fatalf("Allocate(%d): %v", uid, err)
	}
	return a
}

func TestRegisterNodeValidation(t *testing.T) {
	eachKV(t, status.Config{}, func(t *testing.T, m *status.Module, store kv.Store) {
		for _, n := range []status.Node{
			{Name: "", Addr: "127.0.0.1:8090"},
			{Name: "n1", Addr: ""},
			{Name: "n1", Addr: "127.0.0.1"},
			{Name: "n1", Addr: "chat.example.com"},
			{Name: "n1", Addr: "127.0.0.1:"},
			{Name: "n1", Addr: ":8090"},
			{Name: "n1", Addr: "127.0.0.1:http"},
			{Name: "n1", Addr: "127.0.0.1:0"},
			{Name: "n1", Addr: "127.0.0.1:65536"},
			{Name: "n1", Addr: "::1:8090"},
		} {
			if err := m.RegisterNode(t.Context(), n); !errors.Is(err, status.ErrInvalidNode) {
				t.Errorf("RegisterNode(%+v) = %v, want ErrInvalidNode", n, err)
			}
		}
		if names := nodeNames(t, m); len(names) != 0 {
			t.Fatalf("invalid registrations were stored: %v", names)
		}
		if _, err := m.Allocate(t.Context(), 1001); !errors.Is(err, status.ErrNoNode) {
			t.Fatalf("Allocate with no nodes = %v, want ErrNoNode", err)
		}
		// Valid forms, IPv6 and host names included.
		register(t, m, "v4", "127.0.0.1:8090")
		register(t, m, "v6", "[::1]:8091")
		register(t, m, "dns", "chat.example.com:8092")
		if names := nodeNames(t, m); fmt.Sprint(names) != "[dns v4 v6]" {
			t.Fatalf("Nodes = %v, want [dns v4 v6] (sorted by name)", names)
		}
	})
}

func TestAllocateNoNode(t *testing.T) {
	eachKV(t, status.Config{}, func(t *testing.T, m *status.Module, store kv.Store) {
		if _, err := m.Allocate(t.Context(), 1001); !errors.Is(err, status.ErrNoNode) {
			t.Fatalf("Allocate = %v, want ErrNoNode", err)
		}
		// No token is issued when nothing could be allocated.
		if _, err := store.Get(t.Context(), status.TokenKey(1001)); !errors.Is(err, kv.ErrNotFound) {
			t.Fatalf("token stored without an allocation: %v", err)
		}
		if err := m.CheckToken(t.Context(), 1001, ""); !errors.Is(err, status.ErrUIDInvalid) {
			t.Fatalf("CheckToken = %v, want ErrUIDInvalid", err)
		}
	})
}

func TestAllocateLeastLoaded(t *testing.T) {
	eachKV(t, status.Config{}, func(t *testing.T, m *status.Module, store kv.Store) {
		ctx := t.Context()
		register(t, m, "n1", "10.0.0.1:8090")
		register(t, m, "n2", "10.0.0.2:8091")
		register(t, m, "n3", "[fd00::3]:8092")
		for node, load := range map[string]int64{"n1": 5, "n2": 1, "n3": 3} {
			if _, err := store.HIncrBy(ctx, "logincount", node, load); err != nil {
				t.Fatal(err)
			}
		}
		nodes, err := m.Nodes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		loads := map[string]int64{}
		for _, n := range nodes {
			loads[n.Name] = n.Load
		}
		if fmt.Sprint(loads) != "map[n1:5 n2:1 n3:3]" {
			t.Fatalf("Nodes loads = %v", loads)
		}
		for uid := int32(1001); uid < 1021; uid++ {
			a := allocate(t, m, uid)
			if a.Node != "n2" || a.Host != "10.0.0.2" || a.Port != "8091" {
				t.Fatalf("Allocate(%d) = %+v, want n2 at 10.0.0.2:8091", uid, a)
			}
		}
		// n2 fills up: now n3 is the least loaded; IPv6 hosts come without brackets.
		if _, err := store.HIncrBy(ctx, "logincount", "n2", 10); err != nil {
			t.Fatal(err)
		}
		if a := allocate(t, m, 2000); a.Node != "n3" || a.Host != "fd00::3" || a.Port != "8092" {
			t.Fatalf("Allocate = %+v, want n3 at [fd00::3]:8092", a)
		}
		// Load counted for a node that is not registered changes nothing.
		if _, err := store.HIncrBy(ctx, "logincount", "ghost", -100); err != nil {
			t.Fatal(err)
		}
		if a := allocate(t, m, 2001); a.Node != "n3" {
			t.Fatalf("Allocate = %+v, want n3", a)
		}
	})
}

func TestAllocateSpreadsTies(t *testing.T) {
	eachKV(t, status.Config{}, func(t *testing.T, m *status.Module, store kv.Store) {
		register(t, m, "a", "127.0.0.1:9001")
		register(t, m, "b", "127.0.0.1:9002")
		register(t, m, "c", "127.0.0.1:9003")
		if _, err := store.HIncrBy(t.Context(), "logincount", "c", 1); err != nil {
			t.Fatal(err)
		}
		seen := map[string]int{}
		for i := range 200 {
			seen[allocate(t, m, int32(1001+i)).Node]++
		}
		// With a fair coin the chance that one of a, b is never picked in 200
		// tries is 2^-199.
		if seen["a"] == 0 || seen["b"] == 0 || seen["c"] != 0 {
			t.Fatalf("allocations per node %v: want both least-loaded nodes used and c never", seen)
		}
	})
}

func TestNodeExpiry(t *testing.T) {
	const ttl = 500 * time.Millisecond
	eachKV(t, status.Config{NodeTTL: ttl}, func(t *testing.T, m *status.Module, store kv.Store) {
		ctx := t.Context()
		register(t, m, "stale", "127.0.0.1:9001")
		register(t, m, "fresh", "127.0.0.1:9002")
		if names := nodeNames(t, m); fmt.Sprint(names) != "[fresh stale]" {
			t.Fatalf("Nodes right after registering = %v", names)
		}
		// Keep "fresh" refreshed; "stale" must drop out of the registry.
		waitFor(t, "the unrefreshed node to expire", func() bool {
			register(t, m, "fresh", "127.0.0.1:9002")
			names := nodeNames(t, m)
			return fmt.Sprint(names) == "[fresh]"
		})
		// It was pruned from the stored registry, not just filtered.
		raw, err := store.HGetAll(ctx, "chatnodes")
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := raw["stale"]; ok {
			t.Fatalf("expired node still stored: %v", raw)
		}
		for i := range 20 {
			register(t, m, "fresh", "127.0.0.1:9002")
			if a := allocate(t, m, int32(1001+i)); a.Node != "fresh" {
				t.Fatalf("allocated the expired node: %+v", a)
			}
		}
		// Once every node has expired, nothing can be allocated.
		waitFor(t, "every node to expire", func() bool {
			_, err := m.Allocate(ctx, 1001)
			return errors.Is(err, status.ErrNoNode)
		})
		// A node that comes back is allocatable again.
		register(t, m, "stale", "127.0.0.1:9001")
		if a := allocate(t, m, 1001); a.Node != "stale" {
			t.Fatalf("Allocate = %+v, want the re-registered node", a)
		}
	})
}

func TestCorruptRegistryEntryIsPruned(t *testing.T) {
	eachKV(t, status.Config{}, func(t *testing.T, m *status.Module, store kv.Store) {
		if err := store.HSet(t.Context(), "chatnodes", "junk", "{not json"); err != nil {
			t.Fatal(err)
		}
		register(t, m, "good", "127.0.0.1:9001")
		if names := nodeNames(t, m); fmt.Sprint(names) != "[good]" {
			t.Fatalf("Nodes = %v, want [good]", names)
		}
		raw, err := store.HGetAll(t.Context(), "chatnodes")
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := raw["junk"]; ok {
			t.Fatalf("corrupt entry not pruned: %v", raw)
		}
	})
}

func TestDeregisterNode(t *testing.T) {
	eachKV(t, status.Config{}, func(t *testing.T, m *status.Module, store kv.Store) {
		register(t, m, "n1", "127.0.0.1:9001")
		register(t, m, "n2", "127.0.0.1:9002")
		if err := m.DeregisterNode(t.Context(), "n1"); err != nil {
			t.Fatal(err)
		}
		if names := nodeNames(t, m); fmt.Sprint(names) != "[n2]" {
			t.Fatalf("Nodes after deregistering n1 = %v", names)
		}
		for i := range 20 {
			if a := allocate(t, m, int32(1001+i)); a.Node != "n2" {
				t.Fatalf("allocated a deregistered node: %+v", a)
			}
		}
		// Unknown names are not an error; the last node leaving empties the registry.
		if err := m.DeregisterNode(t.Context(), "nope"); err != nil {
			t.Fatalf("DeregisterNode(unknown) = %v", err)
		}
		if err := m.DeregisterNode(t.Context(), "n2"); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Allocate(t.Context(), 1001); !errors.Is(err, status.ErrNoNode) {
			t.Fatalf("Allocate = %v, want ErrNoNode", err)
		}
		// Re-registering updates the address in place.
		register(t, m, "n1", "127.0.0.1:9001")
		register(t, m, "n1", "127.0.0.1:9011")
		if a := allocate(t, m, 1001); a.Port != "9011" {
			t.Fatalf("Allocate = %+v, want the updated address", a)
		}
	})
}

func TestAnnouncer(t *testing.T) {
	const ttl = 500 * time.Millisecond
	eachKV(t, status.Config{NodeTTL: ttl}, func(t *testing.T, m *status.Module, store kv.Store) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		ann := &status.Announcer{
			Service:  m,
			Node:     status.Node{Name: "ann", Addr: "127.0.0.1:9100"},
			Interval: ttl / 10,
			Logger:   discard(),
		}
		done := make(chan error, 1)
		go func() { done <- ann.Run(ctx) }()

		waitFor(t, "the announcer to register", func() bool { return fmt.Sprint(nodeNames(t, m)) == "[ann]" })
		// Refreshed: still there well past several TTLs.
		until := time.Now().Add(3 * ttl)
		for time.Now().Before(until) {
			if names := nodeNames(t, m); fmt.Sprint(names) != "[ann]" {
				t.Fatalf("announced node dropped out: %v", names)
			}
			time.Sleep(ttl / 5)
		}

		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Run = %v, want nil", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return after cancel")
		}
		// Deregistered at once, not left to expire.
		if names := nodeNames(t, m); len(names) != 0 {
			t.Fatalf("node still registered after Run returned: %v", names)
		}
	})
}

func TestAnnouncerInvalidNodeKeepsRunning(t *testing.T) {
	eachKV(t, status.Config{}, func(t *testing.T, m *status.Module, store kv.Store) {
		ctx, cancel := context.WithCancel(t.Context())
		ann := &status.Announcer{Service: m, Node: status.Node{Name: "bad", Addr: "nowhere"}, Interval: 10 * time.Millisecond, Logger: discard()}
		done := make(chan error, 1)
		go func() { done <- ann.Run(ctx) }()
		time.Sleep(50 * time.Millisecond)
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Run = %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return after cancel")
		}
		if names := nodeNames(t, m); len(names) != 0 {
			t.Fatalf("invalid node registered: %v", names)
		}
	})
}

var tokenRE = regexp.MustCompile(`^[0-9a-f]{32}$`)

func TestTokens(t *testing.T) {
	eachKV(t, status.Config{}, func(t *testing.T, m *status.Module, store kv.Store) {
		ctx := t.Context()
		register(t, m, "n1", "127.0.0.1:9001")

		if status.TokenKey(1001) != "utoken_1001" {
			t.Fatalf("TokenKey(1001) = %q, want the llfc key utoken_1001", status.TokenKey(1001))
		}
		first := allocate(t, m, 1001)
		if !tokenRE.MatchString(first.Token) {
			t.Fatalf("token %q is not 32 lower-case hex digits", first.Token)
		}
		if stored, err := store.Get(ctx, "utoken_1001"); err != nil || stored != first.Token {
			t.Fatalf("utoken_1001 = %q, %v; want the issued token", stored, err)
		}
		if err := m.CheckToken(ctx, 1001, first.Token); err != nil {
			t.Fatalf("CheckToken(issued) = %v", err)
		}

		second := allocate(t, m, 1001)
		if second.Token == first.Token || !tokenRE.MatchString(second.Token) {
			t.Fatalf("second token %q does not replace %q", second.Token, first.Token)
		}
		if err := m.CheckToken(ctx, 1001, first.Token); !errors.Is(err, status.ErrTokenInvalid) {
			t.Fatalf("CheckToken(replaced) = %v, want ErrTokenInvalid", err)
		}
		if err := m.CheckToken(ctx, 1001, second.Token); err != nil {
			t.Fatalf("CheckToken(current) = %v", err)
		}
		for _, bad := range []string{"", "x", second.Token[:31], second.Token + "0", "0" + second.Token[1:]} {
			if bad == second.Token {
				continue
			}
			if err := m.CheckToken(ctx, 1001, bad); !errors.Is(err, status.ErrTokenInvalid) {
				t.Errorf("CheckToken(%q) = %v, want ErrTokenInvalid", bad, err)
			}
		}
		// Tokens are per uid.
		if err := m.CheckToken(ctx, 1002, second.Token); !errors.Is(err, status.ErrUIDInvalid) {
			t.Fatalf("CheckToken(other uid) = %v, want ErrUIDInvalid", err)
		}
		other := allocate(t, m, 1002)
		if err := m.CheckToken(ctx, 1001, other.Token); !errors.Is(err, status.ErrTokenInvalid) {
			t.Fatalf("another uid's token accepted: %v", err)
		}
		for _, uid := range []int32{0, -1, 999999} {
			if err := m.CheckToken(ctx, uid, second.Token); !errors.Is(err, status.ErrUIDInvalid) {
				t.Errorf("CheckToken(uid %d) = %v, want ErrUIDInvalid", uid, err)
			}
		}
	})
}

func TestTokenExpiry(t *testing.T) {
	const ttl = 300 * time.Millisecond
	eachKV(t, status.Config{TokenTTL: ttl}, func(t *testing.T, m *status.Module, store kv.Store) {
		register(t, m, "n1", "127.0.0.1:9001")
		a := allocate(t, m, 1001)
		waitFor(t, "the token to expire", func() bool {
			err := m.CheckToken(t.Context(), 1001, a.Token)
			if err != nil && !errors.Is(err, status.ErrUIDInvalid) {
				t.Fatalf("CheckToken = %v, want nil or ErrUIDInvalid", err)
			}
			return err != nil
		})
		// A new login issues a new, valid token.
		b := allocate(t, m, 1001)
		if err := m.CheckToken(t.Context(), 1001, b.Token); err != nil {
			t.Fatalf("CheckToken(new) = %v", err)
		}
	})
}

// TestConcurrentAllocations: logins for distinct uids from many goroutines
// each get their own valid token.
func TestConcurrentAllocations(t *testing.T) {
	eachKV(t, status.Config{}, func(t *testing.T, m *status.Module, store kv.Store) {
		register(t, m, "n1", "127.0.0.1:9001")
		register(t, m, "n2", "127.0.0.1:9002")
		const n = 50
		tokens := make([]string, n)
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := range n {
			wg.Go(func() {
				a, err := m.Allocate(t.Context(), int32(5000+i))
				if err != nil {
					errs <- err
					return
				}
				tokens[i] = a.Token
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for i, tok := range tokens {
			if seen[tok] {
				t.Fatalf("token issued twice: %s", tok)
			}
			seen[tok] = true
			if err := m.CheckToken(t.Context(), int32(5000+i), tok); err != nil {
				t.Fatalf("CheckToken(uid %s) = %v", strconv.Itoa(5000+i), err)
			}
		}
	})
}
