package chat

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/imsrv/imsrv/modules/account"
	"github.com/imsrv/imsrv/modules/chat/chatstore"
	"github.com/imsrv/imsrv/modules/chat/wire"
	"github.com/imsrv/imsrv/modules/errcode"
	"github.com/imsrv/imsrv/modules/status"
)

// requestTimeout bounds the storage work of one request.
const requestTimeout = 10 * time.Second

// login handles the first frame (1005). It reports whether the session is
// logged in; on false the caller closes the connection (after the answer).
func (s *Server) login(ctx context.Context, sess *session, f wire.Frame) bool {
	var req wire.LoginReq
	if err := f.Decode(&req); err != nil || req.UID <= 0 || req.Token == "" {
		code := errcode.JSON
		if err == nil && req.UID <= 0 {
			code = errcode.UIDInvalid
		}
		s.refuseLogin(sess, code, 0, "malformed login")
		return false
	}
	uid := int32(req.UID)
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	switch err := s.d.Tokens.CheckToken(ctx, uid, req.Token); {
	case errors.Is(err, status.ErrUIDInvalid):
		s.refuseLogin(sess, errcode.UIDInvalid, uid, "no token for uid")
		return false
	case errors.Is(err, status.ErrTokenInvalid):
		s.refuseLogin(sess, errcode.TokenInvalid, uid, "wrong token")
		return false
	case err != nil:
		s.logger.Error("chat: token check failed", "uid", uid, "err", err)
		s.refuseLogin(sess, errcode.RPCFailed, uid, "token check unavailable")
		return false
	}

	rsp, friends, err := s.loginData(ctx, uid)
	if errors.Is(err, account.ErrNotFound) {
		s.refuseLogin(sess, errcode.UIDInvalid, uid, "no such user")
		return false
	}
	if err != nil {
		s.logger.Error("chat: load login data", "uid", uid, "err", err)
		s.refuseLogin(sess, errcode.Internal, uid, "load failed")
		return false
	}
	rsp.Token = req.Token // the newer Qt client keeps it from here
	sess.coalesce = req.HasCap(wire.CapCoalesce)
	sess.mu.Lock()
	sess.legacy = !sess.coalesce
	sess.trackWritten = !req.HasCap(wire.CapConfirm)
	sess.holding = true // until the replay of undelivered messages is queued
	sess.mu.Unlock()
	sess.friends = friends

	release, err := s.routes.lock(ctx, uid)
	if err != nil {
		s.logger.Error("chat: login lock", "uid", uid, "err", err)
		s.refuseLogin(sess, errcode.Internal, uid, "busy")
		return false
	}
	prevNode, prevSession, err := s.routes.claim(ctx, uid, sess.id)
	if err != nil {
		release()
		s.logger.Error("chat: claim route", "uid", uid, "err", err)
		s.refuseLogin(sess, errcode.Internal, uid, "route failed")
		return false
	}
	sess.uid = uid // from here on the deferred logout cleans up
	s.mu.Lock()
	old := s.sessions[uid]
	s.sessions[uid] = sess
	// Queue 1006 before any push can find the session.
	sendErr := sess.send(wire.IDChatLoginRsp, rsp)
	s.mu.Unlock()
	release()

	if old != nil {
		s.kick(old)
	} else if prevNode != "" && prevNode != s.cfg.NodeName && s.d.Peers != nil {
		s.kickRemote(ctx, uid, prevNode, prevSession)
	}
	if sendErr != nil {
		return false
	}
	// Undelivered messages first, in order; live pushes that arrived in the
	// meantime follow (those the replay already carried are dropped).
	replayed, err := s.replay(ctx, sess)
	sess.release(replayed)
	if err != nil {
		// Whatever was not replayed stays undelivered for the next login.
		s.logger.Error("chat: replay of undelivered messages failed", "uid", uid, "err", err)
	}
	s.metrics.logins.Inc()
	s.logger.Debug("chat: login", "uid", uid, "coalesce", sess.coalesce, "remote", sess.conn.RemoteAddr().String())
	return true
}

