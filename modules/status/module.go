package status

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"sort"
	"strconv"
	"time"

	"github.com/imsrv/imsrv/platform/kv"
)

// KV keys. logincount is the llfc hash of logged-in users per node, kept by
// the chat nodes; chatnodes is the registry (field = node name).
const (
	nodesKey      = "chatnodes"
	loginCountKey = "logincount"
)

// TokenKey is where a uid's login token lives (the llfc key utoken_<uid>).
func TokenKey(uid int32) string { return "utoken_" + strconv.FormatInt(int64(uid), 10) }

// Config holds the status module's settings; zero values get the defaults.
type Config struct {
	NodeTTL  time.Duration // a node not refreshed for this long is not allocated; default 15s
	TokenTTL time.Duration // login token lifetime; default 24h
}

func (c Config) withDefaults() Config {
	if c.NodeTTL <= 0 {
		c.NodeTTL = 15 * time.Second
	}
	if c.TokenTTL <= 0 {
		c.TokenTTL = 24 * time.Hour
	}
	return c
}

// Module is the in-process status.Service on a KV store.
type Module struct {
	cfg    Config
	kv     kv.Store
	logger *slog.Logger
	now    func() time.Time
}

var _ Service = (*Module)(nil)

// New returns the status module. It does no I/O.
func New(cfg Config, store kv.Store, logger *slog.Logger) *Module {
	return &Module{cfg: cfg.withDefaults(), kv: store, logger: logger, now: time.Now}
}

type nodeRecord struct {
	Node
	ExpiresAt int64 `json:"expires_at"` // unix ms
}

// RegisterNode implements Service.
func (m *Module) RegisterNode(ctx context.Context, n Node) error {
	if n.Name == "" {
		return fmt.Errorf("%w: empty name", ErrInvalidNode)
	}
	host, port, err := net.SplitHostPort(n.Addr)
	if err != nil {
		return fmt.Errorf("%w: address %q: %v", ErrInvalidNode, n.Addr, err)
	}
	// Clients dial this address: it needs a host and a real port.
	if p, err := strconv.Atoi(port); host == "" || err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("%w: address %q: want host:port with a port in 1-65535", ErrInvalidNode, n.Addr)
	}
	b, err := json.Marshal(nodeRecord{Node: n, ExpiresAt: m.now().Add(m.cfg.NodeTTL).UnixMilli()})
	if err != nil {
		return fmt.Errorf("status: encode node: %w", err)
	}
	if err := m.kv.HSet(ctx, nodesKey, n.Name, string(b)); err != nil {
		return fmt.Errorf("status: register node %s: %w", n.Name, err)
	}
	return nil
}

// DeregisterNode implements Service.
func (m *Module) DeregisterNode(ctx context.Context, name string) error {
	if err := m.kv.HDel(ctx, nodesKey, name); err != nil {
		return fmt.Errorf("status: deregister node %s: %w", name, err)
	}
	return nil
}

// Nodes implements Service. Expired registrations are dropped from the registry.
func (m *Module) Nodes(ctx context.Context) ([]NodeInfo, error) {
	raw, err := m.kv.HGetAll(ctx, nodesKey)
	if err != nil {
		return nil, fmt.Errorf("status: read registry: %w", err)
	}
	counts, err := m.kv.HGetAll(ctx, loginCountKey)
	if err != nil {
		return nil, fmt.Errorf("status: read load: %w", err)
	}
	now := m.now().UnixMilli()
	var live []NodeInfo
	var expired []string
	for name, v := range raw {
		var rec nodeRecord
		if err := json.Unmarshal([]byte(v), &rec); err != nil || rec.ExpiresAt <= now {
			expired = append(expired, name)
			continue
		}
		load, _ := strconv.ParseInt(counts[name], 10, 64)
		live = append(live, NodeInfo{Node: rec.Node, Load: load})
	}
	if len(expired) > 0 {
		// Best effort: a racing refresh re-adds the node on its next beat.
		if err := m.kv.HDel(ctx, nodesKey, expired...); err != nil {
			m.logger.WarnContext(ctx, "status: prune expired nodes", "nodes", expired, "err", err)
		}
	}
	sort.Slice(live, func(i, j int) bool { return live[i].Name < live[j].Name })
	return live, nil
}

// Allocate implements Service: least load wins, ties are broken at random so
// that a burst of logins spreads over equally loaded nodes.
func (m *Module) Allocate(ctx context.Context, uid int32) (Allocation, error) {
	nodes, err := m.Nodes(ctx)
	if err != nil {
		return Allocation{}, err
	}
	if len(nodes) == 0 {
		return Allocation{}, ErrNoNode
	}
	var best []NodeInfo
	for _, n := range nodes {
		switch {
		case len(best) == 0 || n.Load < best[0].Load:
			best = append(best[:0], n)
		case n.Load == best[0].Load:
			best = append(best, n)
		}
	}
	pick := best[mrand.IntN(len(best))]
	host, port, err := net.SplitHostPort(pick.Addr)
	if err != nil {
		return Allocation{}, fmt.Errorf("status: node %s address %q: %w", pick.Name, pick.Addr, err)
	}
	token, err := newToken()
	if err != nil {
		return Allocation{}, err
	}
	if err := m.kv.Set(ctx, TokenKey(uid), token, m.cfg.TokenTTL); err != nil {
		return Allocation{}, fmt.Errorf("status: store token for %d: %w", uid, err)
	}
	return Allocation{Node: pick.Name, Host: host, Port: port, Token: token}, nil
}

// CheckToken implements Service.
func (m *Module) CheckToken(ctx context.Context, uid int32, token string) error {
	want, err := m.kv.Get(ctx, TokenKey(uid))
	if errors.Is(err, kv.ErrNotFound) {
		return ErrUIDInvalid
	}
	if err != nil {
		return fmt.Errorf("status: read token for %d: %w", uid, err)
	}
	if subtle.ConstantTimeCompare([]byte(want), []byte(token)) != 1 {
		return ErrTokenInvalid
	}
	return nil
}

// newToken returns 128 random bits, hex-encoded.
func newToken() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("status: random token: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}
