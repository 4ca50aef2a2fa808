// Package statusrpc puts status.Service on gRPC: Register serves any
// implementation (normally the in-process *status.Module), and Client is a
// status.Service backed by a remote one. Sentinel errors keep their identity
// across the hop, so callers cannot tell a Client from a local module; in
// addition a Client fails with grpcx.ErrUnavailable when the remote module
// cannot be reached in time.
package statusrpc

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	"github.com/imsrv/imsrv/modules/status"
	"github.com/imsrv/imsrv/modules/status/statuspb"
	"github.com/imsrv/imsrv/platform/grpcx"
)

// errs maps the status sentinels to gRPC statuses and back. The reasons are
// part of the wire contract.
var errs = grpcx.NewErrorTable("imsrv", map[string]error{
	"status.no_node":       status.ErrNoNode,
	"status.uid_invalid":   status.ErrUIDInvalid,
	"status.token_invalid": status.ErrTokenInvalid,
	"status.invalid_node":  status.ErrInvalidNode,
}).WithCodes(map[string]codes.Code{
	"status.uid_invalid":   codes.Unauthenticated,
	"status.token_invalid": codes.Unauthenticated,
	"status.invalid_node":  codes.InvalidArgument,
})

// Register serves svc as the Status gRPC service on s.
func Register(s grpc.ServiceRegistrar, svc status.Service) {
	statuspb.RegisterStatusServer(s, &server{svc: svc})
}

// server adapts a status.Service to statuspb.StatusServer. Every uid an int32
// can hold is passed on, as a local caller could pass it; the module itself
// validates node registrations (a missing node is an empty, invalid one).
type server struct {
	statuspb.UnimplementedStatusServer
	svc status.Service
}

func (s *server) RegisterNode(ctx context.Context, req *statuspb.RegisterNodeRequest) (*statuspb.RegisterNodeResponse, error) {
	if err := s.svc.RegisterNode(ctx, nodeFromPB(req.GetNode())); err != nil {
		return nil, errs.ToStatus(err)
	}
	return &statuspb.RegisterNodeResponse{}, nil
}

func (s *server) DeregisterNode(ctx context.Context, req *statuspb.DeregisterNodeRequest) (*statuspb.DeregisterNodeResponse, error) {
	if err := s.svc.DeregisterNode(ctx, req.GetName()); err != nil {
		return nil, errs.ToStatus(err)
	}
	return &statuspb.DeregisterNodeResponse{}, nil
}

func (s *server) Nodes(ctx context.Context, _ *statuspb.NodesRequest) (*statuspb.NodesResponse, error) {
	nodes, err := s.svc.Nodes(ctx)
	if err != nil {
		return nil, errs.ToStatus(err)
	}
	resp := &statuspb.NodesResponse{Nodes: make([]*statuspb.NodeInfo, len(nodes))}
	for i, n := range nodes {
		resp.Nodes[i] = &statuspb.NodeInfo{Node: nodeToPB(n.Node), Load: n.Load}
	}
	return resp, nil
}

func (s *server) Allocate(ctx context.Context, req *statuspb.AllocateRequest) (*statuspb.AllocateResponse, error) {
	a, err := s.svc.Allocate(ctx, req.GetUid())
	if err != nil {
		return nil, errs.ToStatus(err)
	}
	return &statuspb.AllocateResponse{Node: a.Node, Host: a.Host, Port: a.Port, Token: a.Token}, nil
}

func (s *server) CheckToken(ctx context.Context, req *statuspb.CheckTokenRequest) (*statuspb.CheckTokenResponse, error) {
	if err := s.svc.CheckToken(ctx, req.GetUid(), req.GetToken()); err != nil {
		return nil, errs.ToStatus(err)
	}
	return &statuspb.CheckTokenResponse{}, nil
}

func nodeToPB(n status.Node) *statuspb.Node {
	return &statuspb.Node{Name: n.Name, Addr: n.Addr, RpcAddr: n.RPCAddr}
}

func nodeFromPB(n *statuspb.Node) status.Node {
	return status.Node{Name: n.GetName(), Addr: n.GetAddr(), RPCAddr: n.GetRpcAddr()}
}
