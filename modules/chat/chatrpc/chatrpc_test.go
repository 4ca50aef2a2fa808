package chatrpc_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/imsrv/imsrv/modules/chat"
	"github.com/imsrv/imsrv/modules/chat/chatpb"
	"github.com/imsrv/imsrv/modules/chat/chatrpc"
	"github.com/imsrv/imsrv/modules/chat/wire"
	"github.com/imsrv/imsrv/platform/grpcx"
	"github.com/imsrv/imsrv/platform/grpcx/grpcxtest"
)

// fakePeer records what reaches it, so that the adapter can be checked on its
// own; the real chat.Server is covered by the end-to-end tests.
type fakePeer struct {
	mu        sync.Mutex
	online    map[int32]bool
	delivered map[int32][]wire.Frame
	kicks     []string // "uid/session"
	err       error    // returned by Deliver for online users, when set
	entered   chan struct{}
	block     bool // Deliver waits for its context to end
}

func newFakePeer(online ...int32) *fakePeer {
	p := &fakePeer{online: map[int32]bool{}, delivered: map[int32][]wire.Frame{}, entered: make(chan struct{}, 1)}
	for _, uid := range online {
		p.online[uid] = true
	}
	return p
}

func (p *fakePeer) Deliver(ctx context.Context, uid int32, frames []wire.Frame) error {
	p.mu.Lock()
	online, block, err := p.online[uid], p.block, p.err
	if online && !block && err == nil {
		p.delivered[uid] = append(p.delivered[uid], frames...)
	}
	p.mu.Unlock()
	switch {
	case !online:
		return chat.ErrOffline
	case block:
		p.entered <- struct{}{}
		<-ctx.Done()
		return ctx.Err()
	}
	return err
}

func (p *fakePeer) Kick(_ context.Context, uid int32, sessionID string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.kicks = append(p.kicks, fmt.Sprintf("%d/%s", uid, sessionID))
	return nil
}

func (p *fakePeer) frames(uid int32) []wire.Frame {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]wire.Frame(nil), p.delivered[uid]...)
}

func (p *fakePeer) kicked() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.kicks...)
}

func register(p chat.Peer) func(grpc.ServiceRegistrar) {
	return func(s grpc.ServiceRegistrar) { chatrpc.Register(s, p) }
}

// serve puts p behind an in-memory gRPC server and returns a client and the
// raw generated client, for requests chatrpc.Client cannot make.
func serve(t *testing.T, p chat.Peer) (*chatrpc.Client, chatpb.ChatNodeClient) {
	cc, _ := grpcxtest.Pipe(t, register(p))
	return chatrpc.NewClient(cc), chatpb.NewChatNodeClient(cc)
}

func TestDeliverKeepsFramesAndOrder(t *testing.T) {
	p := newFakePeer(1001)
	c, _ := serve(t, p)
	big := bytes.Repeat([]byte{0xff, 0x00, '{'}, wire.MaxBodyLen/3)
	batches := [][]wire.Frame{
		{{ID: wire.IDNotifyTextChatMsgReq, Body: []byte(`{"fromuid":1002,"touid":1001,"text_array":[{"msgid":"m1","content":"你好"}]}`)}},
		{{ID: 1, Body: nil}, {ID: 0xffff, Body: big}, {ID: 2, Body: []byte("{}")}},
		{{ID: 3, Body: []byte{0}}},
	}
	var want []wire.Frame
	for _, b := range batches {
		if err := c.Deliver(t.Context(), 1001, b); err != nil {
			t.Fatalf("Deliver = %v", err)
		}
		want = append(want, b...)
	}
	got := p.frames(1001)
	if len(got) != len(want) {
		t.Fatalf("peer got %d frames, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].ID != want[i].ID || !bytes.Equal(got[i].Body, want[i].Body) {
			t.Errorf("frame %d = %v with %d bytes, want %v with %d bytes", i, got[i].ID, len(got[i].Body), want[i].ID, len(want[i].Body))
		}
	}
}

func TestDeliverOffline(t *testing.T) {
	p := newFakePeer(1001)
	c, _ := serve(t, p)
	err := c.Deliver(t.Context(), 1002, []wire.Frame{{ID: 1, Body: []byte("{}")}})
	if !errors.Is(err, chat.ErrOffline) || err.Error() != chat.ErrOffline.Error() {
		t.Fatalf("Deliver to an offline user = %v, want ErrOffline", err)
	}
	if errors.Is(err, grpcx.ErrUnavailable) {
		t.Fatalf("Deliver to an offline user = %v matches ErrUnavailable", err)
	}
}