func (s *Server) refuseLogin(sess *session, code errcode.Code, uid int32, why string) {
	s.metrics.refused.Inc()
	s.logger.Info("chat: login refused", "uid", uid, "code", int(code), "reason", why)
	_ = sess.send(wire.IDChatLoginRsp, wire.LoginRsp{Error: int(code), UID: uid})
}

// loginData builds the 1006 answer: profile, pending applications, friends.
func (s *Server) loginData(ctx context.Context, uid int32) (wire.LoginRsp, map[int32]struct{}, error) {
	u, err := s.d.Accounts.ByUID(ctx, uid)
	if err != nil {
		return wire.LoginRsp{}, nil, err
	}
	apps, err := s.d.Store.PendingApplications(ctx, uid)
	if err != nil {
		return wire.LoginRsp{}, nil, err
	}
	friends, err := s.d.Store.Friends(ctx, uid)
	if err != nil {
		return wire.LoginRsp{}, nil, err
	}
	rsp := wire.LoginRsp{
		UID: u.UID, Name: u.Name, Email: u.Email, Nick: u.Nick, Desc: u.Desc, Sex: u.Sex, Icon: u.Icon,
		ApplyList:  make([]wire.ApplyInfo, 0, len(apps)),
		FriendList: make([]wire.Friend, 0, len(friends)),
	}
	for _, a := range apps {
		rsp.ApplyList = append(rsp.ApplyList, wire.ApplyInfo{
			Name: a.Name, UID: a.UID, Icon: a.Icon, Nick: a.Nick, Sex: a.Sex, Desc: a.Greeting, Status: a.Status,
		})
	}
	set := make(map[int32]struct{}, len(friends))
	for _, f := range friends {
		rsp.FriendList = append(rsp.FriendList, wire.Friend{
			Name: f.Name, UID: f.UID, Icon: f.Icon, Nick: f.Nick, Sex: f.Sex, Desc: f.Desc, Back: f.Remark,
		})
		set[f.UID] = struct{}{}
	}
	return rsp, set, nil
}

// kick tells a replaced session it went offline and closes it once that
// frame is written.
func (s *Server) kick(old *session) {
	_ = old.send(wire.IDNotifyOffLineReq, wire.NotifyOffLineReq{UID: old.uid})
	old.closeAfterFlush()
	s.metrics.kicks.Inc()
	s.logger.Info("chat: older session kicked by a new login", "uid", old.uid)
}

// logout removes a closed session's route (unless a newer login owns it).
func (s *Server) logout(sess *session) {
	s.mu.Lock()
	if s.sessions[sess.uid] == sess {
		delete(s.sessions, sess.uid)
	}
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	release, err := s.routes.lock(ctx, sess.uid)
	if err != nil {
		s.logger.Error("chat: logout lock", "uid", sess.uid, "err", err)
		return
	}
	defer release()
	if err := s.routes.release(ctx, sess.uid, sess.id); err != nil {
		s.logger.Error("chat: logout", "uid", sess.uid, "err", err)
	}
}

// dispatch handles one frame of a logged-in session. It reports whether the
// connection stays open.
func (s *Server) dispatch(ctx context.Context, sess *session, f wire.Frame) bool {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	switch f.ID {
	case wire.IDHeartBeatReq:
		s.confirmWritten(ctx, sess)
		return sess.send(wire.IDHeartBeatRsp, wire.HeartBeatRsp{}) == nil
	case wire.IDMsgDeliveredReq:
		return s.msgDelivered(ctx, sess, f)
	case wire.IDSearchUserReq:
		return s.search(ctx, sess, f)
	case wire.IDAddFriendReq:
		return s.addFriend(ctx, sess, f)
	case wire.IDAuthFriendReq:
		return s.authFriend(ctx, sess, f)
	case wire.IDTextChatMsgReq:
		return s.text(ctx, sess, f)
	case wire.IDLoadChatThreadReq:
		return s.threadsPage(ctx, sess, f)
	case wire.IDCreatePrivateChatReq:
		return s.createPrivate(ctx, sess, f)
	case wire.IDLoadChatMsgReq:
		return s.messagesPage(ctx, sess, f)
	case wire.IDChatLogin:
		// A second login on a logged-in connection: refuse, keep the session.
		return sess.send(wire.IDChatLoginRsp, wire.LoginRsp{Error: int(errcode.Forbidden), UID: sess.uid}) == nil
	default:
		s.metrics.unknown.Inc()
		s.logger.Debug("chat: unknown message id ignored", "id", f.ID, "uid", sess.uid)
		return true
	}
}

