package grpcx

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// An ErrorTable carries a module's sentinel errors across a gRPC hop, so that
// errors.Is behaves the same whether the module is local or remote.
//
// A server converts what its implementation returned with ToStatus: a
// sentinel becomes a status carrying an errdetails.ErrorInfo with the
// sentinel's reason and the table's domain, plus the error's full message.
// A client converts what the call returned with FromStatus: a status with a
// known reason becomes an error that wraps the sentinel and reads exactly as
// the remote error did.
//
// Reasons are part of the wire contract: never change or reuse one.
type ErrorTable struct {
	domain  string
	entries []tableEntry // sorted by reason, so matching is deterministic
}

type tableEntry struct {
	reason string
	err    error
	code   codes.Code
}

// NewErrorTable returns a table for the sentinels keyed by their stable
// reason (such as "verify.no_code"). Every sentinel is sent with
// codes.FailedPrecondition unless WithCodes says otherwise. It panics on an
// empty domain or reason, a nil sentinel or a sentinel listed twice, since
// tables are built once at package initialisation.
func NewErrorTable(domain string, sentinels map[string]error) *ErrorTable {
	if domain == "" {
		panic("grpcx: NewErrorTable: empty domain")
	}
	t := &ErrorTable{domain: domain}
	seen := make(map[error]string, len(sentinels))
	for _, reason := range slices.Sorted(maps.Keys(sentinels)) {
		err := sentinels[reason]
		switch {
		case reason == "":
			panic("grpcx: NewErrorTable: empty reason")
		case err == nil:
			panic(fmt.Sprintf("grpcx: NewErrorTable: nil error for reason %q", reason))
		case seen[err] != "":
			panic(fmt.Sprintf("grpcx: NewErrorTable: %q and %q name the same error", seen[err], reason))
		}
		seen[err] = reason
		t.entries = append(t.entries, tableEntry{reason: reason, err: err, code: codes.FailedPrecondition})
	}
	return t
}

// WithCodes returns a copy of t that sends the sentinels with the given
// reasons with the given status codes, for example codes.InvalidArgument for
// a sentinel reporting bad input. It panics on a reason t does not know, and
// on codes.OK, Unavailable, DeadlineExceeded and Canceled, which clients read
// as transport outcomes.
func (t *ErrorTable) WithCodes(byReason map[string]codes.Code) *ErrorTable {
	c := &ErrorTable{domain: t.domain, entries: slices.Clone(t.entries)}
	for reason, code := range byReason {
		switch code {
		case codes.OK, codes.Unavailable, codes.DeadlineExceeded, codes.Canceled:
			panic(fmt.Sprintf("grpcx: WithCodes: %v is not a code for a sentinel (%q)", code, reason))
		}
		i := c.index(reason)
		if i < 0 {
			panic(fmt.Sprintf("grpcx: WithCodes: unknown reason %q", reason))
		}
		c.entries[i].code = code
	}
	return c
}

func (t *ErrorTable) index(reason string) int {
	i, ok := slices.BinarySearchFunc(t.entries, reason, func(e tableEntry, r string) int {
		return strings.Compare(e.reason, r)
	})
	if !ok {
		return -1
	}
	return i
}

// ToStatus converts an error returned by a service implementation into the
// error a gRPC handler returns:
//   - nil stays nil;
//   - an error matching one of the table's sentinels (errors.Is) gets the
//     sentinel's code, its ErrorInfo and the error's message;
//   - context.Canceled and context.DeadlineExceeded get codes.Canceled and
//     codes.DeadlineExceeded;
//   - an error that already carries a gRPC status (one a client of another
//     peer returned, say) keeps that status;
//   - anything else becomes codes.Internal with the error's message.
func (t *ErrorTable) ToStatus(err error) error {
	if err == nil {
		return nil
	}
	for _, e := range t.entries {
		if !errors.Is(err, e.err) {
			continue
		}
		st := status.New(e.code, err.Error())
		if withInfo, derr := st.WithDetails(&errdetails.ErrorInfo{Reason: e.reason, Domain: t.domain}); derr == nil {
			st = withInfo
		}
		return st.Err()
	}
	switch {
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	if st, ok := status.FromError(err); ok {
		return st.Err()
	}
	return status.Error(codes.Internal, err.Error())
}

// FromStatus converts the error a gRPC call returned into the error a client
// returns to its caller:
//   - nil stays nil;
//   - a status whose ErrorInfo names one of the table's reasons becomes an
//     error that wraps the sentinel and reads as the remote error did;
//   - codes.Unavailable (the peer cannot be reached, or the connection broke)
//     becomes an error wrapping ErrUnavailable;
//   - codes.DeadlineExceeded becomes an error wrapping both ErrUnavailable and
//     context.DeadlineExceeded, and codes.Canceled one wrapping
//     context.Canceled, so that a caller whose own context ended still
//     recognises ctx.Err();
//   - anything else is returned as is (a gRPC status error).
//
// Every converted error still carries the status: status.Code works on it.
func (t *ErrorTable) FromStatus(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	if e, ok := t.sentinel(st); ok {
		return &hopError{msg: st.Message(), wrapped: []error{e.err, err}}
	}
	switch st.Code() {
	case codes.Unavailable:
		return &hopError{msg: ErrUnavailable.Error() + ": " + err.Error(), wrapped: []error{ErrUnavailable, err}}
	case codes.DeadlineExceeded:
		return &hopError{msg: ErrUnavailable.Error() + ": " + err.Error(), wrapped: []error{ErrUnavailable, context.DeadlineExceeded, err}}
	case codes.Canceled:
		return &hopError{msg: err.Error(), wrapped: []error{context.Canceled, err}}
	}
	return err
}

// sentinel returns the entry named by st's ErrorInfo, if it is one of t's.
func (t *ErrorTable) sentinel(st *status.Status) (tableEntry, bool) {
	for _, d := range st.Details() {
		info, ok := d.(*errdetails.ErrorInfo)
		if !ok || info.GetDomain() != t.domain {
			continue
		}
		if i := t.index(info.GetReason()); i >= 0 {
			return t.entries[i], true
		}
	}
	return tableEntry{}, false
}

// hopError is an error received from a peer: it reads as msg and matches
// (errors.Is, errors.As) each of wrapped, the last of which is the gRPC
// status error itself.
type hopError struct {
	msg     string
	wrapped []error
}

func (e *hopError) Error() string   { return e.msg }
func (e *hopError) Unwrap() []error { return e.wrapped }
