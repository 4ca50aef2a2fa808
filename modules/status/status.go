// Package status owns the chat-node registry, chat-node allocation and login
// tokens. This file is the module's contract: the Service interface, its types
// and sentinel errors. Module (module.go) is the in-process implementation; a
// gRPC client satisfies the same interface when status runs elsewhere.
package status

import (
	"context"
	"errors"
)

// Sentinel errors; compare with errors.Is. They keep their identity across gRPC.
var (
	// ErrNoNode: no live chat node is registered, so nobody can be allocated.
	ErrNoNode = errors.New("status: no live chat node")
	// ErrUIDInvalid: there is no login token for this uid (never issued or expired). llfc 1011.
	ErrUIDInvalid = errors.New("status: no login token for uid")
	// ErrTokenInvalid: a token exists for the uid but differs from the one given. llfc 1010.
	ErrTokenInvalid = errors.New("status: login token invalid")
	// ErrInvalidNode: a node registration lacks a name or a valid address.
	ErrInvalidNode = errors.New("status: invalid node registration")
)

// Node is a chat node as it registers itself.
type Node struct {
	Name    string // unique node name
	Addr    string // host:port clients dial
	RPCAddr string // host:port other nodes dial for delivery; empty in a single process
}

// NodeInfo is a live node with its current number of logged-in users.
type NodeInfo struct {
	Node
	Load int64
}

// Allocation is the answer to a login: where to connect and with which token.
type Allocation struct {
	Node  string // node name
	Host  string
	Port  string // a string, as the llfc clients read it
	Token string
}

// Service is the status module's contract.
type Service interface {
	// RegisterNode adds or refreshes a chat node; it stays allocatable for the
	// registry TTL unless refreshed again.
	RegisterNode(ctx context.Context, n Node) error
	// DeregisterNode removes a node at once (drain).
	DeregisterNode(ctx context.Context, name string) error
	// Nodes lists the live nodes with their load.
	Nodes(ctx context.Context) ([]NodeInfo, error)
	// Allocate picks the least-loaded live node for uid and issues a fresh
	// login token (utoken_<uid>), replacing any previous one. Errors: ErrNoNode.
	Allocate(ctx context.Context, uid int32) (Allocation, error)
	// CheckToken verifies a chat login. Errors: ErrUIDInvalid, ErrTokenInvalid.
	CheckToken(ctx context.Context, uid int32, token string) error
}
