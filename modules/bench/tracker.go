package bench

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Tracker follows every text of a chat run, per stream: one stream is one
// sender talking to one receiver, and its texts are numbered 0, 1, 2, ... in
// the order they are sent. Every text carries its stream and number in its
// client message id (MsgID), so that the acknowledgement (1018) and the
// delivery (1019) can be matched to it whatever frames they arrive in.
//
// From the events it counts, per stream and in total:
//   - lost: acknowledged with error 0 but never delivered;
//   - duplicated: delivered again after a first delivery;
//   - reordered: delivered after a text of the same stream sent later than
//     it (each such late delivery counts once);
//   - unexpected: an acknowledgement or delivery that matches no text sent,
//     a second acknowledgement, or a delivery on the wrong receiver.
//
// Times are offsets from the tracker's start, so that tests can craft event
// streams; Tracker.Now gives the offset of the current instant. A Tracker is
// safe for concurrent use; each stream has its own lock.
type Tracker struct {
	start   time.Time
	streams []*stream
	unknown atomic.Int64 // frames naming no stream
}

type stream struct {
	mu         sync.Mutex
	receiver   int32
	sent       []time.Duration // send time by number
	state      []msgState
	maxSeen    int // highest number delivered so far, -1 before any
	duplicated int
	reordered  int
	unexpected int
	ackLat     []time.Duration
	pushLat    []time.Duration
}

type msgState uint8

const (
	stAcked     msgState = 1 << iota // 1018 with error 0
	stFailed                         // 1018 with another error
	stDelivered                      // 1019 seen
)

// NewTracker returns a tracker for the given streams; receivers[i] is the
// uid that must receive stream i's texts.
func NewTracker(receivers []int32) *Tracker {
	t := &Tracker{start: time.Now(), streams: make([]*stream, len(receivers))}
	for i, r := range receivers {
		t.streams[i] = &stream{receiver: r, maxSeen: -1}
	}
	return t
}

// Now returns the current time as an offset from the tracker's start.
func (t *Tracker) Now() time.Duration { return time.Since(t.start) }

// MsgID is the client message id of text seq of stream s in the run named
// run: "<run>-<stream>-<seq>". The run name (letters and digits) keeps texts
// of earlier runs, which a server may deliver again, apart.
func MsgID(run string, s, seq int) string {
	return run + "-" + strconv.Itoa(s) + "-" + strconv.Itoa(seq)
}

// ParseMsgID splits a client message id made by MsgID.
func ParseMsgID(id string) (run string, s, seq int, err error) {
	run, rest, ok := strings.Cut(id, "-")
	a, b, ok2 := strings.Cut(rest, "-")
	if ok && ok2 && run != "" {
		if s, err = strconv.Atoi(a); err == nil {
			if seq, err = strconv.Atoi(b); err == nil && s >= 0 && seq >= 0 {
				return run, s, seq, nil
			}
		}
	}
	return "", 0, 0, fmt.Errorf("bench: %q is not a bench message id", id)
}

// Sent records that the next text of stream s goes out at time at and
// returns its number.
func (t *Tracker) Sent(s int, at time.Duration) int {
	st := t.streams[s]
	st.mu.Lock()
	defer st.mu.Unlock()
	st.sent = append(st.sent, at)
	st.state = append(st.state, 0)
	return len(st.sent) - 1
}

