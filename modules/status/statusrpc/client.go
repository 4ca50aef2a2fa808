package statusrpc

import (
	"context"
	"time"

	"google.golang.org/grpc"

	"github.com/imsrv/imsrv/modules/status"
	"github.com/imsrv/imsrv/modules/status/statuspb"
	"github.com/imsrv/imsrv/platform/grpcx"
)

// DefaultTimeout bounds a call whose context has no deadline of its own.
const DefaultTimeout = 5 * time.Second

// Client is a status.Service served by a remote status module. Its errors
// are the module's sentinels, grpcx.ErrUnavailable when the module cannot be
// reached or does not answer in time (also matching ctx.Err() when the
// caller's context ended), or other errors carrying the gRPC status.
type Client struct {
	rpc statuspb.StatusClient
}

var _ status.Service = (*Client)(nil)

// NewClient returns a Client calling the Status service over cc (from
// grpcx.Dial, say). Closing cc is the caller's business.
func NewClient(cc grpc.ClientConnInterface) *Client {
	return &Client{rpc: statuspb.NewStatusClient(cc)}
}

// RegisterNode implements status.Service.
func (c *Client) RegisterNode(ctx context.Context, n status.Node) error {
	ctx, cancel := grpcx.WithDefaultTimeout(ctx, DefaultTimeout)
	defer cancel()
	_, err := c.rpc.RegisterNode(ctx, &statuspb.RegisterNodeRequest{Node: nodeToPB(n)})
	return errs.FromStatus(err)
}

// DeregisterNode implements status.Service.
func (c *Client) DeregisterNode(ctx context.Context, name string) error {
	ctx, cancel := grpcx.WithDefaultTimeout(ctx, DefaultTimeout)
	defer cancel()
	_, err := c.rpc.DeregisterNode(ctx, &statuspb.DeregisterNodeRequest{Name: name})
	return errs.FromStatus(err)
}

// Nodes implements status.Service.
func (c *Client) Nodes(ctx context.Context) ([]status.NodeInfo, error) {
	ctx, cancel := grpcx.WithDefaultTimeout(ctx, DefaultTimeout)
	defer cancel()
	resp, err := c.rpc.Nodes(ctx, &statuspb.NodesRequest{})
	if err != nil {
		return nil, errs.FromStatus(err)
	}
	var nodes []status.NodeInfo // nil when there are none, as from the module
	for _, n := range resp.GetNodes() {
		nodes = append(nodes, status.NodeInfo{Node: nodeFromPB(n.GetNode()), Load: n.GetLoad()})
	}
	return nodes, nil
}

// Allocate implements status.Service.
func (c *Client) Allocate(ctx context.Context, uid int32) (status.Allocation, error) {
	ctx, cancel := grpcx.WithDefaultTimeout(ctx, DefaultTimeout)
	defer cancel()
	resp, err := c.rpc.Allocate(ctx, &statuspb.AllocateRequest{Uid: uid})
	if err != nil {
		return status.Allocation{}, errs.FromStatus(err)
	}
	return status.Allocation{Node: resp.GetNode(), Host: resp.GetHost(), Port: resp.GetPort(), Token: resp.GetToken()}, nil
}

// CheckToken implements status.Service.
func (c *Client) CheckToken(ctx context.Context, uid int32, token string) error {
	ctx, cancel := grpcx.WithDefaultTimeout(ctx, DefaultTimeout)
	defer cancel()
	_, err := c.rpc.CheckToken(ctx, &statuspb.CheckTokenRequest{Uid: uid, Token: token})
	return errs.FromStatus(err)
}
