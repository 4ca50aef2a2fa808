// Package grpcx holds the gRPC plumbing shared by the modules that talk to
// each other across processes: how clients dial, how servers are built, and
// how sentinel errors keep their identity across a hop (ErrorTable). It
// knows nothing about any module.
//
// Traffic between imsrv nodes is expected to stay on a private network, so
// connections are plaintext (insecure transport credentials); TLS between
// nodes is future work.
package grpcx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
)

// ErrUnavailable reports that a peer could not be reached or did not answer
// in time: the connection failed or broke, or the call's deadline passed.
// Whether the remote side acted on the request is unknown.
var ErrUnavailable = errors.New("grpcx: peer unavailable")

// Keepalive and reconnection settings. The server's enforcement policy must
// tolerate the client's ping interval, or the server closes the connection
// with ENHANCE_YOUR_CALM.
const (
	keepaliveTime    = 30 * time.Second // ping a connection idle this long
	keepaliveTimeout = 10 * time.Second // and drop it when the ack takes longer
	keepaliveMinTime = 15 * time.Second // pings more frequent than this are abuse

	reconnectBaseDelay = 250 * time.Millisecond
	reconnectMaxDelay  = 5 * time.Second // how long a recovered peer may go unnoticed
	minConnectTimeout  = 5 * time.Second
)

// Dial returns a client connection to the node at addr ("host:port"). It does
// no I/O: the connection is made on the first call and re-made with backoff
// whenever it breaks. Calls fail fast with codes.Unavailable while the peer
// cannot be reached.
//
// The connection is plaintext; see the package documentation.
func Dial(addr string) (*grpc.ClientConn, error) {
	if addr == "" {
		return nil, errors.New("grpcx: dial: empty address")
	}
	cc, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{
			Time:                keepaliveTime,
			Timeout:             keepaliveTimeout,
			PermitWithoutStream: true,
		}),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff: backoff.Config{
				BaseDelay:  reconnectBaseDelay,
				Multiplier: backoff.DefaultConfig.Multiplier,
				Jitter:     backoff.DefaultConfig.Jitter,
				MaxDelay:   reconnectMaxDelay,
			},
			MinConnectTimeout: minConnectTimeout,
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("grpcx: dial %s: %w", addr, err)
	}
	return cc, nil
}

// NewServer returns a gRPC server for node-to-node traffic. A panicking unary
// handler is answered with codes.Internal and logged once, with its stack, at
// error level; the server keeps serving. Keepalive is enforced to match Dial.
func NewServer(logger *slog.Logger) *grpc.Server {
	return grpc.NewServer(
		grpc.ChainUnaryInterceptor(recoverUnary(logger)),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             keepaliveMinTime,
			PermitWithoutStream: true,
		}),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			Time:    keepaliveTime,
			Timeout: keepaliveTimeout,
		}),
	)
}

// recoverUnary turns a handler panic into codes.Internal.
func recoverUnary(logger *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if r := recover(); r != nil {
				logger.ErrorContext(ctx, "grpc handler panicked",
					"method", info.FullMethod, "panic", r, "stack", string(debug.Stack()))
				resp, err = nil, status.Error(codes.Internal, "internal error")
			}
		}()
		return handler(ctx, req)
	}
}

// WithDefaultTimeout bounds ctx by d unless it already has a deadline, in
// which case ctx is returned as is. Clients use it so that no call to a peer
// waits forever. The returned cancel must be called as with
// context.WithTimeout.
func WithDefaultTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, d)
}
