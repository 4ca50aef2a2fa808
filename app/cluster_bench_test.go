package app_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imsrv/imsrv/app"
	"github.com/imsrv/imsrv/modules/chat/chatclient"
	"github.com/imsrv/imsrv/modules/chat/wire"
	"github.com/imsrv/imsrv/platform/kv/kvtest"
	"github.com/imsrv/imsrv/platform/sqldb/sqldbtest"
)

// Cross-node delivery benchmark: a split cluster in one process on
// PostgreSQL + Redis (a gate+verify+status front and two chat nodes that
// reach status over gRPC), the same 1017 → 1018 + 1019 round trip as
// BenchmarkChatRoundTrip, with the two friends on one chat node or on two.
// Run with
//
//	IMSRV_TEST_POSTGRES_URL='postgres://postgres@127.0.0.1:5432/test?sslmode=disable' \
//	IMSRV_TEST_REDIS_URL=redis://127.0.0.1:6379/0 \
//	go test -run '^$' -bench ChatCluster -benchtime 3s -count 3 ./app/
//
// Results and how to read them are in docs/BENCHMARKS.md.

// benchClusterPairs is how many pairs run concurrently in the parallel
// sub-benchmarks.
const benchClusterPairs = 16

// BenchmarkChatCluster measures 1017 → 1018 + 1019 round trips between two
// friends logged in to the SAME chat node ("same-node": both on chat-1, the
// push is a local enqueue) and to TWO chat nodes ("cross-node": the sender on
// chat-1, the receiver on chat-2, so chat-1 looks the receiver's route up in
// Redis and delivers the push to chat-2 over gRPC). Each runs "sequential"
// (one pair, one round trip at a time) and "pairs=16" (16 pairs concurrently);
// the metrics are those of BenchmarkChatRoundTrip.
func BenchmarkChatCluster(b *testing.B) {
	storage := benchClusterStorage(b) // PostgreSQL + Redis, or skip
	front := benchNode(b, storage, "IMSRV_ROLES=gate,verify,status", "IMSRV_STATUS_LISTEN=127.0.0.1:0")
	statusAddr := front.RPCAddr("status")
	if statusAddr == "" {
		b.Fatal("front offers no status gRPC listener")
	}
	chat1 := benchNode(b, storage, "IMSRV_ROLES=chat", "IMSRV_PEERS_STATUS="+statusAddr)
	chat2 := benchNode(b, storage, "IMSRV_ROLES=chat", "IMSRV_PEERS_STATUS="+statusAddr)

	for _, topo := range []struct {
		name     string
		from, to *app.App
	}{
		{"same-node", chat1, chat1},
		{"cross-node", chat1, chat2},
	} {
		pairs := benchClusterPairsAt(b, front, topo.from, topo.to, benchClusterPairs)
		b.Run(topo.name, func(b *testing.B) {
			b.Run("sequential", func(b *testing.B) { benchRoundTrips(b, pairs[:1]) })
			b.Run(fmt.Sprintf("pairs=%d", len(pairs)), func(b *testing.B) { benchRoundTrips(b, pairs) })
		})
	}
}

