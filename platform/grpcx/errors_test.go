package grpcx_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/imsrv/imsrv/platform/grpcx"
)

var (
	errNoThing  = errors.New("thing: no such thing")
	errBadInput = errors.New("thing: bad input")
	errForeign  = errors.New("other: not in the table")
)

func thingTable() *grpcx.ErrorTable {
	return grpcx.NewErrorTable("imsrv.test", map[string]error{
		"thing.no_thing":  errNoThing,
		"thing.bad_input": errBadInput,
	}).WithCodes(map[string]codes.Code{"thing.bad_input": codes.InvalidArgument})
}

// errorInfo returns the ErrorInfo detail of a status error, or nil.
func errorInfo(err error) *errdetails.ErrorInfo {
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info
		}
	}
	return nil
}

func TestErrorTableNil(t *testing.T) {
	tab := thingTable()
	if err := tab.ToStatus(nil); err != nil {
		t.Errorf("ToStatus(nil) = %v", err)
	}
	if err := tab.FromStatus(nil); err != nil {
		t.Errorf("FromStatus(nil) = %v", err)
	}
}

func TestErrorTableSentinelRoundTrip(t *testing.T) {
	tab := thingTable()
	for _, tc := range []struct {
		err      error
		sentinel error
		code     codes.Code
		reason   string
	}{
		{errNoThing, errNoThing, codes.FailedPrecondition, "thing.no_thing"},
		{fmt.Errorf("%w: id 7", errNoThing), errNoThing, codes.FailedPrecondition, "thing.no_thing"},
		{fmt.Errorf("lookup: %w", fmt.Errorf("%w: too long", errBadInput)), errBadInput, codes.InvalidArgument, "thing.bad_input"},
	} {
		st := tab.ToStatus(tc.err)
		if got := status.Code(st); got != tc.code {
			t.Errorf("ToStatus(%q) code = %v, want %v", tc.err, got, tc.code)
		}
		if got := status.Convert(st).Message(); got != tc.err.Error() {
			t.Errorf("ToStatus(%q) message = %q, want the error's message", tc.err, got)
		}
		if info := errorInfo(st); info.GetReason() != tc.reason || info.GetDomain() != "imsrv.test" {
			t.Errorf("ToStatus(%q) ErrorInfo = %v, want reason %s in domain imsrv.test", tc.err, info, tc.reason)
		}

		back := tab.FromStatus(st)
		if !errors.Is(back, tc.sentinel) {
			t.Errorf("FromStatus(ToStatus(%q)) = %v: lost its identity", tc.err, back)
		}
		if back.Error() != tc.err.Error() {
			t.Errorf("FromStatus(ToStatus(%q)) reads %q", tc.err, back.Error())
		}
		if status.Code(back) != tc.code {
			t.Errorf("FromStatus(ToStatus(%q)) lost its status: code %v", tc.err, status.Code(back))
		}
		for _, other := range []error{errNoThing, errBadInput, grpcx.ErrUnavailable, context.Canceled} {
			if other != tc.sentinel && errors.Is(back, other) {
				t.Errorf("FromStatus(ToStatus(%q)) also matches %q", tc.err, other)
			}
		}

		// A server that got the error from a client of another peer (a
		// proxy) sends it on unchanged.
		if again := tab.FromStatus(tab.ToStatus(back)); !errors.Is(again, tc.sentinel) || again.Error() != tc.err.Error() {
			t.Errorf("second hop of %q = %v", tc.err, again)
		}
	}
}

func TestErrorTableContextErrors(t *testing.T) {
	tab := thingTable()
	for _, tc := range []struct {
		err         error
		code        codes.Code
		unavailable bool
	}{
		{context.Canceled, codes.Canceled, false},
		{fmt.Errorf("read: %w", context.Canceled), codes.Canceled, false},
		{context.DeadlineExceeded, codes.DeadlineExceeded, true},
	} {
		st := tab.ToStatus(tc.err)
		if got := status.Code(st); got != tc.code {
			t.Errorf("ToStatus(%q) code = %v, want %v", tc.err, got, tc.code)
		}
		back := tab.FromStatus(st)
		ctxErr := context.Canceled
		if tc.code == codes.DeadlineExceeded {
			ctxErr = context.DeadlineExceeded
		}
		if !errors.Is(back, ctxErr) {
			t.Errorf("FromStatus(%v) = %v, want it to match %v", st, back, ctxErr)
		}
		if errors.Is(back, grpcx.ErrUnavailable) != tc.unavailable {
			t.Errorf("FromStatus(%v) = %v: matches ErrUnavailable = %t, want %t", st, back, !tc.unavailable, tc.unavailable)
		}
	}
}

