package app_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imsrv/imsrv/app"
	"github.com/imsrv/imsrv/modules/chat/chatclient/console"
)

// clientOutput is an io.Writer safe for concurrent use whose readers can
// wait for a string to appear.
type clientOutput struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	more chan struct{} // closed and replaced on every write
}

func newClientOutput() *clientOutput {
	return &clientOutput{more: make(chan struct{})}
}

func (o *clientOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	close(o.more)
	o.more = make(chan struct{})
	return o.buf.Write(p)
}

func (o *clientOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// waitFor waits until the output contains want.
func (o *clientOutput) waitFor(t *testing.T, who, want string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		o.mu.Lock()
		found, more := strings.Contains(o.buf.String(), want), o.more
		o.mu.Unlock()
		if found {
			return
		}
		select {
		case <-more:
		case <-timeout:
			t.Fatalf("%s's output has no %q:\n%s", who, want, o)
		}
	}
}

// clientSession is a console.Console running on a pipe.
type clientSession struct {
	name string
	in   *io.PipeWriter
	out  *clientOutput
	done chan error // Run's result
}

// startConsole runs a console for u, logged in with the Go client, until the
// test ends.
func startConsole(t *testing.T, u *chatUser) *clientSession {
	t.Helper()
	inR, inW := io.Pipe()
	s := &clientSession{name: u.name, in: inW, out: newClientOutput(), done: make(chan error, 1)}
	con := console.New(u.c, u.login, s.out)
	go func() {
		err := con.Run(context.Background(), inR)
		inR.CloseWithError(errors.New("console ended")) // later writes fail rather than block
		s.done <- err
	}()
	t.Cleanup(func() {
		inW.Close()
		s.wait(t)
	})
	return s
}

// typeLine types one line into the console.
func (s *clientSession) typeLine(t *testing.T, line string) {
	t.Helper()
	if _, err := io.WriteString(s.in, line+"\n"); err != nil {
		t.Fatalf("%s types %q: %v", s.name, line, err)
	}
}

// expect waits for want in the console's output.
func (s *clientSession) expect(t *testing.T, want string) {
	t.Helper()
	s.out.waitFor(t, s.name, want)
}

// wait returns what Run returned, once it has.
func (s *clientSession) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-s.done:
		s.done <- err // for a later wait
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("%s's console did not end", s.name)
		return nil
	}
}

func TestClientConsole(t *testing.T) {
	ta := startApp(t, backends()[0])
	alice, bob, carol := ta.newChatUser(t, "alice"), ta.newChatUser(t, "bob"), ta.newChatUser(t, "carol")
	a, b := startConsole(t, alice), startConsole(t, bob)
	a.expect(t, fmt.Sprintf("welcome, alice (uid %d)", alice.uid))
	a.expect(t, "no friends yet")
	b.expect(t, fmt.Sprintf("welcome, bob (uid %d)", bob.uid))

	// Mistakes are explained, not sent.
	a.typeLine(t, "hello?")
	a.expect(t, "no chat partner: choose one with /to <uid>")
	a.typeLine(t, "/add bob")
	a.expect(t, "usage: /add <uid> [remark]")
	a.typeLine(t, "/frobnicate")
	a.expect(t, "unknown command /frobnicate")

	// Search by name and by uid; an unknown user is a server error.
	a.typeLine(t, "/search bob")
	a.expect(t, fmt.Sprintf("bob (uid %d): /add %d to apply", bob.uid, bob.uid))
	a.typeLine(t, fmt.Sprintf("/search %d", carol.uid))
	a.expect(t, fmt.Sprintf("carol (uid %d)", carol.uid))
	a.typeLine(t, "/search nobody-here")
	a.expect(t, "error 1011: uid invalid")

	// Application, approval, each side with its own remark.
	a.typeLine(t, fmt.Sprintf("/add %d bobby", bob.uid))
	a.expect(t, fmt.Sprintf("friend application sent to uid %d", bob.uid))
	b.expect(t, fmt.Sprintf("friend application from alice (uid %d): /approve %d to accept", alice.uid, alice.uid))
	b.typeLine(t, fmt.Sprintf("/approve %d ally", alice.uid))
	b.expect(t, fmt.Sprintf("alice (uid %d) is your friend now", alice.uid))
	a.expect(t, fmt.Sprintf("bob (uid %d) accepted you", bob.uid))
	a.typeLine(t, "/friends")
	a.expect(t, fmt.Sprintf("bob (uid %d), remark bobby", bob.uid))
	b.typeLine(t, "/friends")
	b.expect(t, fmt.Sprintf("alice (uid %d), remark ally", alice.uid))

	// Texts both ways.
	a.typeLine(t, fmt.Sprintf("/to %d", bob.uid))
	a.expect(t, fmt.Sprintf("chatting with bob (uid %d)", bob.uid))
	a.typeLine(t, "你好 bob")
	b.expect(t, "[alice] 你好 bob")
	b.typeLine(t, fmt.Sprintf("/to %d", alice.uid))
	b.typeLine(t, "hi alice")
	a.expect(t, "[bob] hi alice")

	// A text to someone who is not a friend is refused by the server.
	a.typeLine(t, fmt.Sprintf("/to %d", carol.uid))
	a.expect(t, "who is not your friend")
	a.typeLine(t, "spam")
	a.expect(t, "error 1102: forbidden")

	// /quit and the end of input both end a console cleanly.
	a.typeLine(t, "/quit")
	if err := a.wait(t); err != nil {
		t.Errorf("alice's console after /quit: %v", err)
	}
	b.in.Close()
	if err := b.wait(t); err != nil {
		t.Errorf("bob's console at the end of input: %v", err)
	}
}

