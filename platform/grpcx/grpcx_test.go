package grpcx_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/imsrv/imsrv/platform/grpcx"
	"github.com/imsrv/imsrv/platform/grpcx/grpcxtest"
)

// doer is a one-method test service, /grpcx.test.Doer/Do, registered by hand
// so that these tests need no generated code. Its handler runs do with the
// request's string and maps the result with the thing table.
type doer struct {
	do func(ctx context.Context, what string) error
}

const doMethod = "/grpcx.test.Doer/Do"

var doerDesc = grpc.ServiceDesc{
	ServiceName: "grpcx.test.Doer",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Do",
		Handler: func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
			in := new(wrapperspb.StringValue)
			if err := dec(in); err != nil {
				return nil, err
			}
			handle := func(ctx context.Context, req any) (any, error) {
				err := srv.(*doer).do(ctx, req.(*wrapperspb.StringValue).GetValue())
				if err != nil {
					return nil, thingTable().ToStatus(err)
				}
				return &emptypb.Empty{}, nil
			}
			return interceptor(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: doMethod}, handle)
		},
	}},
}

func registerDoer(do func(ctx context.Context, what string) error) func(grpc.ServiceRegistrar) {
	return func(s grpc.ServiceRegistrar) { s.RegisterService(&doerDesc, &doer{do: do}) }
}

// call invokes Do and maps the error as a client would.
func call(ctx context.Context, cc grpc.ClientConnInterface, what string) error {
	return thingTable().FromStatus(cc.Invoke(ctx, doMethod, wrapperspb.String(what), &emptypb.Empty{}))
}

// TestHop checks the error mapping end to end, through a real server and client.
func TestHop(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	cc, _ := grpcxtest.Pipe(t, registerDoer(func(ctx context.Context, what string) error {
		switch what {
		case "ok":
			return nil
		case "no_thing":
			return errNoThing
		case "bad_input":
			return errors.Join(errBadInput, errors.New("field x"))
		case "block":
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-release:
				return nil
			}
		}
		return errors.New("disk on fire")
	}))
	ctx := t.Context()

	if err := call(ctx, cc, "ok"); err != nil {
		t.Fatalf("ok = %v", err)
	}
	if err := call(ctx, cc, "no_thing"); !errors.Is(err, errNoThing) || err.Error() != errNoThing.Error() {
		t.Errorf("no_thing = %v", err)
	}
	if err := call(ctx, cc, "bad_input"); !errors.Is(err, errBadInput) || status.Code(err) != codes.InvalidArgument ||
		!strings.Contains(err.Error(), "field x") {
		t.Errorf("bad_input = %v (code %v)", err, status.Code(err))
	}
	if err := call(ctx, cc, "other"); status.Code(err) != codes.Internal || !strings.Contains(err.Error(), "disk on fire") ||
		errors.Is(err, grpcx.ErrUnavailable) {
		t.Errorf("other = %v", err)
	}

	// The caller's own deadline or cancellation ends a call that hangs.
	dctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := call(dctx, cc, "block"); !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, grpcx.ErrUnavailable) {
		t.Errorf("call past its deadline = %v, want DeadlineExceeded and ErrUnavailable", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	time.AfterFunc(50*time.Millisecond, cancel)
	if err := call(cctx, cc, "block"); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled call = %v, want context.Canceled", err)
	}
}

// recorder is a slog.Handler that keeps the records it handles.
type recorder struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *recorder) WithGroup(string) slog.Handler            { return r }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, rec.Clone())
	return nil
}

func (r *recorder) records() []slog.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]slog.Record(nil), r.recs...)
}

// serveTCP runs grpcx.NewServer with logger on a loopback port and dials it
// with grpcx.Dial.
func serveTCP(t *testing.T, logger *slog.Logger, register func(grpc.ServiceRegistrar)) (*grpc.ClientConn, *grpc.Server) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpcx.NewServer(logger)
	register(srv)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	cc, err := grpcx.Dial(lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return cc, srv
}

func TestServerRecoversPanics(t *testing.T) {
	rec := &recorder{}
	cc, _ := serveTCP(t, slog.New(rec), registerDoer(func(_ context.Context, what string) error {
		if what == "panic" {
			panic("handler bug")
		}
		return nil
	}))
	err := call(t.Context(), cc, "panic")
	if status.Code(err) != codes.Internal || strings.Contains(err.Error(), "handler bug") {
		t.Fatalf("panicking call = %v, want Internal without the panic value", err)
	}
	recs := rec.records()
	if len(recs) != 1 || recs[0].Level != slog.LevelError {
		t.Fatalf("logged %d records (%v), want one error", len(recs), recs)
	}
	attrs := map[string]string{}
	recs[0].Attrs(func(a slog.Attr) bool {
		attrs[a.Key] = a.Value.String()
		return true
	})
	if attrs["method"] != doMethod || attrs["panic"] != "handler bug" || !strings.Contains(attrs["stack"], "grpcx_test") {
		t.Fatalf("panic logged with %v", attrs)
	}
	// The server is still serving.
	if err := call(t.Context(), cc, "ok"); err != nil {
		t.Fatalf("call after a panic = %v", err)
	}
}

func TestDialRefused(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	cc, err := grpcx.Dial(addr)
	if err != nil {
		t.Fatalf("Dial = %v; it should not connect yet", err)
	}
	defer cc.Close()
	if err := call(t.Context(), cc, "ok"); !errors.Is(err, grpcx.ErrUnavailable) {
		t.Fatalf("call to a closed port = %v, want ErrUnavailable", err)
	}
}

func TestDialEmptyAddress(t *testing.T) {
	if _, err := grpcx.Dial(""); err == nil {
		t.Fatal("Dial(\"\") succeeded")
	}
}

func TestServerStopped(t *testing.T) {
	entered := make(chan struct{}, 1)
	cc, srv, _ := grpcxtest.Loopback(t, registerDoer(func(ctx context.Context, what string) error {
		if what == "block" {
			entered <- struct{}{}
			<-ctx.Done() // until the server is stopped
		}
		return nil
	}))
	if err := call(t.Context(), cc, "ok"); err != nil {
		t.Fatal(err)
	}
	// Stopped in the middle of a call.
	go func() {
		<-entered
		srv.Stop()
	}()
	if err := call(t.Context(), cc, "block"); !errors.Is(err, grpcx.ErrUnavailable) {
		t.Fatalf("call interrupted by the server stopping = %v, want ErrUnavailable", err)
	}
	// And calls after it stopped.
	if err := call(t.Context(), cc, "ok"); !errors.Is(err, grpcx.ErrUnavailable) {
		t.Fatalf("call to a stopped server = %v, want ErrUnavailable", err)
	}
}

func TestWithDefaultTimeout(t *testing.T) {
	ctx, cancel := grpcx.WithDefaultTimeout(t.Context(), time.Hour)
	defer cancel()
	if d, ok := ctx.Deadline(); !ok || time.Until(d) > time.Hour {
		t.Fatalf("deadline %v, %t; want at most an hour from now", d, ok)
	}

	own, cancelOwn := context.WithTimeout(t.Context(), time.Minute)
	defer cancelOwn()
	ctx, cancel = grpcx.WithDefaultTimeout(own, time.Hour)
	defer cancel()
	if ctx != own {
		t.Fatal("a context with a deadline was replaced")
	}
}
