package app

import (
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"

	"github.com/imsrv/imsrv/modules/chat"
	"github.com/imsrv/imsrv/modules/chat/chatrpc"
	"github.com/imsrv/imsrv/platform/grpcx"
)

// rpcEndpoint is one gRPC server on one listen address; modules configured
// with the same address share it.
type rpcEndpoint struct {
	addr    string // as configured
	ln      net.Listener
	srv     *grpc.Server
	modules []string
}

// offer makes module available over gRPC on addr, binding the listener now.
// Modules configured with the same address (other than a ":0"-style one,
// which asks for a fresh port each time) share one server.
func (a *App) offer(addr, module string, register func(*grpc.Server)) error {
	if _, port, _ := net.SplitHostPort(addr); port != "0" {
		for _, e := range a.rpc {
			if e.addr == addr {
				register(e.srv)
				e.modules = append(e.modules, module)
				return nil
			}
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%s gRPC listen on %s: %w", module, addr, err)
	}
	e := &rpcEndpoint{addr: addr, ln: ln, srv: grpcx.NewServer(a.logger.With("rpc", module)), modules: []string{module}}
	register(e.srv)
	a.rpc = append(a.rpc, e)
	return nil
}

// dial opens a gRPC connection to a remote module, closed by Close.
func (a *App) dial(addr string) (*grpc.ClientConn, error) {
	cc, err := grpcx.Dial(addr)
	if err != nil {
		return nil, err
	}
	a.clients = append(a.clients, cc)
	return cc, nil
}

// dialPeer opens a connection to another chat node (for the peer pool).
func (a *App) dialPeer(addr string) (chat.Peer, io.Closer, error) {
	cc, err := grpcx.Dial(addr)
	if err != nil {
		return nil, nil, err
	}
	return chatrpc.NewClient(cc), cc, nil
}

// chatRPCAdvertise is the node-to-node address other chat nodes dial ("" in
// a single process).
func (a *App) chatRPCAdvertise() string {
	for _, e := range a.rpc {
		if slices.Contains(e.modules, "chat") {
			return advertiseFor(a.cfg.Chat.RPCAdvertise, e.ln.Addr())
		}
	}
	return ""
}

// serveRPC runs e's gRPC server in g and stops it gracefully (bounded by
// shutdown.timeout) when ctx ends.
func (a *App) serveRPC(ctx context.Context, g *errgroup.Group, e *rpcEndpoint) {
	g.Go(func() error {
		a.logger.Info("listening", "server", "grpc", "modules", e.modules, "addr", e.ln.Addr().String())
		if err := e.srv.Serve(e.ln); err != nil && err != grpc.ErrServerStopped {
			return fmt.Errorf("gRPC server %v: %w", e.modules, err)
		}
		return nil
	})
	g.Go(func() error {
		<-ctx.Done()
		done := make(chan struct{})
		go func() { e.srv.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-time.After(a.cfg.ShutdownTimeout):
			e.srv.Stop()
		}
		return nil
	})
}