func TestClientConsoleKicked(t *testing.T) {
	ta := startApp(t, backends()[0])
	dave := ta.newChatUser(t, "dave")
	d := startConsole(t, dave)
	d.expect(t, "welcome, dave")

	ta.chatLogin(t, dave) // a second login elsewhere
	d.expect(t, "logged in elsewhere; disconnected")
	if err := d.wait(t); !errors.Is(err, console.ErrKicked) {
		t.Errorf("Run after a kick = %v, want console.ErrKicked", err)
	}
}

// TestClientCommand runs `imsrv client` in-process against a running server.
func TestClientCommand(t *testing.T) {
	ta := startApp(t, backends()[0])
	const passwd = "secret-erin"
	email := "erin-" + randHex(3) + "@example.com"
	uid := ta.register(t, "erin", email, passwd)

	t.Run("wrong password", func(t *testing.T) {
		t.Setenv("IMSRV_CLIENT_PASSWORD", "")
		var stdout, stderr bytes.Buffer
		code := app.Main(t.Context(), "test", []string{"client", "--gate", ta.URL, "--email", email, "--password", "wrong-password"}, &stdout, &stderr)
		if code != 1 || !strings.Contains(stderr.String(), "error 1009: wrong email or password") {
			t.Fatalf("exit %d, stderr %q; want 1 and error 1009", code, stderr.String())
		}
	})
	t.Run("wrong password from the environment", func(t *testing.T) {
		t.Setenv("IMSRV_CLIENT_PASSWORD", "wrong-password")
		var stdout, stderr bytes.Buffer
		code := app.Main(t.Context(), "test", []string{"client", "--gate", ta.URL, "--email", email}, &stdout, &stderr)
		if code != 1 || !strings.Contains(stderr.String(), "1009") {
			t.Fatalf("exit %d, stderr %q; want 1 and error 1009", code, stderr.String())
		}
	})
	t.Run("usage errors", func(t *testing.T) {
		t.Setenv("IMSRV_CLIENT_PASSWORD", passwd)
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"client"}, `"email" not set`},
			{[]string{"client", "--email", email, "--gate", "ftp://example.com"}, "--gate"},
		} {
			var stdout, stderr bytes.Buffer
			if code := app.Main(t.Context(), "test", tc.args, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("%q: exit %d, stderr %q; want 1 and %q", tc.args, code, stderr.String(), tc.want)
			}
		}
	})
	t.Run("session", func(t *testing.T) {
		t.Setenv("IMSRV_CLIENT_PASSWORD", passwd)
		inR, inW := io.Pipe()
		defer inW.Close()
		out := newClientOutput()
		root := app.NewRootCommand("test")
		root.SetArgs([]string{"client", "--gate", strings.TrimPrefix(ta.URL, "http://"), "--email", email})
		root.SetIn(inR)
		root.SetOut(out)
		root.SetErr(out)
		done := make(chan error, 1)
		go func() { done <- root.ExecuteContext(t.Context()) }()

		out.waitFor(t, "erin", fmt.Sprintf("welcome, erin (uid %d)", uid))
		if _, err := io.WriteString(inW, "/help\n"); err != nil {
			t.Fatal(err)
		}
		out.waitFor(t, "erin", "/approve <uid> [remark]")

		// Logging in elsewhere ends the session without an error.
		erin := &chatUser{name: "erin", email: email, passwd: passwd}
		ta.chatLogin(t, erin)
		out.waitFor(t, "erin", "logged in elsewhere; disconnected")
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("client after a kick: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("client did not exit after a kick")
		}
	})
}
