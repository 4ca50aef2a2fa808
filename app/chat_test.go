package app_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/imsrv/imsrv/modules/chat/chatclient"
	"github.com/imsrv/imsrv/modules/chat/wire"
)

// chatUser is a registered user logged in to a chat node with the Go client.
type chatUser struct {
	uid    int32
	name   string
	email  string
	passwd string
	c      *chatclient.Client
	login  *wire.LoginRsp
}

// gateLogin does /user_login and returns uid, token and the chat address.
func (ta *testApp) gateLogin(t *testing.T, email, passwd string) (int32, string, string) {
	t.Helper()
	out := ta.post(t, "/user_login", map[string]any{"email": email, "passwd": passwd})
	wantCode(t, out, 0)
	return int32(out["uid"].(float64)), out["token"].(string), net.JoinHostPort(out["host"].(string), out["port"].(string))
}

// newChatUser registers name, logs in through the gate and then the chat node.
func (ta *testApp) newChatUser(t *testing.T, name string) *chatUser {
	t.Helper()
	u := &chatUser{name: name, email: name + "-" + randHex(3) + "@example.com", passwd: "secret-" + name}
	ta.register(t, name, u.email, u.passwd)
	ta.chatLogin(t, u)
	return u
}

func (ta *testApp) chatLogin(t *testing.T, u *chatUser) {
	t.Helper()
	uid, token, addr := ta.gateLogin(t, u.email, u.passwd)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := chatclient.Dial(ctx, addr, chatclient.WithHeartbeat(ta.Heartbeat/3))
	if err != nil {
		t.Fatalf("dial chat %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	rsp, err := c.Login(ctx, uid, token)
	if err != nil {
		t.Fatalf("chat login %s: %v", u.name, err)
	}
	u.uid, u.c, u.login = uid, c, rsp
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func waitPush[T any](t *testing.T, c *chatclient.Client, id wire.MsgID) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	f, err := c.WaitPush(ctx, id)
	if err != nil {
		t.Fatalf("wait for %v: %v", id, err)
	}
	var v T
	if err := f.Decode(&v); err != nil {
		t.Fatalf("decode %v: %v", id, err)
	}
	return v
}

func serverCode(err error) int {
	var se *chatclient.ServerError
	if errors.As(err, &se) {
		return se.Code
	}
	return -1
}

// befriend runs the whole application → approval exchange between a and b.
func befriend(t *testing.T, a, b *chatUser, aRemark, bRemark string) {
	t.Helper()
	ctx := ctxT(t)
	if _, err := a.c.AddFriend(ctx, wire.AddFriendReq{UID: wire.Int32(a.uid), ApplyName: "hi, I am " + a.name, BakName: aRemark, ToUID: wire.Int32(b.uid)}); err != nil {
		t.Fatalf("apply: %v", err)
	}
	n := waitPush[wire.NotifyAddFriendReq](t, b.c, wire.IDNotifyAddFriendReq)
	if n.ApplyUID != a.uid || n.Name != a.name || n.Desc != "hi, I am "+a.name {
		t.Fatalf("1011 = %+v, want applicant %d %s", n, a.uid, a.name)
	}
	rsp, err := b.c.AuthFriend(ctx, wire.AuthFriendReq{FromUID: wire.Int32(b.uid), ToUID: wire.Int32(a.uid), Back: bRemark})
	if err != nil {
		t.Fatalf("approve: %v", err)
	}
	if rsp.UID != a.uid || rsp.Name != a.name {
		t.Fatalf("1014 = %+v", rsp)
	}
	n2 := waitPush[wire.NotifyAuthFriendReq](t, a.c, wire.IDNotifyAuthFriendReq)
	if n2.FromUID != b.uid || n2.ToUID != a.uid || n2.Name != b.name {
		t.Fatalf("1015 = %+v", n2)
	}
}

func TestChatFlow(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ta := startApp(t, b)
		ctx := ctxT(t)
		alice, bob, carol := ta.newChatUser(t, "alice"), ta.newChatUser(t, "bob"), ta.newChatUser(t, "carol")
		if alice.login.Email != alice.email || alice.login.Name != "alice" || len(alice.login.FriendList) != 0 {
			t.Fatalf("1006 = %+v", alice.login)
		}

		// Search by uid and by name; the public profile only.
		for _, q := range []string{fmt.Sprint(bob.uid), "bob"} {
			raw, err := alice.c.CallRaw(ctx, wire.IDSearchUserReq, []byte(`{"uid":"`+q+`"}`))
			if err != nil {
				t.Fatalf("search %s: %v", q, err)
			}
			var m map[string]any
			if err := raw.Decode(&m); err != nil {
				t.Fatal(err)
			}
			if m["error"].(float64) != 0 || int32(m["uid"].(float64)) != bob.uid || m["name"] != "bob" {
				t.Fatalf("search %s = %v", q, m)
			}
			for _, secret := range []string{"email", "pwd", "passwd"} {
				if _, ok := m[secret]; ok {
					t.Fatalf("search answer has %q: %v", secret, m)
				}
			}
		}
		if _, err := alice.c.Search(ctx, "nobody-here"); serverCode(err) != 1011 {
			t.Fatalf("search unknown name: %v", err)
		}
		if _, err := alice.c.Search(ctx, "99999999"); serverCode(err) != 1011 {
			t.Fatalf("search unknown uid: %v", err)
		}

		befriend(t, alice, bob, "bobby", "ally")

		// Text both ways: Chinese, several items per frame, a 30 KB body.
		big := strings.Repeat("长", 10000) // 30,000 bytes of UTF-8
		items := []wire.TextItem{{MsgID: "m1", Content: "你好"}, {MsgID: "m2", Content: "在吗？"}, {MsgID: "m3", Content: big}}
		ack, err := alice.c.SendText(ctx, wire.TextChatMsgReq{FromUID: wire.Int32(alice.uid), ToUID: wire.Int32(bob.uid), TextArray: items})
		if err != nil {
			t.Fatalf("text: %v", err)
		}
		if ack.FromUID != alice.uid || ack.ToUID != bob.uid || len(ack.TextArray) != 3 || ack.TextArray[1].Content != "在吗？" {
			t.Fatalf("1018 = %+v", ack)
		}
		got := waitPush[wire.NotifyTextChatMsgReq](t, bob.c, wire.IDNotifyTextChatMsgReq)
		if got.FromUID != alice.uid || len(got.TextArray) != 3 || got.TextArray[0].Content != "你好" || got.TextArray[2].Content != big || got.TextArray[2].MsgID != "m3" {
			t.Fatalf("1019 to bob: from %d, %d items", got.FromUID, len(got.TextArray))
		}
		if _, err := bob.c.SendText(ctx, wire.TextChatMsgReq{ToUID: wire.Int32(alice.uid), TextArray: []wire.TextItem{{MsgID: "r1", Content: "收到"}}}); err != nil {
			t.Fatalf("reply: %v", err)
		}
		if got := waitPush[wire.NotifyTextChatMsgReq](t, alice.c, wire.IDNotifyTextChatMsgReq); got.FromUID != bob.uid || got.TextArray[0].Content != "收到" {
			t.Fatalf("1019 to alice = %+v", got)
		}

		// Carol is not a friend: refused, never pushed.
		if _, err := carol.c.SendText(ctx, wire.TextChatMsgReq{ToUID: wire.Int32(alice.uid), TextArray: []wire.TextItem{{MsgID: "x", Content: "spam"}}}); serverCode(err) != 1102 {
			t.Fatalf("text to non-friend: %v", err)
		}
		// Carol applies to bob and stays pending.
		if _, err := carol.c.AddFriend(ctx, wire.AddFriendReq{ApplyName: "hello", BakName: "b", ToUID: wire.Int32(bob.uid)}); err != nil {
			t.Fatal(err)
		}
		waitPush[wire.NotifyAddFriendReq](t, bob.c, wire.IDNotifyAddFriendReq)
		// The next push alice gets is bob's, not carol's refused text.
		bob.c.SendText(ctx, wire.TextChatMsgReq{ToUID: wire.Int32(alice.uid), TextArray: []wire.TextItem{{MsgID: "r2", Content: "again"}}})
		if got := waitPush[wire.NotifyTextChatMsgReq](t, alice.c, wire.IDNotifyTextChatMsgReq); got.FromUID != bob.uid {
			t.Fatalf("alice got a push from %d", got.FromUID)
		}

		// Relogin shows friends with each side's own remark, and pending applications.
		oldAlice := alice.c
		ta.chatLogin(t, alice)
		kick := waitPush[wire.NotifyOffLineReq](t, oldAlice, wire.IDNotifyOffLineReq)
		if kick.UID != alice.uid {
			t.Fatalf("1021 = %+v", kick)
		}
		select {
		case <-oldAlice.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("kicked connection not closed")
		}
		if fl := alice.login.FriendList; len(fl) != 1 || fl[0].UID != bob.uid || fl[0].Back != "bobby" {
			t.Fatalf("alice friend_list = %+v", fl)
		}
		ta.chatLogin(t, bob)
		if fl := bob.login.FriendList; len(fl) != 1 || fl[0].UID != alice.uid || fl[0].Back != "ally" {
			t.Fatalf("bob friend_list = %+v", fl)
		}
		if al := bob.login.ApplyList; len(al) != 1 || al[0].UID != carol.uid || al[0].Name != "carol" {
			t.Fatalf("bob apply_list = %+v", al)
		}
		// The new connections chat.
		if _, err := alice.c.SendText(ctx, wire.TextChatMsgReq{ToUID: wire.Int32(bob.uid), TextArray: []wire.TextItem{{MsgID: "n1", Content: "back"}}}); err != nil {
			t.Fatal(err)
		}
		waitPush[wire.NotifyTextChatMsgReq](t, bob.c, wire.IDNotifyTextChatMsgReq)
	})
}

