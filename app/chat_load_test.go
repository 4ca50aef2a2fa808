package app_test

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/imsrv/imsrv/modules/chat/chatclient"
	"github.com/imsrv/imsrv/modules/chat/wire"
)

func TestChatIdleReaped(t *testing.T) {
	ta := startApp(t, backends()[0], "IMSRV_CHAT_HEARTBEAT=1s")
	u := &chatUser{name: "idle", email: "idle" + randHex(3) + "@example.com", passwd: "secret-idle"}
	ta.register(t, u.name, u.email, u.passwd)
	uid, token, addr := ta.gateLogin(t, u.email, u.passwd)
	idle := rawLogin(t, addr, uid, token, nil)
	start := time.Now()
	wantClosed(t, idle, "idle connection")
	if waited := time.Since(start); waited < 900*time.Millisecond {
		t.Fatalf("reaped after %s, before the 1s heartbeat timeout", waited)
	}
	// A client that beats stays connected across several timeouts.
	alive := ta.newChatUser(t, "alive")
	time.Sleep(2500 * time.Millisecond)
	if _, err := alive.c.Heartbeat(ctxT(t)); err != nil {
		t.Fatalf("beating client was dropped: %v", err)
	}
}

// A receiver that never reads must not delay pushes to anyone else; once its
// queue fills it is disconnected.
func TestChatSlowReader(t *testing.T) {
	ta := startApp(t, backends()[0], "IMSRV_CHAT_SENDQUEUE=64", "IMSRV_CHAT_WRITETIMEOUT=2s")
	ctx := ctxT(t)
	sender, fast := ta.newChatUser(t, "sender"), ta.newChatUser(t, "fast")
	slow := &chatUser{name: "slow", email: "slow" + randHex(3) + "@example.com", passwd: "secret-slow"}
	ta.register(t, slow.name, slow.email, slow.passwd)
	ta.chatLogin(t, slow)
	befriend(t, sender, fast, "", "")
	befriend(t, sender, slow, "", "")
	// Re-login slow on a raw socket that never reads again.
	uid, token, addr := ta.gateLogin(t, slow.email, slow.passwd)
	stuck := rawLogin(t, addr, uid, token, []string{wire.CapCoalesce})
	_ = stuck

	// Far more than loopback socket buffers absorb (several MB), so that the
	// server's writes to the stuck reader block.
	big := make([]byte, 30000)
	for i := range big {
		big[i] = 'x'
	}
	const rounds, stuckRounds = 200, 1000
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for i := 0; i < stuckRounds; i++ {
			_, err := sender.c.SendText(ctx, wire.TextChatMsgReq{ToUID: wire.Int32(uid), TextArray: []wire.TextItem{{MsgID: fmt.Sprint("stuck-", i), Content: string(big)}}})
			if err != nil {
				t.Logf("send %d to the stuck reader: %v", i, err)
				return
			}
		}
	}()
	for i := 0; i < rounds; i++ {
		if _, err := sender.c.SendText(ctx, wire.TextChatMsgReq{ToUID: wire.Int32(fast.uid), TextArray: []wire.TextItem{{MsgID: fmt.Sprint(i), Content: "hi"}}}); err != nil {
			t.Fatalf("send to fast reader: %v", err)
		}
		got := waitPush[wire.NotifyTextChatMsgReq](t, fast.c, wire.IDNotifyTextChatMsgReq)
		if got.TextArray[0].MsgID != fmt.Sprint(i) {
			t.Fatalf("fast reader got %q, want %d", got.TextArray[0].MsgID, i)
		}
	}
	// Only now look at the stuck socket (reading it would unstick it): by
	// the time everything was sent and the write timeout passed, the server
	// must have given up on it, so draining it ends in EOF.
	<-sent
	time.Sleep(2500 * time.Millisecond)
	wantClosed(t, stuck, "reader that never reads")
}

