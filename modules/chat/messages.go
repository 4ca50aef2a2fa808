package chat

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/imsrv/imsrv/modules/chat/msgstore"
	"github.com/imsrv/imsrv/modules/chat/wire"
	"github.com/imsrv/imsrv/modules/errcode"
)

// Durable messaging. A text is committed (group commit, msgstore) before its
// 1018 ACK, which carries the server message_id, the thread_id and the
// message's seq in its thread; a store failure is reported in the ACK, never
// success. A message stays "undelivered" for its receiver until confirmed:
// explicitly with 1100 by clients that declare the "confirm" capability, or,
// for llfc clients, implicitly by the first heartbeat read after the push was
// written. Everything unconfirmed is pushed again right after the receiver's
// next login, in order, before any newer live message. A resent client id
// (msgid / unique_id) from the same sender yields the stored message again
// and is not pushed a second time.

// MessageStore is the chat module's view of durable messages
// (*msgstore.Store satisfies it).
type MessageStore interface {
	Append(ctx context.Context, drafts []msgstore.Draft) ([]msgstore.Message, error)
	PrivateThread(ctx context.Context, a, b int32) (msgstore.Thread, error)
	Threads(ctx context.Context, uid int32, afterID int64, limit int) ([]msgstore.Thread, bool, error)
	Messages(ctx context.Context, uid int32, threadID, afterID int64, limit int) ([]msgstore.Message, bool, error)
	UndeliveredAfter(ctx context.Context, uid int32, afterID int64, limit int) ([]msgstore.Message, error)
	Confirm(ctx context.Context, uid int32, threadID, seq int64) error
}

var _ MessageStore = (*msgstore.Store)(nil)

const (
	// pageSize is the page of 1026 and 1030, as the llfc clients expect.
	pageSize = 10
	// replayPage is how many undelivered messages a login loads per query.
	replayPage = 500
	// statusStored is chat_datas[].status of a message the server stored.
	statusStored = 1
	// friendsNow is the approver's first message in a new private thread.
	friendsNow = "We are friends now!"
)

func chatTime(ms int64) string { return time.UnixMilli(ms).Format(wire.ChatTimeLayout) }

func textData(m msgstore.Message) wire.TextChatData {
	return wire.TextChatData{
		MessageID: int32(m.ID), UniqueID: m.ClientID, Content: m.Content,
		Status: statusStored, ChatTime: chatTime(m.CreatedAt), Seq: m.Seq,
	}
}

func threadMessage(m msgstore.Message) wire.ThreadMessage {
	return wire.ThreadMessage{
		Sender: m.Sender, MsgID: int32(m.ID), ThreadID: int32(m.ThreadID), UniqueID: m.ClientID,
		MsgContent: m.Content, ChatTime: chatTime(m.CreatedAt), Status: statusStored,
	}
}

// clientID is the sender's id for a text item: unique_id (generation 2) or
// msgid (generation 1). Items without one get a server id (no idempotency).
func clientID(it wire.TextItem) string {
	switch {
	case it.UniqueID != "":
		return it.UniqueID
	case it.MsgID != "":
		return it.MsgID
	}
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "srv-" + hex.EncodeToString(b[:])
}

// textDrafts turns a 1017's items into drafts, with each item's client id.
func textDrafts(uid, to int32, items []wire.TextItem) []msgstore.Draft {
	drafts := make([]msgstore.Draft, len(items))
	for i, it := range items {
		drafts[i] = msgstore.Draft{Sender: uid, Receiver: to, ClientID: clientID(it), Content: it.Content}
	}
	return drafts
}

// answerFits reports whether the ACK for these drafts fits in a frame. The
// ACK carries each text twice (the echo and the stored copy) plus JSON
// escapes, so a request near the frame limit can need an answer no frame
// can hold; such a request is refused before anything is stored.
func answerFits(rsp wire.TextChatMsgRsp, drafts []msgstore.Draft) bool {
	rsp.ChatDatas = make([]wire.TextChatData, len(drafts))
	for i, d := range drafts {
		rsp.ChatDatas[i] = wire.TextChatData{
			MessageID: 1<<31 - 1, UniqueID: d.ClientID, Content: d.Content,
			Status: statusStored, ChatTime: wire.ChatTimeLayout, Seq: 1 << 53,
		}
	}
	rsp.ThreadID = 1<<31 - 1
	body, err := rsp.MarshalJSON()
	return err == nil && len(body) <= wire.MaxBodyLen
}

