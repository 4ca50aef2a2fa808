package bench_test

import (
	"sync"
	"testing"
	"time"

	"github.com/imsrv/imsrv/modules/bench"
)

const ms = time.Millisecond

// event is one step of a crafted stream: send the next text of a stream,
// acknowledge one, or deliver one.
type event struct {
	kind     byte // 's'ent, 'a'cked, 'd'elivered
	stream   int
	seq      int
	code     int   // for 'a'
	receiver int32 // for 'd'
	at       time.Duration
}

func sent(s int, at time.Duration) event           { return event{kind: 's', stream: s, at: at} }
func acked(s, seq int, at time.Duration) event     { return event{kind: 'a', stream: s, seq: seq, at: at} }
func refused(s, seq, code int) event               { return event{kind: 'a', stream: s, seq: seq, code: code} }
func delivered(s, seq int, at time.Duration) event { return deliveredTo(s, seq, -1, at) }
func deliveredTo(s, seq int, to int32, at time.Duration) event {
	return event{kind: 'd', stream: s, seq: seq, receiver: to, at: at}
}

// play feeds events to a tracker whose stream i is received by uid 100+i
// (a delivery with receiver -1 goes to the right one).
func play(t *testing.T, streams int, events ...event) *bench.Tracker {
	t.Helper()
	receivers := make([]int32, streams)
	for i := range receivers {
		receivers[i] = int32(100 + i)
	}
	tr := bench.NewTracker(receivers)
	next := make([]int, streams)
	for i, e := range events {
		switch e.kind {
		case 's':
			if got := tr.Sent(e.stream, e.at); got != next[e.stream] {
				t.Fatalf("event %d: Sent numbered %d, want %d", i, got, next[e.stream])
			}
			next[e.stream]++
		case 'a':
			tr.Acked(e.stream, e.seq, e.code, e.at)
		case 'd':
			to := e.receiver
			if to == -1 {
				to = int32(100 + e.stream)
			}
			tr.Delivered(e.stream, e.seq, to, e.at)
		}
	}
	return tr
}

func TestBenchTrackerCleanRun(t *testing.T) {
	// Two streams, interleaved; pushes may come before ACKs (the server
	// queues the push first) and deliveries of different streams may
	// interleave in any order: none of that is loss, duplication or
	// reordering.
	tr := play(t, 2,
		sent(0, 0), sent(1, 1*ms), sent(0, 2*ms),
		delivered(0, 0, 3*ms), acked(0, 0, 4*ms),
		delivered(1, 0, 5*ms), acked(0, 1, 6*ms), delivered(0, 1, 7*ms), acked(1, 0, 8*ms),
	)
	want := bench.Counts{Sent: 3, Acked: 3, Delivered: 3}
	if got := tr.Snapshot(); got != want {
		t.Fatalf("Snapshot = %+v, want %+v", got, want)
	}
	if u, d := tr.Pending(); u != 0 || d != 0 {
		t.Fatalf("Pending = %d, %d; want 0, 0", u, d)
	}
	ack, push := tr.Latencies()
	// ACK latencies 4, 4, 7 ms; push latencies 3, 4, 5 ms.
	if ack.Count != 3 || ack.P50 != 4*ms || ack.Max != 7*ms {
		t.Errorf("ACK latency = %+v, want 3 samples, p50 4ms, max 7ms", ack)
	}
	if push.Count != 3 || push.P50 != 4*ms || push.Max != 5*ms {
		t.Errorf("push latency = %+v, want 3 samples, p50 4ms, max 5ms", push)
	}
}

func TestBenchTrackerLoss(t *testing.T) {
	tr := play(t, 1,
		sent(0, 0), sent(0, 0), sent(0, 0), sent(0, 0),
		acked(0, 0, ms), acked(0, 1, ms), acked(0, 2, ms), // 3 never acknowledged
		delivered(0, 0, ms), delivered(0, 2, ms), // 1 acknowledged but never delivered
	)
	if u, d := tr.Pending(); u != 1 || d != 1 {
		t.Fatalf("Pending = %d, %d; want 1 unacked, 1 undelivered", u, d)
	}
	want := bench.Counts{Sent: 4, Acked: 3, Unacked: 1, Delivered: 2, Lost: 1}
	if got := tr.Snapshot(); got != want {
		t.Fatalf("Snapshot = %+v, want %+v", got, want)
	}
}

func TestBenchTrackerUnackedButDeliveredIsNotLost(t *testing.T) {
	// The push arrived, the ACK did not: the text reached its receiver, so it
	// is not lost, but the missing ACK is reported.
	tr := play(t, 1, sent(0, 0), delivered(0, 0, ms))
	want := bench.Counts{Sent: 1, Unacked: 1, Delivered: 1}
	if got := tr.Snapshot(); got != want {
		t.Fatalf("Snapshot = %+v, want %+v", got, want)
	}
}

func TestBenchTrackerRefusedIsNotLost(t *testing.T) {
	// An ACK with an error code means the server did not take the text: it
	// is refused, not lost, and it frees the sender's window.
	receivers := []int32{100}
	tr := bench.NewTracker(receivers)
	tr.Sent(0, 0)
	if !tr.Acked(0, 0, 1102, ms) {
		t.Fatal("Acked with an error code reported false; the sender's window would never free")
	}
	want := bench.Counts{Sent: 1, Failed: 1}
	if got := tr.Snapshot(); got != want {
		t.Fatalf("Snapshot = %+v, want %+v", got, want)
	}
	if ack, _ := tr.Latencies(); ack.Count != 0 {
		t.Fatalf("a refused text has an ACK latency: %+v", ack)
	}
}

