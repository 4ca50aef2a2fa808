package chat

import (
	"encoding/json"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/imsrv/imsrv/modules/chat/wire"
)

// outFrame is one frame queued for a session. Text pushes keep their decoded
// body so that a legacy writer can merge several from one sender into one
// 1019 instead of sending them a gap apart.
type outFrame struct {
	id   wire.MsgID
	body []byte
	text *wire.NotifyTextChatMsgReq // set for 1019 pushes
}

// session is one client connection. Its reader goroutine (Server.serveConn)
// owns the fields marked "reader only". Writing is done by a goroutine that
// exists only while frames are queued, so an idle connection costs one
// goroutine blocked on a 4-byte header read and no buffers.
type session struct {
	srv  *Server
	conn net.Conn
	id   string // unique per connection, stored in usession_<uid>

	// reader only
	uid      int32
	friends  map[int32]struct{} // confirmed friends (friendships are never removed)
	coalesce bool

	mu         sync.Mutex
	queue      []outFrame
	writing    bool
	closed     bool
	closeAfter bool // close the connection once the queue is written (kick)
	legacy     bool // write frames one at a time, LegacyGap apart
	// While a login replays undelivered messages, live text pushes are held
	// back so that they cannot overtake older stored ones.
	holding bool
	held    []outFrame
	// For clients that do not confirm deliveries themselves: the highest
	// seq per thread written to the socket since the last heartbeat.
	trackWritten bool
	written      map[int64]int64
}

// enqueue queues a frame and starts the writer if needed. It never blocks: a
// session whose queue is full is a client that stopped reading, and it is
// disconnected rather than allowed to hold anyone up.
func (s *session) enqueue(f outFrame) error { return s.enqueueFrame(f, false) }

// enqueueReplay queues a replayed stored message, past the hold on live pushes.
func (s *session) enqueueReplay(f outFrame) error { return s.enqueueFrame(f, true) }

func (s *session) enqueueFrame(f outFrame, replay bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.closeAfter {
		return ErrOffline
	}
	if s.holding && !replay && f.text != nil {
		if len(s.held) >= s.srv.cfg.SendQueue {
			return s.dropSlow()
		}
		s.held = append(s.held, f)
		return nil
	}
	if len(s.queue) >= s.srv.cfg.SendQueue {
		return s.dropSlow()
	}
	s.queue = append(s.queue, f)
	s.startWriter()
	return nil
}

// dropSlow disconnects a client whose queue is full. Call with mu held.
func (s *session) dropSlow() error {
	s.closed = true
	s.conn.Close()
	s.srv.metrics.slowConsumers.Inc()
	s.srv.logger.Warn("chat: dropping a client that does not read", "uid", s.uid, "queued", len(s.queue)+len(s.held))
	return ErrOffline
}

// startWriter starts the writer goroutine if it is not running. Call with mu held.
func (s *session) startWriter() {
	if !s.writing && len(s.queue) > 0 {
		s.writing = true
		go s.writeLoop()
	}
}

// release ends the hold: held pushes follow the replay, except those whose
// messages the replay already carried.
func (s *session) release(replayed map[int64]int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.holding = false
	for _, f := range s.held {
		if !covered(f.text, replayed) {
			s.queue = append(s.queue, f)
		}
	}
	s.held = nil
	if !s.closed {
		s.startWriter()
	}
}

// covered reports whether every message of a text push was replayed.
func covered(t *wire.NotifyTextChatMsgReq, replayed map[int64]int64) bool {
	for _, cd := range t.ChatDatas {
		if cd.Seq == 0 || cd.Seq > replayed[int64(t.ThreadID)] {
			return false
		}
	}
	return len(t.ChatDatas) > 0
}

// noteWritten records text pushes that reached the socket, for implicit
// delivery confirmation.
func (s *session) noteWritten(batch []outFrame) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.trackWritten {
		return
	}
	for _, f := range batch {
		if f.text == nil {
			continue
		}
		for _, cd := range f.text.ChatDatas {
			if cd.Seq > 0 {
				if s.written == nil {
					s.written = map[int64]int64{}
				}
				th := int64(f.text.ThreadID)
				s.written[th] = max(s.written[th], cd.Seq)
			}
		}
	}
}