func TestDeliverPeerFailure(t *testing.T) {
	p := newFakePeer(1001)
	p.err = errors.New("chat: send queue full")
	c, _ := serve(t, p)
	err := c.Deliver(t.Context(), 1001, []wire.Frame{{ID: 1}})
	if status.Code(err) != codes.Internal || !strings.Contains(err.Error(), "send queue full") {
		t.Fatalf("Deliver = %v, want Internal with the peer's message", err)
	}
	if errors.Is(err, chat.ErrOffline) || errors.Is(err, grpcx.ErrUnavailable) {
		t.Fatalf("Deliver = %v matches a sentinel", err)
	}
}

func TestKick(t *testing.T) {
	p := newFakePeer()
	c, _ := serve(t, p)
	for _, k := range []struct {
		uid int32
		sid string
	}{{1001, "s-1"}, {1002, ""}, {1001, "s-2"}} {
		if err := c.Kick(t.Context(), k.uid, k.sid); err != nil {
			t.Fatalf("Kick(%d, %q) = %v", k.uid, k.sid, err)
		}
	}
	if got := fmt.Sprint(p.kicked()); got != "[1001/s-1 1002/ 1001/s-2]" {
		t.Fatalf("peer saw kicks %s", got)
	}
}

// TestInvalidRequests: what no frame can carry, or names no user, is refused
// before it reaches the peer.
func TestInvalidRequests(t *testing.T) {
	p := newFakePeer(1001, 0, -1)
	c, raw := serve(t, p)
	ctx := t.Context()
	for name, err := range map[string]error{
		"uid 0":          c.Deliver(ctx, 0, []wire.Frame{{ID: 1}}),
		"negative uid":   c.Deliver(ctx, -1, []wire.Frame{{ID: 1}}),
		"body too large": c.Deliver(ctx, 1001, []wire.Frame{{ID: 1}, {ID: 2, Body: make([]byte, wire.MaxBodyLen+1)}}),
		"id too large": func() error {
			_, err := raw.Deliver(ctx, &chatpb.DeliverRequest{Uid: 1001, Frames: []*chatpb.Frame{{Id: 1 << 16}}})
			return err
		}(),
		"kick uid 0": c.Kick(ctx, 0, "s-1"),
	} {
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("%s: %v, want InvalidArgument", name, err)
		}
	}
	if got := p.frames(1001); len(got) != 0 {
		t.Errorf("peer got %d frames from invalid requests", len(got))
	}
	if got := p.kicked(); len(got) != 0 {
		t.Errorf("peer got kicks %v from invalid requests", got)
	}
}

func TestUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cc, err := grpcx.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	c := chatrpc.NewClient(cc)
	if err := c.Deliver(t.Context(), 1001, []wire.Frame{{ID: 1}}); !errors.Is(err, grpcx.ErrUnavailable) || errors.Is(err, chat.ErrOffline) {
		t.Errorf("Deliver to a closed port = %v, want ErrUnavailable", err)
	}
	if err := c.Kick(t.Context(), 1001, "s-1"); !errors.Is(err, grpcx.ErrUnavailable) {
		t.Errorf("Kick to a closed port = %v, want ErrUnavailable", err)
	}
}

// TestNodeStopsMidDelivery: a delivery in progress when the other node goes
// away fails with ErrUnavailable, and so do later calls.
func TestNodeStopsMidDelivery(t *testing.T) {
	p := newFakePeer(1001)
	p.block = true
	cc, srv, _ := grpcxtest.Loopback(t, register(p))
	c := chatrpc.NewClient(cc)

	go func() {
		<-p.entered
		srv.Stop()
	}()
	if err := c.Deliver(t.Context(), 1001, []wire.Frame{{ID: 1}}); !errors.Is(err, grpcx.ErrUnavailable) {
		t.Fatalf("Deliver interrupted by the node stopping = %v, want ErrUnavailable", err)
	}
	if err := c.Kick(t.Context(), 1001, "s-1"); !errors.Is(err, grpcx.ErrUnavailable) {
		t.Fatalf("Kick to a stopped node = %v, want ErrUnavailable", err)
	}
}

// TestCallerDeadline: the caller's deadline reaches the other node, and its
// expiry is reported as both DeadlineExceeded and ErrUnavailable.
func TestCallerDeadline(t *testing.T) {
	p := newFakePeer(1001)
	p.block = true
	c, _ := serve(t, p)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	err := c.Deliver(ctx, 1001, []wire.Frame{{ID: 1}})
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, grpcx.ErrUnavailable) {
		t.Fatalf("Deliver past the caller's deadline = %v", err)
	}
}