// benchRoundTrips runs b.N round trips over pairs, each pair doing round
// trips back to back (with one pair: one at a time, and ns/op is the mean
// latency), and reports the aggregate rate and the latency percentiles.
func benchRoundTrips(b *testing.B, pairs []*benchPair) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	lat := make([]time.Duration, b.N) // slot k belongs to round trip k
	var next atomic.Int64
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	for _, p := range pairs {
		wg.Go(func() {
			for {
				k := int(next.Add(1)) - 1
				if k >= b.N || failed.Load() != nil {
					return
				}
				start := time.Now()
				if err := p.roundTrip(ctx); err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
				lat[k] = time.Since(start)
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	if err := failed.Load(); err != nil {
		b.Fatal(*err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "roundtrips/s")
	reportLatencies(b, lat)
}

// benchClusterStorage returns the storage env of a split cluster: a fresh
// PostgreSQL schema and a unique Redis prefix (its keys are deleted at
// cleanup). It skips unless IMSRV_TEST_POSTGRES_URL and IMSRV_TEST_REDIS_URL
// are set.
func benchClusterStorage(tb testing.TB) []string {
	tb.Helper()
	var missing []string
	for _, v := range []string{sqldbtest.EnvPostgresURL, "IMSRV_TEST_REDIS_URL"} {
		if os.Getenv(v) == "" {
			missing = append(missing, v+" not set")
		}
	}
	if len(missing) > 0 {
		tb.Skip(strings.Join(missing, ", ") + "; a split cluster needs PostgreSQL + Redis")
	}
	redisURL := os.Getenv("IMSRV_TEST_REDIS_URL")
	prefix := "bench-" + randHex(6) + ":"
	tb.Cleanup(func() { kvtest.DropPrefix(tb, redisURL, prefix) })
	return []string{
		"IMSRV_DATABASE_URL=" + sqldbtest.PostgresURL(tb),
		"IMSRV_REDIS_URL=" + redisURL,
		"IMSRV_REDIS_PREFIX=" + prefix,
	}
}

// benchLoginAt is benchLogin with the node chosen by the caller: the user is
// provisioned and given a token on the front, then logs in to node's chat
// listener directly (tokens are not bound to the node allocation picked).
func benchLoginAt(tb testing.TB, ctx context.Context, front, node *app.App, name string) *benchUser {
	tb.Helper()
	u, err := front.Accounts().Provision(ctx, name, name+"@bench.example.com")
	if err != nil {
		tb.Fatalf("provision %s: %v", name, err)
	}
	alloc, err := front.Status().Allocate(ctx, u.UID)
	if err != nil {
		tb.Fatalf("allocate %s: %v", name, err)
	}
	c, err := chatclient.Dial(ctx, node.ChatAddr())
	if err != nil {
		tb.Fatalf("dial %s: %v", node.ChatAddr(), err)
	}
	tb.Cleanup(func() { c.Close() })
	if _, err := c.Login(ctx, u.UID, alloc.Token); err != nil {
		tb.Fatalf("login %s at %s: %v", name, node.ChatAddr(), err)
	}
	return &benchUser{uid: u.UID, c: c}
}

// benchClusterPairsAt is benchPairs for a cluster: n pairs whose senders are
// logged in to from and whose receivers are logged in to to, befriended
// through the protocol (1009 → 1011, 1013 → 1014/1015, which crosses nodes
// when from and to differ) and warmed up with 10 round trips each, so that
// the friendship is cached in the sender's session and the sender's node has
// dialled the receiver's node.
func benchClusterPairsAt(tb testing.TB, front, from, to *app.App, n int) []*benchPair {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tag := randHex(3)
	pairs := make([]*benchPair, n)
	for i := range pairs {
		p := &benchPair{
			from: benchLoginAt(tb, ctx, front, from, fmt.Sprintf("cl%d-a-%s", i, tag)),
			to:   benchLoginAt(tb, ctx, front, to, fmt.Sprintf("cl%d-b-%s", i, tag)),
		}
		if _, err := p.from.c.AddFriend(ctx, wire.AddFriendReq{ApplyName: "bench", ToUID: wire.Int32(p.to.uid)}); err != nil {
			tb.Fatalf("apply: %v", err)
		}
		if _, err := p.to.c.WaitPush(ctx, wire.IDNotifyAddFriendReq); err != nil {
			tb.Fatalf("wait 1011: %v", err)
		}
		if _, err := p.to.c.AuthFriend(ctx, wire.AuthFriendReq{ToUID: wire.Int32(p.from.uid)}); err != nil {
			tb.Fatalf("approve: %v", err)
		}
		if _, err := p.from.c.WaitPush(ctx, wire.IDNotifyAuthFriendReq); err != nil {
			tb.Fatalf("wait 1015: %v", err)
		}
		pairs[i] = p
	}
	for _, p := range pairs {
		for range 10 {
			if err := p.roundTrip(ctx); err != nil {
				tb.Fatalf("warm-up: %v", err)
			}
		}
	}
	return pairs
}
