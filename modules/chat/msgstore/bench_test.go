package msgstore_test

import (
	"fmt"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imsrv/imsrv/modules/chat/msgstore"
	"github.com/imsrv/imsrv/platform/sqldb"
)

// BenchmarkAppend measures stored messages per second through the
// group-commit loop: many concurrent senders, each calling Append with one
// message at a time (and waiting for its commit) into its own 1:1 thread,
// with the default Config. On PostgreSQL it runs when IMSRV_TEST_POSTGRES_URL
// is set.
//
//	go test -run '^$' -bench Append -benchtime 3s ./modules/chat/msgstore/
//
// Reported: msgs/s (stored messages per second of wall time), msgs/batch
// (average messages per transaction), cpu-µs/msg (CPU time of this process
// per message: senders, store and, for SQLite, the database; on
// PostgreSQL the server's CPU is not included).
func BenchmarkAppend(b *testing.B) {
	for _, dialect := range []string{sqldb.SQLite, sqldb.Postgres} {
		for _, senders := range []int{64, 1024} {
			b.Run(fmt.Sprintf("%s/senders=%d", dialect, senders), func(b *testing.B) {
				benchmarkAppend(b, dialect, senders)
			})
		}
	}
}

func benchmarkAppend(b *testing.B, dialect string, senders int) {
	e := newEnv(b, dialect)
	const pairs = 1000
	uids := e.users(2 * pairs)
	s := e.store(msgstore.Config{})
	ctx := b.Context()
	for i := range pairs {
		if _, err := s.PrivateThread(ctx, uids[2*i], uids[2*i+1]); err != nil {
			b.Fatal(err)
		}
	}
	content := "a typical chat message, about sixty bytes of text in it...."
	var nextPair, nextID atomic.Int64
	before := s.Stats()
	cpu0 := cpuTime()
	b.SetParallelism(max(1, senders/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		p := int(nextPair.Add(1)-1) % pairs
		from, to := uids[2*p], uids[2*p+1]
		d := []msgstore.Draft{{Sender: from, Receiver: to, Content: content}}
		for pb.Next() {
			d[0].ClientID = strconv.FormatInt(nextID.Add(1), 36)
			if _, err := s.Append(ctx, d); err != nil {
				b.Error(err)
				return
			}
			from, to = to, from // answer back
			d[0].Sender, d[0].Receiver = from, to
		}
	})
	elapsed := time.Since(start)
	b.StopTimer()
	cpu := cpuTime() - cpu0
	after := s.Stats()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/msg")
	if batches := after.Batches - before.Batches; batches > 0 {
		b.ReportMetric(float64(after.Messages-before.Messages)/float64(batches), "msgs/batch")
	}
}
