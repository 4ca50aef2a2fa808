// Package chatclient is a client for the chat service's TCP protocol (the
// llfc protocol, package wire), for end-to-end tests, load generators and
// integrators.
//
// A Client owns one connection and one goroutine that reads it. Requests are
// matched to responses by response id: the protocol has no request ids, and
// the server answers each kind of request in the order it received them, so
// the client keeps one first-in-first-out queue of waiting calls per response
// id. Frames that no call waits for (pushes such as texts and kicks, and
// anything unexpected) go to the Pushes channel.
//
// The typed request methods (Login, Search, AddFriend, AuthFriend, SendText,
// Heartbeat, Threads, CreatePrivateThread, Messages) send one request and
// wait for its response. When the response's "error" field is not 0 they
// return the decoded response together with a *ServerError; on any other
// failure, a nil response. Sender fields left at 0 (uid, fromuid) are set to
// the uid of the last successful Login; Call sends a body exactly as given,
// and Send and SendRaw send without waiting.
//
// Login declares the "coalesce" capability, so the server may send this
// client several frames in one write.
package chatclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/imsrv/imsrv/modules/chat/wire"
)

// ErrClosed is the error of a client after Close.
var ErrClosed = errors.New("chatclient: client closed")

// ServerError is a response whose "error" field is not 0. Calls that return
// it return the decoded response too.
type ServerError struct {
	ID   wire.MsgID // the response's id
	Code int        // its "error" field
}

func (e *ServerError) Error() string {
	return fmt.Sprintf("chatclient: %v: server error %d", e.ID, e.Code)
}

// Option configures a Client.
type Option func(*config)

type config struct {
	dialer     *net.Dialer
	heartbeat  time.Duration
	pushBuffer int
	maxBody    int
}

// WithHeartbeat makes the client send a heartbeat (1023) every interval once
// it has logged in, as llfc clients do every 10 seconds. The answers are
// consumed by the client; a failed heartbeat does not end the connection
// (the server does that when it misses them).
func WithHeartbeat(interval time.Duration) Option {
	return func(c *config) { c.heartbeat = interval }
}

// WithPushBuffer sets the capacity of the Pushes channel (default 64).
func WithPushBuffer(n int) Option {
	return func(c *config) { c.pushBuffer = max(n, 0) }
}

// WithMaxBody sets the largest frame body the client accepts from the
// server (default and maximum wire.MaxBodyLen). A larger frame ends the
// connection with an error wrapping wire.ErrFrameTooLarge.
func WithMaxBody(n int) Option {
	return func(c *config) { c.maxBody = n }
}

// WithDialer sets the dialer Dial uses, for example to choose the local
// address of a load generator's connections.
func WithDialer(d *net.Dialer) Option {
	return func(c *config) {
		if d != nil {
			c.dialer = d
		}
	}
}

// Client is a connection to a chat server. Its methods are safe for
// concurrent use.
type Client struct {
	conn net.Conn
	cfg  config

	// writeMu serialises writes, and makes the order of the waiter queues
	// the order in which requests went out.
	writeMu sync.Mutex

	mu       sync.Mutex
	waiters  map[wire.MsgID][]chan wire.Frame // FIFO per response id
	finished bool                             // the read loop has ended
	err      error                            // why the connection ended
	uid      int32                            // set by a successful Login

	pushes chan wire.Frame
	// pushSem (capacity 1) serialises WaitPush and guards backlog, the
	// pushes WaitPush has passed over.
	pushSem chan struct{}
	backlog []wire.Frame

	heartbeatOnce sync.Once
	closeOnce     sync.Once
	closing       chan struct{} // closed by Close
	done          chan struct{} // closed when the read loop has ended
	wg            sync.WaitGroup
}

// Dial connects to the chat server at addr ("host:port") and returns a client
// ready to Login. ctx bounds the connection attempt only.
func Dial(ctx context.Context, addr string, opts ...Option) (*Client, error) {
	cfg := newConfig(opts)
	conn, err := cfg.dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("chatclient: dial %s: %w", addr, err)
	}
	return newClient(conn, cfg), nil
}

// New returns a client that speaks the protocol over an established
// connection, which it takes ownership of.
func New(conn net.Conn, opts ...Option) *Client {
	return newClient(conn, newConfig(opts))
}

func newConfig(opts []Option) config {
	cfg := config{dialer: &net.Dialer{}, pushBuffer: 64, maxBody: wire.MaxBodyLen}
	for _, opt := range opts {
		opt(&cfg)
	}
	return cfg
}

func newClient(conn net.Conn, cfg config) *Client {
	c := &Client{
		conn:    conn,
		cfg:     cfg,
		waiters: make(map[wire.MsgID][]chan wire.Frame),
		pushes:  make(chan wire.Frame, cfg.pushBuffer),
		pushSem: make(chan struct{}, 1),
		closing: make(chan struct{}),
		done:    make(chan struct{}),
	}
	go c.readLoop()
	return c
}

