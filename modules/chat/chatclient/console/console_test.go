package console

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imsrv/imsrv/modules/chat/chatclient"
	"github.com/imsrv/imsrv/modules/chat/wire"
)

// fakeServer is the server end of a client's net.Pipe.
type fakeServer struct {
	t    *testing.T
	conn net.Conn
	mu   sync.Mutex // serialises writes
}

// newFakeServer returns a console for alice (uid 1001), who has a friend bob
// (1002) and an application from carol (1003), connected to a fake server
// that answers each request f with the body answer(f). Read the console's
// output once Run has returned.
func newFakeServer(t *testing.T, answer func(f wire.Frame) any) (*Console, *fakeServer, *strings.Builder) {
	t.Helper()
	clientEnd, serverEnd := net.Pipe()
	s := &fakeServer{t: t, conn: serverEnd}
	c := chatclient.New(clientEnd)
	t.Cleanup(func() { c.Close() })
	go func() {
		r := wire.NewReader(serverEnd, 0)
		for {
			f, err := r.ReadFrame()
			if err != nil {
				return
			}
			rspID, _ := f.ID.Response()
			s.push(rspID, answer(f))
		}
	}()
	login := &wire.LoginRsp{
		UID: 1001, Name: "alice",
		FriendList: []wire.Friend{{UID: 1002, Name: "bob", Back: "bobby"}},
		ApplyList:  []wire.ApplyInfo{{UID: 1003, Name: "carol"}},
	}
	out := new(strings.Builder)
	return New(c, login, out), s, out
}

