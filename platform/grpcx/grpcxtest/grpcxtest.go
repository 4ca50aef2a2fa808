// Package grpcxtest starts gRPC servers for tests, either in memory (bufconn)
// or on a real loopback TCP port, each with a client connection to it. The
// servers are built with grpcx.NewServer, so tests exercise the production
// interceptors and error mapping.
package grpcxtest

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	"github.com/imsrv/imsrv/platform/grpcx"
)

// bufSize is the in-memory connection's buffer; calls are small.
const bufSize = 1 << 20

// Pipe starts a server with the services register adds on an in-memory
// listener and returns a client connection to it and the server, so that a
// test can stop it. Both are closed when the test ends.
func Pipe(t testing.TB, register func(grpc.ServiceRegistrar)) (*grpc.ClientConn, *grpc.Server) {
	t.Helper()
	lis := bufconn.Listen(bufSize)
	srv := serve(t, lis, register)
	cc, err := grpc.NewClient("passthrough:///bufconn",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
	)
	if err != nil {
		t.Fatalf("grpcxtest: client: %v", err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return cc, srv
}

// Loopback is Pipe over TCP: the server listens on 127.0.0.1 and the client
// is made by grpcx.Dial, as in production. It also returns the address.
func Loopback(t testing.TB, register func(grpc.ServiceRegistrar)) (*grpc.ClientConn, *grpc.Server, string) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("grpcxtest: listen: %v", err)
	}
	srv := serve(t, lis, register)
	addr := lis.Addr().String()
	cc, err := grpcx.Dial(addr)
	if err != nil {
		t.Fatalf("grpcxtest: %v", err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return cc, srv, addr
}

// serve runs a grpcx server on lis until the test ends.
func serve(t testing.TB, lis net.Listener, register func(grpc.ServiceRegistrar)) *grpc.Server {
	t.Helper()
	srv := grpcx.NewServer(slog.New(slog.DiscardHandler))
	register(srv)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(lis) }()
	t.Cleanup(func() {
		srv.Stop()
		// Serve returns nil once stopped (ErrServerStopped when the test
		// stopped it before it began); anything else broke the listener.
		if err := <-done; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			t.Errorf("grpcxtest: serve: %v", err)
		}
	})
	return srv
}