// Acked records the acknowledgement of text seq of stream s with the given
// error code at time at. It reports whether the text was known and not
// acknowledged before (a sender's window may then take the next text).
func (t *Tracker) Acked(s, seq, code int, at time.Duration) bool {
	st, ok := t.stream(s)
	if !ok {
		return false
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if seq < 0 || seq >= len(st.sent) || st.state[seq]&(stAcked|stFailed) != 0 {
		st.unexpected++
		return false
	}
	if code != 0 {
		st.state[seq] |= stFailed
		return true
	}
	st.state[seq] |= stAcked
	st.ackLat = append(st.ackLat, at-st.sent[seq])
	return true
}

// Delivered records that receiver got text seq of stream s at time at.
func (t *Tracker) Delivered(s, seq int, receiver int32, at time.Duration) {
	st, ok := t.stream(s)
	if !ok {
		return
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	switch {
	case seq < 0 || seq >= len(st.sent) || receiver != st.receiver:
		st.unexpected++
	case st.state[seq]&stDelivered != 0:
		st.duplicated++
	default:
		st.state[seq] |= stDelivered
		st.pushLat = append(st.pushLat, at-st.sent[seq])
		if seq < st.maxSeen {
			st.reordered++
		} else {
			st.maxSeen = seq
		}
	}
}

// Unexpected counts a frame that names no stream at all (an unparsable
// message id, say).
func (t *Tracker) Unexpected() { t.unknown.Add(1) }

func (t *Tracker) stream(s int) (*stream, bool) {
	if s < 0 || s >= len(t.streams) {
		t.Unexpected()
		return nil, false
	}
	return t.streams[s], true
}

// Pending returns how many texts still wait for their acknowledgement, and
// how many acknowledged texts still wait for their delivery.
func (t *Tracker) Pending() (unacked, undelivered int) {
	for _, st := range t.streams {
		st.mu.Lock()
		for _, s := range st.state {
			switch {
			case s&(stAcked|stFailed) == 0:
				unacked++
			case s&stAcked != 0 && s&stDelivered == 0:
				undelivered++
			}
		}
		st.mu.Unlock()
	}
	return unacked, undelivered
}

// Counts are a chat run's message counts. Lost, Duplicated and Reordered
// must be 0 on a correct server.
type Counts struct {
	Sent       int `json:"sent"`
	Acked      int `json:"acked"`     // 1018 with error 0
	Failed     int `json:"failed"`    // 1018 with another error
	Unacked    int `json:"unacked"`   // no 1018 by the end of the run
	Delivered  int `json:"delivered"` // distinct texts received (1019)
	Lost       int `json:"lost"`      // acknowledged, never delivered
	Duplicated int `json:"duplicated"`
	Reordered  int `json:"reordered"`
	Unexpected int `json:"unexpected"`
}

// Add adds o's counts to c.
func (c *Counts) Add(o Counts) {
	c.Sent += o.Sent
	c.Acked += o.Acked
	c.Failed += o.Failed
	c.Unacked += o.Unacked
	c.Delivered += o.Delivered
	c.Lost += o.Lost
	c.Duplicated += o.Duplicated
	c.Reordered += o.Reordered
	c.Unexpected += o.Unexpected
}

// Snapshot returns the counts so far, treating texts not yet acknowledged
// or delivered as unacknowledged or lost: meaningful once the run is over.
func (t *Tracker) Snapshot() Counts {
	total := Counts{Unexpected: int(t.unknown.Load())}
	for _, st := range t.streams {
		st.mu.Lock()
		c := Counts{Sent: len(st.sent), Duplicated: st.duplicated, Reordered: st.reordered, Unexpected: st.unexpected}
		for _, s := range st.state {
			switch {
			case s&stAcked != 0:
				c.Acked++
			case s&stFailed != 0:
				c.Failed++
			default:
				c.Unacked++
			}
			if s&stDelivered != 0 {
				c.Delivered++
			} else if s&stAcked != 0 {
				c.Lost++
			}
		}
		st.mu.Unlock()
		total.Add(c)
	}
	return total
}

// Latencies summarises send→ACK (1018) and send→push (1019) latencies of
// the texts acknowledged and delivered so far (first delivery only).
func (t *Tracker) Latencies() (ack, push Summary) {
	var a, p []time.Duration
	for _, st := range t.streams {
		st.mu.Lock()
		a = append(a, st.ackLat...)
		p = append(p, st.pushLat...)
		st.mu.Unlock()
	}
	return Summarize(a), Summarize(p)
}
