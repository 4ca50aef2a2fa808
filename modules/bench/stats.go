package bench

import (
	"encoding/json"
	"math"
	"slices"
	"sync"
	"time"
)

// Summary describes a set of latency samples. Percentiles use the
// nearest-rank definition: P(q) is the smallest sample such that at least
// q of all samples are less than or equal to it, so P(1) is the maximum and
// every reported value is a latency that was actually observed.
type Summary struct {
	Count int
	Mean  time.Duration
	P50   time.Duration
	P90   time.Duration
	P99   time.Duration
	Max   time.Duration
}

// Summarize sorts samples in place and summarises them. No samples give the
// zero Summary.
func Summarize(samples []time.Duration) Summary {
	if len(samples) == 0 {
		return Summary{}
	}
	slices.Sort(samples)
	var sum float64
	for _, d := range samples {
		sum += float64(d)
	}
	return Summary{
		Count: len(samples),
		Mean:  time.Duration(sum / float64(len(samples))),
		P50:   Percentile(samples, 0.50),
		P90:   Percentile(samples, 0.90),
		P99:   Percentile(samples, 0.99),
		Max:   samples[len(samples)-1],
	}
}

// Percentile returns the nearest-rank q-quantile (0 < q <= 1) of sorted,
// which must be sorted in ascending order; 0 when it is empty.
func Percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(q * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// MarshalJSON writes the summary with millisecond values, named with their
// unit, for machines that do not know Go durations.
func (s Summary) MarshalJSON() ([]byte, error) {
	ms := func(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }
	return json.Marshal(struct {
		Count  int     `json:"count"`
		MeanMS float64 `json:"mean_ms"`
		P50MS  float64 `json:"p50_ms"`
		P90MS  float64 `json:"p90_ms"`
		P99MS  float64 `json:"p99_ms"`
		MaxMS  float64 `json:"max_ms"`
	}{s.Count, ms(s.Mean), ms(s.P50), ms(s.P90), ms(s.P99), ms(s.Max)})
}

// Samples collects latencies from many goroutines.
type Samples struct {
	mu sync.Mutex
	d  []time.Duration
}

// Add records one latency.
func (s *Samples) Add(d time.Duration) {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
}

// Summary summarises the samples so far.
func (s *Samples) Summary() Summary {
	s.mu.Lock()
	d := slices.Clone(s.d)
	s.mu.Unlock()
	return Summarize(d)
}

// Errors counts failures by a short description, so that a report can say
// what went wrong without printing every occurrence.
type Errors struct {
	mu sync.Mutex
	n  map[string]int
}

// Add counts one failure described by what.
func (e *Errors) Add(what string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.n == nil {
		e.n = make(map[string]int)
	}
	e.n[what]++
}

// Total returns the number of failures counted.
func (e *Errors) Total() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	total := 0
	for _, n := range e.n {
		total += n
	}
	return total
}

// Counts returns a copy of the counts by description.
func (e *Errors) Counts() map[string]int {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[string]int, len(e.n))
	for k, v := range e.n {
		out[k] = v
	}
	return out
}