// takeWritten returns and forgets what noteWritten recorded.
func (s *session) takeWritten() map[int64]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.written
	s.written = nil
	return w
}

// send encodes v and queues it.
func (s *session) send(id wire.MsgID, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.enqueue(outFrame{id: id, body: body})
}

// closeAfterFlush lets the queued frames (e.g. a 1021) go out, then closes.
func (s *session) closeAfterFlush() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closeAfter = true
	if !s.writing {
		s.closed = true
		s.conn.Close()
	}
}

// close closes the connection at once; queued frames are dropped.
func (s *session) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		s.conn.Close()
	}
}

func (s *session) writeLoop() {
	var buf []byte
	for {
		s.mu.Lock()
		batch := s.queue
		s.queue = nil
		if len(batch) == 0 || s.closed {
			s.writing = false
			if s.closeAfter && !s.closed {
				s.closed = true
				s.conn.Close()
			}
			s.mu.Unlock()
			return
		}
		legacy := s.legacy
		s.mu.Unlock()

		var err error
		if legacy {
			err = s.writeLegacy(mergeTexts(batch))
		} else {
			buf = buf[:0]
			for _, f := range batch {
				buf = s.appendFrame(buf, f)
			}
			err = s.write(buf)
			if cap(buf) > 64<<10 {
				buf = nil // do not pin a large buffer
			}
		}
		s.srv.metrics.framesOut.Add(float64(len(batch)))
		if err == nil {
			s.noteWritten(batch)
		}
		if err != nil {
			s.srv.logger.Debug("chat: write failed, closing", "uid", s.uid, "err", err)
			s.close()
		}
	}
}

func (s *session) write(b []byte) error {
	if err := s.conn.SetWriteDeadline(time.Now().Add(s.srv.cfg.WriteTimeout)); err != nil {
		return err
	}
	_, err := s.conn.Write(b)
	return err
}

// appendFrame appends f to buf. A frame that cannot be encoded (a body over
// the frame limit: a bug upstream) is dropped and logged, never allowed to
// take the connection down.
func (s *session) appendFrame(buf []byte, f outFrame) []byte {
	out, err := wire.AppendFrame(buf, f.id, f.body)
	if err != nil {
		s.srv.logger.Error("chat: dropping a frame that cannot be encoded", "id", f.id, "uid", s.uid, "err", err)
		return buf
	}
	return out
}

// writeLegacy writes each frame in its own write and waits LegacyGap before
// the next one, because the llfc Qt client misparses two frames in one read.
func (s *session) writeLegacy(frames []outFrame) error {
	for i, f := range frames {
		if i > 0 {
			time.Sleep(s.srv.cfg.LegacyGap)
		}
		b := s.appendFrame(nil, f)
		if len(b) == 0 {
			continue
		}
		if err := s.write(b); err != nil {
			return err
		}
	}
	// Keep the gap across batches too: the next frame may already be queued.
	time.Sleep(s.srv.cfg.LegacyGap)
	return nil
}

// mergeTexts folds consecutive 1019 pushes from the same sender into one push
// with several items, as far as the frame size allows.
func mergeTexts(frames []outFrame) []outFrame {
	out := frames[:0:0]
	for _, f := range frames {
		if n := len(out); n > 0 && f.text != nil && out[n-1].text != nil &&
			out[n-1].text.FromUID == f.text.FromUID && out[n-1].text.ToUID == f.text.ToUID {
			merged := *out[n-1].text
			merged.TextArray = append(merged.TextArray[:len(merged.TextArray):len(merged.TextArray)], f.text.TextArray...)
			merged.ChatDatas = append(merged.ChatDatas[:len(merged.ChatDatas):len(merged.ChatDatas)], f.text.ChatDatas...)
			if body, err := json.Marshal(merged); err == nil && len(body) <= wire.MaxBodyLen {
				out[n-1] = outFrame{id: f.id, body: body, text: &merged}
				continue
			}
		}
		out = append(out, f)
	}
	return out
}

// errKicked ends a session replaced by a newer login.
var errKicked = errors.New("chat: replaced by a newer login")
