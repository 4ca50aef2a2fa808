package console

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"

	"github.com/imsrv/imsrv/modules/chat/chatclient"
	"github.com/imsrv/imsrv/modules/chat/wire"
	"github.com/imsrv/imsrv/modules/errcode"
)

const help = `commands:
  /search <uid-or-name>    look a user up
  /add <uid> [remark]      apply to become friends; remark is your name for them
  /approve <uid> [remark]  accept a friend application
  /to <uid>                choose the friend your lines go to
  /friends                 list your friends and friend applications
  /help                    show this help
  /quit                    leave (so does the end of input)
any other line is sent as a text to the chosen friend`

// userError is a mistake in what the user typed. It is shown as it is.
type userError string

func (e userError) Error() string { return string(e) }

// execute runs one input line and prints its result. It reports whether the
// line asks to quit.
func (c *Console) execute(ctx context.Context, line string) (quit bool) {
	line = strings.TrimSpace(line)
	if line == "" {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	if !strings.HasPrefix(line, "/") {
		c.report(c.sendText(ctx, line))
		return false
	}
	name, args := cutWord(line)
	var err error
	switch name {
	case "/search":
		err = c.search(ctx, args)
	case "/add":
		err = c.add(ctx, args)
	case "/approve":
		err = c.approve(ctx, args)
	case "/to":
		err = c.choosePeer(args)
	case "/friends":
		c.printContacts()
	case "/help":
		c.print(strings.Split(help, "\n")...)
	case "/quit":
		return true
	default:
		err = userError("unknown command " + name + ": /help lists the commands")
	}
	c.report(err)
	return false
}

// report prints err, if any: a server error as its code and meaning, a
// mistake of the user's as it is, anything else (a timeout, a broken
// connection) prefixed with "error:".
func (c *Console) report(err error) {
	if err == nil {
		return
	}
	if uerr, ok := errors.AsType[userError](err); ok {
		c.print(string(uerr))
		return
	}
	if serr, ok := errors.AsType[*chatclient.ServerError](err); ok {
		c.printf("error %d: %s", serr.Code, errcode.Code(serr.Code).Message())
		return
	}
	c.printf("error: %v", err)
}

// search looks up a user by uid or name (1007).
func (c *Console) search(ctx context.Context, args string) error {
	if args == "" {
		return userError("usage: /search <uid-or-name>")
	}
	u, err := c.client.Search(ctx, args)
	if err != nil {
		return err
	}
	line := fmt.Sprintf("%s (uid %d)", u.Name, u.UID)
	if u.Nick != "" && u.Nick != u.Name {
		line += ", nick " + u.Nick
	}
	if u.Desc != "" {
		line += ": " + u.Desc
	}
	c.mu.Lock()
	_, friend := c.friends[u.UID]
	c.mu.Unlock()
	switch {
	case u.UID == c.selfUID:
		line += " (you)"
	case friend:
		line += fmt.Sprintf(", your friend: /to %d to chat", u.UID)
	default:
		line += fmt.Sprintf(": /add %d to apply", u.UID)
	}
	c.print(line)
	return nil
}

// add applies to become a user's friend (1009).
func (c *Console) add(ctx context.Context, args string) error {
	uid, remark, err := parseUIDArgs(args, "usage: /add <uid> [remark]")
	if err != nil {
		return err
	}
	// Older llfc clients show applyname as the applicant's name, the newer
	// one as a greeting; the name reads well as either.
	req := wire.AddFriendReq{ToUID: wire.Int32(uid), ApplyName: c.selfName, BakName: remark}
	if _, err := c.client.AddFriend(ctx, req); err != nil {
		return err
	}
	c.mu.Lock()
	c.applied[uid] = remark
	c.mu.Unlock()
	c.printf("friend application sent to uid %d", uid)
	return nil
}

// approve accepts a friend application (1013).
func (c *Console) approve(ctx context.Context, args string) error {
	uid, remark, err := parseUIDArgs(args, "usage: /approve <uid> [remark]")
	if err != nil {
		return err
	}
	rsp, err := c.client.AuthFriend(ctx, wire.AuthFriendReq{ToUID: wire.Int32(uid), Back: remark})
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.friends[uid] = contact{name: rsp.Name, remark: remark}
	delete(c.pending, uid)
	c.mu.Unlock()
	c.printf("%s (uid %d) is your friend now: /to %d to chat", rsp.Name, uid, uid)
	return nil
}

// choosePeer makes uid the partner that texts go to.
func (c *Console) choosePeer(args string) error {
	uid, rest, err := parseUIDArgs(args, "usage: /to <uid>")
	if err != nil {
		return err
	}
	if rest != "" {
		return userError("usage: /to <uid>")
	}
	c.mu.Lock()
	c.peer = uid
	f, friend := c.friends[uid]
	c.mu.Unlock()
	if !friend {
		c.printf("chatting with uid %d, who is not your friend: texts will be refused until one of you approves the other", uid)
		return nil
	}
	c.printf("chatting with %s (uid %d): type a line to send it", f.name, uid)
	return nil
}

// sendText sends text to the chosen partner (1017).
func (c *Console) sendText(ctx context.Context, text string) error {
	c.mu.Lock()
	peer := c.peer
	c.mu.Unlock()
	if peer == 0 {
		return userError("no chat partner: choose one with /to <uid>")
	}
	_, err := c.client.SendText(ctx, wire.TextChatMsgReq{
		ToUID:     wire.Int32(peer),
		TextArray: []wire.TextItem{{MsgID: newMsgID(), Content: text}},
	})
	return err
}

// newMsgID returns a random client message id.
func newMsgID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails
	return hex.EncodeToString(b[:])
}

// parseUIDArgs splits "<uid> [rest]" and parses the uid; usage is the error
// for a missing or invalid uid.
func parseUIDArgs(args, usage string) (uid int32, rest string, err error) {
	word, rest := cutWord(args)
	n, err := strconv.ParseInt(word, 10, 32)
	if err != nil || n <= 0 {
		return 0, "", userError(usage)
	}
	return int32(n), rest, nil
}

// cutWord splits s, trimmed, at its first run of white space.
func cutWord(s string) (word, rest string) {
	s = strings.TrimSpace(s)
	i := strings.IndexFunc(s, unicode.IsSpace)
	if i < 0 {
		return s, ""
	}
	return s[:i], strings.TrimSpace(s[i:])
}
