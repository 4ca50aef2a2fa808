// Package statustest is the contract test suite for status.Service. Run
// builds the real status module on a given KV store and checks it through a
// wrap: Local tests the module in process, OverGRPC and OverTCP through a
// statusrpc client and server. Passing the same suite both ways is what lets
// callers ignore whether the module is local or remote.
package statustest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/imsrv/imsrv/modules/status"
	"github.com/imsrv/imsrv/modules/status/statusrpc"
	"github.com/imsrv/imsrv/platform/grpcx/grpcxtest"
	"github.com/imsrv/imsrv/platform/kv"
)

// Wrap puts the module under test behind the transport under test and
// returns what the suite should call. It may register cleanups with t.
type Wrap func(t *testing.T, svc status.Service) status.Service

// Local tests the module in process: it returns svc itself.
func Local(_ *testing.T, svc status.Service) status.Service { return svc }

// OverGRPC serves svc with statusrpc on an in-memory connection and returns a
// statusrpc.Client for it.
func OverGRPC(t *testing.T, svc status.Service) status.Service {
	cc, _ := grpcxtest.Pipe(t, func(s grpc.ServiceRegistrar) { statusrpc.Register(s, svc) })
	return statusrpc.NewClient(cc)
}

// OverTCP is OverGRPC over a loopback TCP connection made by grpcx.Dial.
func OverTCP(t *testing.T, svc status.Service) status.Service {
	cc, _, _ := grpcxtest.Loopback(t, func(s grpc.ServiceRegistrar) { statusrpc.Register(s, svc) })
	return statusrpc.NewClient(cc)
}

// Run runs the suite. newStore returns a fresh, empty store for one subtest
// and registers its Close with t.Cleanup; subtests run in parallel, so it must
// be safe for concurrent use. wrap is applied to every module the suite
// builds. The tests also read and write the store directly (node load, the
// stored registry and tokens), as chat nodes and operators do.
func Run(t *testing.T, newStore func(t *testing.T) kv.Store, wrap Wrap) {
	t.Helper()
	s := suite{newStore: newStore, wrap: wrap}
	tests := []struct {
		name string
		fn   func(t *testing.T, s suite)
	}{
		{"RegisterNodeValidation", testRegisterNodeValidation},
		{"NodesReportRegistrations", testNodesReportRegistrations},
		{"AllocateNoNode", testAllocateNoNode},
		{"AllocateLeastLoaded", testAllocateLeastLoaded},
		{"AllocateSpreadsTies", testAllocateSpreadsTies},
		{"NodeExpiry", testNodeExpiry},
		{"CorruptRegistryEntryIsPruned", testCorruptRegistryEntryIsPruned},
		{"DeregisterNode", testDeregisterNode},
		{"Announcer", testAnnouncer},
		{"AnnouncerInvalidNodeKeepsRunning", testAnnouncerInvalidNodeKeepsRunning},
		{"Tokens", testTokens},
		{"TokenExpiry", testTokenExpiry},
		{"ConcurrentAllocations", testConcurrentAllocations},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, s)
		})
	}
}

type suite struct {
	newStore func(t *testing.T) kv.Store
	wrap     Wrap
}

// service returns the module with cfg on a fresh store, as wrapped, and the
// store.
func (s suite) service(t *testing.T, cfg status.Config) (status.Service, kv.Store) {
	t.Helper()
	store := s.newStore(t)
	return s.wrap(t, status.New(cfg, store, discard())), store
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

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

func register(t *testing.T, svc status.Service, name, addr string) {
	t.Helper()
	if err := svc.RegisterNode(t.Context(), status.Node{Name: name, Addr: addr}); err != nil {
		t.Fatalf("RegisterNode(%s, %s): %v", name, addr, err)
	}
}

func nodeNames(t *testing.T, svc status.Service) []string {
	t.Helper()
	nodes, err := svc.Nodes(t.Context())
	if err != nil {
		t.Fatalf("Nodes: %v", err)
	}
	var names []string
	for _, n := range nodes {
		names = append(names, n.Name)
	}
	return names
}

func allocate(t *testing.T, svc status.Service, uid int32) status.Allocation {
	t.Helper()
	a, err := svc.Allocate(t.Context(), uid)
	if err != nil {
		t.Fatalf("Allocate(%d): %v", uid, err)
	}
	return a
}

func testRegisterNodeValidation(t *testing.T, s suite) {
	svc, _ := s.service(t, status.Config{})
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
		if err := svc.RegisterNode(t.Context(), n); !errors.Is(err, status.ErrInvalidNode) {
			t.Errorf("RegisterNode(%+v) = %v, want ErrInvalidNode", n, err)
		}
	}
	if names := nodeNames(t, svc); len(names) != 0 {
		t.Fatalf("invalid registrations were stored: %v", names)
	}
	if _, err := svc.Allocate(t.Context(), 1001); !errors.Is(err, status.ErrNoNode) {
		t.Fatalf("Allocate with no nodes = %v, want ErrNoNode", err)
	}
	// Valid forms, IPv6 and host names included.
	register(t, svc, "v4", "127.0.0.1:8090")
	register(t, svc, "v6", "[::1]:8091")
	register(t, svc, "dns", "chat.example.com:8092")
	if names := nodeNames(t, svc); fmt.Sprint(names) != "[dns v4 v6]" {
		t.Fatalf("Nodes = %v, want [dns v4 v6] (sorted by name)", names)
	}
}

