package app_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imsrv/imsrv/app"
	"github.com/imsrv/imsrv/modules/chat/chatclient"
	"github.com/imsrv/imsrv/modules/chat/wire"
	ilog "github.com/imsrv/imsrv/platform/log"
)

// Chat round-trip benchmarks: one in-process node (SQLite + in-memory KV,
// every role in one process, loopback TCP), clients using package
// chatclient, which declares the coalesce capability. Run with
//
//	go test -run '^$' -bench ChatRoundTrip -benchmem ./app/
//
// One round trip is: the sender sends a 1017 text and waits for its 1018
// acknowledgement; the receiver waits for the 1019 push carrying that text.
// Client and server share the process and its CPUs, so ns/op, B/op and
// allocs/op are the whole system's (both clients and the server) per round
// trip. Results and how to read them are in docs/BENCHMARKS.md.

// benchApp starts a single-process node (every role, SQLite + in-memory KV)
// for any testing.TB; see benchNode.
func benchApp(tb testing.TB) *app.App {
	tb.Helper()
	return benchNode(tb, []string{"IMSRV_DATABASE_URL=sqlite://" + tb.TempDir() + "/imsrv.db"})
}

// benchNode starts an App in-process on storage and with extraEnv (roles,
// peers), for any testing.TB: :0 listeners, the "log" verify sender, a
// discarded logger and a 10-minute heartbeat so that idle benchmark
// connections are never reaped between sub-benchmarks. A chat node is
// returned once it is registered. It stops at cleanup, so that nodes started
// later stop first.
func benchNode(tb testing.TB, storage []string, extraEnv ...string) *app.App {
	tb.Helper()
	env := append([]string{
		"IMSRV_ROLES=all",
		"IMSRV_NODE_NAME=bench-" + randHex(4),
		"IMSRV_GATE_LISTEN=127.0.0.1:0",
		"IMSRV_CHAT_LISTEN=127.0.0.1:0",
		"IMSRV_CHAT_RPCLISTEN=127.0.0.1:0",
		"IMSRV_CHAT_HEARTBEAT=10m",
		"IMSRV_VERIFY_SENDER=log",
		"IMSRV_LOG_LEVEL=error",
	}, storage...)
	env = append(env, extraEnv...)
	cfg, err := app.Load(app.LoadOptions{Env: env})
	if err != nil {
		tb.Fatalf("load config: %v", err)
	}
	logger, err := ilog.New(io.Discard, "error", "text")
	if err != nil {
		tb.Fatal(err)
	}
	a := app.New(cfg, logger)
	ctx, cancel := context.WithCancel(context.Background())
	if err := a.Open(ctx); err != nil {
		cancel()
		tb.Fatalf("open app: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				tb.Errorf("app run: %v", err)
			}
		case <-time.After(15 * time.Second):
			tb.Errorf("app did not shut down within 15s")
		}
		if err := a.Close(); err != nil {
			tb.Errorf("app close: %v", err)
		}
	})
	if !cfg.Has(app.RoleChat) {
		return a
	}
	waitNodeRegistered(tb, a, cfg.NodeName)
	return a
}

// benchUser is a provisioned user logged in to the node.
type benchUser struct {
	uid int32
	c   *chatclient.Client
}

// benchLogin provisions a user (no password, no mail), gets it a token and
// logs it in.
func benchLogin(tb testing.TB, ctx context.Context, a *app.App, name string) *benchUser {
	tb.Helper()
	u, err := a.Accounts().Provision(ctx, name, name+"@bench.example.com")
	if err != nil {
		tb.Fatalf("provision %s: %v", name, err)
	}
	alloc, err := a.Status().Allocate(ctx, u.UID)
	if err != nil {
		tb.Fatalf("allocate %s: %v", name, err)
	}
	c, err := chatclient.Dial(ctx, net.JoinHostPort(alloc.Host, alloc.Port))
	if err != nil {
		tb.Fatalf("dial: %v", err)
	}
	tb.Cleanup(func() { c.Close() })
	if _, err := c.Login(ctx, u.UID, alloc.Token); err != nil {
		tb.Fatalf("login %s: %v", name, err)
	}
	return &benchUser{uid: u.UID, c: c}
}

