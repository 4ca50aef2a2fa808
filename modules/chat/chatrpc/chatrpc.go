// Package chatrpc carries chat.Peer between chat nodes over gRPC: Register
// serves a node's own sessions (normally its *chat.Server), and Client is the
// chat.Peer for another node. chat.ErrOffline keeps its identity across the
// hop; in addition a Client fails with grpcx.ErrUnavailable when the other
// node cannot be reached in time.
package chatrpc

import (
	"context"
	"math"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/imsrv/imsrv/modules/chat"
	"github.com/imsrv/imsrv/modules/chat/chatpb"
	"github.com/imsrv/imsrv/modules/chat/wire"
	"github.com/imsrv/imsrv/platform/grpcx"
)

// errs maps the chat sentinels to gRPC statuses and back. The reasons are
// part of the wire contract.
var errs = grpcx.NewErrorTable("imsrv", map[string]error{
	"chat.offline": chat.ErrOffline,
})

// Register serves peer as the ChatNode gRPC service on s.
func Register(s grpc.ServiceRegistrar, peer chat.Peer) {
	chatpb.RegisterChatNodeServer(s, &server{peer: peer})
}

// server adapts a chat.Peer to chatpb.ChatNodeServer. Requests that no
// chat.Peer call could express (a frame id or body beyond what a frame
// carries) or that cannot name a user (uid not positive) are refused with
// codes.InvalidArgument before they reach the peer.
type server struct {
	chatpb.UnimplementedChatNodeServer
	peer chat.Peer
}

func (s *server) Deliver(ctx context.Context, req *chatpb.DeliverRequest) (*chatpb.DeliverResponse, error) {
	if err := checkUID(req.GetUid()); err != nil {
		return nil, err
	}
	frames := make([]wire.Frame, len(req.GetFrames()))
	for i, f := range req.GetFrames() {
		if f.GetId() > math.MaxUint16 {
			return nil, status.Errorf(codes.InvalidArgument, "chatrpc: frame %d: id %d does not fit a frame", i, f.GetId())
		}
		if len(f.GetBody()) > wire.MaxBodyLen {
			return nil, status.Errorf(codes.InvalidArgument, "chatrpc: frame %d: %d-byte body, max %d", i, len(f.GetBody()), wire.MaxBodyLen)
		}
		frames[i] = wire.Frame{ID: wire.MsgID(f.GetId()), Body: f.GetBody()}
	}
	if err := s.peer.Deliver(ctx, req.GetUid(), frames); err != nil {
		return nil, errs.ToStatus(err)
	}
	return &chatpb.DeliverResponse{}, nil
}

func (s *server) Kick(ctx context.Context, req *chatpb.KickRequest) (*chatpb.KickResponse, error) {
	if err := checkUID(req.GetUid()); err != nil {
		return nil, err
	}
	if err := s.peer.Kick(ctx, req.GetUid(), req.GetSessionId()); err != nil {
		return nil, errs.ToStatus(err)
	}
	return &chatpb.KickResponse{}, nil
}

func checkUID(uid int32) error {
	if uid <= 0 {
		return status.Errorf(codes.InvalidArgument, "chatrpc: uid %d is not positive", uid)
	}
	return nil
}