func TestBenchTrackerDuplicates(t *testing.T) {
	tr := play(t, 1,
		sent(0, 0), sent(0, 0),
		acked(0, 0, ms), acked(0, 1, ms),
		delivered(0, 0, ms), delivered(0, 1, ms), delivered(0, 0, 2*ms), delivered(0, 1, 3*ms), delivered(0, 1, 4*ms),
	)
	got := tr.Snapshot()
	if got.Duplicated != 3 || got.Delivered != 2 || got.Lost != 0 || got.Reordered != 0 {
		t.Fatalf("Snapshot = %+v, want 2 delivered, 3 duplicated, nothing lost or reordered", got)
	}
	// Only first deliveries have a latency.
	if _, push := tr.Latencies(); push.Count != 2 {
		t.Fatalf("push latency samples = %d, want 2", push.Count)
	}
}

func TestBenchTrackerReordering(t *testing.T) {
	// Delivered 0, 2, 1, 4, 3, 5: texts 1 and 3 arrive after a later one.
	var events []event
	for range 6 {
		events = append(events, sent(0, 0))
	}
	for seq := range 6 {
		events = append(events, acked(0, seq, ms))
	}
	for _, seq := range []int{0, 2, 1, 4, 3, 5} {
		events = append(events, delivered(0, seq, ms))
	}
	got := play(t, 1, events...).Snapshot()
	if got.Reordered != 2 || got.Delivered != 6 || got.Lost != 0 || got.Duplicated != 0 {
		t.Fatalf("Snapshot = %+v, want 6 delivered, 2 reordered", got)
	}

	// A text overtaken by several counts once; later texts in order do not count.
	events = events[:0]
	for range 5 {
		events = append(events, sent(0, 0))
	}
	for _, seq := range []int{1, 2, 3, 0, 4} {
		events = append(events, acked(0, seq, ms), delivered(0, seq, ms))
	}
	events = append(events, acked(0, 0, ms))
	if got := play(t, 1, events...).Snapshot(); got.Reordered != 1 {
		t.Fatalf("Snapshot = %+v, want 1 reordered", got)
	}

	// Order is per stream: interleaving two streams is not reordering.
	got = play(t, 2,
		sent(0, 0), sent(0, 0), sent(1, 0), sent(1, 0),
		delivered(1, 0, ms), delivered(0, 0, ms), delivered(1, 1, ms), delivered(0, 1, ms),
	).Snapshot()
	if got.Reordered != 0 {
		t.Fatalf("interleaved streams: Snapshot = %+v, want 0 reordered", got)
	}
}

func TestBenchTrackerUnexpected(t *testing.T) {
	tr := play(t, 2,
		sent(0, 0),
		acked(0, 0, ms),
		acked(0, 0, ms),            // a second ACK
		acked(0, 7, ms),            // never sent
		acked(5, 0, ms),            // no such stream
		delivered(0, 3, ms),        // never sent
		deliveredTo(0, 0, 101, ms), // pushed to stream 1's receiver
		delivered(-1, 0, ms),       // no such stream
		delivered(0, 0, ms),        // the real delivery
	)
	tr.Unexpected() // e.g. an unparsable message id
	got := tr.Snapshot()
	want := bench.Counts{Sent: 1, Acked: 1, Delivered: 1, Unexpected: 7}
	if got != want {
		t.Fatalf("Snapshot = %+v, want %+v", got, want)
	}
}

func TestBenchTrackerConcurrent(t *testing.T) {
	// One sender, one ACK reader and one delivery reader per stream, as in a
	// run; the counts must come out exact (and the race detector quiet).
	const streams, texts = 8, 500
	receivers := make([]int32, streams)
	tr := bench.NewTracker(receivers)
	var wg sync.WaitGroup
	for s := range streams {
		acks := make(chan int, texts)
		pushes := make(chan int, texts)
		wg.Go(func() {
			for range texts {
				seq := tr.Sent(s, tr.Now())
				acks <- seq
				pushes <- seq
			}
			close(acks)
			close(pushes)
		})
		wg.Go(func() {
			for seq := range acks {
				tr.Acked(s, seq, 0, tr.Now())
			}
		})
		wg.Go(func() {
			for seq := range pushes {
				tr.Delivered(s, seq, 0, tr.Now())
			}
		})
	}
	wg.Wait()
	want := bench.Counts{Sent: streams * texts, Acked: streams * texts, Delivered: streams * texts}
	if got := tr.Snapshot(); got != want {
		t.Fatalf("Snapshot = %+v, want %+v", got, want)
	}
}

func TestBenchMsgID(t *testing.T) {
	for _, tc := range []struct {
		run    string
		s, seq int
	}{{"a", 0, 0}, {"k3x9", 17, 4242}, {"zzzzzzzz", 199999, 1 << 30}} {
		id := bench.MsgID(tc.run, tc.s, tc.seq)
		run, s, seq, err := bench.ParseMsgID(id)
		if err != nil || run != tc.run || s != tc.s || seq != tc.seq {
			t.Errorf("ParseMsgID(%q) = %q, %d, %d, %v; want %q, %d, %d", id, run, s, seq, err, tc.run, tc.s, tc.seq)
		}
	}
	for _, bad := range []string{"", "1", "r-1", "r-a-1", "r-1-b", "r--1-2", "r-1--2", "-1-2", "local-uuid-0001"} {
		if _, _, _, err := bench.ParseMsgID(bad); err == nil {
			t.Errorf("ParseMsgID(%q) succeeded", bad)
		}
	}
}
