package app_test

import (
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/imsrv/imsrv/app"
	"github.com/imsrv/imsrv/modules/chat/chatclient"
	"github.com/imsrv/imsrv/modules/chat/wire"
	ilog "github.com/imsrv/imsrv/platform/log"
)

// TestSplitCluster runs the production shape on PostgreSQL + Redis: one
// gate+verify+status process and chat nodes reaching status over gRPC and
// each other for delivery and kicks. chat-2 is a real imsrv process, so that
// it can be killed without any cleanup.
func TestSplitCluster(t *testing.T) {
	storage := backends()[1].env(t)  // PostgreSQL + Redis, or skip
	ttl := "IMSRV_STATUS_NODETTL=2s" // every process: chat nodes refresh at a third of it
	front := startAppWith(t, storage, "IMSRV_ROLES=gate,verify,status",
		"IMSRV_VERIFY_LISTEN=127.0.0.1:0", "IMSRV_STATUS_LISTEN=127.0.0.1:0", ttl)
	statusAddr := front.RPCAddr("status")
	if statusAddr == "" {
		t.Fatal("front offers no status gRPC listener")
	}
	chat1 := startAppWith(t, storage, "IMSRV_ROLES=chat", "IMSRV_PEERS_STATUS="+statusAddr, ttl)
	chat2Addr, kill2 := startChatProcess(t, storage, statusAddr, ttl)
	ctx := ctxT(t)

	alice := &chatUser{name: "alice", email: "alice" + randHex(3) + "@example.com", passwd: "secret-alice"}
	bob := &chatUser{name: "bob", email: "bob" + randHex(3) + "@example.com", passwd: "secret-bob"}
	for _, u := range []*chatUser{alice, bob} {
		front.register(t, u.name, u.email, u.passwd)
	}
	// alice logs in on chat-1; bob is then allocated the least-loaded node, chat-2.
	dialAs(t, front, alice, chat1.ChatAddr())
	uid, token, addr := front.gateLogin(t, bob.email, bob.passwd)
	if addr != chat2Addr {
		t.Fatalf("bob allocated %s, want the idle node chat-2 %s (chat-1 is %s)", addr, chat2Addr, chat1.ChatAdvertise())
	}
	bob.c, bob.uid = loginAt(t, addr, uid, token), uid

	// Friends and texts across nodes.
	befriend(t, alice, bob, "bobby", "ally")
	if _, err := alice.c.SendText(ctx, wire.TextChatMsgReq{ToUID: wire.Int32(bob.uid), TextArray: []wire.TextItem{{MsgID: "a1", Content: "跨节点"}}}); err != nil {
		t.Fatal(err)
	}
	if got := waitPush[wire.NotifyTextChatMsgReq](t, bob.c, wire.IDNotifyTextChatMsgReq); got.TextArray[0].Content != "跨节点" {
		t.Fatalf("bob got %+v", got)
	}
	if _, err := bob.c.SendText(ctx, wire.TextChatMsgReq{ToUID: wire.Int32(alice.uid), TextArray: []wire.TextItem{{MsgID: "b1", Content: "back"}}}); err != nil {
		t.Fatal(err)
	}
	waitPush[wire.NotifyTextChatMsgReq](t, alice.c, wire.IDNotifyTextChatMsgReq)

	// A duplicate login on the other node kicks across nodes, both ways.
	old := alice.c
	dialAs(t, front, alice, chat2Addr)
	waitPush[wire.NotifyOffLineReq](t, old, wire.IDNotifyOffLineReq)
	wantClosedClient(t, old)
	old = alice.c
	dialAs(t, front, alice, chat1.ChatAddr())
	waitPush[wire.NotifyOffLineReq](t, old, wire.IDNotifyOffLineReq)
	wantClosedClient(t, old)

	// chat-2 dies without any cleanup: bob's route goes stale. Sending to
	// him is acknowledged without error and black-holes nothing (he is
	// offline; stored delivery comes with durable messaging).
	kill2()
	if _, err := alice.c.SendText(ctx, wire.TextChatMsgReq{ToUID: wire.Int32(bob.uid), TextArray: []wire.TextItem{{MsgID: "a2", Content: "are you there?"}}}); err != nil {
		t.Fatalf("send to a user of a dead node: %v", err)
	}
	// Within the registry TTL the dead node leaves the registry, and from
	// then on it is never allocated.
	deadline := time.Now().Add(10 * time.Second)
	for nodeListed(t, front, chat2Addr) {
		if time.Now().After(deadline) {
			t.Fatal("the dead node is still registered long after its TTL")
		}
		time.Sleep(100 * time.Millisecond)
	}
	for i := 0; i < 5; i++ {
		if _, _, addr = front.gateLogin(t, bob.email, bob.passwd); addr == chat2Addr {
			t.Fatal("the dead node was allocated after it expired")
		}
	}
	dialAs(t, front, bob, chat1.ChatAddr())
	if _, err := alice.c.SendText(ctx, wire.TextChatMsgReq{ToUID: wire.Int32(bob.uid), TextArray: []wire.TextItem{{MsgID: "a3", Content: "welcome back"}}}); err != nil {
		t.Fatal(err)
	}
	waitPush[wire.NotifyTextChatMsgReq](t, bob.c, wire.IDNotifyTextChatMsgReq)

	// Drain: chat-1 shuts down gracefully (as on SIGTERM). It deregisters at
	// once, so its users log in again immediately and land on chat-3.
	chat3 := startAppWith(t, storage, "IMSRV_ROLES=chat", "IMSRV_PEERS_STATUS="+statusAddr, ttl)
	aliceOld, bobOld := alice.c, bob.c
	start := time.Now()
	chat1.Stop()
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("drain took %s", d)
	}
	wantClosedClient(t, aliceOld)
	wantClosedClient(t, bobOld)
	for _, u := range []*chatUser{alice, bob} {
		uid, token, addr := front.gateLogin(t, u.email, u.passwd)
		if addr != chat3.ChatAdvertise() {
			t.Fatalf("%s allocated %s after the drain, want chat-3 %s", u.name, addr, chat3.ChatAdvertise())
		}
		u.c, u.uid = loginAt(t, addr, uid, token), uid
	}
	if _, err := bob.c.SendText(ctx, wire.TextChatMsgReq{ToUID: wire.Int32(alice.uid), TextArray: []wire.TextItem{{MsgID: "b2", Content: "on chat-3"}}}); err != nil {
		t.Fatal(err)
	}
	waitPush[wire.NotifyTextChatMsgReq](t, alice.c, wire.IDNotifyTextChatMsgReq)
}