// sender checks a uid field naming the sender against the session. 0 (absent)
// means the session's uid.
func sender(sess *session, claimed wire.Int32) bool {
	return claimed == 0 || int32(claimed) == sess.uid
}

func (s *Server) search(ctx context.Context, sess *session, f wire.Frame) bool {
	var req wire.SearchUserReq
	if err := f.Decode(&req); err != nil || req.UID == "" {
		return sess.send(wire.IDSearchUserRsp, wire.SearchUserRsp{Error: int(errcode.JSON)}) == nil
	}
	var p chatstore.Profile
	var err error
	if uid, ok := req.UID.UID(); ok {
		p, err = s.d.Store.Profile(ctx, uid)
	} else {
		p, err = s.d.Store.ProfileByName(ctx, string(req.UID))
	}
	switch {
	case errors.Is(err, chatstore.ErrNoUser):
		return sess.send(wire.IDSearchUserRsp, wire.SearchUserRsp{Error: int(errcode.UIDInvalid)}) == nil
	case err != nil:
		s.logger.Error("chat: search", "uid", sess.uid, "err", err)
		return sess.send(wire.IDSearchUserRsp, wire.SearchUserRsp{Error: int(errcode.Internal)}) == nil
	}
	return sess.send(wire.IDSearchUserRsp, wire.SearchUserRsp{
		UID: p.UID, Name: p.Name, Nick: p.Nick, Desc: p.Desc, Sex: p.Sex, Icon: p.Icon,
	}) == nil
}

func (s *Server) addFriend(ctx context.Context, sess *session, f wire.Frame) bool {
	reply := func(code errcode.Code) bool {
		return sess.send(wire.IDAddFriendRsp, wire.AddFriendRsp{Error: int(code)}) == nil
	}
	var req wire.AddFriendReq
	if err := f.Decode(&req); err != nil || req.ToUID == 0 {
		return reply(errcode.JSON)
	}
	if !sender(sess, req.UID) {
		s.metrics.spoofed.Inc()
		return reply(errcode.Forbidden)
	}
	to := int32(req.ToUID)
	err := s.d.Store.Apply(ctx, sess.uid, to, req.ApplyName, req.BakName)
	switch {
	case errors.Is(err, chatstore.ErrNoUser):
		return reply(errcode.UIDInvalid)
	case errors.Is(err, chatstore.ErrSelf), errors.Is(err, chatstore.ErrAlreadyFriends), errors.Is(err, chatstore.ErrInvalid):
		return reply(errcode.InvalidArgument)
	case err != nil:
		s.logger.Error("chat: add friend", "uid", sess.uid, "to", to, "err", err)
		return reply(errcode.Internal)
	}
	if !reply(errcode.OK) {
		return false
	}
	me, err := s.d.Store.Profile(ctx, sess.uid)
	if err != nil {
		s.logger.Error("chat: load applicant profile", "uid", sess.uid, "err", err)
		return true
	}
	// desc carries the application's greeting (1009 applyname), as in the
	// apply_list of 1006: the applicant's own profile is one search away.
	s.push(ctx, to, wire.IDNotifyAddFriendReq, wire.NotifyAddFriendReq{
		ApplyUID: me.UID, Name: me.Name, Desc: req.ApplyName, Icon: me.Icon, Sex: me.Sex, Nick: me.Nick,
	})
	return true
}