// A client without the coalesce capability never gets two frames in one
// read, even while pushes queue up for it; one with it gets them as fast
// as the socket takes them. The legacy reader reads continuously, as the Qt
// client does (frames that pile up unread in a client's kernel buffer are
// beyond any server's control), with a gap wide enough for a loaded machine.
func TestChatLegacyFraming(t *testing.T) {
	ta := startApp(t, backends()[0], "IMSRV_CHAT_LEGACYGAP=50ms")
	ctx := ctxT(t)
	alice, carol := ta.newChatUser(t, "alice"), ta.newChatUser(t, "carol")
	bob := &chatUser{name: "bob", email: "bob" + randHex(3) + "@example.com", passwd: "secret-bob"}
	ta.register(t, bob.name, bob.email, bob.passwd)
	ta.chatLogin(t, bob)
	befriend(t, alice, bob, "", "")
	befriend(t, carol, bob, "", "")
	befriend(t, alice, carol, "", "")
	uid, token, addr := ta.gateLogin(t, bob.email, bob.passwd)
	legacy := rawLogin(t, addr, uid, token, nil)

	// Alternate senders so that consecutive pushes cannot be merged into one
	// 1019: the queue holds many separate frames for the legacy writer.
	const n = 40
	got := readOneFramePerRead(legacy, n)
	for i := 0; i < n; i++ {
		from := []*chatUser{alice, carol}[i%2]
		if _, err := from.c.SendText(ctx, wire.TextChatMsgReq{ToUID: wire.Int32(uid), TextArray: []wire.TextItem{{MsgID: fmt.Sprint(i), Content: fmt.Sprint("msg ", i)}}}); err != nil {
			t.Fatal(err)
		}
	}
	res := <-got
	if res.err != nil {
		t.Fatal(res.err)
	}
	for i, it := range res.items {
		if it.MsgID != fmt.Sprint(i) {
			t.Fatalf("item %d is %q: order lost", i, it.MsgID)
		}
	}
	if res.reads != n {
		t.Fatalf("%d texts from alternating senders arrived in %d reads, want one frame each", n, res.reads)
	}

	// Texts from one sender that queue up for a legacy client are merged into
	// one 1019 with several items (and still arrive one frame per read).
	got = readOneFramePerRead(legacy, n)
	for i := 0; i < n; i++ {
		alice.c.SendText(ctx, wire.TextChatMsgReq{ToUID: wire.Int32(uid), TextArray: []wire.TextItem{{MsgID: fmt.Sprint("again-", i), Content: "again"}}})
	}
	if res = <-got; res.err != nil {
		t.Fatal(res.err)
	}
	if len(res.items) != n || res.reads >= n {
		t.Fatalf("%d items in %d reads: expected merging", len(res.items), res.reads)
	}

	// A coalescing client gets the same stream without gaps or merging.
	for i := 0; i < n; i++ {
		alice.c.SendText(ctx, wire.TextChatMsgReq{ToUID: wire.Int32(carol.uid), TextArray: []wire.TextItem{{MsgID: fmt.Sprint("fast-", i), Content: "fast"}}})
	}
	for i := 0; i < n; i++ {
		got := waitPush[wire.NotifyTextChatMsgReq](t, carol.c, wire.IDNotifyTextChatMsgReq)
		if len(got.TextArray) != 1 || got.TextArray[0].MsgID != fmt.Sprint("fast-", i) {
			t.Fatalf("coalescing client push %d: %+v", i, got.TextArray)
		}
	}
}

type framedRead struct {
	items []wire.TextItem
	reads int
	err   error
}

