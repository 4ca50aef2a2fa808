package chatclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/imsrv/imsrv/modules/chat/wire"
)

// fakeServer is a tiny stand-in for the chat server on a real loopback
// socket. Its default behaviour answers logins, searches, heartbeats and
// texts (acknowledging a text and pushing it back as if from the peer);
// tests replace or wrap it through handle.
type fakeServer struct {
	t      *testing.T
	ln     net.Listener
	handle func(sc *serverConn, f wire.Frame)
	conns  chan *serverConn
	wg     sync.WaitGroup
}

// serverConn is the server side of one connection. received gets every frame
// the client sent.
type serverConn struct {
	t        *testing.T
	conn     net.Conn
	received chan wire.Frame
	mu       sync.Mutex // serialises writes
	nextMsg  int32
}

func newFakeServer(t *testing.T, handle func(sc *serverConn, f wire.Frame)) *fakeServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeServer{t: t, ln: ln, handle: handle, conns: make(chan *serverConn, 16)}
	if s.handle == nil {
		s.handle = defaultHandler
	}
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(func() {
		ln.Close()
		s.wg.Wait()
	})
	return s
}

func (s *fakeServer) accept() {
	defer s.wg.Done()
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			return
		}
		sc := &serverConn{t: s.t, conn: conn, received: make(chan wire.Frame, 1024)}
		s.conns <- sc
		s.t.Cleanup(func() { conn.Close() })
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer close(sc.received)
			r := wire.NewReader(conn, 0)
			for {
				f, err := r.ReadFrame()
				if err != nil {
					return
				}
				sc.received <- f
				s.handle(sc, f)
			}
		}()
	}
}

// conn returns the server side of the next accepted connection.
func (s *fakeServer) conn(t *testing.T) *serverConn {
	t.Helper()
	select {
	case sc := <-s.conns:
		return sc
	case <-time.After(5 * time.Second):
		t.Fatal("no connection accepted")
		return nil
	}
}