// UID returns the uid of the last successful Login, or 0.
func (c *Client) UID() int32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.uid
}

// Pushes returns the frames that no call was waiting for: the server's pushes
// (1011, 1015, 1019, 1021), responses to requests made with Send or SendRaw,
// and unknown ids, in the order they arrived. The channel is closed when the
// connection ends.
//
// The channel is bounded (see WithPushBuffer). When it is full the read loop
// waits for the consumer, and responses to calls wait behind it; a client
// that expects pushes must read them, with WaitPush or from this channel,
// not both.
func (c *Client) Pushes() <-chan wire.Frame { return c.pushes }

// WaitPush returns the next pushed frame with the given id. Pushes with other
// ids that arrive meanwhile are kept, in order, for later WaitPush calls;
// WaitPush calls are serialised. It fails when ctx ends or the connection
// ends.
func (c *Client) WaitPush(ctx context.Context, id wire.MsgID) (wire.Frame, error) {
	select {
	case c.pushSem <- struct{}{}:
	case <-ctx.Done():
		return wire.Frame{}, fmt.Errorf("chatclient: waiting for %v push: %w", id, context.Cause(ctx))
	}
	defer func() { <-c.pushSem }()

	if i := slices.IndexFunc(c.backlog, func(f wire.Frame) bool { return f.ID == id }); i >= 0 {
		f := c.backlog[i]
		c.backlog = slices.Delete(c.backlog, i, i+1)
		return f, nil
	}
	for {
		select {
		case f, ok := <-c.pushes:
			if !ok {
				return wire.Frame{}, fmt.Errorf("chatclient: waiting for %v push: %w", id, c.Err())
			}
			if f.ID == id {
				return f, nil
			}
			c.backlog = append(c.backlog, f)
		case <-ctx.Done():
			return wire.Frame{}, fmt.Errorf("chatclient: waiting for %v push: %w", id, context.Cause(ctx))
		}
	}
}

// Done returns a channel that is closed when the connection has ended:
// closed by the server (after a 1021 kick, for example), broken, or closed
// with Close.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err returns nil while the connection is up, then why it ended: ErrClosed
// after Close, an error wrapping io.EOF when the server closed it, or the
// read or write error that broke it.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Close closes the connection and waits for the client's goroutines to
// exit. Calls waiting for a response fail with ErrClosed. Close is
// idempotent and always returns nil: how the connection ended is Err's to
// report.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.setErr(ErrClosed)
		close(c.closing)
		_ = c.conn.Close()
	})
	<-c.done
	c.wg.Wait()
	return nil
}

// Send marshals v and sends it as a frame with the given id, without waiting
// for an answer; an answer arrives on Pushes.
func (c *Client) Send(id wire.MsgID, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("chatclient: encode %v: %w", id, err)
	}
	frame, err := wire.AppendFrame(nil, id, body)
	if err != nil {
		return fmt.Errorf("chatclient: %w", err)
	}
	return c.write(context.Background(), id, frame, nil)
}

// SendRaw writes b to the connection as it is: part of a frame, several
// frames, or anything else a test needs to send.
func (c *Client) SendRaw(b []byte) error {
	return c.write(context.Background(), 0, b, nil)
}

// Call sends req, encoded as JSON, as a request with the given id and decodes
// the server's response into rsp (which may be nil). It fails if id is not a
// request id (see wire.MsgID.Response), if the response has no numeric
// "error" field, or with a *ServerError, after decoding rsp, if that field is
// not 0.
//
// If ctx ends before the response arrives, Call returns and the response,
// when it comes, is discarded rather than taken for the answer to a later
// call. ctx's deadline also bounds the write; a write cut short ends the
// connection, since the stream may then hold part of a frame.
func (c *Client) Call(ctx context.Context, id wire.MsgID, req, rsp any) error {
	body, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("chatclient: encode %v: %w", id, err)
	}
	f, err := c.CallRaw(ctx, id, body)
	if err != nil {
		return err
	}
	var status struct {
		Error *int `json:"error"`
	}
	if err := f.Decode(&status); err != nil {
		return fmt.Errorf("chatclient: %w", err)
	}
	if status.Error == nil {
		return fmt.Errorf("chatclient: %v body has no error field: %.100q", f.ID, f.Body)
	}
	if rsp != nil {
		if err := f.Decode(rsp); err != nil {
			return fmt.Errorf("chatclient: %w", err)
		}
	}
	if *status.Error != 0 {
		return &ServerError{ID: f.ID, Code: *status.Error}
	}
	return nil
}

