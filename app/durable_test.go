package app_test

import (
	"fmt"
	"testing"

	"github.com/imsrv/imsrv/modules/chat/chatclient"
	"github.com/imsrv/imsrv/modules/chat/wire"
)

// provisioned creates a user without mail or hashing and logs it in to the
// chat node (the gate's login path is tested elsewhere).
func (ta *testApp) provisioned(t *testing.T, name string) *chatUser {
	t.Helper()
	u := &chatUser{name: name + "-" + randHex(3)}
	u.email = u.name + "@example.com"
	acct, err := ta.Accounts().Provision(ctxT(t), u.name, u.email)
	if err != nil {
		t.Fatal(err)
	}
	u.uid = acct.UID
	ta.reconnect(t, u)
	return u
}

// reconnect logs u in again on a new connection (the old one, if any, is kicked).
func (ta *testApp) reconnect(t *testing.T, u *chatUser) {
	t.Helper()
	ctx := ctxT(t)
	alloc, err := ta.Status().Allocate(ctx, u.uid)
	if err != nil {
		t.Fatal(err)
	}
	c, err := chatclient.Dial(ctx, alloc.Host+":"+alloc.Port, chatclient.WithHeartbeat(ta.Heartbeat/3), chatclient.WithPushBuffer(4096))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if u.login, err = c.Login(ctx, u.uid, alloc.Token); err != nil {
		t.Fatal(err)
	}
	u.c = c
}

func sendOne(t *testing.T, from, to *chatUser, msgid, content string) *wire.TextChatMsgRsp {
	t.Helper()
	ack, err := from.c.SendText(ctxT(t), wire.TextChatMsgReq{ToUID: wire.Int32(to.uid), TextArray: []wire.TextItem{{MsgID: msgid, Content: content}}})
	if err != nil {
		t.Fatalf("send %s: %v", msgid, err)
	}
	if len(ack.ChatDatas) != 1 || ack.ChatDatas[0].MessageID <= 0 || ack.ThreadID <= 0 || ack.ChatDatas[0].Seq <= 0 {
		t.Fatalf("ACK without stored ids: %+v", ack)
	}
	return ack
}

// collectTexts gathers text items from 1019 pushes until want arrived.
func collectTexts(t *testing.T, c *chatclient.Client, want int) []wire.TextChatData {
	t.Helper()
	var got []wire.TextChatData
	for len(got) < want {
		p := waitPush[wire.NotifyTextChatMsgReq](t, c, wire.IDNotifyTextChatMsgReq)
		if len(p.ChatDatas) != len(p.TextArray) || p.ThreadID <= 0 {
			t.Fatalf("push with %d items and %d chat_datas, thread %d", len(p.TextArray), len(p.ChatDatas), p.ThreadID)
		}
		got = append(got, p.ChatDatas...)
	}
	return got
}

// noPush asserts nothing but the marker arrives next: send a marker text and
// check it is the next pushed item.
func noPushBefore(t *testing.T, from, to *chatUser, marker string) {
	t.Helper()
	sendOne(t, from, to, marker, marker)
	got := collectTexts(t, to.c, 1)
	if got[0].UniqueID != marker {
		t.Fatalf("%s received %q before the marker %q", to.name, got[0].UniqueID, marker)
	}
}

func TestDurableOfflineDelivery(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ta := startApp(t, b)
		alice, bob := ta.provisioned(t, "alice"), ta.provisioned(t, "bob")
		befriend(t, alice, bob, "", "")
		bob.c.Close()

		const n = 1000
		var lastSeq int64
		for i := 0; i < n; i++ {
			ack := sendOne(t, alice, bob, fmt.Sprintf("off-%d", i), fmt.Sprintf("offline %d", i))
			seq := ack.ChatDatas[0].Seq
			if lastSeq != 0 && seq != lastSeq+1 {
				t.Fatalf("seq %d after %d: not gap-free", seq, lastSeq)
			}
			lastSeq = seq
		}
		// bob comes back: all 1000, in order, no duplicates, before a newer
		// live message.
		ta.reconnect(t, bob)
		sendOne(t, alice, bob, "live-after", "live")
		got := collectTexts(t, bob.c, n+1)
		for i := 0; i < n; i++ {
			if want := fmt.Sprintf("off-%d", i); got[i].UniqueID != want {
				t.Fatalf("item %d is %q, want %q", i, got[i].UniqueID, want)
			}
		}
		if got[n].UniqueID != "live-after" || len(got) != n+1 {
			t.Fatalf("after the replay: %d items, last %q", len(got), got[len(got)-1].UniqueID)
		}
		// A heartbeat confirms what was written (bob's client does not
		// confirm explicitly): the next login replays nothing.
		if _, err := bob.c.Heartbeat(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		ta.reconnect(t, bob)
		noPushBefore(t, alice, bob, "marker-1")

	})
}

