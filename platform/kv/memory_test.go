package kv

import (
	"strconv"
	"testing"
	"time"
)

// TestMemorySweep checks that expired keys which are never accessed again are
// eventually reclaimed by the amortised sweep, while live keys are kept.
func TestMemorySweep(t *testing.T) {
	ctx := t.Context()
	m := NewMemory()
	const expired, live = 1000, 10
	for i := range expired {
		if err := m.Set(ctx, "expired:"+strconv.Itoa(i), "v", time.Nanosecond); err != nil {
			t.Fatal(err)
		}
	}
	for i := range live {
		if err := m.Set(ctx, "live:"+strconv.Itoa(i), "v", time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(time.Millisecond) // make sure every 1ns TTL has passed

	// Each sweep examines sweepBatch entries, so a few dozen sweeps are far
	// more than enough to visit all of them.
	for range 20 * sweepEvery {
		if err := m.Set(ctx, "writer", "v", 0); err != nil {
			t.Fatal(err)
		}
	}

	m.mu.Lock()
	n := len(m.items)
	m.mu.Unlock()
	if want := live + 1; n != want {
		t.Errorf("after sweeping, store holds %d entries, want %d", n, want)
	}
}
