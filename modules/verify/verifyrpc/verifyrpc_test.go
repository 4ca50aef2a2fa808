package verifyrpc_test

import (
	"errors"
	"log/slog"
	"net"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/imsrv/imsrv/modules/verify"
	"github.com/imsrv/imsrv/modules/verify/verifyrpc"
	"github.com/imsrv/imsrv/modules/verify/verifytest"
	"github.com/imsrv/imsrv/platform/grpcx"
	"github.com/imsrv/imsrv/platform/grpcx/grpcxtest"
	"github.com/imsrv/imsrv/platform/kv"
	"github.com/imsrv/imsrv/platform/mail"
	"github.com/imsrv/imsrv/platform/mail/mailtest"
)

// The contract suite itself (verifytest) runs through the client in
// modules/verify; these tests cover what is specific to the hop.

func newModule(t *testing.T, cfg verify.Config, store kv.Store, smtpPort int) *verify.Module {
	t.Helper()
	sender, err := mail.NewSMTPSender(mail.SMTPConfig{Host: "127.0.0.1", Port: smtpPort, From: "noreply@imsrv.test", TLS: mail.TLSNone})
	if err != nil {
		t.Fatal(err)
	}
	return verify.New(cfg, store, sender, slog.New(slog.DiscardHandler))
}

func register(svc verify.Service) func(grpc.ServiceRegistrar) {
	return func(s grpc.ServiceRegistrar) { verifyrpc.Register(s, svc) }
}

// TestErrorsAcrossTheHop drives a local module and a remote one through the
// same steps and checks that every error matches the same sentinel and reads
// the same on both.
func TestErrorsAcrossTheHop(t *testing.T) {
	type side struct {
		svc   verify.Service
		store kv.Store
	}
	sink := mailtest.NewSink(t)
	newSide := func(wrap verifytest.Wrap) side {
		store := kv.NewMemory()
		t.Cleanup(func() { _ = store.Close() })
		return side{wrap(t, newModule(t, verify.Config{PerEmail: 1, MaxAttempts: 2}, store, sink.Port())), store}
	}
	local, remote := newSide(verifytest.Local), newSide(verifytest.OverGRPC)
	refused := verifytest.OverGRPC(t, newModule(t, verify.Config{}, kv.NewMemory(), closedPort(t)))

	ctx := t.Context()
	steps := []struct {
		name string
		do   func(s side) error
		want error // nil: no error
	}{
		{"invalid e-mail", func(s side) error {
			return s.svc.SendCode(ctx, verify.SendRequest{Email: "not an address"})
		}, verify.ErrInvalidEmail},
		{"no code", func(s side) error { return s.svc.CheckCode(ctx, "a@example.com", "1234") }, verify.ErrNoCode},
		{"send", func(s side) error { return s.svc.SendCode(ctx, verify.SendRequest{Email: "a@example.com"}) }, nil},
		{"rate limited", func(s side) error {
			return s.svc.SendCode(ctx, verify.SendRequest{Email: "a@example.com"})
		}, verify.ErrRateLimited},
		// "abcd" is never a code: wrong on both sides whatever codes they drew.
		{"wrong code", func(s side) error { return s.svc.CheckCode(ctx, "a@example.com", "abcd") }, verify.ErrWrongCode},
		{"wrong code on consume", func(s side) error {
			return s.svc.ConsumeCode(ctx, "a@example.com", "abcd")
		}, verify.ErrWrongCode},
		{"invalidated", func(s side) error { return s.svc.ConsumeCode(ctx, "a@example.com", "abcd") }, verify.ErrNoCode},
	}
	for _, st := range steps {
		lerr, rerr := st.do(local), st.do(remote)
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

	// A failure that is no sentinel (a hash where the code should be breaks
	// the store) arrives as Internal with the module's message.
	for _, s := range []side{local, remote} {
		if err := s.store.HSet(ctx, "code_b@example.com", "f", "v"); err != nil {
			t.Fatal(err)
		}
	}
	lerr, rerr := local.svc.CheckCode(ctx, "b@example.com", "1234"), remote.svc.CheckCode(ctx, "b@example.com", "1234")
	if !errors.Is(lerr, kv.ErrWrongType) {
		t.Fatalf("local CheckCode on a broken store = %v", lerr)
	}
	if status.Code(rerr) != codes.Internal || status.Convert(rerr).Message() != lerr.Error() || errors.Is(rerr, grpcx.ErrUnavailable) {
		t.Errorf("remote CheckCode on a broken store = %v, want Internal: %s", rerr, lerr)
	}

	err := refused.SendCode(ctx, verify.SendRequest{Email: "a@example.com"})
	if !errors.Is(err, verify.ErrDelivery) || errors.Is(err, grpcx.ErrUnavailable) {
		t.Errorf("SendCode with the relay down = %v, want ErrDelivery (the module is reachable)", err)
	}
}

// TestUnreachable: a module that cannot be reached fails every call with
// grpcx.ErrUnavailable, never with a verify sentinel.
func TestUnreachable(t *testing.T) {
	cc, err := grpcx.Dial(net.JoinHostPort("127.0.0.1", strconv.Itoa(closedPort(t))))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	c := verifyrpc.NewClient(cc)
	ctx := t.Context()
	for name, err := range map[string]error{
		"SendCode":    c.SendCode(ctx, verify.SendRequest{Email: "a@example.com"}),
		"CheckCode":   c.CheckCode(ctx, "a@example.com", "1234"),
		"ConsumeCode": c.ConsumeCode(ctx, "a@example.com", "1234"),
	} {
		if !errors.Is(err, grpcx.ErrUnavailable) {
			t.Errorf("%s to a closed port = %v, want ErrUnavailable", name, err)
		}
	}
}

// TestServerStopsMidCall: a SendCode waiting on a hung mail relay when the
// server goes away fails with ErrUnavailable, and so do later calls.
func TestServerStopsMidCall(t *testing.T) {
	m := newModule(t, verify.Config{SendTimeout: time.Minute}, kv.NewMemory(), verifytest.SilentRelay(t))
	cc, srv, _ := grpcxtest.Loopback(t, register(m))
	c := verifyrpc.NewClient(cc)
	ctx := t.Context()
	if err := c.CheckCode(ctx, "a@example.com", "1234"); !errors.Is(err, verify.ErrNoCode) {
		t.Fatalf("CheckCode = %v, want ErrNoCode", err)
	}

	done := make(chan error, 1)
	go func() { done <- c.SendCode(ctx, verify.SendRequest{Email: "a@example.com"}) }()
	// Let the call reach the relay; stopping earlier is fine too.
	time.Sleep(100 * time.Millisecond)
	srv.Stop()
	if err := <-done; !errors.Is(err, grpcx.ErrUnavailable) {
		t.Fatalf("SendCode interrupted by the server stopping = %v, want ErrUnavailable", err)
	}
	if err := c.CheckCode(ctx, "a@example.com", "1234"); !errors.Is(err, grpcx.ErrUnavailable) {
		t.Fatalf("CheckCode after the server stopped = %v, want ErrUnavailable", err)
	}
}

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}
