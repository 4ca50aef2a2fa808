// Package console is a line-oriented chat front end for a logged-in
// chatclient.Client: the interactive part of `imsrv client`, with which a
// person can try a server from a terminal.
//
// Each input line is a command (/search, /add, /approve, /to, /friends,
// /help, /quit) or a text for the chosen friend. Pushes from the server
// (friend applications, approvals, texts, a kick) are printed as they
// arrive, between the answers to commands. Output is written under one lock,
// whole lines at a time, and stripped of control characters so that text
// from other users cannot act on the terminal.
package console

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/imsrv/imsrv/modules/chat/chatclient"
	"github.com/imsrv/imsrv/modules/chat/wire"
)

// ErrKicked is returned by Run when the server ended the session because the
// same user logged in elsewhere (push 1021).
var ErrKicked = errors.New("console: logged in elsewhere")

// requestTimeout bounds each request a command sends.
const requestTimeout = 10 * time.Second

// maxLine is the longest input line Run accepts: a text longer than a frame
// body could not be sent anyway.
const maxLine = wire.MaxBodyLen

// Console is a chat session driven by lines of text. Create one with New and
// start it with Run.
type Console struct {
	client   *chatclient.Client
	selfUID  int32
	selfName string

	outMu sync.Mutex // serialises writes to out
	out   io.Writer

	mu      sync.Mutex        // guards the fields below
	friends map[int32]contact // by uid
	pending map[int32]string  // applicants' names by uid, awaiting /approve
	applied map[int32]string  // remarks given with /add, by uid, until approved
	peer    int32             // the partner texts go to; 0 = none chosen
}

// contact is a friend as the console shows it.
type contact struct {
	name   string
	remark string // the user's own name for the friend; may be empty
}

// New returns a console for c, which must have logged in; login is the
// answer to that login, from which the console takes the user's name, friends
// and pending friend applications. The console prints to out.
func New(c *chatclient.Client, login *wire.LoginRsp, out io.Writer) *Console {
	con := &Console{
		client:   c,
		selfUID:  login.UID,
		selfName: login.Name,
		out:      out,
		friends:  make(map[int32]contact, len(login.FriendList)),
		pending:  make(map[int32]string, len(login.ApplyList)),
		applied:  make(map[int32]string),
	}
	for _, f := range login.FriendList {
		con.friends[f.UID] = contact{name: f.Name, remark: f.Back}
	}
	for _, a := range login.ApplyList {
		con.pending[a.UID] = a.Name
	}
	return con
}

