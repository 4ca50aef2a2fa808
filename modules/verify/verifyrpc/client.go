package verifyrpc

import (
	"context"
	"time"

	"google.golang.org/grpc"

	"github.com/imsrv/imsrv/modules/verify"
	"github.com/imsrv/imsrv/modules/verify/verifypb"
	"github.com/imsrv/imsrv/platform/grpcx"
)

// Bounds on a call whose context has no deadline of its own.
const (
	// DefaultTimeout bounds CheckCode and ConsumeCode.
	DefaultTimeout = 5 * time.Second
	// SendCodeTimeout bounds SendCode, which waits for the mail relay (the
	// module's own bound on that is 8s by default).
	SendCodeTimeout = 15 * time.Second
)

// Client is a verify.Service served by a remote verify module. Its errors are
// the module's sentinels, grpcx.ErrUnavailable when the module cannot be
// reached or does not answer in time (also matching ctx.Err() when the
// caller's context ended), or other errors carrying the gRPC status.
type Client struct {
	rpc verifypb.VerifyClient
}

var _ verify.Service = (*Client)(nil)

// NewClient returns a Client calling the Verify service over cc (from
// grpcx.Dial, say). Closing cc is the caller's business.
func NewClient(cc grpc.ClientConnInterface) *Client {
	return &Client{rpc: verifypb.NewVerifyClient(cc)}
}

// SendCode implements verify.Service.
func (c *Client) SendCode(ctx context.Context, req verify.SendRequest) error {
	ctx, cancel := grpcx.WithDefaultTimeout(ctx, SendCodeTimeout)
	defer cancel()
	_, err := c.rpc.SendCode(ctx, &verifypb.SendCodeRequest{Email: req.Email, ClientAddr: req.ClientAddr})
	return errs.FromStatus(err)
}

// CheckCode implements verify.Service.
func (c *Client) CheckCode(ctx context.Context, email, code string) error {
	ctx, cancel := grpcx.WithDefaultTimeout(ctx, DefaultTimeout)
	defer cancel()
	_, err := c.rpc.CheckCode(ctx, &verifypb.CheckCodeRequest{Email: email, Code: code})
	return errs.FromStatus(err)
}

// ConsumeCode implements verify.Service.
func (c *Client) ConsumeCode(ctx context.Context, email, code string) error {
	ctx, cancel := grpcx.WithDefaultTimeout(ctx, DefaultTimeout)
	defer cancel()
	_, err := c.rpc.ConsumeCode(ctx, &verifypb.ConsumeCodeRequest{Email: email, Code: code})
	return errs.FromStatus(err)
}
