package chat

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/imsrv/imsrv/modules/status"
)

// ErrNoPeer reports that a node is not live (not in the registry, or it has
// no node-to-node address): its users are offline.
var ErrNoPeer = errors.New("chat: node not reachable")

// NodeLister lists live chat nodes (status.Service satisfies it).
type NodeLister interface {
	Nodes(ctx context.Context) ([]status.NodeInfo, error)
}

// DialFunc opens a Peer to a node's node-to-node address (the app passes
// the gRPC client constructor); the Closer releases the connection.
type DialFunc func(addr string) (Peer, io.Closer, error)

// PeerPool finds other chat nodes by name through the status registry and
// keeps one connection per node address, re-dialled when a node comes back
// at a new address. It is safe for concurrent use.
type PeerPool struct {
	nodes NodeLister
	dial  DialFunc
	ttl   time.Duration // how long a registry listing is reused

	mu       sync.Mutex
	addrs    map[string]string // node name -> rpc address (from the last listing)
	listedAt time.Time
	conns    map[string]pooledPeer // rpc address -> connection
}

type pooledPeer struct {
	peer   Peer
	closer io.Closer
}

// NewPeerPool returns a pool. It does no I/O.
func NewPeerPool(nodes NodeLister, dial DialFunc) *PeerPool {
	return &PeerPool{
		nodes: nodes, dial: dial, ttl: time.Second,
		addrs: map[string]string{}, conns: map[string]pooledPeer{},
	}
}

// Peer returns a connection to the named node. Errors: ErrNoPeer.
func (p *PeerPool) Peer(ctx context.Context, node string) (Peer, error) {
	addr, err := p.addr(ctx, node)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.conns[addr]; ok {
		return c.peer, nil
	}
	peer, closer, err := p.dial(addr)
	if err != nil {
		return nil, fmt.Errorf("%w: dial %s at %s: %v", ErrNoPeer, node, addr, err)
	}
	p.conns[addr] = pooledPeer{peer: peer, closer: closer}
	return peer, nil
}

func (p *PeerPool) addr(ctx context.Context, node string) (string, error) {
	p.mu.Lock()
	fresh := time.Since(p.listedAt) < p.ttl
	addr, ok := p.addrs[node]
	p.mu.Unlock()
	if !fresh || !ok {
		nodes, err := p.nodes.Nodes(ctx)
		if err != nil {
			return "", fmt.Errorf("chat: list nodes: %w", err)
		}
		addrs := make(map[string]string, len(nodes))
		live := make(map[string]bool, len(nodes))
		for _, n := range nodes {
			if n.RPCAddr != "" {
				addrs[n.Name] = n.RPCAddr
				live[n.RPCAddr] = true
			}
		}
		p.mu.Lock()
		p.addrs, p.listedAt = addrs, time.Now()
		// Drop connections to addresses no live node has any more.
		for a, c := range p.conns {
			if !live[a] {
				c.closer.Close()
				delete(p.conns, a)
			}
		}
		addr, ok = addrs[node]
		p.mu.Unlock()
	}
	if !ok {
		return "", fmt.Errorf("%w: %s is not a live node", ErrNoPeer, node)
	}
	return addr, nil
}

// Close closes every pooled connection.
func (p *PeerPool) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	for a, c := range p.conns {
		errs = append(errs, c.closer.Close())
		delete(p.conns, a)
	}
	return errors.Join(errs...)
}
