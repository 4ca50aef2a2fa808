package status

import (
	"context"
	"log/slog"
	"time"
)

// Announcer keeps one chat node registered: it registers at once, refreshes
// every Interval (well inside the registry TTL) and deregisters when Run's
// context ends, so that a draining node stops being allocated immediately.
type Announcer struct {
	Service  Service
	Node     Node
	Interval time.Duration
	Logger   *slog.Logger
}

// Run registers and refreshes until ctx is done, then deregisters.
func (a *Announcer) Run(ctx context.Context) error {
	interval := a.Interval
	if interval <= 0 {
		interval = 5 * time.Second
	}
	register := func() bool {
		err := a.Service.RegisterNode(ctx, a.Node)
		if err != nil && ctx.Err() == nil {
			a.Logger.WarnContext(ctx, "chat node registration failed; retrying", "node", a.Node.Name, "err", err)
		}
		return err == nil
	}
	if register() {
		a.Logger.InfoContext(ctx, "chat node registered", "node", a.Node.Name, "addr", a.Node.Addr)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
			defer cancel()
			if err := a.Service.DeregisterNode(dctx, a.Node.Name); err != nil {
				a.Logger.WarnContext(dctx, "chat node deregistration failed", "node", a.Node.Name, "err", err)
			}
			return nil
		case <-t.C:
			register()
		}
	}
}