// storeText commits the drafts of one 1017 and fills the ACK; it returns the
// push for the receiver (nil when every text was a resend) and a result
// code. A push may come with an error code: the texts it carries are stored
// and must be delivered even though the request as a whole is refused.
func (s *Server) storeText(ctx context.Context, drafts []msgstore.Draft, req *wire.TextChatMsgReq, rsp *wire.TextChatMsgRsp) (*wire.NotifyTextChatMsgReq, errcode.Code) {
	msgs, err := s.d.Messages.Append(ctx, drafts)
	switch {
	case errors.Is(err, msgstore.ErrInvalid):
		return nil, errcode.InvalidArgument
	case err != nil:
		s.logger.Error("chat: storing texts failed; sender told so", "uid", rsp.FromUID, "to", rsp.ToUID, "err", err)
		return nil, errcode.Internal
	}
	code := errcode.OK
	var push *wire.NotifyTextChatMsgReq
	rsp.ChatDatas = make([]wire.TextChatData, 0, len(msgs))
	for i, m := range msgs {
		if m.Duplicate && m.Receiver != rsp.ToUID {
			// The client reused one of its ids for another conversation: the
			// stored message is not this one, so do not pretend it is. The
			// request's other texts are stored and still delivered.
			code = errcode.InvalidArgument
			continue
		}
		cd := textData(m)
		rsp.ThreadID = int32(m.ThreadID)
		rsp.ChatDatas = append(rsp.ChatDatas, cd)
		if !m.Duplicate {
			if push == nil {
				push = &wire.NotifyTextChatMsgReq{FromUID: rsp.FromUID, ToUID: rsp.ToUID, ThreadID: int32(m.ThreadID)}
			}
			push.TextArray = append(push.TextArray, req.TextArray[i])
			push.ChatDatas = append(push.ChatDatas, cd)
		}
	}
	return push, code
}

// replay pushes every message uid has not confirmed, oldest first, grouped
// into 1019s by sender. Called at login while the session holds live text
// pushes back; it returns the highest seq replayed per thread.
func (s *Server) replay(ctx context.Context, sess *session) (map[int64]int64, error) {
	replayed := map[int64]int64{}
	var after int64
	for {
		msgs, err := s.d.Messages.UndeliveredAfter(ctx, sess.uid, after, replayPage)
		if err != nil {
			return replayed, fmt.Errorf("load undelivered messages: %w", err)
		}
		for rest := msgs; len(rest) > 0; {
			// One 1019 per run of messages from one sender (at most 64).
			n := 1
			for n < len(rest) && n < 64 && rest[n].Sender == rest[0].Sender && rest[n].ThreadID == rest[0].ThreadID {
				n++
			}
			if err := s.replayRun(sess, rest[:n]); err != nil {
				return replayed, err
			}
			for _, m := range rest[:n] {
				replayed[m.ThreadID] = max(replayed[m.ThreadID], m.Seq)
				after = m.ID
			}
			rest = rest[n:]
		}
		if len(msgs) < replayPage {
			return replayed, nil
		}
	}
}

// replayRun queues one sender's run of stored messages as one 1019, or one
// 1019 each when together they do not fit in a frame.
func (s *Server) replayRun(sess *session, run []msgstore.Message) error {
	push := func(run []msgstore.Message) (outFrame, error) {
		p := &wire.NotifyTextChatMsgReq{FromUID: run[0].Sender, ToUID: sess.uid, ThreadID: int32(run[0].ThreadID)}
		for _, m := range run {
			p.TextArray = append(p.TextArray, wire.TextItem{MsgID: m.ClientID, UniqueID: m.ClientID, Content: m.Content})
			p.ChatDatas = append(p.ChatDatas, textData(m))
		}
		body, err := p.MarshalJSON()
		return outFrame{id: wire.IDNotifyTextChatMsgReq, body: body, text: p}, err
	}
	f, err := push(run)
	if err != nil {
		return err
	}
	if len(f.body) <= wire.MaxBodyLen {
		return sess.enqueueReplay(f)
	}
	for i := range run {
		if f, err = push(run[i : i+1]); err != nil {
			return err
		}
		if err := sess.enqueueReplay(f); err != nil {
			return err
		}
	}
	return nil
}