func (s *Server) authFriend(ctx context.Context, sess *session, f wire.Frame) bool {
	reply := func(r wire.AuthFriendRsp) bool { return sess.send(wire.IDAuthFriendRsp, r) == nil }
	var req wire.AuthFriendReq
	if err := f.Decode(&req); err != nil || req.ToUID == 0 {
		return reply(wire.AuthFriendRsp{Error: int(errcode.JSON)})
	}
	if !sender(sess, req.FromUID) {
		s.metrics.spoofed.Inc()
		return reply(wire.AuthFriendRsp{Error: int(errcode.Forbidden)})
	}
	applicant := int32(req.ToUID)
	greeting := s.greeting(ctx, sess.uid, applicant)
	ap, me, err := s.d.Store.Approve(ctx, sess.uid, applicant, req.Back)
	switch {
	case errors.Is(err, chatstore.ErrNoApplication), errors.Is(err, chatstore.ErrNoUser):
		return reply(wire.AuthFriendRsp{Error: int(errcode.UIDInvalid), UID: applicant})
	case errors.Is(err, chatstore.ErrAlreadyFriends), errors.Is(err, chatstore.ErrInvalid):
		return reply(wire.AuthFriendRsp{Error: int(errcode.InvalidArgument), UID: applicant})
	case err != nil:
		s.logger.Error("chat: approve", "uid", sess.uid, "applicant", applicant, "err", err)
		return reply(wire.AuthFriendRsp{Error: int(errcode.Internal), UID: applicant})
	}
	sess.friends[applicant] = struct{}{}
	thread, first, err := s.openThread(ctx, sess.uid, applicant, greeting)
	if err != nil {
		// The friendship stands; the thread is created by the first text or 1027.
		s.logger.Error("chat: open the new friends' thread", "uid", sess.uid, "applicant", applicant, "err", err)
		first = []wire.ThreadMessage{{Sender: sess.uid, MsgContent: friendsNow, ChatTime: chatTime(time.Now().UnixMilli())}}
	}
	if !reply(wire.AuthFriendRsp{UID: ap.UID, Name: ap.Name, Nick: ap.Nick, Icon: ap.Icon, Sex: ap.Sex, ChatDatas: first, ThreadID: thread}) {
		return false
	}
	s.push(ctx, applicant, wire.IDNotifyAuthFriendReq, wire.NotifyAuthFriendReq{
		FromUID: me.UID, ToUID: applicant, Name: me.Name, Nick: me.Nick, Icon: me.Icon, Sex: me.Sex,
		ChatDatas: first, ThreadID: thread,
	})
	return true
}

// greeting is the text of applicant's pending application to approver ("" if none).
func (s *Server) greeting(ctx context.Context, approver, applicant int32) string {
	apps, err := s.d.Store.PendingApplications(ctx, approver)
	if err != nil {
		s.logger.Warn("chat: load applications", "uid", approver, "err", err)
		return ""
	}
	for _, a := range apps {
		if a.UID == applicant {
			return a.Greeting
		}
	}
	return ""
}

// isFriend reports whether to is sess's friend, caching confirmed friends in
// the session (friendships are never removed). On false, code says why.
func (s *Server) isFriend(ctx context.Context, sess *session, to int32) (bool, errcode.Code) {
	if _, ok := sess.friends[to]; ok {
		return true, errcode.OK
	}
	friends, err := s.d.Store.AreFriends(ctx, sess.uid, to)
	if err != nil {
		s.logger.Error("chat: friendship check", "uid", sess.uid, "to", to, "err", err)
		return false, errcode.Internal
	}
	if !friends {
		s.metrics.refused.Inc()
		return false, errcode.Forbidden
	}
	sess.friends[to] = struct{}{}
	return true, errcode.OK
}