// dialAs logs u in through the gate, then at addr (whichever node was allocated).
func dialAs(t *testing.T, front *testApp, u *chatUser, addr string) {
	t.Helper()
	uid, token, _ := front.gateLogin(t, u.email, u.passwd)
	u.c, u.uid = loginAt(t, addr, uid, token), uid
}

func loginAt(t *testing.T, addr string, uid int32, token string) *chatclient.Client {
	t.Helper()
	ctx := ctxT(t)
	c, err := chatclient.Dial(ctx, addr, chatclient.WithHeartbeat(5*time.Second))
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.Login(ctx, uid, token); err != nil {
		t.Fatalf("login %d at %s: %v", uid, addr, err)
	}
	return c
}

// startChatProcess runs `imsrv serve --roles=chat` as a child process on the
// shared storage and returns its client address and a function that kills
// it with SIGKILL (no drain, no cleanup).
func startChatProcess(t *testing.T, storage []string, statusAddr string, extra ...string) (string, func()) {
	t.Helper()
	bin := cmdBuildBinary(t)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, app.EnvPrefix) || strings.HasPrefix(kv, "IMSRV_TEST_") {
			env = append(env, kv)
		}
	}
	name := "chat2-" + randHex(3)
	env = append(env, storage...)
	env = append(env, extra...)
	env = append(env, "IMSRV_LOG_FORMAT=json", "IMSRV_NODE_NAME="+name,
		"IMSRV_PEERS_STATUS="+statusAddr, "IMSRV_CHAT_LISTEN=127.0.0.1:0", "IMSRV_CHAT_RPCLISTEN=127.0.0.1:0")
	p := &cmdProc{cmd: exec.Command(bin, "serve", "--roles=chat"), done: make(chan struct{}), more: make(chan struct{})}
	p.cmd.Env = env
	p.cmd.Dir = t.TempDir()
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.collect(stderr)
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	kill := func() {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
	}
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			kill()
		}
	})
	running := p.waitLog(t, "imsrv running", 30*time.Second, func(m map[string]any) bool { return m["msg"] == "imsrv running" })
	addr, _ := running["chat"].(string)
	if _, _, err := net.SplitHostPort(addr); err != nil {
		t.Fatalf("chat process logged no chat address: %v", running)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		p.mu.Lock()
		registered := strings.Contains(strings.Join(p.raw, "\n"), "chat node registered")
		p.mu.Unlock()
		if registered {
			return addr, kill
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("chat process never registered; log:\n%s", p.log())
	return "", nil
}

// nodeListed reports whether a live node advertises addr.
func nodeListed(t *testing.T, a *testApp, addr string) bool {
	t.Helper()
	nodes, err := a.Status().Nodes(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if n.Addr == addr {
			return true
		}
	}
	return false
}

// Roles split over processes need shared storage: a clear start-up error
// names what is missing.
func TestSplitNeedsSharedStorage(t *testing.T) {
	for _, tc := range []struct {
		env  []string
		want string
	}{
		{[]string{"IMSRV_ROLES=chat", "IMSRV_PEERS_STATUS=127.0.0.1:1"}, "IMSRV_REDIS_URL"},
		{[]string{"IMSRV_ROLES=gate", "IMSRV_PEERS_VERIFY=127.0.0.1:1", "IMSRV_PEERS_STATUS=127.0.0.1:1",
			"IMSRV_REDIS_URL=redis://127.0.0.1:1"}, "IMSRV_DATABASE_URL"},
		{[]string{"IMSRV_ROLES=gate"}, "IMSRV_PEERS_VERIFY"},
		{[]string{"IMSRV_ROLES=gate,verify"}, "IMSRV_PEERS_STATUS"},
	} {
		cfg, err := app.Load(app.LoadOptions{Env: append(tc.env, "IMSRV_DATABASE_URL=sqlite://"+t.TempDir()+"/x.db")})
		if err != nil {
			t.Fatal(err)
		}
		a := app.New(cfg, ilog.Discard())
		err = a.Open(ctxT(t))
		a.Close()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want one naming %s", tc.env, err, tc.want)
		}
	}
}
