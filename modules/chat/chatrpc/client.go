package chatrpc

import (
	"context"
	"time"

	"google.golang.org/grpc"

	"github.com/imsrv/imsrv/modules/chat"
	"github.com/imsrv/imsrv/modules/chat/chatpb"
	"github.com/imsrv/imsrv/modules/chat/wire"
	"github.com/imsrv/imsrv/platform/grpcx"
)

// DefaultTimeout bounds a call whose context has no deadline of its own.
const DefaultTimeout = 5 * time.Second

// Client is the chat.Peer for another chat node. Its errors are
// chat.ErrOffline, grpcx.ErrUnavailable when the node cannot be reached or
// does not answer in time (also matching ctx.Err() when the caller's context
// ended), or other errors carrying the gRPC status (codes.InvalidArgument for
// a frame body longer than wire.MaxBodyLen or a uid that is not positive).
type Client struct {
	rpc chatpb.ChatNodeClient
}

var _ chat.Peer = (*Client)(nil)

// NewClient returns a Client calling the ChatNode service over cc (from
// grpcx.Dial, say). Closing cc is the caller's business.
func NewClient(cc grpc.ClientConnInterface) *Client {
	return &Client{rpc: chatpb.NewChatNodeClient(cc)}
}

// Deliver implements chat.Peer.
func (c *Client) Deliver(ctx context.Context, uid int32, frames []wire.Frame) error {
	ctx, cancel := grpcx.WithDefaultTimeout(ctx, DefaultTimeout)
	defer cancel()
	req := &chatpb.DeliverRequest{Uid: uid, Frames: make([]*chatpb.Frame, len(frames))}
	for i, f := range frames {
		req.Frames[i] = &chatpb.Frame{Id: uint32(f.ID), Body: f.Body}
	}
	_, err := c.rpc.Deliver(ctx, req)
	return errs.FromStatus(err)
}

// Kick implements chat.Peer.
func (c *Client) Kick(ctx context.Context, uid int32, sessionID string) error {
	ctx, cancel := grpcx.WithDefaultTimeout(ctx, DefaultTimeout)
	defer cancel()
	_, err := c.rpc.Kick(ctx, &chatpb.KickRequest{Uid: uid, SessionId: sessionID})
	return errs.FromStatus(err)
}