func (s *Server) text(ctx context.Context, sess *session, f wire.Frame) bool {
	var req wire.TextChatMsgReq
	if err := f.Decode(&req); err != nil || req.ToUID == 0 || len(req.TextArray) == 0 {
		return sess.send(wire.IDTextChatMsgRsp, wire.TextChatMsgRsp{Error: int(errcode.JSON), FromUID: sess.uid}) == nil
	}
	to := int32(req.ToUID)
	rsp := wire.TextChatMsgRsp{FromUID: sess.uid, ToUID: to, ThreadID: int32(req.ThreadID), TextArray: req.TextArray}
	if !sender(sess, req.FromUID) {
		s.metrics.spoofed.Inc()
		rsp.Error = int(errcode.Forbidden)
		return sess.send(wire.IDTextChatMsgRsp, rsp) == nil
	}
	if ok, code := s.isFriend(ctx, sess, to); !ok {
		rsp.Error = int(code)
		return sess.send(wire.IDTextChatMsgRsp, rsp) == nil
	}
	drafts := textDrafts(sess.uid, to, req.TextArray)
	if !answerFits(rsp, drafts) {
		rsp.Error, rsp.TextArray = int(errcode.InvalidArgument), nil
		return sess.send(wire.IDTextChatMsgRsp, rsp) == nil
	}
	push, code := s.storeText(ctx, drafts, &req, &rsp)
	rsp.Error = int(code)
	body, err := rsp.MarshalJSON()
	if err != nil {
		s.logger.Error("chat: encode ACK", "uid", sess.uid, "err", err)
		return false
	}
	// Queue the push before the ACK: once a sender holds the ACK, the text is
	// already queued for the receiver, ahead of anything the sender does next.
	if push != nil {
		// Without resends the push has exactly the ACK's fields (1019 and
		// 1018 share a body type): its encoding is the ACK's.
		pushBody := body
		if rsp.Error != 0 || len(push.ChatDatas) != len(rsp.ChatDatas) || len(push.TextArray) != len(rsp.TextArray) {
			pushBody, err = push.MarshalJSON()
		}
		if err == nil {
			s.deliverText(ctx, to, pushBody, push)
		}
	}
	s.metrics.texts.Add(float64(len(req.TextArray)))
	return sess.enqueue(outFrame{id: wire.IDTextChatMsgRsp, body: body}) == nil
}

// push delivers a notification to uid wherever it is connected; offline
// users miss it (they see pending applications and friends at next login).
func (s *Server) push(ctx context.Context, uid int32, id wire.MsgID, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		s.logger.Error("chat: encode push", "id", id, "err", err)
		return
	}
	if err := s.deliver(ctx, uid, outFrame{id: id, body: body}); err != nil && !errors.Is(err, ErrOffline) {
		s.logger.Warn("chat: push failed", "id", id, "to", uid, "err", err)
	}
}

// kickRemote tells the node holding uid's previous session to kick it.
func (s *Server) kickRemote(ctx context.Context, uid int32, node, sessionID string) {
	peer, err := s.d.Peers.Peer(ctx, node)
	if err == nil {
		err = peer.Kick(ctx, uid, sessionID)
	}
	if err != nil {
		// The node is gone or unreachable: its session died with it.
		s.logger.Info("chat: previous session's node unreachable; not kicked", "uid", uid, "node", node, "err", err)
		return
	}
	s.metrics.kicks.Inc()
}

// deliverText delivers an encoded text push, keeping it mergeable for
// legacy writers.
func (s *Server) deliverText(ctx context.Context, uid int32, body []byte, text *wire.NotifyTextChatMsgReq) {
	err := s.deliver(ctx, uid, outFrame{id: wire.IDNotifyTextChatMsgReq, body: body, text: text})
	if err != nil && !errors.Is(err, ErrOffline) {
		s.logger.Warn("chat: push failed", "to", uid, "err", err)
	}
}