// rawLogin logs uid in over a plain socket; caps may be nil (legacy client).
func rawLogin(t *testing.T, addr string, uid int32, token string, caps []string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	body, _ := wireJSON(wire.LoginReq{UID: wire.Int32(uid), Token: token, Caps: caps})
	if err := wire.WriteFrame(conn, wire.IDChatLogin, body); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	f, err := wire.NewReader(conn, 0).ReadFrame()
	if err != nil || f.ID != wire.IDChatLoginRsp {
		t.Fatalf("raw login: %v %v", f.ID, err)
	}
	var rsp wire.LoginRsp
	if err := f.Decode(&rsp); err != nil || rsp.Error != 0 {
		t.Fatalf("raw login: %s %v", f.Body, err)
	}
	conn.SetReadDeadline(time.Time{})
	return conn
}

// wantClosed asserts the server closes conn (EOF or reset) within 5 s.
func wantClosed(t *testing.T, conn net.Conn, what string) {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	for {
		_, err := conn.Read(buf)
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("%s: connection still open", what)
		}
		return
	}
}

func TestChatRefusals(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ta := startApp(t, b)
		ctx := ctxT(t)
		alice, bob := ta.newChatUser(t, "alice"), ta.newChatUser(t, "bob")
		befriend(t, alice, bob, "", "")
		addr := ta.ChatAddr()

		t.Run("wrong token 1010", func(t *testing.T) {
			c, err := chatclient.Dial(ctx, addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Login(ctx, alice.uid, "0123456789abcdef0123456789abcdef"); serverCode(err) != 1010 {
				t.Fatalf("wrong token: %v", err)
			}
			wantClosedClient(t, c)
		})
		t.Run("unknown uid 1011", func(t *testing.T) {
			c, err := chatclient.Dial(ctx, addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Login(ctx, 987654, "0123456789abcdef0123456789abcdef"); serverCode(err) != 1011 {
				t.Fatalf("unknown uid: %v", err)
			}
		})
		t.Run("request before login", func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			wire.WriteFrame(conn, wire.IDTextChatMsgReq, []byte(`{"fromuid":1,"touid":2,"text_array":[{"msgid":"a","content":"b"}]}`))
			wantClosed(t, conn, "request before login")
		})
		t.Run("spoofed sender", func(t *testing.T) {
			_, err := bob.c.SendText(ctx, wire.TextChatMsgReq{FromUID: wire.Int32(alice.uid), ToUID: wire.Int32(alice.uid), TextArray: []wire.TextItem{{MsgID: "s", Content: "spoof"}}})
			if serverCode(err) != 1102 {
				t.Fatalf("spoofed fromuid: %v", err)
			}
			if _, err := bob.c.AddFriend(ctx, wire.AddFriendReq{UID: wire.Int32(alice.uid), ToUID: wire.Int32(bob.uid)}); serverCode(err) != 1102 {
				t.Fatalf("spoofed uid in 1009: %v", err)
			}
		})
		t.Run("malformed body on a known id", func(t *testing.T) {
			f, err := bob.c.CallRaw(ctx, wire.IDTextChatMsgReq, []byte(`{"touid":"abc",`))
			if err != nil && serverCode(err) != 1001 {
				t.Fatal(err)
			}
			var rsp wire.TextChatMsgRsp
			if f.Decode(&rsp); rsp.Error != 1001 {
				t.Fatalf("malformed 1017: %s", f.Body)
			}
			// Still connected.
			if _, err := bob.c.Heartbeat(ctx); err != nil {
				t.Fatal(err)
			}
		})
		t.Run("answer too big for a frame", func(t *testing.T) {
			// 20,000 '<' fit in a 1017, but JSON escapes each as \u003c in
			// the ACK and the push: refused with 1101, nothing pushed, and
			// both connections stay up.
			body := fmt.Sprintf(`{"touid":%d,"text_array":[{"msgid":"big","content":"%s"}]}`, bob.uid, strings.Repeat("<", 20000))
			f, err := alice.c.CallRaw(ctx, wire.IDTextChatMsgReq, []byte(body))
			var rsp wire.TextChatMsgRsp
			if f.Decode(&rsp); rsp.Error != 1101 {
				t.Fatalf("oversized answer: %v %s", err, f.Body)
			}
			if _, err := alice.c.SendText(ctx, wire.TextChatMsgReq{ToUID: wire.Int32(bob.uid), TextArray: []wire.TextItem{{MsgID: "small", Content: "fits"}}}); err != nil {
				t.Fatal(err)
			}
			if got := waitPush[wire.NotifyTextChatMsgReq](t, bob.c, wire.IDNotifyTextChatMsgReq); got.TextArray[0].MsgID != "small" {
				t.Fatalf("bob got %q first", got.TextArray[0].MsgID)
			}
		})
		t.Run("duplicate login kicks", func(t *testing.T) {
			old := bob.c
			ta.chatLogin(t, bob)
			waitPush[wire.NotifyOffLineReq](t, old, wire.IDNotifyOffLineReq)
			wantClosedClient(t, old)
			// Pushes reach the new connection only.
			alice.c.SendText(ctx, wire.TextChatMsgReq{ToUID: wire.Int32(bob.uid), TextArray: []wire.TextItem{{MsgID: "k", Content: "to new"}}})
			waitPush[wire.NotifyTextChatMsgReq](t, bob.c, wire.IDNotifyTextChatMsgReq)
		})
	})
}

