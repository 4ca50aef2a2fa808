package bench_test

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/imsrv/imsrv/modules/bench"
)

func TestBenchShard(t *testing.T) {
	for _, tc := range []struct {
		spec      string
		total     int
		wantSizes []int
	}{
		{"0/1", 10, []int{10}},
		{"0/2", 19000, []int{9500, 9500}},
		{"0/3", 10, []int{3, 3, 4}},
		{"0/4", 2, []int{0, 1, 0, 1}},
	} {
		sh, err := bench.ParseShard(tc.spec)
		if err != nil {
			t.Fatalf("ParseShard(%q): %v", tc.spec, err)
		}
		next := 0
		for i := range sh.Count {
			first, n := bench.Shard{Index: i, Count: sh.Count}.Slice(tc.total)
			if first != next || n != tc.wantSizes[i] {
				t.Errorf("%d items, shard %d/%d = [%d, +%d), want [%d, +%d)", tc.total, i, sh.Count, first, n, next, tc.wantSizes[i])
			}
			next = first + n
		}
		if next != tc.total {
			t.Errorf("%d items over %d shards cover %d", tc.total, sh.Count, next)
		}
	}
	if sh, err := bench.ParseShard(" 1 / 2 "); err != nil || sh != (bench.Shard{Index: 1, Count: 2}) {
		t.Errorf("ParseShard with spaces = %+v, %v", sh, err)
	}
	for _, bad := range []string{"", "1", "2/2", "-1/2", "0/0", "a/b", "1/2/3"} {
		if _, err := bench.ParseShard(bad); err == nil {
			t.Errorf("ParseShard(%q) succeeded", bad)
		}
	}
}

func TestBenchUserNames(t *testing.T) {
	if got := bench.UserName("bench-connect-", 42); got != "bench-connect-42" {
		t.Errorf("UserName = %q", got)
	}
	if got := bench.UserEmail("bench-connect-42"); !strings.HasSuffix(got, ".invalid") || !strings.HasPrefix(got, "bench-connect-42@") {
		t.Errorf("UserEmail = %q, want an address on a reserved .invalid domain", got)
	}
}

func TestBenchParseSources(t *testing.T) {
	got, err := bench.ParseSources("127.0.0.2-127.0.0.4, 10.0.0.9,::1-::2")
	if err != nil {
		t.Fatal(err)
	}
	var want []netip.Addr
	for _, s := range []string{"127.0.0.2", "127.0.0.3", "127.0.0.4", "10.0.0.9", "::1", "::2"} {
		want = append(want, netip.MustParseAddr(s))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("ParseSources = %v, want %v", got, want)
	}
	// A range across an octet boundary.
	got, err = bench.ParseSources("127.0.0.254-127.0.1.1")
	if err != nil || len(got) != 4 || got[3] != netip.MustParseAddr("127.0.1.1") {
		t.Fatalf("ParseSources across an octet = %v, %v", got, err)
	}
	for _, bad := range []string{"127.0.0.300", "127.0.0.5-127.0.0.2", "127.0.0.1-::1", "10.0.0.0-10.255.255.255", "host"} {
		if _, err := bench.ParseSources(bad); err == nil {
			t.Errorf("ParseSources(%q) succeeded", bad)
		}
	}
	if got, err := bench.ParseSources(""); err != nil || len(got) != 0 {
		t.Errorf("ParseSources(\"\") = %v, %v; want none", got, err)
	}
}
