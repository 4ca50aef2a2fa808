package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/imsrv/imsrv/modules/chat/chatclient"
	"github.com/imsrv/imsrv/modules/chat/wire"
	"github.com/imsrv/imsrv/modules/errcode"
)

// drainPoll is how often the end of a chat run checks for outstanding
// acknowledgements and deliveries.
const drainPoll = 20 * time.Millisecond

// chatRun has Pairs pairs of friends text each other: every connection is
// the sender of one stream (to its partner) and the receiver of another.
// Connection i belongs to user First*2+i; its partner is connection i^1, so
// the local stream index is the sender's connection index and the stream's
// global index (in message ids) is First*2+i.
type chatRun struct {
	r       *runner
	name    string // this run's name in message ids
	conns   []*connected
	tracker *Tracker
	// windows[s] holds a token per text of stream s awaiting its ACK.
	windows    []chan struct{}
	sendErrors atomic.Int64
	replayed   atomic.Int64 // pushes of texts from earlier runs
	sendStart  atomic.Int64 // unix nanoseconds; 0 before sending
	content    string
}

func (c *chatRun) run(ctx context.Context) error {
	r, cfg := c.r, c.r.cfg
	n := 2 * cfg.Pairs
	users, err := r.provision(ctx, 2*cfg.First, n, "")
	if err != nil {
		return err
	}
	r.setPhase("connecting")
	c.conns = make([]*connected, n)
	if err := c.connectAll(ctx, users); err != nil {
		c.closeAll()
		return err
	}

	receivers := make([]int32, n)
	for i := range receivers {
		receivers[i] = users[i^1].UID
	}
	c.tracker = NewTracker(receivers)
	c.windows = make([]chan struct{}, n)
	for i := range c.windows {
		c.windows[i] = make(chan struct{}, cfg.Window)
	}
	c.content = strings.Repeat("x", cfg.TextSize)
	c.name = strconv.FormatUint(rand.Uint64()&(1<<40-1), 36)
	var readers sync.WaitGroup
	for i := range c.conns {
		readers.Go(func() { c.read(i) })
	}
	defer func() {
		c.closeAll() // ends the read loops
		readers.Wait()
	}()

	r.setPhase("befriending")
	if err := c.befriend(ctx); err != nil {
		return err
	}

	r.setPhase("sending")
	cpu := r.markCPU()
	start := time.Now()
	c.sendStart.Store(start.UnixNano())
	sendCtx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	var senders sync.WaitGroup
	for s := range n {
		quota := -1 // unlimited
		if cfg.Count > 0 {
			quota = cfg.Count / n
			if s < cfg.Count%n {
				quota++
			}
		}
		senders.Go(func() { c.send(sendCtx, s, quota) })
	}
	senders.Wait()

	r.setPhase("draining")
	c.drain(ctx)
	elapsed := time.Since(start)
	c.confirm(ctx)

	counts := c.tracker.Snapshot()
	r.reportCPU("send", cpu, counts.Delivered, "text")
	ack, push := c.tracker.Latencies()
	r.report.Chat = &ChatResult{
		Counts:     counts,
		SendErrors: int(c.sendErrors.Load()),
		Replayed:   int(c.replayed.Load()),
		Elapsed:    Seconds(elapsed),
		Rate:       rate(counts.Delivered, elapsed),
		AckLatency: ack,
		PushLat:    push,
	}
	r.setPhase("closing")
	return nil
}