func TestDurableExplicitConfirm(t *testing.T) {
	ta := startApp(t, backends()[0])
	alice, bob := ta.provisioned(t, "alice"), ta.provisioned(t, "bob")
	befriend(t, alice, bob, "", "")
	ack := sendOne(t, alice, bob, "c1", "confirm me")
	collectTexts(t, bob.c, 1)
	var rsp wire.MsgDeliveredRsp
	if err := bob.c.Call(ctxT(t), wire.IDMsgDeliveredReq, wire.MsgDeliveredReq{ThreadID: wire.Int32(ack.ThreadID), Seq: ack.ChatDatas[0].Seq}, &rsp); err != nil || rsp.Error != 0 {
		t.Fatalf("1100: %v %+v", err, rsp)
	}
	ta.reconnect(t, bob)
	noPushBefore(t, alice, bob, "after-confirm")
}

func TestDurableIdempotentResend(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ta := startApp(t, b)
		alice, bob := ta.provisioned(t, "alice"), ta.provisioned(t, "bob")
		befriend(t, alice, bob, "", "")
		first := sendOne(t, alice, bob, "dup-1", "once")
		again := sendOne(t, alice, bob, "dup-1", "once")
		if again.ChatDatas[0].MessageID != first.ChatDatas[0].MessageID || again.ChatDatas[0].Seq != first.ChatDatas[0].Seq {
			t.Fatalf("resend stored again: %+v vs %+v", again.ChatDatas[0], first.ChatDatas[0])
		}
		if got := collectTexts(t, bob.c, 1); got[0].UniqueID != "dup-1" {
			t.Fatal(got)
		}
		noPushBefore(t, alice, bob, "m1")
		// After a reconnect of the sender, too.
		ta.reconnect(t, alice)
		third := sendOne(t, alice, bob, "dup-1", "once")
		if third.ChatDatas[0].MessageID != first.ChatDatas[0].MessageID {
			t.Fatalf("resend after reconnect stored again")
		}
		noPushBefore(t, alice, bob, "m2")
		// The same client id towards someone else is refused, not confused
		// with the stored message.
		carol := ta.provisioned(t, "carol")
		befriend(t, alice, carol, "", "")
		if _, err := alice.c.SendText(ctxT(t), wire.TextChatMsgReq{ToUID: wire.Int32(carol.uid), TextArray: []wire.TextItem{{MsgID: "dup-1", Content: "other"}}}); serverCode(err) != 1101 {
			t.Fatalf("client id reused for another receiver: %v", err)
		}
	})
}