func wantClosedClient(t *testing.T, c *chatclient.Client) {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("connection not closed by the server")
	}
}

func TestChatBadBytes(t *testing.T) {
	ta := startApp(t, backends()[0], "IMSRV_CHAT_HEARTBEAT=1s", "IMSRV_CHAT_MAXBODY=32768")
	ctx := ctxT(t)
	alice, bob := ta.newChatUser(t, "alice"), ta.newChatUser(t, "bob")
	befriend(t, alice, bob, "", "")
	addr := ta.ChatAddr()

	garbage, _ := net.Dial("tcp", addr)
	defer garbage.Close()
	garbage.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	wantClosed(t, garbage, "garbage")

	huge, _ := net.Dial("tcp", addr)
	defer huge.Close()
	hdr := make([]byte, 4)
	binary.BigEndian.PutUint16(hdr[0:], uint16(wire.IDChatLogin))
	binary.BigEndian.PutUint16(hdr[2:], 60000) // over the pre-login limit
	huge.Write(hdr)
	wantClosed(t, huge, "oversized login")

	// After login: a frame declaring more than chat.maxbody is closed at once.
	carol := ta.newChatUser(t, "carol")
	binary.BigEndian.PutUint16(hdr[0:], uint16(wire.IDTextChatMsgReq))
	binary.BigEndian.PutUint16(hdr[2:], 40000)
	carol.c.SendRaw(hdr)
	wantClosedClient(t, carol.c)

	// A length beyond the body: a header promising 100 bytes, then silence:
	// reaped after the heartbeat timeout. A raw socket, so that no heartbeat
	// of a client library lands inside the promised body.
	dave := &chatUser{name: "dave", email: "dave" + randHex(3) + "@example.com", passwd: "secret-dave"}
	ta.register(t, dave.name, dave.email, dave.passwd)
	uid, token, _ := ta.gateLogin(t, dave.email, dave.passwd)
	conn := rawLogin(t, addr, uid, token, []string{wire.CapCoalesce})
	binary.BigEndian.PutUint16(hdr[2:], 100)
	conn.Write(append(hdr, []byte(`{"touid":`)...))
	wantClosed(t, conn, "length beyond the body")

	// A frame cut off by the client closing mid-body.
	uid, token, _ = ta.gateLogin(t, dave.email, dave.passwd)
	conn = rawLogin(t, addr, uid, token, nil)
	conn.Write(append(hdr, []byte(`{"touid":`)...))
	conn.Close()

	// Everyone else is unaffected.
	if _, err := alice.c.SendText(ctx, wire.TextChatMsgReq{ToUID: wire.Int32(bob.uid), TextArray: []wire.TextItem{{MsgID: "ok", Content: "still here"}}}); err != nil {
		t.Fatal(err)
	}
	waitPush[wire.NotifyTextChatMsgReq](t, bob.c, wire.IDNotifyTextChatMsgReq)
}

func wireJSON(v any) ([]byte, error) { return json.Marshal(v) }
