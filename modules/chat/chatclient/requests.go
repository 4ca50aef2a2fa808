package chatclient

import (
	"context"
	"errors"

	"github.com/imsrv/imsrv/modules/chat/wire"
)

// Login sends the login request (1005), declaring the "coalesce"
// capability, and returns the server's answer (1006). On success the client
// remembers uid and, if configured, starts its heartbeats.
func (c *Client) Login(ctx context.Context, uid int32, token string) (*wire.LoginRsp, error) {
	req := wire.LoginReq{UID: wire.Int32(uid), Token: token, Caps: []string{wire.CapCoalesce}}
	rsp, err := call[wire.LoginRsp](ctx, c, wire.IDChatLogin, req)
	if err != nil {
		return rsp, err
	}
	c.mu.Lock()
	c.uid = uid
	c.mu.Unlock()
	c.startHeartbeat()
	return rsp, nil
}

// Search looks a user up (1007): by uid when query is all digits, by name
// otherwise.
func (c *Client) Search(ctx context.Context, query string) (*wire.SearchUserRsp, error) {
	return call[wire.SearchUserRsp](ctx, c, wire.IDSearchUserReq, wire.SearchUserReq{UID: wire.SearchKey(query)})
}

// AddFriend applies to become req.ToUID's friend (1009).
func (c *Client) AddFriend(ctx context.Context, req wire.AddFriendReq) (*wire.AddFriendRsp, error) {
	c.defaultUID(&req.UID)
	return call[wire.AddFriendRsp](ctx, c, wire.IDAddFriendReq, req)
}

// AuthFriend approves req.ToUID's friend application (1013).
func (c *Client) AuthFriend(ctx context.Context, req wire.AuthFriendReq) (*wire.AuthFriendRsp, error) {
	c.defaultUID(&req.FromUID)
	return call[wire.AuthFriendRsp](ctx, c, wire.IDAuthFriendReq, req)
}

// SendText sends texts to req.ToUID (1017) and returns the acknowledgement.
func (c *Client) SendText(ctx context.Context, req wire.TextChatMsgReq) (*wire.TextChatMsgRsp, error) {
	c.defaultUID(&req.FromUID)
	return call[wire.TextChatMsgRsp](ctx, c, wire.IDTextChatMsgReq, req)
}

// Heartbeat sends a heartbeat (1023) for the logged-in uid and waits for the
// answer.
func (c *Client) Heartbeat(ctx context.Context) (*wire.HeartBeatRsp, error) {
	return call[wire.HeartBeatRsp](ctx, c, wire.IDHeartBeatReq, wire.HeartBeatReq{FromUID: wire.Int32(c.UID())})
}

// Threads returns a page of the user's chat threads (1025) after the cursor
// req.ThreadID.
func (c *Client) Threads(ctx context.Context, req wire.LoadChatThreadReq) (*wire.LoadChatThreadRsp, error) {
	c.defaultUID(&req.UID)
	return call[wire.LoadChatThreadRsp](ctx, c, wire.IDLoadChatThreadReq, req)
}

// CreatePrivateThread finds or creates the private thread with req.OtherID
// (1027).
func (c *Client) CreatePrivateThread(ctx context.Context, req wire.CreatePrivateChatReq) (*wire.CreatePrivateChatRsp, error) {
	c.defaultUID(&req.UID)
	return call[wire.CreatePrivateChatRsp](ctx, c, wire.IDCreatePrivateChatReq, req)
}

// Messages returns a page of a thread's messages (1029) after the cursor
// req.MessageID.
func (c *Client) Messages(ctx context.Context, req wire.LoadChatMsgReq) (*wire.LoadChatMsgRsp, error) {
	return call[wire.LoadChatMsgRsp](ctx, c, wire.IDLoadChatMsgReq, req)
}

// call makes a Call and returns the decoded response, which it keeps on a
// *ServerError.
func call[Rsp any](ctx context.Context, c *Client, id wire.MsgID, req any) (*Rsp, error) {
	rsp := new(Rsp)
	if err := c.Call(ctx, id, req, rsp); err != nil {
		if _, ok := errors.AsType[*ServerError](err); ok {
			return rsp, err
		}
		return nil, err
	}
	return rsp, nil
}

// defaultUID sets a zero sender field to the logged-in uid.
func (c *Client) defaultUID(field *wire.Int32) {
	if *field == 0 {
		*field = wire.Int32(c.UID())
	}
}