// confirmWritten records, for a client without the confirm capability, that
// the pushes written to it so far arrived: it just proved it is reading by
// sending a heartbeat after them.
func (s *Server) confirmWritten(ctx context.Context, sess *session) {
	for thread, seq := range sess.takeWritten() {
		if err := s.d.Messages.Confirm(ctx, sess.uid, thread, seq); err != nil {
			s.logger.Warn("chat: implicit delivery confirmation failed; messages will be pushed again", "uid", sess.uid, "err", err)
		}
	}
}

func (s *Server) msgDelivered(ctx context.Context, sess *session, f wire.Frame) bool {
	var req wire.MsgDeliveredReq
	if err := f.Decode(&req); err != nil || req.ThreadID <= 0 || req.Seq <= 0 {
		return sess.send(wire.IDMsgDeliveredRsp, wire.MsgDeliveredRsp{Error: int(errcode.JSON)}) == nil
	}
	rsp := wire.MsgDeliveredRsp{ThreadID: int32(req.ThreadID), Seq: req.Seq}
	switch err := s.d.Messages.Confirm(ctx, sess.uid, int64(req.ThreadID), req.Seq); {
	case errors.Is(err, msgstore.ErrNoThread), errors.Is(err, msgstore.ErrNotMember):
		rsp.Error = int(errcode.Forbidden)
	case err != nil:
		s.logger.Error("chat: confirm delivery", "uid", sess.uid, "err", err)
		rsp.Error = int(errcode.Internal)
	}
	return sess.send(wire.IDMsgDeliveredRsp, rsp) == nil
}

// threadsPage answers 1025: the user's threads after the cursor, 10 a page.
func (s *Server) threadsPage(ctx context.Context, sess *session, f wire.Frame) bool {
	rsp := wire.LoadChatThreadRsp{UID: sess.uid}
	var req wire.LoadChatThreadReq
	if err := f.Decode(&req); err != nil || req.ThreadID < 0 {
		rsp.Error = int(errcode.JSON)
		return sess.send(wire.IDLoadChatThreadRsp, rsp) == nil
	}
	if !sender(sess, req.UID) {
		s.metrics.spoofed.Inc()
		rsp.Error = int(errcode.Forbidden)
		return sess.send(wire.IDLoadChatThreadRsp, rsp) == nil
	}
	threads, more, err := s.d.Messages.Threads(ctx, sess.uid, int64(req.ThreadID), pageSize)
	if err != nil {
		s.logger.Error("chat: load threads", "uid", sess.uid, "err", err)
		rsp.Error = int(errcode.LoadChat)
		return sess.send(wire.IDLoadChatThreadRsp, rsp) == nil
	}
	rsp.LoadMore = more
	rsp.NextLastID = int32(req.ThreadID)
	for _, t := range threads {
		rsp.Threads = append(rsp.Threads, wire.ChatThread{ThreadID: int32(t.ID), Type: t.Type, User1ID: t.User1, User2ID: t.User2})
		rsp.NextLastID = int32(t.ID)
	}
	return sess.send(wire.IDLoadChatThreadRsp, rsp) == nil
}

