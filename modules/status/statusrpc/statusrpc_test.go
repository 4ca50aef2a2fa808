package statusrpc_test

import (
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"

	"github.com/imsrv/imsrv/modules/status"
	"github.com/imsrv/imsrv/modules/status/statuspb"
	"github.com/imsrv/imsrv/modules/status/statusrpc"
	"github.com/imsrv/imsrv/modules/status/statustest"
	"github.com/imsrv/imsrv/platform/grpcx"
	"github.com/imsrv/imsrv/platform/grpcx/grpcxtest"
	"github.com/imsrv/imsrv/platform/kv"
)

// The contract suite itself (statustest) runs through the client in
// modules/status; these tests cover what is specific to the hop.

type side struct {
	svc   status.Service
	store kv.Store
}

func newSide(t *testing.T, wrap statustest.Wrap) side {
	store := kv.NewMemory()
	t.Cleanup(func() { _ = store.Close() })
	return side{wrap(t, status.New(status.Config{}, store, slog.New(slog.DiscardHandler))), store}
}

// TestErrorsAcrossTheHop drives a local module and a remote one through the
// same steps and checks that every error matches the same sentinel and reads
// the same on both.
func TestErrorsAcrossTheHop(t *testing.T) {
	local, remote := newSide(t, statustest.Local), newSide(t, statustest.OverGRPC)
	ctx := t.Context()
	var tokens [2]string // the token each side issued to uid 1001
	steps := []struct {
		name string
		do   func(i int, s side) error
		want error // nil: no error
	}{
		{"invalid node", func(_ int, s side) error {
			return s.svc.RegisterNode(ctx, status.Node{Name: "n1", Addr: "no port"})
		}, status.ErrInvalidNode},
		{"nameless node", func(_ int, s side) error {
			return s.svc.RegisterNode(ctx, status.Node{Addr: "127.0.0.1:9001"})
		}, status.ErrInvalidNode},
		{"no node", func(_ int, s side) error { _, err := s.svc.Allocate(ctx, 1001); return err }, status.ErrNoNode},
		{"no token", func(_ int, s side) error { return s.svc.CheckToken(ctx, 1001, "x") }, status.ErrUIDInvalid},
		{"register", func(_ int, s side) error {
			return s.svc.RegisterNode(ctx, status.Node{Name: "n1", Addr: "127.0.0.1:9001"})
		}, nil},
		{"allocate", func(i int, s side) error {
			a, err := s.svc.Allocate(ctx, 1001)
			tokens[i] = a.Token
			return err
		}, nil},
		{"good token", func(i int, s side) error { return s.svc.CheckToken(ctx, 1001, tokens[i]) }, nil},
		{"bad token", func(_ int, s side) error { return s.svc.CheckToken(ctx, 1001, "x") }, status.ErrTokenInvalid},
		{"negative uid", func(i int, s side) error { return s.svc.CheckToken(ctx, -1, tokens[i]) }, status.ErrUIDInvalid},
	}
	for _, st := range steps {
		lerr, rerr := st.do(0, local), st.do(1, remote)
		if st.want == nil {
			if lerr != nil || rerr != nil {
				t.Fatalf("%s: local %v, remote %v; want no error", st.name, lerr, rerr)
			}
			continue
		}
		if !errors.Is(lerr, st.want) || !errors.Is(rerr, st.want) {
			t.Errorf("%s: local %v, remote %v; want %v on both", st.name, lerr, rerr, st.want)
		} else if lerr.Error() != rerr.Error() {
			t.Errorf("%s: local reads %q, remote %q", st.name, lerr, rerr)
		}
	}

	// A failure that is no sentinel (a string where the registry hash should
	// be breaks the store) arrives as Internal with the module's message.
	for _, s := range []side{local, remote} {
		if err := s.store.Set(ctx, "chatnodes", "junk", 0); err != nil {
			t.Fatal(err)
		}
	}
	_, lerr := local.svc.Nodes(ctx)
	_, rerr := remote.svc.Nodes(ctx)
	if !errors.Is(lerr, kv.ErrWrongType) {
		t.Fatalf("local Nodes on a broken store = %v", lerr)
	}
	if grpcstatus.Code(rerr) != codes.Internal || grpcstatus.Convert(rerr).Message() != lerr.Error() || errors.Is(rerr, grpcx.ErrUnavailable) {
		t.Errorf("remote Nodes on a broken store = %v, want Internal: %s", rerr, lerr)
	}
}

// TestMissingNode: a request without a node is an invalid registration, not
// a crash.
func TestMissingNode(t *testing.T) {
	store := kv.NewMemory()
	cc, _ := grpcxtest.Pipe(t, func(s grpc.ServiceRegistrar) {
		statusrpc.Register(s, status.New(status.Config{}, store, slog.New(slog.DiscardHandler)))
	})
	_, err := statuspb.NewStatusClient(cc).RegisterNode(t.Context(), &statuspb.RegisterNodeRequest{})
	if grpcstatus.Code(err) != codes.InvalidArgument || !strings.HasPrefix(grpcstatus.Convert(err).Message(), status.ErrInvalidNode.Error()) {
		t.Fatalf("RegisterNode without a node = %v, want InvalidArgument: %v", err, status.ErrInvalidNode)
	}
}

// TestUnreachable: a module that cannot be reached fails every call with
// grpcx.ErrUnavailable, never with a status sentinel.
func TestUnreachable(t *testing.T) {
	cc, err := grpcx.Dial(closedAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	checkUnavailable(t, statusrpc.NewClient(cc))
}

// TestServerStopped: once the server has gone, calls fail with ErrUnavailable.
func TestServerStopped(t *testing.T) {
	store := kv.NewMemory()
	cc, srv, _ := grpcxtest.Loopback(t, func(s grpc.ServiceRegistrar) {
		statusrpc.Register(s, status.New(status.Config{}, store, slog.New(slog.DiscardHandler)))
	})
	c := statusrpc.NewClient(cc)
	if err := c.CheckToken(t.Context(), 1001, "x"); !errors.Is(err, status.ErrUIDInvalid) {
		t.Fatalf("CheckToken = %v, want ErrUIDInvalid", err)
	}
	srv.Stop()
	checkUnavailable(t, c)
}

func checkUnavailable(t *testing.T, c *statusrpc.Client) {
	t.Helper()
	ctx := t.Context()
	_, nodesErr := c.Nodes(ctx)
	_, allocErr := c.Allocate(ctx, 1001)
	for name, err := range map[string]error{
		"RegisterNode":   c.RegisterNode(ctx, status.Node{Name: "n1", Addr: "127.0.0.1:9001"}),
		"DeregisterNode": c.DeregisterNode(ctx, "n1"),
		"Nodes":          nodesErr,
		"Allocate":       allocErr,
		"CheckToken":     c.CheckToken(ctx, 1001, "x"),
	} {
		if !errors.Is(err, grpcx.ErrUnavailable) {
			t.Errorf("%s = %v, want ErrUnavailable", name, err)
		}
	}
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