// Run prints a welcome, then executes the lines of in and prints the
// server's pushes until one of these ends the session:
//
//   - in ends or the user types /quit: Run returns nil;
//   - ctx ends: Run returns its cause;
//   - the user logs in elsewhere: Run prints a notice and returns ErrKicked;
//   - the connection ends otherwise: Run returns why;
//   - reading in fails: Run returns that error.
//
// Run does not close the client, and prints nothing once it has returned.
// When it returns before in has ended, a goroutine stays blocked reading in
// until in returns from its current Read; closing in (or exiting, for
// standard input) releases it. Run must not be called more than once.
func (c *Console) Run(ctx context.Context, in io.Reader) error {
	c.printWelcome()

	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer wg.Wait() // no output after Run returns
	defer close(stop)

	pushErr := make(chan error, 1)
	wg.Go(func() { pushErr <- c.printPushes(stop) })

	lines := make(chan string)
	inputErr := make(chan error, 1)
	go readLines(in, lines, inputErr, stop)

	for {
		select {
		case line := <-lines:
			if quit := c.execute(ctx, line); quit {
				return nil
			}
		case err := <-inputErr:
			return err
		case err := <-pushErr:
			return err
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

// readLines sends the lines of in to lines until in ends or stop is closed.
// When in ends it sends nil, or the error that ended it, to errc.
func readLines(in io.Reader, lines chan<- string, errc chan<- error, stop <-chan struct{}) {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 4096), maxLine)
	for sc.Scan() {
		select {
		case lines <- sc.Text():
		case <-stop:
			return
		}
	}
	if err := sc.Err(); err != nil {
		errc <- fmt.Errorf("console: read input: %w", err)
		return
	}
	errc <- nil
}

// printPushes prints the server's pushes until stop is closed or the
// connection ends, and then returns nil, ErrKicked after a 1021, or why the
// connection ended.
func (c *Console) printPushes(stop <-chan struct{}) error {
	for {
		select {
		case f, ok := <-c.client.Pushes():
			if !ok {
				return fmt.Errorf("console: disconnected: %w", c.client.Err())
			}
			if err := c.handlePush(f); err != nil {
				return err
			}
		case <-stop:
			return nil
		}
	}
}

// handlePush prints one push and records what it changes. It returns
// ErrKicked for a 1021 and nil otherwise; frames it does not know are
// ignored.
func (c *Console) handlePush(f wire.Frame) error {
	switch f.ID {
	case wire.IDNotifyAddFriendReq:
		var n wire.NotifyAddFriendReq
		if !c.decodePush(f, &n) {
			return nil
		}
		c.mu.Lock()
		c.pending[n.ApplyUID] = n.Name
		c.mu.Unlock()
		c.printf("friend application from %s (uid %d): /approve %d to accept", n.Name, n.ApplyUID, n.ApplyUID)

	case wire.IDNotifyAuthFriendReq:
		var n wire.NotifyAuthFriendReq
		if !c.decodePush(f, &n) {
			return nil
		}
		c.mu.Lock()
		c.friends[n.FromUID] = contact{name: n.Name, remark: c.applied[n.FromUID]}
		delete(c.applied, n.FromUID)
		delete(c.pending, n.FromUID)
		c.mu.Unlock()
		c.printf("%s (uid %d) accepted you: /to %d to chat", n.Name, n.FromUID, n.FromUID)

	case wire.IDNotifyTextChatMsgReq:
		var n wire.NotifyTextChatMsgReq
		if !c.decodePush(f, &n) {
			return nil
		}
		label := "[" + c.nameOf(n.FromUID) + "] "
		var lines []string
		for _, text := range texts(&n) {
			lines = append(lines, indentLines(label, text)...)
		}
		c.print(lines...)

	case wire.IDNotifyOffLineReq:
		c.printf("logged in elsewhere; disconnected")
		return ErrKicked
	}
	return nil
}

// decodePush decodes f into v, and reports a malformed push instead of
// failing the session.
func (c *Console) decodePush(f wire.Frame, v any) bool {
	if err := f.Decode(v); err != nil {
		c.printf("error: malformed %v push: %v", f.ID, err)
		return false
	}
	return true
}

// texts returns the contents of a text push: its generation-1 items or,
// when a server sent only those, its generation-2 ones.
func texts(n *wire.NotifyTextChatMsgReq) []string {
	var out []string
	for _, item := range n.TextArray {
		out = append(out, item.Content)
	}
	if len(out) == 0 {
		for _, d := range n.ChatDatas {
			out = append(out, d.Content)
		}
	}
	return out
}

// indentLines returns text as output lines, the first after prefix and the
// others aligned under it.
func indentLines(prefix, text string) []string {
	lines := strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n")
	indent := strings.Repeat(" ", utf8.RuneCountInString(prefix))
	for i := range lines {
		if i == 0 {
			lines[i] = prefix + lines[i]
		} else {
			lines[i] = indent + lines[i]
		}
	}
	return lines
}

// nameOf returns how to show uid: the name of a friend or applicant, else
// the uid.
func (c *Console) nameOf(uid int32) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f, ok := c.friends[uid]; ok && f.name != "" {
		return f.name
	}
	if name := c.pending[uid]; name != "" {
		return name
	}
	return strconv.Itoa(int(uid))
}

func (c *Console) printWelcome() {
	c.printf("welcome, %s (uid %d)", c.selfName, c.selfUID)
	c.printContacts()
	c.printf("type /help for the commands")
}

// printContacts prints the friends and the pending applications.
func (c *Console) printContacts() {
	c.mu.Lock()
	var lines []string
	if len(c.friends) == 0 {
		lines = append(lines, "no friends yet: /search and /add find some")
	} else {
		lines = append(lines, "friends:")
		for _, uid := range slices.Sorted(maps.Keys(c.friends)) {
			f := c.friends[uid]
			line := fmt.Sprintf("  %s (uid %d)", f.name, uid)
			if f.remark != "" {
				line += ", remark " + f.remark
			}
			if uid == c.peer {
				line += " <- chatting"
			}
			lines = append(lines, line)
		}
	}
	if len(c.pending) > 0 {
		lines = append(lines, "friend applications:")
		for _, uid := range slices.Sorted(maps.Keys(c.pending)) {
			lines = append(lines, fmt.Sprintf("  %s (uid %d): /approve %d to accept", c.pending[uid], uid, uid))
		}
	}
	c.mu.Unlock()
	c.print(lines...)
}

func (c *Console) printf(format string, args ...any) {
	c.print(fmt.Sprintf(format, args...))
}

// print writes lines, in one write under the output lock so that output
// from the pushes and from commands never interleaves within a line.
func (c *Console) print(lines ...string) {
	var b strings.Builder
	for _, line := range lines {
		b.WriteString(printable(line))
		b.WriteByte('\n')
	}
	c.outMu.Lock()
	defer c.outMu.Unlock()
	_, _ = io.WriteString(c.out, b.String()) // nothing better to do on a failed terminal
}

// printable replaces with U+FFFD the characters of s that a terminal acts on
// rather than shows: control characters other than tab (newlines included,
// so that no one can fake a line of output) and bidirectional-text controls.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r != '\t' && (unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r)) {
			return unicode.ReplacementChar
		}
		return r
	}, s)
}