// createPrivate answers 1027: find or create the private thread with a friend.
func (s *Server) createPrivate(ctx context.Context, sess *session, f wire.Frame) bool {
	rsp := wire.CreatePrivateChatRsp{UID: sess.uid}
	var req wire.CreatePrivateChatReq
	if err := f.Decode(&req); err != nil || req.OtherID <= 0 {
		rsp.Error = int(errcode.JSON)
		return sess.send(wire.IDCreatePrivateChatRsp, rsp) == nil
	}
	rsp.OtherID = int32(req.OtherID)
	if !sender(sess, req.UID) {
		s.metrics.spoofed.Inc()
		rsp.Error = int(errcode.Forbidden)
		return sess.send(wire.IDCreatePrivateChatRsp, rsp) == nil
	}
	if ok, code := s.isFriend(ctx, sess, rsp.OtherID); !ok {
		rsp.Error = int(code)
		return sess.send(wire.IDCreatePrivateChatRsp, rsp) == nil
	}
	t, err := s.d.Messages.PrivateThread(ctx, sess.uid, rsp.OtherID)
	if err != nil {
		s.logger.Error("chat: create private thread", "uid", sess.uid, "other", rsp.OtherID, "err", err)
		rsp.Error = int(errcode.CreateChat)
		return sess.send(wire.IDCreatePrivateChatRsp, rsp) == nil
	}
	rsp.ThreadID = int32(t.ID)
	return sess.send(wire.IDCreatePrivateChatRsp, rsp) == nil
}

// messagesPage answers 1029: a thread's messages after the cursor, 10 a
// page, for the thread's members only.
func (s *Server) messagesPage(ctx context.Context, sess *session, f wire.Frame) bool {
	var req wire.LoadChatMsgReq
	if err := f.Decode(&req); err != nil || req.ThreadID <= 0 || req.MessageID < 0 {
		return sess.send(wire.IDLoadChatMsgRsp, wire.LoadChatMsgRsp{Error: int(errcode.JSON)}) == nil
	}
	rsp := wire.LoadChatMsgRsp{ThreadID: int32(req.ThreadID), LastMessageID: int32(req.MessageID)}
	msgs, more, err := s.d.Messages.Messages(ctx, sess.uid, int64(req.ThreadID), int64(req.MessageID), pageSize)
	switch {
	case errors.Is(err, msgstore.ErrNotMember), errors.Is(err, msgstore.ErrNoThread):
		s.metrics.refused.Inc()
		rsp.Error = int(errcode.Forbidden)
		return sess.send(wire.IDLoadChatMsgRsp, rsp) == nil
	case err != nil:
		s.logger.Error("chat: load messages", "uid", sess.uid, "thread", req.ThreadID, "err", err)
		rsp.Error = int(errcode.LoadChat)
		return sess.send(wire.IDLoadChatMsgRsp, rsp) == nil
	}
	rsp.LoadMore = more
	for _, m := range msgs {
		rsp.ChatDatas = append(rsp.ChatDatas, threadMessage(m))
		rsp.LastMessageID = int32(m.ID)
	}
	return sess.send(wire.IDLoadChatMsgRsp, rsp) == nil
}

// openThread creates the pair's thread when a friendship is approved and
// stores its first messages — the application's greeting (if any) from the
// applicant, then "We are friends now!" from the approver — already
// confirmed for both, since 1014 and 1015 carry them.
func (s *Server) openThread(ctx context.Context, approver, applicant int32, greeting string) (int32, []wire.ThreadMessage, error) {
	t, err := s.d.Messages.PrivateThread(ctx, approver, applicant)
	if err != nil {
		return 0, nil, err
	}
	var drafts []msgstore.Draft
	key := fmt.Sprintf("imsrv-thread-%d-", t.ID)
	if greeting != "" {
		drafts = append(drafts, msgstore.Draft{Sender: applicant, Receiver: approver, ClientID: key + "greeting", Content: greeting})
	}
	var out []wire.ThreadMessage
	for _, d := range drafts {
		msgs, err := s.d.Messages.Append(ctx, []msgstore.Draft{d})
		if err != nil {
			return 0, nil, err
		}
		out = append(out, threadMessage(msgs[0]))
	}
	msgs, err := s.d.Messages.Append(ctx, []msgstore.Draft{{Sender: approver, Receiver: applicant, ClientID: key + "friends", Content: friendsNow}})
	if err != nil {
		return 0, nil, err
	}
	out = append(out, threadMessage(msgs[0]))
	for _, uid := range []int32{approver, applicant} {
		if err := s.d.Messages.Confirm(ctx, uid, t.ID, msgs[0].Seq); err != nil {
			return 0, nil, err
		}
	}
	return int32(t.ID), out, nil
}