func TestDurableThreadsAndHistory(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ta := startApp(t, b)
		ctx := ctxT(t)
		alice, bob, carol := ta.provisioned(t, "alice"), ta.provisioned(t, "bob"), ta.provisioned(t, "carol")

		// No threads yet: an empty page.
		th, err := alice.c.Threads(ctx, wire.LoadChatThreadReq{})
		if err != nil || len(th.Threads) != 0 || th.LoadMore {
			t.Fatalf("empty threads page: %+v %v", th, err)
		}
		// Approval opens the thread with the greeting and "We are friends now!".
		if _, err := alice.c.AddFriend(ctx, wire.AddFriendReq{ApplyName: "hello bob", ToUID: wire.Int32(bob.uid)}); err != nil {
			t.Fatal(err)
		}
		waitPush[wire.NotifyAddFriendReq](t, bob.c, wire.IDNotifyAddFriendReq)
		rsp, err := bob.c.AuthFriend(ctx, wire.AuthFriendReq{ToUID: wire.Int32(alice.uid)})
		if err != nil {
			t.Fatal(err)
		}
		if rsp.ThreadID <= 0 || len(rsp.ChatDatas) != 2 || rsp.ChatDatas[0].MsgContent != "hello bob" || rsp.ChatDatas[1].MsgContent != "We are friends now!" {
			t.Fatalf("1014 = %+v", rsp)
		}
		n15 := waitPush[wire.NotifyAuthFriendReq](t, alice.c, wire.IDNotifyAuthFriendReq)
		if n15.ThreadID != rsp.ThreadID || len(n15.ChatDatas) == 0 {
			t.Fatalf("1015 = %+v", n15)
		}
		// 1027 finds the same thread; never two for one pair.
		cp, err := alice.c.CreatePrivateThread(ctx, wire.CreatePrivateChatReq{OtherID: wire.Int32(bob.uid)})
		if err != nil || cp.ThreadID != rsp.ThreadID {
			t.Fatalf("1027 = %+v %v", cp, err)
		}
		if _, err := carol.c.CreatePrivateThread(ctx, wire.CreatePrivateChatReq{OtherID: wire.Int32(bob.uid)}); serverCode(err) != 1102 {
			t.Fatalf("1027 with a non-friend: %v", err)
		}
		thread := wire.Int32(rsp.ThreadID)
		page := func(u *chatUser, after int32) *wire.LoadChatMsgRsp {
			t.Helper()
			r, err := u.c.Messages(ctx, wire.LoadChatMsgReq{ThreadID: thread, MessageID: wire.Int32(after)})
			if err != nil {
				t.Fatalf("1029: %v", err)
			}
			return r
		}
		// 2 messages so far; 8 more make exactly 10: one full page, no more.
		for i := 0; i < 8; i++ {
			sendOne(t, alice, bob, fmt.Sprintf("h%d", i), fmt.Sprintf("history %d", i))
		}
		p := page(bob, 0)
		if len(p.ChatDatas) != 10 || p.LoadMore {
			t.Fatalf("exactly 10: %d items, load_more %v", len(p.ChatDatas), p.LoadMore)
		}
		sendOne(t, bob, alice, "h-last", "eleventh")
		p = page(bob, 0)
		if len(p.ChatDatas) != 10 || !p.LoadMore {
			t.Fatalf("11, first page: %d items, load_more %v", len(p.ChatDatas), p.LoadMore)
		}
		p2 := page(bob, p.LastMessageID)
		if len(p2.ChatDatas) != 1 || p2.LoadMore || p2.ChatDatas[0].UniqueID != "h-last" || p2.ChatDatas[0].Sender != bob.uid {
			t.Fatalf("11, second page: %+v", p2)
		}
		if p3 := page(bob, p2.LastMessageID+1000); len(p3.ChatDatas) != 0 || p3.LoadMore {
			t.Fatalf("cursor past the end: %+v", p3)
		}
		// Members only.
		if _, err := carol.c.Messages(ctx, wire.LoadChatMsgReq{ThreadID: thread}); serverCode(err) != 1102 {
			t.Fatalf("non-member read a thread: %v", err)
		}
		// Threads paging: alice befriends 10 more users: 11 threads.
		for i := 0; i < 10; i++ {
			befriend(t, alice, ta.provisioned(t, fmt.Sprintf("f%d", i)), "", "")
		}
		t1, err := alice.c.Threads(ctx, wire.LoadChatThreadReq{})
		if err != nil || len(t1.Threads) != 10 || !t1.LoadMore {
			t.Fatalf("threads page 1: %d, load_more %v, %v", len(t1.Threads), t1.LoadMore, err)
		}
		t2, err := alice.c.Threads(ctx, wire.LoadChatThreadReq{ThreadID: wire.Int32(t1.NextLastID)})
		if err != nil || len(t2.Threads) != 1 || t2.LoadMore || t2.Threads[0].ThreadID <= t1.NextLastID {
			t.Fatalf("threads page 2: %+v %v", t2, err)
		}
	})
}

// Generation-1 and generation-2 requests on one server both get their fields.
func TestDurableBothGenerations(t *testing.T) {
	ta := startApp(t, backends()[0])
	ctx := ctxT(t)
	alice, bob := ta.provisioned(t, "alice"), ta.provisioned(t, "bob")
	befriend(t, alice, bob, "", "")
	// Generation 1: msgid items, no thread_id.
	raw, err := alice.c.CallRaw(ctx, wire.IDTextChatMsgReq, []byte(fmt.Sprintf(`{"fromuid":%d,"touid":%d,"text_array":[{"msgid":"g1","content":"old client"}]}`, alice.uid, bob.uid)))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	raw.Decode(&m)
	ta1 := m["text_array"].([]any)[0].(map[string]any)
	cd1 := m["chat_datas"].([]any)[0].(map[string]any)
	if ta1["msgid"] != "g1" || cd1["message_id"].(float64) <= 0 || m["thread_id"].(float64) <= 0 || cd1["chat_time"] == "" {
		t.Fatalf("gen-1 ACK: %s", raw.Body)
	}
	// Generation 2: thread_id and unique_id items.
	raw, err = alice.c.CallRaw(ctx, wire.IDTextChatMsgReq, []byte(fmt.Sprintf(`{"fromuid":%d,"touid":%d,"thread_id":%v,"text_array":[{"unique_id":"g2","content":"new client"}]}`, alice.uid, bob.uid, m["thread_id"])))
	if err != nil {
		t.Fatal(err)
	}
	m = nil
	raw.Decode(&m)
	cd2 := m["chat_datas"].([]any)[0].(map[string]any)
	if cd2["unique_id"] != "g2" || cd2["content"] != "new client" || m["text_array"] == nil {
		t.Fatalf("gen-2 ACK: %s", raw.Body)
	}
	// Pushes carry both sets too.
	got := collectTexts(t, bob.c, 2)
	if got[0].UniqueID != "g1" || got[1].UniqueID != "g2" {
		t.Fatalf("pushes: %+v", got)
	}
}
