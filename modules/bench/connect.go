package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/imsrv/imsrv/modules/chat/chatclient"
	"github.com/imsrv/imsrv/modules/chat/wire"
)

// connectRun opens Users logged-in connections at Rate, Concurrency at a
// time, holds them with heartbeats for Duration, and measures the server's
// memory before the first connection and during the hold (see hold).
type connectRun struct {
	r *runner

	clients   []*chatclient.Client // by user; nil = not connected
	connected atomic.Int64
	failed    atomic.Int64
	errs      Errors
	latency   Samples
	holdStart atomic.Int64 // unix nanoseconds; 0 before the hold
}

func (c *connectRun) run(ctx context.Context) error {
	r, cfg := c.r, c.r.cfg
	users, err := r.provision(ctx, cfg.First, cfg.Users, "")
	if err != nil {
		return err
	}
	before, haveBefore := r.sampleServer(ctx, "before connecting")

	r.setPhase("connecting")
	c.clients = make([]*chatclient.Client, len(users))
	defer c.closeAll()
	cpu := r.markCPU()
	start := time.Now()
	if err := c.open(ctx, users); err != nil {
		return err
	}
	res := &ConnectResult{
		Requested: len(users),
		Connected: int(c.connected.Load()),
		Failed:    int(c.failed.Load()),
		Errors:    c.errs.Counts(),
		RampTime:  Seconds(time.Since(start)),
		Latency:   c.latency.Summary(),
	}
	res.Rate = rate(res.Connected, res.RampTime.D())
	r.report.Connect = res

	r.reportCPU("ramp", cpu, res.Connected, "connection")

	r.setPhase("holding")
	cpu = r.markCPU()
	holdStart := time.Now()
	c.holdStart.Store(holdStart.UnixNano())
	after, haveAfter := c.hold(ctx, haveBefore)
	res.HoldTime = Seconds(time.Since(holdStart))
	res.Dropped = c.dropped()
	beats := int(float64(res.Connected-res.Dropped) * res.HoldTime.D().Seconds() / cfg.Heartbeat.Seconds())
	r.reportCPU("hold", cpu, beats, "heartbeat")
	if haveBefore && haveAfter {
		r.report.Server = r.probe.newMemory(before, after, res.Connected-res.Dropped)
	}
	r.setPhase("closing")
	return nil
}

// holdSample is how often the server is sampled during the hold.
const holdSample = 5 * time.Second

// hold waits for Duration (or ctx) with every connection open, sampling
// the server every holdSample and once at the end, and returns the last
// sample among those with the most server connections: with several
// shards, the last moment at which every shard's connections were open.
// Without the server's count it is simply the last sample.
func (c *connectRun) hold(ctx context.Context, sample bool) (best ServerSample, ok bool) {
	end := time.NewTimer(c.r.cfg.Duration)
	defer end.Stop()
	tick := time.NewTicker(holdSample)
	defer tick.Stop()
	take := func() {
		s, got := c.r.sampleServer(context.WithoutCancel(ctx), "during the hold")
		if got && (!ok || s.Conns >= best.Conns) {
			best, ok = s, true
		}
	}
	for {
		select {
		case <-tick.C:
			if sample {
				take()
			}
			continue
		case <-ctx.Done():
		case <-end.C:
		}
		if sample {
			take()
		}
		return best, ok
	}
}

// open connects and logs in every user, Concurrency at a time and paced at
// Rate. It fails only when chat logins cannot be issued.
func (c *connectRun) open(ctx context.Context, users []ProvisionedUser) error {
	cfg := c.r.cfg
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	feed, feedErr := c.r.loginFeed(ctx, users, cfg.Concurrency)
	pace := newPacer(cfg.Rate)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(cfg.Concurrency, len(users)) {
		wg.Go(func() {
			for {
				item, ok := <-feed
				if !ok || pace.wait(ctx, int(next.Add(1)-1)) != nil {
					return
				}
				cl, err := c.r.connect(ctx, item.login, chatclient.WithPushBuffer(8))
				if err != nil {
					c.failed.Add(1)
					c.errs.Add(err.Error())
					continue
				}
				c.clients[item.i] = cl.client
				c.latency.Add(cl.took)
				c.connected.Add(1)
			}
		})
	}
	wg.Wait()
	cancel()
	for range feed { // let the feed finish, so that its error is final
	}
	return feedErr()
}

// dropped counts the logged-in connections that have ended.
func (c *connectRun) dropped() int {
	n := 0
	for _, cl := range c.clients {
		if cl == nil {
			continue
		}
		select {
		case <-cl.Done():
			n++
		default:
		}
	}
	return n
}

func (c *connectRun) closeAll() {
	closeClients(c.clients)
}

func (c *connectRun) progress() string {
	phase := c.r.phase.Load().(string)
	up, failed := c.connected.Load(), c.failed.Load()
	line := fmt.Sprintf("connect  %-20s %s/%s up  %s failed", phase, num(int(up)), num(c.r.cfg.Users), num(int(failed)))
	if hs := c.holdStart.Load(); hs != 0 {
		held := time.Since(time.Unix(0, hs)).Round(time.Second)
		line += fmt.Sprintf("  %s dropped  held %s/%s", num(c.dropped()), held, c.r.cfg.Duration)
	}
	return line
}

// connected is a logged-in chat connection.
type connected struct {
	client *chatclient.Client
	login  *wire.LoginRsp
	took   time.Duration // dial + 1005 → 1006
}

// connectError is a failed connection attempt, described for the report.
type connectError struct {
	what string
	err  error
}

func (e *connectError) Error() string { return e.what }
func (e *connectError) Unwrap() error { return e.err }

// connect dials the chat node of l and logs in with its token; the
// connection beats every Heartbeat. Errors are *connectError.
func (r *runner) connect(ctx context.Context, l Login, opts ...chatclient.Option) (*connected, error) {
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	start := time.Now()
	cl, err := r.dialer.dial(ctx, l.Addr(), append(opts, chatclient.WithHeartbeat(r.cfg.Heartbeat))...)
	if err != nil {
		return nil, &connectError{classify("dial", err), err}
	}
	rsp, err := cl.Login(ctx, l.UID, l.Token)
	if err != nil {
		cl.Close()
		return nil, &connectError{classify("chat login", err), err}
	}
	return &connected{client: cl, login: rsp, took: time.Since(start)}, nil
}

// closeClients closes every non-nil client, a few at a time.
func closeClients(clients []*chatclient.Client) {
	var wg sync.WaitGroup
	const workers = 16
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(clients); i += workers {
				if clients[i] != nil {
					clients[i].Close()
				}
			}
		})
	}
	wg.Wait()
}
