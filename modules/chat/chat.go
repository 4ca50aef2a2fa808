// Package chat is the llfc chat node: long-lived TCP connections speaking
// the llfc frame protocol (login, search, friend applications and approvals,
// 1:1 text, heartbeats, kick on duplicate login). This file is the module's
// contract: its configuration, the collaborators it needs (consumer-sized
// interfaces) and its sentinel errors.
package chat

import (
	"context"
	"errors"
	"time"

	"github.com/imsrv/imsrv/modules/account"
	"github.com/imsrv/imsrv/modules/chat/chatstore"
	"github.com/imsrv/imsrv/modules/chat/wire"
)

// ErrOffline reports that a user has no session on this node.
var ErrOffline = errors.New("chat: user not connected here")

// Peer is what one chat node asks of another: deliver frames to a user
// connected there, or kick a user's session there. *Server implements it for
// its own sessions; a gRPC client (chatrpc) implements it for a remote node.
type Peer interface {
	// Deliver queues frames, in order, for uid's session on the node.
	// Errors: ErrOffline when uid has no session there.
	Deliver(ctx context.Context, uid int32, frames []wire.Frame) error
	// Kick sends 1021 to uid's session with the given id on the node and
	// closes it; a session that is already gone is not an error.
	Kick(ctx context.Context, uid int32, sessionID string) error
}

// Config holds a chat node's settings and limits. Zero values get the
// defaults documented on each field.
type Config struct {
	NodeName     string        // this node's unique name (required)
	Heartbeat    time.Duration // a connection silent this long is closed; default 20s
	LoginTimeout time.Duration // the first frame (1005) must arrive within; default 10s
	MaxConns     int           // concurrent connections; default 100000
	SendQueue    int           // frames queued for one connection before it is dropped as too slow; default 512
	LegacyGap    time.Duration // pause between frames to clients without the coalesce capability; default 10ms
	WriteTimeout time.Duration // a write that cannot complete in this time drops the connection; default 10s
	MaxBody      int           // largest accepted frame body after login; default 65535
}

func (c Config) withDefaults() Config {
	if c.Heartbeat <= 0 {
		c.Heartbeat = 20 * time.Second
	}
	if c.LoginTimeout <= 0 {
		c.LoginTimeout = 10 * time.Second
	}
	if c.MaxConns <= 0 {
		c.MaxConns = 100000
	}
	if c.SendQueue <= 0 {
		c.SendQueue = 512
	}
	if c.LegacyGap < 0 {
		c.LegacyGap = 0
	} else if c.LegacyGap == 0 {
		c.LegacyGap = 10 * time.Millisecond
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.MaxBody <= 0 || c.MaxBody > 65535 {
		c.MaxBody = 65535
	}
	return c
}

// preLoginMaxBody bounds what an unauthenticated connection can make us
// allocate: a login body is well under 1 KiB.
const preLoginMaxBody = 4096

// TokenChecker verifies chat logins (status.Service satisfies it).
type TokenChecker interface {
	CheckToken(ctx context.Context, uid int32, token string) error
}

// Store is the chat module's data (chatstore.Store satisfies it).
type Store interface {
	Apply(ctx context.Context, from, to int32, greeting, remark string) error
	Approve(ctx context.Context, approver, applicant int32, approverRemark string) (applicantProfile, approverProfile chatstore.Profile, err error)
	PendingApplications(ctx context.Context, uid int32) ([]chatstore.Application, error)
	Friends(ctx context.Context, uid int32) ([]chatstore.Friend, error)
	AreFriends(ctx context.Context, a, b int32) (bool, error)
	Profile(ctx context.Context, uid int32) (chatstore.Profile, error)
	ProfileByName(ctx context.Context, name string) (chatstore.Profile, error)
}

// Accounts loads the logged-in user's own account (with e-mail) for the 1006
// answer; account.Store satisfies it.
type Accounts interface {
	ByUID(ctx context.Context, uid int32) (account.User, error)
}

var _ Store = (*chatstore.Store)(nil)
