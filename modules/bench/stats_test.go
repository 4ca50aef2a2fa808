package bench_test

import (
	"encoding/json"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/imsrv/imsrv/modules/bench"
)

func TestBenchPercentileNearestRank(t *testing.T) {
	// 1..100 ms: the q-quantile is exactly q*100 ms.
	var d []time.Duration
	for i := 100; i >= 1; i-- {
		d = append(d, time.Duration(i)*ms)
	}
	s := bench.Summarize(d)
	want := bench.Summary{Count: 100, Mean: 50500 * time.Microsecond, P50: 50 * ms, P90: 90 * ms, P99: 99 * ms, Max: 100 * ms}
	if s != want {
		t.Fatalf("Summarize(1..100ms) = %+v, want %+v", s, want)
	}
	for _, tc := range []struct {
		samples []time.Duration
		q       float64
		want    time.Duration
	}{
		{[]time.Duration{7}, 0.5, 7},
		{[]time.Duration{7}, 0.99, 7},
		{[]time.Duration{1, 2}, 0.5, 1},
		{[]time.Duration{1, 2}, 0.51, 2},
		{[]time.Duration{1, 2, 3}, 0.5, 2},
		{[]time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 0.9, 9},
		{[]time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 0.91, 10},
		{[]time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 1, 10},
		{[]time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 0.001, 1},
		{nil, 0.5, 0},
	} {
		if got := bench.Percentile(tc.samples, tc.q); got != tc.want {
			t.Errorf("Percentile(%v, %v) = %v, want %v", tc.samples, tc.q, got, tc.want)
		}
	}
}

func TestBenchPercentileTail(t *testing.T) {
	// 990 fast samples and 10 slow ones: p99 is still fast, the 991st
	// sample and above are slow, max is the slowest.
	d := make([]time.Duration, 0, 1000)
	for range 990 {
		d = append(d, ms)
	}
	for i := range 10 {
		d = append(d, time.Second+time.Duration(i)*ms)
	}
	rand.Shuffle(len(d), func(i, j int) { d[i], d[j] = d[j], d[i] })
	s := bench.Summarize(d)
	if s.P50 != ms || s.P90 != ms || s.P99 != ms || s.Max != time.Second+9*ms {
		t.Fatalf("Summarize = %+v, want p50 = p90 = p99 = 1ms, max 1.009s", s)
	}
	if !slices.IsSorted(d) {
		t.Fatal("Summarize did not sort its samples in place as documented")
	}
	if got := bench.Percentile(d, 0.991); got != time.Second {
		t.Fatalf("p99.1 = %v, want 1s", got)
	}
}

func TestBenchSummaryEmptyAndJSON(t *testing.T) {
	if s := bench.Summarize(nil); s != (bench.Summary{}) {
		t.Fatalf("Summarize(nil) = %+v, want zero", s)
	}
	var samples bench.Samples
	for _, d := range []time.Duration{1500 * time.Microsecond, 2 * ms, 250 * ms} {
		samples.Add(d)
	}
	b, err := json.Marshal(samples.Summary())
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]float64
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"count": 3, "mean_ms": 84.5, "p50_ms": 2, "p90_ms": 250, "p99_ms": 250, "max_ms": 250}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("JSON %s = %v, want %v (all: %s)", k, got[k], v, b)
		}
	}
}

func TestBenchErrors(t *testing.T) {
	var e bench.Errors
	e.Add("dial: connection refused")
	e.Add("dial: connection refused")
	e.Add("chat login: error 1010")
	if e.Total() != 3 {
		t.Fatalf("Total = %d, want 3", e.Total())
	}
	got := e.Counts()
	if got["dial: connection refused"] != 2 || got["chat login: error 1010"] != 1 || len(got) != 2 {
		t.Fatalf("Counts = %v", got)
	}
}
