// Package verifyrpc puts verify.Service on gRPC: Register serves any
// implementation (normally the in-process *verify.Module), and Client is a
// verify.Service backed by a remote one. Sentinel errors keep their identity
// across the hop, so callers cannot tell a Client from a local module; in
// addition a Client fails with grpcx.ErrUnavailable when the remote module
// cannot be reached in time.
package verifyrpc

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	"github.com/imsrv/imsrv/modules/verify"
	"github.com/imsrv/imsrv/modules/verify/verifypb"
	"github.com/imsrv/imsrv/platform/grpcx"
)

// errs maps the verify sentinels to gRPC statuses and back. The reasons are
// part of the wire contract.
var errs = grpcx.NewErrorTable("imsrv", map[string]error{
	"verify.invalid_email": verify.ErrInvalidEmail,
	"verify.rate_limited":  verify.ErrRateLimited,
	"verify.no_code":       verify.ErrNoCode,
	"verify.wrong_code":    verify.ErrWrongCode,
	"verify.delivery":      verify.ErrDelivery,
}).WithCodes(map[string]codes.Code{
	"verify.invalid_email": codes.InvalidArgument,
	"verify.rate_limited":  codes.ResourceExhausted,
})

// Register serves svc as the Verify gRPC service on s.
func Register(s grpc.ServiceRegistrar, svc verify.Service) {
	verifypb.RegisterVerifyServer(s, &server{svc: svc})
}

// server adapts a verify.Service to verifypb.VerifyServer. The module itself
// validates everything it is given, so requests are passed on as they are.
type server struct {
	verifypb.UnimplementedVerifyServer
	svc verify.Service
}

func (s *server) SendCode(ctx context.Context, req *verifypb.SendCodeRequest) (*verifypb.SendCodeResponse, error) {
	err := s.svc.SendCode(ctx, verify.SendRequest{Email: req.GetEmail(), ClientAddr: req.GetClientAddr()})
	if err != nil {
		return nil, errs.ToStatus(err)
	}
	return &verifypb.SendCodeResponse{}, nil
}

func (s *server) CheckCode(ctx context.Context, req *verifypb.CheckCodeRequest) (*verifypb.CheckCodeResponse, error) {
	if err := s.svc.CheckCode(ctx, req.GetEmail(), req.GetCode()); err != nil {
		return nil, errs.ToStatus(err)
	}
	return &verifypb.CheckCodeResponse{}, nil
}

func (s *server) ConsumeCode(ctx context.Context, req *verifypb.ConsumeCodeRequest) (*verifypb.ConsumeCodeResponse, error) {
	if err := s.svc.ConsumeCode(ctx, req.GetEmail(), req.GetCode()); err != nil {
		return nil, errs.ToStatus(err)
	}
	return &verifypb.ConsumeCodeResponse{}, nil
}
