package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/imsrv/imsrv/modules/chat/chatclient"
)

// maxSources bounds a source address list, so that a typo in a range
// (10.0.0.1-10.9.0.1) cannot allocate millions of addresses.
const maxSources = 65536

// ParseSources parses a list of local source addresses: comma-separated
// IPs or inclusive ranges "first-last" of one family, e.g.
// "127.0.0.2-127.0.0.9" or "10.0.0.5,10.0.0.6". Every connection to one
// server address from one source address needs its own ephemeral port, so
// n sources multiply the connections the port range allows by n.
func ParseSources(spec string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, item := range strings.Split(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		a, b, isRange := strings.Cut(item, "-")
		first, err := netip.ParseAddr(strings.TrimSpace(a))
		if err != nil {
			return nil, fmt.Errorf("bench: source %q: %w", item, err)
		}
		last := first
		if isRange {
			if last, err = netip.ParseAddr(strings.TrimSpace(b)); err != nil {
				return nil, fmt.Errorf("bench: source %q: %w", item, err)
			}
			if first.BitLen() != last.BitLen() || last.Less(first) {
				return nil, fmt.Errorf("bench: source range %q: want first-last of one family, first <= last", item)
			}
		}
		for a := first; ; a = a.Next() {
			if len(out) == maxSources {
				return nil, fmt.Errorf("bench: more than %d source addresses", maxSources)
			}
			out = append(out, a)
			if a == last {
				break
			}
		}
	}
	return out, nil
}

// dialer opens chat connections, spreading them over the source addresses
// round-robin (or letting the kernel choose when there are none).
type dialer struct {
	sources []netip.Addr
	next    atomic.Uint64
}

func (d *dialer) dial(ctx context.Context, addr string, opts ...chatclient.Option) (*chatclient.Client, error) {
	nd := &net.Dialer{}
	if len(d.sources) > 0 {
		src := d.sources[(d.next.Add(1)-1)%uint64(len(d.sources))]
		nd.LocalAddr = &net.TCPAddr{IP: src.AsSlice()}
	}
	return chatclient.Dial(ctx, addr, append(opts, chatclient.WithDialer(nd))...)
}

// classify turns an error into a short, low-cardinality description for a
// report ("dial: connection refused", "login: error 1010", ...).
func classify(stage string, err error) string {
	var se *chatclient.ServerError
	var api *APIError
	var errno syscall.Errno
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("%s: error %d", stage, se.Code)
	case errors.As(err, &api):
		if api.Status != http.StatusOK {
			return fmt.Sprintf("%s: HTTP %d", stage, api.Status)
		}
		return fmt.Sprintf("%s: error %d", stage, api.Code)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return stage + ": timeout"
	case errors.Is(err, context.Canceled):
		return stage + ": canceled"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return stage + ": closed by server"
	case errors.As(err, &errno):
		return stage + ": " + errno.Error()
	}
	return stage + ": " + err.Error()
}