// benchPair is two friends: from sends, to receives.
type benchPair struct {
	from, to *benchUser
	text     []byte // scratch for the expected msgid, owned by the pair's goroutine
}

// benchPairs logs in n pairs of users and makes each pair friends through
// the protocol (1009 → 1011, 1013 → 1014/1015).
func benchPairs(tb testing.TB, a *app.App, n int) []*benchPair {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tag := randHex(3)
	pairs := make([]*benchPair, n)
	for i := range pairs {
		p := &benchPair{
			from: benchLogin(tb, ctx, a, fmt.Sprintf("bench%d-a-%s", i, tag)),
			to:   benchLogin(tb, ctx, a, fmt.Sprintf("bench%d-b-%s", i, tag)),
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
	// Warm up: the first text checks the friendship in the database and
	// caches it in the session.
	for _, p := range pairs {
		for range 10 {
			if err := p.roundTrip(ctx); err != nil {
				tb.Fatalf("warm-up: %v", err)
			}
		}
	}
	return pairs
}

// roundTrip sends one 1017 (waiting for the 1018) and waits for the 1019 at
// the receiver, checking it carries this text.
// benchMsgSeq numbers every text the benchmarks send, so that no sender
// ever reuses a client msgid: with stored messages a reused (sender, msgid)
// is a resend, acknowledged again but not pushed again, and a round trip
// waiting for its 1019 would never end.
var benchMsgSeq atomic.Int64

func (p *benchPair) roundTrip(ctx context.Context) error {
	msgid := strconv.FormatInt(benchMsgSeq.Add(1), 10)
	if _, err := p.from.c.SendText(ctx, wire.TextChatMsgReq{
		ToUID: wire.Int32(p.to.uid), TextArray: []wire.TextItem{{MsgID: msgid, Content: "hello, bench"}},
	}); err != nil {
		return fmt.Errorf("send text: %w", err)
	}
	f, err := p.to.c.WaitPush(ctx, wire.IDNotifyTextChatMsgReq)
	if err != nil {
		return fmt.Errorf("wait for 1019: %w", err)
	}
	p.text = append(append(append(p.text[:0], `"msgid":"`...), msgid...), '"')
	if !bytes.Contains(f.Body, p.text) {
		return fmt.Errorf("1019 %s is not text %s", f.Body, msgid)
	}
	return nil
}

// reportLatencies reports the 50th and 99th percentile of lat (which it sorts).
func reportLatencies(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Nanoseconds()) }
	b.ReportMetric(pct(0.50), "p50-ns")
	b.ReportMetric(pct(0.99), "p99-ns")
}

// BenchmarkChatRoundTrip measures 1017 → 1018 + 1019 round trips between
// friends on one node: "sequential" is one pair, one round trip at a time
// (ns/op is the mean latency); "pairs=P" runs P pairs concurrently, each
// doing round trips back to back, and reports the aggregate rate
// (roundtrips/s) and the per-round-trip latency percentiles.
func BenchmarkChatRoundTrip(b *testing.B) {
	a := benchApp(b)
	pairs := benchPairs(b, a, 64)

	b.Run("sequential", func(b *testing.B) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		p := pairs[0]
		lat := make([]time.Duration, b.N)
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			start := time.Now()
			if err := p.roundTrip(ctx); err != nil {
				b.Fatal(err)
			}
			lat[i] = time.Since(start)
		}
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "roundtrips/s")
		reportLatencies(b, lat)
	})

	for _, np := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("pairs=%d", np), func(b *testing.B) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			lat := make([]time.Duration, b.N) // slot k belongs to round trip k
			var next atomic.Int64
			var failed atomic.Pointer[error]
			var wg sync.WaitGroup
			b.ReportAllocs()
			b.ResetTimer()
			for _, p := range pairs[:np] {
				wg.Add(1)
				go func() {
					defer wg.Done()
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
				}()
			}
			wg.Wait()
			b.StopTimer()
			if err := failed.Load(); err != nil {
				b.Fatal(*err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "roundtrips/s")
			reportLatencies(b, lat)
		})
	}
}
