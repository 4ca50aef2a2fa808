package chat

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/imsrv/imsrv/platform/kv"
)

// Routing state in the KV store, with the llfc key names:
//
//	uip_<uid>       name of the node the user is connected to
//	usession_<uid>  id of the user's current session
//	lock_<uid>      per-uid lock serialising login and cleanup
//	logincount      hash: node name -> logged-in users (status allocates by it)
const (
	loginCountKey = "logincount"
	lockTTL       = 10 * time.Second
	lockWait      = 5 * time.Second
)

func uipKey(uid int32) string     { return "uip_" + strconv.FormatInt(int64(uid), 10) }
func sessionKey(uid int32) string { return "usession_" + strconv.FormatInt(int64(uid), 10) }
func lockKey(uid int32) string    { return "lock_" + strconv.FormatInt(int64(uid), 10) }

type routes struct {
	kv   kv.Store
	node string
}

// lock takes lock_<uid> (SET NX with a TTL, so a crashed holder cannot wedge
// the user) and returns its release, a compare-and-delete so that a holder
// whose lock expired never releases someone else's.
func (r *routes) lock(ctx context.Context, uid int32) (release func(), err error) {
	var b [16]byte
	_, _ = rand.Read(b[:])
	token := hex.EncodeToString(b[:])
	deadline := time.Now().Add(lockWait)
	for delay := 2 * time.Millisecond; ; delay = min(2*delay, 100*time.Millisecond) {
		ok, err := r.kv.SetNX(ctx, lockKey(uid), token, lockTTL)
		if err != nil {
			return nil, fmt.Errorf("chat: lock uid %d: %w", uid, err)
		}
		if ok {
			return func() {
				rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
				defer cancel()
				_, _ = r.kv.CompareAndDelete(rctx, lockKey(uid), token)
			}, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("chat: lock uid %d: still held after %s", uid, lockWait)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(delay):
		}
	}
}

// claim points uid's route at this node and session and counts the login.
// It returns the previous route (empty when there was none). Call with the
// uid's lock held.
func (r *routes) claim(ctx context.Context, uid int32, sessionID string) (prevNode, prevSession string, err error) {
	prevSession, err = r.kv.Get(ctx, sessionKey(uid))
	if err != nil && !errors.Is(err, kv.ErrNotFound) {
		return "", "", fmt.Errorf("chat: read session of %d: %w", uid, err)
	}
	prevNode, err = r.kv.Get(ctx, uipKey(uid))
	if err != nil && !errors.Is(err, kv.ErrNotFound) {
		return "", "", fmt.Errorf("chat: read route of %d: %w", uid, err)
	}
	if err := r.kv.Set(ctx, uipKey(uid), r.node, 0); err != nil {
		return "", "", fmt.Errorf("chat: set route of %d: %w", uid, err)
	}
	if err := r.kv.Set(ctx, sessionKey(uid), sessionID, 0); err != nil {
		return "", "", fmt.Errorf("chat: set session of %d: %w", uid, err)
	}
	if _, err := r.kv.HIncrBy(ctx, loginCountKey, r.node, 1); err != nil {
		return "", "", fmt.Errorf("chat: count login: %w", err)
	}
	return prevNode, prevSession, nil
}

// release removes uid's route if it still names sessionID (a newer login
// elsewhere keeps its route) and uncounts the login. Call with the lock held.
func (r *routes) release(ctx context.Context, uid int32, sessionID string) error {
	if _, err := r.kv.HIncrBy(ctx, loginCountKey, r.node, -1); err != nil {
		return fmt.Errorf("chat: uncount login: %w", err)
	}
	cur, err := r.kv.Get(ctx, sessionKey(uid))
	if errors.Is(err, kv.ErrNotFound) || (err == nil && cur != sessionID) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("chat: read session of %d: %w", uid, err)
	}
	if _, err := r.kv.Del(ctx, sessionKey(uid), uipKey(uid)); err != nil {
		return fmt.Errorf("chat: delete route of %d: %w", uid, err)
	}
	return nil
}

// nodeOf returns the node uid's route names, "" when there is none.
func (r *routes) nodeOf(ctx context.Context, uid int32) (string, error) {
	n, err := r.kv.Get(ctx, uipKey(uid))
	if errors.Is(err, kv.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("chat: read route of %d: %w", uid, err)
	}
	return n, nil
}

// resetNode forgets this node's login count, left over if it died.
func (r *routes) resetNode(ctx context.Context) error {
	if err := r.kv.HDel(ctx, loginCountKey, r.node); err != nil {
		return fmt.Errorf("chat: reset login count of %s: %w", r.node, err)
	}
	return nil
}