func (s *fakeServer) dial(t *testing.T, opts ...Option) (*Client, *serverConn) {
	t.Helper()
	c, err := Dial(testContext(t), s.ln.Addr().String(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, s.conn(t)
}

// send writes a frame to the client; errors are ignored because tests close
// connections on purpose.
func (sc *serverConn) send(id wire.MsgID, v any) {
	frame, err := wire.EncodeFrame(id, v)
	if err != nil {
		sc.t.Error(err)
		return
	}
	sc.mu.Lock()
	defer sc.mu.Unlock()
	_, _ = sc.conn.Write(frame)
}

// next returns the next frame the client sent.
func (sc *serverConn) next(t *testing.T) wire.Frame {
	t.Helper()
	select {
	case f, ok := <-sc.received:
		if !ok {
			t.Fatal("connection ended")
		}
		return f
	case <-time.After(5 * time.Second):
		t.Fatal("no frame received")
		return wire.Frame{}
	}
}

const badToken = "bad-token"

func defaultHandler(sc *serverConn, f wire.Frame) {
	switch f.ID {
	case wire.IDChatLogin:
		var req wire.LoginReq
		if err := f.Decode(&req); err != nil {
			sc.send(wire.IDChatLoginRsp, wire.LoginRsp{Error: 1001})
			return
		}
		if req.Token == badToken {
			sc.send(wire.IDChatLoginRsp, wire.LoginRsp{Error: 1010})
			return
		}
		sc.send(wire.IDChatLoginRsp, wire.LoginRsp{
			UID: int32(req.UID), Name: fmt.Sprintf("user%d", req.UID), Nick: "小明",
			FriendList: []wire.Friend{{UID: 1055, Name: "ocz", Back: "兄弟"}},
		})
	case wire.IDSearchUserReq:
		var req wire.SearchUserReq
		if err := f.Decode(&req); err != nil {
			sc.send(wire.IDSearchUserRsp, wire.SearchUserRsp{Error: 1001})
			return
		}
		uid, _ := req.UID.UID()
		sc.send(wire.IDSearchUserRsp, wire.SearchUserRsp{UID: uid, Name: string(req.UID)})
	case wire.IDHeartBeatReq:
		sc.send(wire.IDHeartBeatRsp, wire.HeartBeatRsp{})
	case wire.IDTextChatMsgReq:
		var req wire.TextChatMsgReq
		if err := f.Decode(&req); err != nil {
			sc.send(wire.IDTextChatMsgRsp, wire.TextChatMsgRsp{Error: 1001})
			return
		}
		rsp := wire.TextChatMsgRsp{
			FromUID: int32(req.FromUID), ToUID: int32(req.ToUID), ThreadID: int32(req.ThreadID),
			TextArray: req.TextArray,
		}
		for _, item := range req.TextArray {
			sc.nextMsg++
			rsp.ChatDatas = append(rsp.ChatDatas, wire.TextChatData{
				MessageID: sc.nextMsg, UniqueID: item.UniqueID, Content: item.Content,
				Status: 2, ChatTime: "2025-01-02 03:04:05",
			})
		}
		sc.send(wire.IDTextChatMsgRsp, rsp)
		sc.send(wire.IDNotifyTextChatMsgReq, wire.NotifyTextChatMsgReq(rsp))
	case wire.IDAddFriendReq:
		var req wire.AddFriendReq
		if err := f.Decode(&req); err != nil {
			sc.send(wire.IDAddFriendRsp, wire.AddFriendRsp{Error: 1001})
			return
		}
		sc.send(wire.IDAddFriendRsp, wire.AddFriendRsp{})
	}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestLoginAndText(t *testing.T) {
	srv := newFakeServer(t, nil)
	c, sc := srv.dial(t)
	ctx := testContext(t)

	rsp, err := c.Login(ctx, 1054, "token")
	if err != nil {
		t.Fatal(err)
	}
	if rsp.UID != 1054 || rsp.Name != "user1054" || rsp.Nick != "小明" || len(rsp.FriendList) != 1 || rsp.FriendList[0].Back != "兄弟" {
		t.Errorf("login response = %+v", rsp)
	}
	if c.UID() != 1054 {
		t.Errorf("UID() = %d after login", c.UID())
	}
	var login wire.LoginReq
	if err := sc.next(t).Decode(&login); err != nil {
		t.Fatal(err)
	}
	if login.UID != 1054 || login.Token != "token" || !login.HasCap(wire.CapCoalesce) {
		t.Errorf("server received login %+v, want uid, token and the coalesce capability", login)
	}

	ack, err := c.SendText(ctx, wire.TextChatMsgReq{
		ToUID: 1055, ThreadID: 7,
		TextArray: []wire.TextItem{{UniqueID: "u1", Content: "你好"}, {UniqueID: "u2", Content: "在吗？"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if ack.FromUID != 1054 || ack.ToUID != 1055 || ack.ThreadID != 7 || len(ack.ChatDatas) != 2 || ack.ChatDatas[1].Content != "在吗？" {
		t.Errorf("text ack = %+v", ack)
	}

	push, err := c.WaitPush(ctx, wire.IDNotifyTextChatMsgReq)
	if err != nil {
		t.Fatal(err)
	}
	var text wire.NotifyTextChatMsgReq
	if err := push.Decode(&text); err != nil {
		t.Fatal(err)
	}
	if text.FromUID != 1054 || len(text.TextArray) != 2 || text.TextArray[0].Content != "你好" {
		t.Errorf("text push = %+v", text)
	}
}

func TestServerError(t *testing.T) {
	srv := newFakeServer(t, nil)
	c, sc := srv.dial(t, WithHeartbeat(time.Millisecond))
	ctx := testContext(t)

	rsp, err := c.Login(ctx, 1054, badToken)
	serr, ok := errors.AsType[*ServerError](err)
	if !ok || serr.Code != 1010 || serr.ID != wire.IDChatLoginRsp {
		t.Fatalf("Login error = %v, want a *ServerError with code 1010", err)
	}
	if rsp == nil || rsp.Error != 1010 {
		t.Fatalf("Login response = %+v, want the decoded response with the error", rsp)
	}
	if c.UID() != 0 {
		t.Errorf("UID() = %d after a failed login", c.UID())
	}
	if want := "chatclient: MSG_CHAT_LOGIN_RSP: server error 1010"; err.Error() != want {
		t.Errorf("error text = %q, want %q", err, want)
	}

	// A failed login starts no heartbeats.
	sc.next(t)
	time.Sleep(20 * time.Millisecond)
	select {
	case f := <-sc.received:
		t.Errorf("client sent %v after a failed login", f.ID)
	default:
	}
}

func TestUnparsableResponse(t *testing.T) {
	srv := newFakeServer(t, func(sc *serverConn, f wire.Frame) {
		switch f.ID {
		case wire.IDHeartBeatReq:
			sc.send(wire.IDHeartBeatRsp, struct{}{}) // no error field
		case wire.IDSearchUserReq:
			sc.send(wire.IDSearchUserRsp, map[string]any{"error": 0, "uid": "not a number"})
		}
	})
	c, _ := srv.dial(t)
	ctx := testContext(t)

	if rsp, err := c.Heartbeat(ctx); err == nil || rsp != nil {
		t.Errorf("Heartbeat with no error field = %+v, %v; want an error", rsp, err)
	}
	rsp, err := c.Search(ctx, "x")
	if err == nil || rsp != nil {
		t.Errorf("Search with a bad uid type = %+v, %v; want an error", rsp, err)
	}
	if _, ok := errors.AsType[*ServerError](err); ok {
		t.Errorf("a malformed response is not a server error: %v", err)
	}
}

// TestMatching sends many concurrent requests of two kinds. The server
// answers heartbeats at once but holds every search until it has them all, so
// responses arrive in a different order from the requests; yet each call gets
// its own answer.
func TestMatching(t *testing.T) {
	const searches, heartbeats = 20, 5
	var held []wire.Frame // touched only by the connection's goroutine
	srv := newFakeServer(t, func(sc *serverConn, f wire.Frame) {
		if f.ID != wire.IDSearchUserReq {
			defaultHandler(sc, f)
			return
		}
		held = append(held, f)
		if len(held) == searches {
			for _, f := range held {
				defaultHandler(sc, f)
			}
		}
	})
	c, _ := srv.dial(t)
	ctx := testContext(t)

	var wg sync.WaitGroup
	errs := make(chan error, searches+heartbeats)
	for i := range searches {
		wg.Go(func() {
			query := fmt.Sprintf("name-%d", i)
			rsp, err := c.Search(ctx, query)
			switch {
			case err != nil:
				errs <- err
			case rsp.Name != query:
				errs <- fmt.Errorf("Search(%q) got the answer for %q", query, rsp.Name)
			}
		})
	}
	for range heartbeats {
		wg.Go(func() {
			if _, err := c.Heartbeat(ctx); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	select {
	case f := <-c.Pushes():
		t.Errorf("a response leaked to Pushes: %v %s", f.ID, f.Body)
	default:
	}
}

// TestAbandonedCall checks that the late answer to a call whose context
// ended is not taken for the answer to the next call of the same kind.
func TestAbandonedCall(t *testing.T) {
	release := make(chan struct{})
	srv := newFakeServer(t, func(sc *serverConn, f wire.Frame) {
		if f.ID == wire.IDSearchUserReq {
			var req wire.SearchUserReq
			_ = f.Decode(&req)
			if req.UID == "slow" {
				<-release
			}
		}
		defaultHandler(sc, f)
	})
	c, _ := srv.dial(t)

	short, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if _, err := c.Search(short, "slow"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Search with an expiring context = %v, want context.DeadlineExceeded", err)
	}

	done := make(chan struct{})
	go func() {
		defer close(done)
		rsp, err := c.Search(testContext(t), "fast")
		if err != nil || rsp.Name != "fast" {
			t.Errorf("Search(fast) = %+v, %v", rsp, err)
		}
	}()
	time.Sleep(20 * time.Millisecond)
	close(release)
	<-done

	if _, err := c.Search(t.Context(), "x"); err != nil {
		t.Errorf("the client is unusable after an abandoned call: %v", err)
	}

	expired, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := c.Search(expired, "x"); !errors.Is(err, context.Canceled) {
		t.Errorf("Search with a cancelled context = %v, want context.Canceled", err)
	}
	if c.Err() != nil {
		t.Errorf("a cancelled call ended the connection: %v", c.Err())
	}
}

func TestPushes(t *testing.T) {
	srv := newFakeServer(t, nil)
	c, sc := srv.dial(t)
	ctx := testContext(t)

	sc.send(wire.IDNotifyAddFriendReq, wire.NotifyAddFriendReq{ApplyUID: 1032, Name: "userA", Desc: "你好"})
	sc.send(4242, map[string]int{"x": 1})                           // unknown id
	sc.send(wire.IDSearchUserRsp, wire.SearchUserRsp{UID: 1})       // a response nobody asked for
	sc.send(wire.IDNotifyOffLineReq, wire.NotifyOffLineReq{UID: 1}) // last

	for _, want := range []wire.MsgID{wire.IDNotifyAddFriendReq, 4242, wire.IDSearchUserRsp, wire.IDNotifyOffLineReq} {
		select {
		case f := <-c.Pushes():
			if f.ID != want {
				t.Fatalf("push %v, want %v", f.ID, want)
			}
			if want == wire.IDNotifyAddFriendReq {
				var n wire.NotifyAddFriendReq
				if err := f.Decode(&n); err != nil || n.ApplyUID != 1032 || n.Desc != "你好" {
					t.Errorf("push body = %+v, %v", n, err)
				}
			}
		case <-ctx.Done():
			t.Fatalf("no %v push", want)
		}
	}

	// WaitPush skips to the id it waits for and keeps the others for later.
	sc.send(wire.IDNotifyAddFriendReq, wire.NotifyAddFriendReq{ApplyUID: 1})
	sc.send(wire.IDNotifyAuthFriendReq, wire.NotifyAuthFriendReq{FromUID: 2})
	sc.send(wire.IDNotifyAddFriendReq, wire.NotifyAddFriendReq{ApplyUID: 3})
	for _, want := range []struct {
		id   wire.MsgID
		body string
	}{
		{wire.IDNotifyAuthFriendReq, `"fromuid":2`},
		{wire.IDNotifyAddFriendReq, `"applyuid":1`},
		{wire.IDNotifyAddFriendReq, `"applyuid":3`},
	} {
		f, err := c.WaitPush(ctx, want.id)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(f.Body, []byte(want.body)) {
			t.Errorf("WaitPush(%v) = %s, want %s", want.id, f.Body, want.body)
		}
	}

	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if _, err := c.WaitPush(short, wire.IDNotifyOffLineReq); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitPush with nothing pushed = %v, want context.DeadlineExceeded", err)
	}
}

func TestHeartbeat(t *testing.T) {
	srv := newFakeServer(t, nil)
	c, sc := srv.dial(t, WithHeartbeat(10*time.Millisecond))
	ctx := testContext(t)

	time.Sleep(50 * time.Millisecond)
	select {
	case f := <-sc.received:
		t.Fatalf("client sent %v before logging in", f.ID)
	default:
	}

	if _, err := c.Login(ctx, 1054, "token"); err != nil {
		t.Fatal(err)
	}
	if f := sc.next(t); f.ID != wire.IDChatLogin {
		t.Fatalf("first frame %v, want the login", f.ID)
	}
	for i := range 3 {
		f := sc.next(t)
		var hb wire.HeartBeatReq
		if f.ID != wire.IDHeartBeatReq || f.Decode(&hb) != nil || hb.FromUID != 1054 {
			t.Fatalf("frame %d after login = %v %s, want a heartbeat from 1054", i, f.ID, f.Body)
		}
	}
	select {
	case f := <-c.Pushes():
		t.Errorf("a heartbeat answer leaked to Pushes: %v", f.ID)
	default:
	}

	c.Close()
	// The heartbeat goroutine has exited: nothing is sent after Close.
	for range sc.received {
	}
}

// TestKick plays the end of a replaced session: a 1021 push, then the server
// closes the connection.
func TestKick(t *testing.T) {
	srv := newFakeServer(t, func(sc *serverConn, f wire.Frame) {
		if f.ID == wire.IDSearchUserReq {
			return // never answered
		}
		defaultHandler(sc, f)
	})
	c, sc := srv.dial(t)
	ctx := testContext(t)
	if _, err := c.Login(ctx, 1054, "token"); err != nil {
		t.Fatal(err)
	}

	pending := make(chan error, 1)
	go func() {
		_, err := c.Search(ctx, "never answered")
		pending <- err
	}()
	sc.next(t) // the login
	sc.next(t) // the search

	sc.send(wire.IDNotifyOffLineReq, wire.NotifyOffLineReq{UID: 1054})
	sc.conn.Close()

	f, err := c.WaitPush(ctx, wire.IDNotifyOffLineReq)
	if err != nil {
		t.Fatalf("WaitPush(1021) = %v; the kick must be delivered before the end", err)
	}
	var kick wire.NotifyOffLineReq
	if err := f.Decode(&kick); err != nil || kick.UID != 1054 {
		t.Errorf("kick = %+v, %v", kick, err)
	}

	select {
	case <-c.Done():
	case <-ctx.Done():
		t.Fatal("Done not closed after the server closed the connection")
	}
	if !errors.Is(c.Err(), io.EOF) {
		t.Errorf("Err() = %v, want io.EOF", c.Err())
	}
	if err := <-pending; !errors.Is(err, io.EOF) {
		t.Errorf("pending call = %v, want io.EOF", err)
	}
	if _, err := c.Search(ctx, "x"); !errors.Is(err, io.EOF) {
		t.Errorf("call after the end = %v, want io.EOF", err)
	}
	if _, ok := <-c.Pushes(); ok {
		t.Error("Pushes not closed")
	}
	if _, err := c.WaitPush(ctx, wire.IDNotifyTextChatMsgReq); !errors.Is(err, io.EOF) {
		t.Errorf("WaitPush after the end = %v, want io.EOF", err)
	}
	if err := c.Close(); err != nil || !errors.Is(c.Err(), io.EOF) {
		t.Errorf("Close after the end = %v, Err() = %v; want nil and io.EOF kept", err, c.Err())
	}
}

func TestClose(t *testing.T) {
	srv := newFakeServer(t, func(*serverConn, wire.Frame) {}) // never answers
	c, sc := srv.dial(t, WithPushBuffer(1))
	ctx := testContext(t)

	// Fill Pushes so that the read loop blocks on it.
	for i := range 5 {
		sc.send(wire.IDNotifyAddFriendReq, wire.NotifyAddFriendReq{ApplyUID: int32(i)})
	}
	pending := make(chan error, 1)
	go func() {
		_, err := c.Search(ctx, "x")
		pending <- err
	}()
	sc.next(t)

	closed := make(chan struct{})
	go func() {
		c.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close blocked behind an unread Pushes channel")
	}
	if err := <-pending; !errors.Is(err, ErrClosed) {
		t.Errorf("pending call = %v, want ErrClosed", err)
	}
	if !errors.Is(c.Err(), ErrClosed) {
		t.Errorf("Err() = %v, want ErrClosed", c.Err())
	}
	if err := c.Send(wire.IDHeartBeatReq, wire.HeartBeatReq{}); !errors.Is(err, ErrClosed) {
		t.Errorf("Send after Close = %v, want ErrClosed", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	select {
	case <-c.Done():
	default:
		t.Error("Done not closed after Close")
	}
}

func TestSendAndRaw(t *testing.T) {
	srv := newFakeServer(t, func(sc *serverConn, f wire.Frame) {
		if f.ID == wire.IDAddFriendReq {
			defaultHandler(sc, f)
		}
	})
	c, sc := srv.dial(t)
	ctx := testContext(t)

	// Two frames in one write arrive as two frames.
	raw, _ := wire.AppendFrame(nil, wire.IDHeartBeatReq, []byte(`{"fromuid":1}`))
	raw, _ = wire.AppendFrame(raw, 4242, nil)
	if err := c.SendRaw(raw); err != nil {
		t.Fatal(err)
	}
	if f := sc.next(t); f.ID != wire.IDHeartBeatReq || string(f.Body) != `{"fromuid":1}` {
		t.Errorf("first frame %v %s", f.ID, f.Body)
	}
	if f := sc.next(t); f.ID != 4242 || len(f.Body) != 0 {
		t.Errorf("second frame %v %s", f.ID, f.Body)
	}

	// Send does not wait: the answer arrives on Pushes.
	if err := c.Send(wire.IDAddFriendReq, wire.AddFriendReq{UID: 1, ToUID: 2}); err != nil {
		t.Fatal(err)
	}
	if f := sc.next(t); f.ID != wire.IDAddFriendReq || string(f.Body) != `{"uid":1,"applyname":"","bakname":"","touid":2}` {
		t.Errorf("sent %v %s", f.ID, f.Body)
	}
	if f, err := c.WaitPush(ctx, wire.IDAddFriendRsp); err != nil || string(f.Body) != `{"error":0}` {
		t.Errorf("answer = %s, %v", f.Body, err)
	}

	// A malformed body on a known id is answered with error 1001.
	f, err := c.CallRaw(ctx, wire.IDAddFriendReq, []byte(`{"uid":`))
	if err != nil || f.ID != wire.IDAddFriendRsp || string(f.Body) != `{"error":1001}` {
		t.Errorf("CallRaw = %v %s, %v", f.ID, f.Body, err)
	}
	sc.next(t)

	if _, err := c.CallRaw(ctx, wire.IDAddFriendRsp, nil); err == nil {
		t.Error("CallRaw with a response id succeeded")
	}
	if err := c.Send(wire.IDHeartBeatReq, func() {}); err == nil {
		t.Error("Send of an unencodable value succeeded")
	}
	if c.Err() != nil {
		t.Errorf("connection ended: %v", c.Err())
	}
}

func TestDefaultUID(t *testing.T) {
	srv := newFakeServer(t, nil)
	c, sc := srv.dial(t)
	ctx := testContext(t)
	if _, err := c.Login(ctx, 1054, "token"); err != nil {
		t.Fatal(err)
	}
	sc.next(t)

	if _, err := c.AddFriend(ctx, wire.AddFriendReq{ToUID: 1055, ApplyName: "我是小石"}); err != nil {
		t.Fatal(err)
	}
	var add wire.AddFriendReq
	if err := sc.next(t).Decode(&add); err != nil || add.UID != 1054 || add.ToUID != 1055 {
		t.Errorf("server received %+v, %v; want uid 1054 filled in", add, err)
	}

	if _, err := c.AddFriend(ctx, wire.AddFriendReq{UID: 7, ToUID: 1055}); err != nil {
		t.Fatal(err)
	}
	if err := sc.next(t).Decode(&add); err != nil || add.UID != 7 {
		t.Errorf("server received %+v, %v; want an explicit uid kept", add, err)
	}
}

func TestDial(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	if c, err := Dial(testContext(t), addr); err == nil {
		c.Close()
		t.Fatal("Dial to a closed port succeeded")
	}
}

func TestNewOverPipe(t *testing.T) {
	client, server := net.Pipe()
	c := New(client)
	defer c.Close()
	go func() {
		r := wire.NewReader(server, 0)
		if f, err := r.ReadFrame(); err != nil || f.ID != wire.IDHeartBeatReq {
			return
		}
		frame, _ := wire.EncodeFrame(wire.IDHeartBeatRsp, wire.HeartBeatRsp{Error: 1101})
		server.Write(frame)
		server.Close()
	}()
	rsp, err := c.Heartbeat(testContext(t))
	if serr, ok := errors.AsType[*ServerError](err); !ok || serr.Code != 1101 || rsp.Error != 1101 {
		t.Errorf("Heartbeat = %+v, %v; want server error 1101", rsp, err)
	}
	<-c.Done()
}

func TestMaxBody(t *testing.T) {
	srv := newFakeServer(t, nil)
	c, sc := srv.dial(t, WithMaxBody(8))
	sc.send(wire.IDNotifyOffLineReq, wire.NotifyOffLineReq{UID: 1054})
	<-c.Done()
	if !errors.Is(c.Err(), wire.ErrFrameTooLarge) {
		t.Errorf("Err() = %v, want wire.ErrFrameTooLarge", c.Err())
	}
}