// testNodesReportRegistrations: Nodes returns each node exactly as it
// registered, with its load.
func testNodesReportRegistrations(t *testing.T, s suite) {
	svc, store := s.service(t, status.Config{})
	if nodes, err := svc.Nodes(t.Context()); err != nil || len(nodes) != 0 {
		t.Fatalf("Nodes of an empty registry = %v, %v", nodes, err)
	}
	want := []status.NodeInfo{
		{Node: status.Node{Name: "a", Addr: "10.0.0.1:8090", RPCAddr: "10.0.0.1:50055"}, Load: 7},
		{Node: status.Node{Name: "b", Addr: "[fd00::2]:8090"}, Load: 0},
	}
	for _, n := range want {
		if err := svc.RegisterNode(t.Context(), n.Node); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := store.HIncrBy(t.Context(), "logincount", "a", 7); err != nil {
		t.Fatal(err)
	}
	nodes, err := svc.Nodes(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(nodes) != fmt.Sprint(want) {
		t.Fatalf("Nodes = %+v, want %+v", nodes, want)
	}
}

func testAllocateNoNode(t *testing.T, s suite) {
	svc, store := s.service(t, status.Config{})
	if _, err := svc.Allocate(t.Context(), 1001); !errors.Is(err, status.ErrNoNode) {
		t.Fatalf("Allocate = %v, want ErrNoNode", err)
	}
	// No token is issued when nothing could be allocated.
	if _, err := store.Get(t.Context(), status.TokenKey(1001)); !errors.Is(err, kv.ErrNotFound) {
		t.Fatalf("token stored without an allocation: %v", err)
	}
	if err := svc.CheckToken(t.Context(), 1001, ""); !errors.Is(err, status.ErrUIDInvalid) {
		t.Fatalf("CheckToken = %v, want ErrUIDInvalid", err)
	}
}

func testAllocateLeastLoaded(t *testing.T, s suite) {
	svc, store := s.service(t, status.Config{})
	ctx := t.Context()
	register(t, svc, "n1", "10.0.0.1:8090")
	register(t, svc, "n2", "10.0.0.2:8091")
	register(t, svc, "n3", "[fd00::3]:8092")
	for node, load := range map[string]int64{"n1": 5, "n2": 1, "n3": 3} {
		if _, err := store.HIncrBy(ctx, "logincount", node, load); err != nil {
			t.Fatal(err)
		}
	}
	nodes, err := svc.Nodes(ctx)
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
		a := allocate(t, svc, uid)
		if a.Node != "n2" || a.Host != "10.0.0.2" || a.Port != "8091" {
			t.Fatalf("Allocate(%d) = %+v, want n2 at 10.0.0.2:8091", uid, a)
		}
	}
	// n2 fills up: now n3 is the least loaded; IPv6 hosts come without brackets.
	if _, err := store.HIncrBy(ctx, "logincount", "n2", 10); err != nil {
		t.Fatal(err)
	}
	if a := allocate(t, svc, 2000); a.Node != "n3" || a.Host != "fd00::3" || a.Port != "8092" {
		t.Fatalf("Allocate = %+v, want n3 at [fd00::3]:8092", a)
	}
	// Load counted for a node that is not registered changes nothing.
	if _, err := store.HIncrBy(ctx, "logincount", "ghost", -100); err != nil {
		t.Fatal(err)
	}
	if a := allocate(t, svc, 2001); a.Node != "n3" {
		t.Fatalf("Allocate = %+v, want n3", a)
	}
}

func testAllocateSpreadsTies(t *testing.T, s suite) {
	svc, store := s.service(t, status.Config{})
	register(t, svc, "a", "127.0.0.1:9001")
	register(t, svc, "b", "127.0.0.1:9002")
	register(t, svc, "c", "127.0.0.1:9003")
	if _, err := store.HIncrBy(t.Context(), "logincount", "c", 1); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for i := range 200 {
		seen[allocate(t, svc, int32(1001+i)).Node]++
	}
	// With a fair coin the chance that one of a, b is never picked in 200
	// tries is 2^-199.
	if seen["a"] == 0 || seen["b"] == 0 || seen["c"] != 0 {
		t.Fatalf("allocations per node %v: want both least-loaded nodes used and c never", seen)
	}
}

func testNodeExpiry(t *testing.T, s suite) {
	const ttl = 500 * time.Millisecond
	svc, store := s.service(t, status.Config{NodeTTL: ttl})
	ctx := t.Context()
	register(t, svc, "stale", "127.0.0.1:9001")
	register(t, svc, "fresh", "127.0.0.1:9002")
	if names := nodeNames(t, svc); fmt.Sprint(names) != "[fresh stale]" {
		t.Fatalf("Nodes right after registering = %v", names)
	}
	// Keep "fresh" refreshed; "stale" must drop out of the registry.
	waitFor(t, "the unrefreshed node to expire", func() bool {
		register(t, svc, "fresh", "127.0.0.1:9002")
		names := nodeNames(t, svc)
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
		register(t, svc, "fresh", "127.0.0.1:9002")
		if a := allocate(t, svc, int32(1001+i)); a.Node != "fresh" {
			t.Fatalf("allocated the expired node: %+v", a)
		}
	}
	// Once every node has expired, nothing can be allocated.
	waitFor(t, "every node to expire", func() bool {
		_, err := svc.Allocate(ctx, 1001)
		return errors.Is(err, status.ErrNoNode)
	})
	// A node that comes back is allocatable again.
	register(t, svc, "stale", "127.0.0.1:9001")
	if a := allocate(t, svc, 1001); a.Node != "stale" {
		t.Fatalf("Allocate = %+v, want the re-registered node", a)
	}
}

func testCorruptRegistryEntryIsPruned(t *testing.T, s suite) {
	svc, store := s.service(t, status.Config{})
	if err := store.HSet(t.Context(), "chatnodes", "junk", "{not json"); err != nil {
		t.Fatal(err)
	}
	register(t, svc, "good", "127.0.0.1:9001")
	if names := nodeNames(t, svc); fmt.Sprint(names) != "[good]" {
		t.Fatalf("Nodes = %v, want [good]", names)
	}
	raw, err := store.HGetAll(t.Context(), "chatnodes")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := raw["junk"]; ok {
		t.Fatalf("corrupt entry not pruned: %v", raw)
	}
}

func testDeregisterNode(t *testing.T, s suite) {
	svc, _ := s.service(t, status.Config{})
	register(t, svc, "n1", "127.0.0.1:9001")
	register(t, svc, "n2", "127.0.0.1:9002")
	if err := svc.DeregisterNode(t.Context(), "n1"); err != nil {
		t.Fatal(err)
	}
	if names := nodeNames(t, svc); fmt.Sprint(names) != "[n2]" {
		t.Fatalf("Nodes after deregistering n1 = %v", names)
	}
	for i := range 20 {
		if a := allocate(t, svc, int32(1001+i)); a.Node != "n2" {
			t.Fatalf("allocated a deregistered node: %+v", a)
		}
	}
	// Unknown names are not an error; the last node leaving empties the registry.
	if err := svc.DeregisterNode(t.Context(), "nope"); err != nil {
		t.Fatalf("DeregisterNode(unknown) = %v", err)
	}
	if err := svc.DeregisterNode(t.Context(), "n2"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Allocate(t.Context(), 1001); !errors.Is(err, status.ErrNoNode) {
		t.Fatalf("Allocate = %v, want ErrNoNode", err)
	}
	// Re-registering updates the address in place.
	register(t, svc, "n1", "127.0.0.1:9001")
	register(t, svc, "n1", "127.0.0.1:9011")
	if a := allocate(t, svc, 1001); a.Port != "9011" {
		t.Fatalf("Allocate = %+v, want the updated address", a)
	}
}

func testAnnouncer(t *testing.T, s suite) {
	const ttl = 500 * time.Millisecond
	svc, _ := s.service(t, status.Config{NodeTTL: ttl})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ann := &status.Announcer{
		Service:  svc,
		Node:     status.Node{Name: "ann", Addr: "127.0.0.1:9100"},
		Interval: ttl / 10,
		Logger:   discard(),
	}
	done := make(chan error, 1)
	go func() { done <- ann.Run(ctx) }()

	waitFor(t, "the announcer to register", func() bool { return fmt.Sprint(nodeNames(t, svc)) == "[ann]" })
	// Refreshed: still there well past several TTLs.
	until := time.Now().Add(3 * ttl)
	for time.Now().Before(until) {
		if names := nodeNames(t, svc); fmt.Sprint(names) != "[ann]" {
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
	if names := nodeNames(t, svc); len(names) != 0 {
		t.Fatalf("node still registered after Run returned: %v", names)
	}
}

func testAnnouncerInvalidNodeKeepsRunning(t *testing.T, s suite) {
	svc, _ := s.service(t, status.Config{})
	ctx, cancel := context.WithCancel(t.Context())
	ann := &status.Announcer{Service: svc, Node: status.Node{Name: "bad", Addr: "nowhere"}, Interval: 10 * time.Millisecond, Logger: discard()}
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
	if names := nodeNames(t, svc); len(names) != 0 {
		t.Fatalf("invalid node registered: %v", names)
	}
}

var tokenRE = regexp.MustCompile(`^[0-9a-f]{32}$`)

func testTokens(t *testing.T, s suite) {
	svc, store := s.service(t, status.Config{})
	ctx := t.Context()
	register(t, svc, "n1", "127.0.0.1:9001")

	if status.TokenKey(1001) != "utoken_1001" {
		t.Fatalf("TokenKey(1001) = %q, want the llfc key utoken_1001", status.TokenKey(1001))
	}
	first := allocate(t, svc, 1001)
	if !tokenRE.MatchString(first.Token) {
		t.Fatalf("token %q is not 32 lower-case hex digits", first.Token)
	}
	if stored, err := store.Get(ctx, "utoken_1001"); err != nil || stored != first.Token {
		t.Fatalf("utoken_1001 = %q, %v; want the issued token", stored, err)
	}
	if err := svc.CheckToken(ctx, 1001, first.Token); err != nil {
		t.Fatalf("CheckToken(issued) = %v", err)
	}

	second := allocate(t, svc, 1001)
	if second.Token == first.Token || !tokenRE.MatchString(second.Token) {
		t.Fatalf("second token %q does not replace %q", second.Token, first.Token)
	}
	if err := svc.CheckToken(ctx, 1001, first.Token); !errors.Is(err, status.ErrTokenInvalid) {
		t.Fatalf("CheckToken(replaced) = %v, want ErrTokenInvalid", err)
	}
	if err := svc.CheckToken(ctx, 1001, second.Token); err != nil {
		t.Fatalf("CheckToken(current) = %v", err)
	}
	for _, bad := range []string{"", "x", second.Token[:31], second.Token + "0", "0" + second.Token[1:]} {
		if bad == second.Token {
			continue
		}
		if err := svc.CheckToken(ctx, 1001, bad); !errors.Is(err, status.ErrTokenInvalid) {
			t.Errorf("CheckToken(%q) = %v, want ErrTokenInvalid", bad, err)
		}
	}
	// Tokens are per uid.
	if err := svc.CheckToken(ctx, 1002, second.Token); !errors.Is(err, status.ErrUIDInvalid) {
		t.Fatalf("CheckToken(other uid) = %v, want ErrUIDInvalid", err)
	}
	other := allocate(t, svc, 1002)
	if err := svc.CheckToken(ctx, 1001, other.Token); !errors.Is(err, status.ErrTokenInvalid) {
		t.Fatalf("another uid's token accepted: %v", err)
	}
	for _, uid := range []int32{0, -1, 999999} {
		if err := svc.CheckToken(ctx, uid, second.Token); !errors.Is(err, status.ErrUIDInvalid) {
			t.Errorf("CheckToken(uid %d) = %v, want ErrUIDInvalid", uid, err)
		}
	}
}

func testTokenExpiry(t *testing.T, s suite) {
	const ttl = 300 * time.Millisecond
	svc, _ := s.service(t, status.Config{TokenTTL: ttl})
	register(t, svc, "n1", "127.0.0.1:9001")
	a := allocate(t, svc, 1001)
	waitFor(t, "the token to expire", func() bool {
		err := svc.CheckToken(t.Context(), 1001, a.Token)
		if err != nil && !errors.Is(err, status.ErrUIDInvalid) {
			t.Fatalf("CheckToken = %v, want nil or ErrUIDInvalid", err)
		}
		return err != nil
	})
	// A new login issues a new, valid token.
	b := allocate(t, svc, 1001)
	if err := svc.CheckToken(t.Context(), 1001, b.Token); err != nil {
		t.Fatalf("CheckToken(new) = %v", err)
	}
}

// TestConcurrentAllocations: logins for distinct uids from many goroutines
// each get their own valid token.
func testConcurrentAllocations(t *testing.T, s suite) {
	svc, _ := s.service(t, status.Config{})
	register(t, svc, "n1", "127.0.0.1:9001")
	register(t, svc, "n2", "127.0.0.1:9002")
	const n = 50
	tokens := make([]string, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			a, err := svc.Allocate(t.Context(), int32(5000+i))
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
		if err := svc.CheckToken(t.Context(), int32(5000+i), tok); err != nil {
			t.Fatalf("CheckToken(uid %s) = %v", strconv.Itoa(5000+i), err)
		}
	}
}