func TestErrorTableOtherErrors(t *testing.T) {
	tab := thingTable()
	st := tab.ToStatus(fmt.Errorf("thing: read: %w", errForeign))
	if status.Code(st) != codes.Internal || status.Convert(st).Message() != "thing: read: other: not in the table" {
		t.Fatalf("ToStatus(unknown error) = %v, want Internal with the message", st)
	}
	if info := errorInfo(st); info != nil {
		t.Fatalf("an unknown error got ErrorInfo %v", info)
	}
	back := tab.FromStatus(st)
	if status.Code(back) != codes.Internal || errors.Is(back, grpcx.ErrUnavailable) || errors.Is(back, errForeign) {
		t.Fatalf("FromStatus(Internal) = %v", back)
	}

	// An error that already is a status keeps it.
	st = tab.ToStatus(fmt.Errorf("proxy: %w", status.Error(codes.NotFound, "gone")))
	if status.Code(st) != codes.NotFound {
		t.Fatalf("ToStatus(status error) = %v, want NotFound kept", st)
	}

	// An error that is not a status at all (none of gRPC's) is left alone.
	if back := tab.FromStatus(errForeign); back != errForeign {
		t.Fatalf("FromStatus(plain error) = %v", back)
	}
}

func TestErrorTableUnavailable(t *testing.T) {
	tab := thingTable()
	back := tab.FromStatus(status.Error(codes.Unavailable, "connection refused"))
	if !errors.Is(back, grpcx.ErrUnavailable) || status.Code(back) != codes.Unavailable {
		t.Fatalf("FromStatus(Unavailable) = %v, want ErrUnavailable with the status", back)
	}
	if errors.Is(back, context.DeadlineExceeded) || errors.Is(back, context.Canceled) {
		t.Fatalf("FromStatus(Unavailable) = %v matches a context error", back)
	}
}

// TestErrorTableForeignInfo: only the table's own domain and reasons are
// trusted; anything else is read by its code.
func TestErrorTableForeignInfo(t *testing.T) {
	other := grpcx.NewErrorTable("imsrv.other", map[string]error{"thing.no_thing": errForeign})
	st := other.ToStatus(errForeign)
	back := thingTable().FromStatus(st)
	if errors.Is(back, errNoThing) || status.Code(back) != codes.FailedPrecondition {
		t.Fatalf("FromStatus(another domain's reason) = %v", back)
	}

	st = grpcx.NewErrorTable("imsrv.test", map[string]error{"thing.renamed": errNoThing}).ToStatus(errNoThing)
	if back := thingTable().FromStatus(st); errors.Is(back, errNoThing) {
		t.Fatalf("FromStatus(unknown reason) = %v matches a sentinel", back)
	}
}

func TestWithCodesCopies(t *testing.T) {
	base := grpcx.NewErrorTable("imsrv.test", map[string]error{"thing.no_thing": errNoThing})
	custom := base.WithCodes(map[string]codes.Code{"thing.no_thing": codes.NotFound})
	if got := status.Code(custom.ToStatus(errNoThing)); got != codes.NotFound {
		t.Errorf("custom code = %v", got)
	}
	if got := status.Code(base.ToStatus(errNoThing)); got != codes.FailedPrecondition {
		t.Errorf("WithCodes changed the original table: code %v", got)
	}
}

func TestErrorTableMisuse(t *testing.T) {
	for name, f := range map[string]func(){
		"empty domain":     func() { grpcx.NewErrorTable("", map[string]error{"a": errNoThing}) },
		"empty reason":     func() { grpcx.NewErrorTable("d", map[string]error{"": errNoThing}) },
		"nil error":        func() { grpcx.NewErrorTable("d", map[string]error{"a": nil}) },
		"duplicate error":  func() { grpcx.NewErrorTable("d", map[string]error{"a": errNoThing, "b": errNoThing}) },
		"unknown reason":   func() { thingTable().WithCodes(map[string]codes.Code{"nope": codes.NotFound}) },
		"transport code":   func() { thingTable().WithCodes(map[string]codes.Code{"thing.no_thing": codes.Unavailable}) },
		"OK for a failure": func() { thingTable().WithCodes(map[string]codes.Code{"thing.no_thing": codes.OK}) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}
