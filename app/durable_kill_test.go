package app_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/imsrv/imsrv/app"
	"github.com/imsrv/imsrv/modules/chat/chatclient"
	"github.com/imsrv/imsrv/modules/chat/wire"
)

const killAdminToken = "kill-test-admin-token-0123456789"

// imsrvProcess runs `imsrv all` as a child process on the SQLite file in dir
// and returns its gate URL, chat address and a SIGKILL.
func imsrvProcess(t *testing.T, bin, dir string) (gate, chat string, kill func()) {
	t.Helper()
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, app.EnvPrefix) || strings.HasPrefix(kv, "IMSRV_TEST_") {
			env = append(env, kv)
		}
	}
	env = append(env, "IMSRV_LOG_FORMAT=json", "IMSRV_NODE_NAME=kill-"+randHex(3),
		"IMSRV_DATABASE_URL=sqlite://"+filepath.Join(dir, "imsrv.db"), "IMSRV_ADMIN_TOKEN="+killAdminToken,
		"IMSRV_GATE_LISTEN=127.0.0.1:0", "IMSRV_CHAT_LISTEN=127.0.0.1:0", "IMSRV_CHAT_RPCLISTEN=127.0.0.1:0")
	p := &cmdProc{cmd: exec.Command(bin, "all"), done: make(chan struct{}), more: make(chan struct{})}
	p.cmd.Env, p.cmd.Dir = env, dir
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.collect(stderr); p.err = p.cmd.Wait(); close(p.done) }()
	kill = func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Signal(syscall.SIGKILL)
			<-p.done
		}
	}
	t.Cleanup(kill)
	running := p.waitLog(t, "imsrv running", 30*time.Second, func(m map[string]any) bool { return m["msg"] == "imsrv running" })
	p.waitLog(t, "chat node registered", 10*time.Second, func(m map[string]any) bool { return m["msg"] == "chat node registered" })
	return "http://" + running["gate"].(string), running["chat"].(string), kill
}

func adminPost(t *testing.T, gate, path string, body any, out any) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, gate+path, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+killAdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func adminLogin(t *testing.T, gate, chat string, uid int32) *chatclient.Client {
	t.Helper()
	var out struct {
		Logins []struct {
			Error int    `json:"error"`
			Token string `json:"token"`
		} `json:"logins"`
	}
	adminPost(t, gate, "/admin/login", map[string]any{"uids": []int32{uid}}, &out)
	if len(out.Logins) != 1 || out.Logins[0].Error != 0 {
		t.Fatalf("admin login %d: %+v", uid, out)
	}
	return loginAt(t, chat, uid, out.Logins[0].Token)
}

// Kill the chat node (no drain) while messages flow: every message whose
// ACK the sender saw is delivered to the receiver after it reconnects to
// the restarted node.
func TestDurableNodeKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary; skipped with -short")
	}
	bin := cmdBuildBinary(t)
	dir := t.TempDir()
	gate, chat, kill := imsrvProcess(t, bin, dir)

	var created struct {
		Users []struct {
			Error int   `json:"error"`
			UID   int32 `json:"uid"`
		} `json:"users"`
	}
	adminPost(t, gate, "/admin/users", map[string]any{"users": []map[string]string{
		{"user": "alice", "email": "alice@example.com"}, {"user": "bob", "email": "bob@example.com"},
	}}, &created)
	if len(created.Users) != 2 || created.Users[0].Error != 0 || created.Users[1].Error != 0 {
		t.Fatalf("provision: %+v", created)
	}
	alice := &chatUser{name: "alice", uid: created.Users[0].UID}
	bob := &chatUser{name: "bob", uid: created.Users[1].UID}
	alice.c, bob.c = adminLogin(t, gate, chat, alice.uid), adminLogin(t, gate, chat, bob.uid)
	befriend(t, alice, bob, "", "")

	var mu sync.Mutex
	acked := map[string]bool{}
	received := map[string]bool{}
	recvDone := make(chan struct{})
	go func() { // bob reads until his connection dies with the node
		defer close(recvDone)
		for f := range bob.c.Pushes() {
			var p wire.NotifyTextChatMsgReq
			if f.ID == wire.IDNotifyTextChatMsgReq && f.Decode(&p) == nil {
				mu.Lock()
				for _, cd := range p.ChatDatas {
					received[cd.UniqueID] = true
				}
				mu.Unlock()
			}
		}
	}()
	sendDone := make(chan struct{})
	go func() { // alice sends until the node dies
		defer close(sendDone)
		for i := 0; ; i++ {
			id := fmt.Sprintf("k-%d", i)
			ack, err := alice.c.SendText(ctxT(t), wire.TextChatMsgReq{ToUID: wire.Int32(bob.uid), TextArray: []wire.TextItem{{MsgID: id, Content: id}}})
			if err != nil {
				return
			}
			if ack.Error == 0 {
				mu.Lock()
				acked[id] = true
				mu.Unlock()
			}
		}
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 300 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	kill()
	<-sendDone
	bob.c.Close()
	<-recvDone
	mu.Lock()
	if len(acked) == 0 {
		t.Fatal("nothing was acknowledged before the kill")
	}
	var missing []string
	for id := range acked {
		if !received[id] {
			missing = append(missing, id)
		}
	}
	mu.Unlock()

	// Restart on the same database; bob logs in and gets what he missed.
	gate, chat, _ = imsrvProcess(t, bin, dir)
	bob.c = adminLogin(t, gate, chat, bob.uid)
	want := map[string]bool{}
	for _, id := range missing {
		want[id] = true
	}
	replayDeadline := time.Now().Add(20 * time.Second)
	for len(want) > 0 && time.Now().Before(replayDeadline) {
		p := waitPush[wire.NotifyTextChatMsgReq](t, bob.c, wire.IDNotifyTextChatMsgReq)
		for _, cd := range p.ChatDatas {
			delete(want, cd.UniqueID)
		}
	}
	if len(want) > 0 {
		t.Fatalf("%d acknowledged messages never delivered (of %d acknowledged, %d missing before the restart)", len(want), len(acked), len(missing))
	}
	t.Logf("%d acknowledged before the kill; %d had not reached bob and were delivered after the restart", len(acked), len(missing))
}