// CallRaw sends body as it is (valid JSON or not) as a request with the given
// id and returns the response frame without interpreting it. Its failures
// and its handling of ctx are those of Call.
func (c *Client) CallRaw(ctx context.Context, id wire.MsgID, body []byte) (wire.Frame, error) {
	rspID, ok := id.Response()
	if !ok {
		return wire.Frame{}, fmt.Errorf("chatclient: %v is not a request id", id)
	}
	frame, err := wire.AppendFrame(nil, id, body)
	if err != nil {
		return wire.Frame{}, fmt.Errorf("chatclient: %w", err)
	}
	if err := context.Cause(ctx); err != nil {
		return wire.Frame{}, fmt.Errorf("chatclient: %v: %w", id, err)
	}
	wait := make(chan wire.Frame, 1)
	if err := c.write(ctx, rspID, frame, wait); err != nil {
		return wire.Frame{}, err
	}
	select {
	case f := <-wait:
		return f, nil
	case <-ctx.Done():
		return wire.Frame{}, fmt.Errorf("chatclient: waiting for %v: %w", rspID, context.Cause(ctx))
	case <-c.done:
		select {
		case f := <-wait: // arrived just before the connection ended
			return f, nil
		default:
		}
		return wire.Frame{}, fmt.Errorf("chatclient: waiting for %v: %w", rspID, c.Err())
	}
}

// write writes b to the connection. If wait is not nil it is queued for the
// response id rspID first, under the same lock, so queue order is send
// order. ctx's deadline, if any, bounds the write. A failed write may have
// sent part of a frame, so it ends the connection.
func (c *Client) write(ctx context.Context, rspID wire.MsgID, b []byte, wait chan wire.Frame) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()

	c.mu.Lock()
	if c.finished || c.err != nil {
		err := c.err
		c.mu.Unlock()
		return fmt.Errorf("chatclient: send: %w", err)
	}
	if wait != nil {
		c.waiters[rspID] = append(c.waiters[rspID], wait)
	}
	c.mu.Unlock()

	deadline, _ := ctx.Deadline() // the zero time clears an earlier deadline
	if err := c.conn.SetWriteDeadline(deadline); err != nil {
		err = fmt.Errorf("chatclient: set write deadline: %w", err)
		c.fail(err)
		return err
	}
	if _, err := c.conn.Write(b); err != nil {
		err = fmt.Errorf("chatclient: write: %w", err)
		c.fail(err)
		return err
	}
	return nil
}

// readLoop reads frames until the connection ends, handing each to the
// oldest call waiting for its id or, failing that, to Pushes.
func (c *Client) readLoop() {
	r := wire.NewReader(c.conn, c.cfg.maxBody)
	for {
		f, err := r.ReadFrame()
		if err != nil {
			if err == io.EOF {
				err = fmt.Errorf("chatclient: connection closed by server: %w", err)
			} else {
				err = fmt.Errorf("chatclient: read: %w", err)
			}
			c.finish(err)
			return
		}
		if c.deliver(f) {
			continue
		}
		select {
		case c.pushes <- f:
		case <-c.closing:
			c.finish(ErrClosed)
			return
		}
	}
}

// deliver hands f to the oldest call waiting for its id and reports whether
// there was one.
func (c *Client) deliver(f wire.Frame) bool {
	c.mu.Lock()
	queue := c.waiters[f.ID]
	if len(queue) == 0 {
		c.mu.Unlock()
		return false
	}
	wait := queue[0]
	if len(queue) == 1 {
		delete(c.waiters, f.ID)
	} else {
		c.waiters[f.ID] = queue[1:]
	}
	c.mu.Unlock()
	wait <- f // buffered for exactly this frame; never blocks
	return true
}

// finish records why the connection ended, unless a reason was recorded
// already, and wakes everything waiting on it.
func (c *Client) finish(err error) {
	c.setErr(err)
	c.mu.Lock()
	c.finished = true
	c.waiters = nil
	c.mu.Unlock()
	_ = c.conn.Close()
	close(c.pushes)
	close(c.done)
}

// fail ends the connection because of err, unless it has ended already.
func (c *Client) fail(err error) {
	c.setErr(err)
	_ = c.conn.Close() // the read loop then finishes
}

func (c *Client) setErr(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		c.err = err
	}
}

// startHeartbeat starts the heartbeat goroutine, once, if one is configured.
func (c *Client) startHeartbeat() {
	if c.cfg.heartbeat <= 0 {
		return
	}
	c.heartbeatOnce.Do(func() {
		c.wg.Add(1)
		go c.heartbeatLoop(c.cfg.heartbeat)
	})
}

func (c *Client) heartbeatLoop(interval time.Duration) {
	defer c.wg.Done()
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-ticker.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), interval)
		_, _ = c.Heartbeat(ctx) // the server, not the client, judges liveness
		cancel()
	}
}