func (s *fakeServer) push(id wire.MsgID, body any) {
	frame, err := wire.EncodeFrame(id, body)
	if err != nil {
		s.t.Error(err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, _ = s.conn.Write(frame) // fails once the client is closed
}

func ok(wire.Frame) any { return map[string]int{"error": 0} }

const welcome = `welcome, alice (uid 1001)
friends:
  bob (uid 1002), remark bobby
friend applications:
  carol (uid 1003): /approve 1003 to accept
type /help for the commands
`

func runWithTimeout(t *testing.T, con *Console, in io.Reader) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	return con.Run(ctx, in)
}

func TestCommands(t *testing.T) {
	var sent []wire.TextChatMsgReq // written by the server goroutine, read after Run
	var mu sync.Mutex
	con, _, out := newFakeServer(t, func(f wire.Frame) any {
		switch f.ID {
		case wire.IDTextChatMsgReq:
			var req wire.TextChatMsgReq
			_ = f.Decode(&req)
			mu.Lock()
			sent = append(sent, req)
			mu.Unlock()
			if req.ToUID != 1002 {
				return wire.TextChatMsgRsp{Error: 1102}
			}
		case wire.IDAuthFriendReq:
			return wire.AuthFriendRsp{UID: 1003, Name: "carol"}
		case wire.IDSearchUserReq:
			return wire.SearchUserRsp{UID: 1004, Name: "dave", Desc: "hi\x1b[2J"}
		}
		return ok(f)
	})
	in := strings.NewReader(strings.Join([]string{
		"hello",
		"/to",
		"/to bob",
		"/to 1004",
		"spam",
		"/to 1002 ",
		"  你好  ",
		"",
		"/search dave",
		"/approve 1003 caz",
		"/friends",
		"/nope",
		"/quit",
		"not executed",
	}, "\n"))
	if err := runWithTimeout(t, con, in); err != nil {
		t.Fatalf("Run = %v", err)
	}
	want := welcome + `no chat partner: choose one with /to <uid>
usage: /to <uid>
usage: /to <uid>
chatting with uid 1004, who is not your friend: texts will be refused until one of you approves the other
error 1102: forbidden
chatting with bob (uid 1002): type a line to send it
dave (uid 1004): hi` + "\uFFFD" + `[2J: /add 1004 to apply
carol (uid 1003) is your friend now: /to 1003 to chat
friends:
  bob (uid 1002), remark bobby <- chatting
  carol (uid 1003), remark caz
unknown command /nope: /help lists the commands
`
	if got := out.String(); got != want {
		t.Errorf("output:\n%s\nwant:\n%s", got, want)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(sent) != 2 {
		t.Fatalf("sent %d texts, want 2", len(sent))
	}
	if item := sent[1].TextArray[0]; sent[1].ToUID != 1002 || item.Content != "你好" || len(item.MsgID) != 16 || item.MsgID == sent[0].TextArray[0].MsgID {
		t.Errorf("sent %+v, want 你好 to 1002 with a fresh msgid", sent[1])
	}
}

func TestPushes(t *testing.T) {
	con, srv, out := newFakeServer(t, ok)
	in, inW := io.Pipe()
	defer inW.Close()
	go func() {
		srv.push(wire.IDNotifyAddFriendReq, wire.NotifyAddFriendReq{ApplyUID: 1005, Name: "erin"})
		srv.push(wire.IDNotifyAuthFriendReq, wire.NotifyAuthFriendReq{FromUID: 1006, Name: "frank"})
		srv.push(wire.IDNotifyTextChatMsgReq, wire.NotifyTextChatMsgReq{FromUID: 1002, TextArray: []wire.TextItem{
			{Content: "one"}, {Content: "two\r\nlines\x1b]0;pwned\a"},
		}})
		srv.push(wire.IDNotifyTextChatMsgReq, wire.NotifyTextChatMsgReq{FromUID: 1005, ChatDatas: []wire.TextChatData{{Content: "gen 2"}}})
		srv.push(wire.IDNotifyTextChatMsgReq, wire.NotifyTextChatMsgReq{FromUID: 1999, TextArray: []wire.TextItem{{Content: "who?"}}})
		srv.push(4242, map[string]int{"error": 0})    // unknown: ignored
		srv.push(wire.IDNotifyAddFriendReq, []int{1}) // malformed
		srv.push(wire.IDNotifyOffLineReq, wire.NotifyOffLineReq{UID: 1001})
	}()
	if err := runWithTimeout(t, con, in); !errors.Is(err, ErrKicked) {
		t.Fatalf("Run = %v, want ErrKicked", err)
	}
	got := out.String()
	want := welcome + `friend application from erin (uid 1005): /approve 1005 to accept
frank (uid 1006) accepted you: /to 1006 to chat
[bob] one
[bob] two
      lines` + "\uFFFD]0;pwned\uFFFD" + `
[erin] gen 2
[1999] who?
error: malformed ID_NOTIFY_ADD_FRIEND_REQ push: `
	if !strings.HasPrefix(got, want) || !strings.HasSuffix(got, "\nlogged in elsewhere; disconnected\n") {
		t.Errorf("output:\n%s\nwant:\n%s...\nlogged in elsewhere; disconnected", got, want)
	}
}

func TestRunEnds(t *testing.T) {
	t.Run("connection closed", func(t *testing.T) {
		con, srv, _ := newFakeServer(t, ok)
		in, inW := io.Pipe()
		defer inW.Close()
		srv.conn.Close()
		if err := runWithTimeout(t, con, in); !errors.Is(err, io.EOF) {
			t.Errorf("Run = %v, want io.EOF", err)
		}
	})
	t.Run("context", func(t *testing.T) {
		con, _, _ := newFakeServer(t, ok)
		in, inW := io.Pipe()
		defer inW.Close()
		ctx, cancel := context.WithCancelCause(t.Context())
		stop := errors.New("stop")
		cancel(stop)
		if err := con.Run(ctx, in); !errors.Is(err, stop) {
			t.Errorf("Run = %v, want the context's cause", err)
		}
	})
	t.Run("line too long", func(t *testing.T) {
		con, _, _ := newFakeServer(t, ok)
		in := strings.NewReader(strings.Repeat("x", maxLine+1) + "\n")
		if err := runWithTimeout(t, con, in); !errors.Is(err, bufio.ErrTooLong) {
			t.Errorf("Run = %v, want bufio.ErrTooLong", err)
		}
	})
}

func TestPrintable(t *testing.T) {
	for in, want := range map[string]string{
		"你好 bob":          "你好 bob",
		"a\tb":            "a\tb",
		"a\nb\rc":         "a\uFFFDb\uFFFDc",
		"\x1b[31mred":     "\uFFFD[31mred",
		"\u202eevil":      "\uFFFDevil",
		"bad \xff utf-8":  "bad \uFFFD utf-8",
		"\u0085next line": "\uFFFDnext line",
	} {
		if got := printable(in); got != want {
			t.Errorf("printable(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCutWord(t *testing.T) {
	for _, tc := range []struct{ in, word, rest string }{
		{"", "", ""},
		{"/to", "/to", ""},
		{"  /add  1002   my  friend ", "/add", "1002   my  friend"},
		{"/add\t1002", "/add", "1002"},
	} {
		if word, rest := cutWord(tc.in); word != tc.word || rest != tc.rest {
			t.Errorf("cutWord(%q) = %q, %q; want %q, %q", tc.in, word, rest, tc.word, tc.rest)
		}
	}
}