// connectAll connects and logs in every user; chat needs them all.
func (c *chatRun) connectAll(ctx context.Context, users []ProvisionedUser) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(c.r.cfg.Concurrency)
	feed, feedErr := c.r.loginFeed(ctx, users, c.r.cfg.Concurrency)
	for item := range feed {
		g.Go(func() error {
			// Pushes are read by read; a large buffer keeps the client's
			// read loop from waiting on it.
			cl, err := c.r.connect(ctx, item.login, chatclient.WithPushBuffer(4*c.r.cfg.Window+64))
			if err != nil {
				return fmt.Errorf("bench: connect uid %d: %w", item.login.UID, err)
			}
			c.conns[item.i] = cl
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return feedErr()
}

// befriend makes every pair friends through the protocol (1009, then 1013
// from the partner), unless they already are from an earlier run.
func (c *chatRun) befriend(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(c.r.cfg.Concurrency)
	for p := 0; p < len(c.conns); p += 2 {
		a, b := c.conns[p], c.conns[p+1]
		bUID := b.client.UID()
		if slices.ContainsFunc(a.login.FriendList, func(f wire.Friend) bool { return f.UID == bUID }) {
			continue
		}
		g.Go(func() error {
			_, err := a.client.AddFriend(ctx, wire.AddFriendReq{ToUID: wire.Int32(bUID), ApplyName: "bench"})
			if err != nil && !isCode(err, errcode.InvalidArgument) { // 1101: already friends
				return fmt.Errorf("bench: friend application %d → %d: %w", a.client.UID(), bUID, err)
			}
			_, err = b.client.AuthFriend(ctx, wire.AuthFriendReq{ToUID: wire.Int32(a.client.UID())})
			if err != nil && !isCode(err, errcode.InvalidArgument) && !isCode(err, errcode.UIDInvalid) {
				return fmt.Errorf("bench: friend approval %d → %d: %w", bUID, a.client.UID(), err)
			}
			return nil
		})
	}
	return g.Wait()
}

func isCode(err error, code errcode.Code) bool {
	se, ok := errors.AsType[*chatclient.ServerError](err)
	return ok && se.Code == int(code)
}

// send sends texts of stream s until ctx ends or quota (when not negative)
// texts are sent, keeping at most Window unacknowledged.
func (c *chatRun) send(ctx context.Context, s, quota int) {
	cfg := c.r.cfg
	cl := c.conns[s].client
	to := wire.Int32(c.conns[s^1].client.UID())
	global := 2*cfg.First + s
	// Senders share the rate, each at its own phase: in step, they would
	// send in bursts of one text per stream.
	pace := newPacerPhase(cfg.Rate/float64(len(c.conns)), float64(s)/float64(len(c.conns)))
	window := c.windows[s]
	for i := 0; quota < 0 || i < quota; i++ {
		select {
		case window <- struct{}{}:
		case <-ctx.Done():
			return
		}
		if pace.wait(ctx, i) != nil {
			return
		}
		seq := c.tracker.Sent(s, c.tracker.Now())
		err := cl.Send(wire.IDTextChatMsgReq, wire.TextChatMsgReq{
			FromUID: wire.Int32(cl.UID()), ToUID: to,
			TextArray: []wire.TextItem{{MsgID: MsgID(c.name, global, seq), Content: c.content}},
		})
		if err != nil {
			if c.sendErrors.Add(1) == 1 {
				c.r.log.Warn("bench: send failed; its stream stops (further failures are only counted)", "stream", global, "err", err)
			}
			return
		}
	}
}

// read consumes connection i's pushes: acknowledgements of its own texts
// (1018) and texts from its partner (1019).
func (c *chatRun) read(i int) {
	cl := c.conns[i].client
	me := cl.UID()
	for f := range cl.Pushes() {
		at := c.tracker.Now()
		switch f.ID {
		case wire.IDTextChatMsgRsp:
			var rsp wire.TextChatMsgRsp
			if err := f.Decode(&rsp); err != nil || len(rsp.TextArray) == 0 {
				c.tracker.Unexpected()
				continue
			}
			for _, item := range rsp.TextArray {
				s, seq, ok := c.stream(item.MsgID)
				if ok && c.tracker.Acked(s, seq, rsp.Error, at) {
					<-c.windows[s] // never blocks: the sender took a slot before sending the text
				}
			}
		case wire.IDNotifyTextChatMsgReq:
			var push wire.NotifyTextChatMsgReq
			if err := f.Decode(&push); err != nil {
				c.tracker.Unexpected()
				continue
			}
			for _, item := range push.TextArray {
				if s, seq, ok := c.stream(item.MsgID); ok {
					c.tracker.Delivered(s, seq, me, at)
				}
			}
		}
	}
}

// stream maps a message id to a local stream and sequence number. Texts of
// earlier runs are counted as replayed; ids that name no stream of this run
// as unexpected.
func (c *chatRun) stream(msgID string) (s, seq int, ok bool) {
	run, g, seq, err := ParseMsgID(msgID)
	if err == nil && run != c.name {
		c.replayed.Add(1)
		return 0, 0, false
	}
	s = g - 2*c.r.cfg.First
	if err != nil || s < 0 || s >= len(c.conns) {
		c.tracker.Unexpected()
		return 0, 0, false
	}
	return s, seq, true
}

// confirm sends one heartbeat on every connection before they close: the
// server counts the pushes it wrote before a client's next frame as
// delivered (the llfc clients' implicit confirmation), so that it does not
// deliver them again at the next login of these users.
// It runs even when ctx is cancelled (an interrupted run), bounded by Drain.
func (c *chatRun) confirm(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.r.cfg.Drain)
	defer cancel()
	var g errgroup.Group // not WithContext: one failure must not cancel the others
	g.SetLimit(c.r.cfg.Concurrency)
	var failed atomic.Int64
	for _, cl := range c.conns {
		g.Go(func() error {
			if _, err := cl.client.Heartbeat(ctx); err != nil && failed.Add(1) == 1 {
				return err
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		c.r.log.Warn("bench: final heartbeats failed; the server may deliver texts of this run again at the next login",
			"failed", failed.Load(), "first", err)
	}
}

// drain waits until every text is acknowledged and every acknowledged text
// delivered, or Drain has passed.
func (c *chatRun) drain(ctx context.Context) {
	deadline := time.Now().Add(c.r.cfg.Drain)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if unacked, undelivered := c.tracker.Pending(); unacked == 0 && undelivered == 0 {
			return
		}
		time.Sleep(drainPoll)
	}
}

func (c *chatRun) closeAll() {
	clients := make([]*chatclient.Client, len(c.conns))
	for i, cl := range c.conns {
		if cl != nil {
			clients[i] = cl.client
		}
	}
	closeClients(clients)
}

func (c *chatRun) progress() string {
	phase := c.r.phase.Load().(string)
	if c.sendStart.Load() == 0 || c.tracker == nil {
		return fmt.Sprintf("chat  %s  (%d pairs)", phase, c.r.cfg.Pairs)
	}
	elapsed := time.Since(time.Unix(0, c.sendStart.Load()))
	n := c.tracker.Snapshot()
	unacked, undelivered := c.tracker.Pending()
	return fmt.Sprintf("chat  %-9s %5.1fs  sent %s  acked %s  delivered %s  %s/s  in flight %s  dup %d  reordered %d",
		phase, elapsed.Seconds(), num(n.Sent), num(n.Acked), num(n.Delivered),
		num(int(rate(n.Delivered, elapsed))), num(unacked+undelivered), n.Duplicated, n.Reordered)
}