// readOneFramePerRead reads text pushes in a goroutine, each read into a
// fresh buffer, until want items arrived. It reports an error if a read ever
// holds two frames (a frame too big for one read may take several).
func readOneFramePerRead(conn net.Conn, want int) <-chan framedRead {
	out := make(chan framedRead, 1)
	go func() {
		var res framedRead
		defer func() { out <- res }()
		conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		for len(res.items) < want {
			buf := make([]byte, 256<<10)
			n, err := conn.Read(buf)
			if err != nil {
				res.err = fmt.Errorf("after %d items: %w", len(res.items), err)
				return
			}
			res.reads++
			frames, rest, _ := wire.ParseFrames(buf[:n])
			if len(frames) > 1 {
				res.err = fmt.Errorf("read %d held %d frames", res.reads, len(frames))
				return
			}
			for len(frames) == 0 { // a partial frame: complete it
				m, err := conn.Read(buf[n:])
				if err != nil {
					res.err = err
					return
				}
				n += m
				frames, rest, _ = wire.ParseFrames(buf[:n])
			}
			if len(frames) != 1 || len(rest) != 0 {
				res.err = fmt.Errorf("read %d: %d frames and %d stray bytes", res.reads, len(frames), len(rest))
				return
			}
			if frames[0].ID != wire.IDNotifyTextChatMsgReq {
				continue
			}
			var push wire.NotifyTextChatMsgReq
			if err := frames[0].Decode(&push); err != nil {
				res.err = err
				return
			}
			res.items = append(res.items, push.TextArray...)
		}
	}()
	return out
}

// 1,000 connections logged in at once on one node, each getting its own
// pushes: every user applies to the next one, so each receives exactly one
// 1011 naming its predecessor.
func TestChatThousandConnections(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ta := startApp(t, b)
		const n = 1000
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		prefix := randHex(3)
		uids := make([]int32, n)
		tokens := make([]string, n)
		var addr string
		for i := range uids {
			u, err := ta.Accounts().Provision(ctx, fmt.Sprintf("load%d-%s", i, prefix), fmt.Sprintf("load%d-%s@example.com", i, prefix))
			if err != nil {
				t.Fatal(err)
			}
			alloc, err := ta.Status().Allocate(ctx, u.UID)
			if err != nil {
				t.Fatal(err)
			}
			uids[i], tokens[i], addr = u.UID, alloc.Token, net.JoinHostPort(alloc.Host, alloc.Port)
		}
		clients := make([]*chatclient.Client, n)
		var wg sync.WaitGroup
		errs := make(chan error, n)
		sem := make(chan struct{}, 50)
		for i := range clients {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				sem <- struct{}{}
				defer func() { <-sem }()
				c, err := chatclient.Dial(ctx, addr)
				if err != nil {
					errs <- err
					return
				}
				if _, err := c.Login(ctx, uids[i], tokens[i]); err != nil {
					c.Close()
					errs <- fmt.Errorf("login %d: %w", i, err)
					return
				}
				clients[i] = c
			}(i)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		defer func() {
			for _, c := range clients {
				c.Close()
			}
		}()
		for i, c := range clients {
			next := uids[(i+1)%n]
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := c.AddFriend(ctx, wire.AddFriendReq{ApplyName: "hi", ToUID: wire.Int32(next)}); err != nil {
					t.Errorf("apply: %v", err)
				}
			}()
		}
		wg.Wait()
		for i, c := range clients {
			f, err := c.WaitPush(ctx, wire.IDNotifyAddFriendReq)
			if err != nil {
				t.Fatalf("user %d: %v", i, err)
			}
			var push wire.NotifyAddFriendReq
			f.Decode(&push)
			if want := uids[(i+n-1)%n]; push.ApplyUID != want {
				t.Fatalf("user %d got an application from %d, want %d", i, push.ApplyUID, want)
			}
		}
	})
}

// Connections over chat.maxconns are closed at once; the others keep working.
func TestChatConnectionLimit(t *testing.T) {
	ta := startApp(t, backends()[0], "IMSRV_CHAT_MAXCONNS=2")
	alice := ta.newChatUser(t, "alice")
	second, err := net.Dial("tcp", ta.ChatAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	// The second connection is accepted (no frame yet); give the accept loop
	// a moment to count it before the third arrives.
	time.Sleep(100 * time.Millisecond)
	third, err := net.Dial("tcp", ta.ChatAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	wantClosed(t, third, "connection over the limit")
	if _, err := alice.c.Heartbeat(ctxT(t)); err != nil {
		t.Fatalf("existing connection affected: %v", err)
	}
}
