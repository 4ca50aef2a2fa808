package bench

import (
	"fmt"
	"strconv"
	"strings"
)

// Shard is one of Count bench processes sharing a run: it drives slice
// Index (0-based) of the run's users or pairs.
type Shard struct {
	Index, Count int
}

// ParseShard parses "i/n" with 0 <= i < n.
func ParseShard(s string) (Shard, error) {
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(strings.TrimSpace(a))
	n, err2 := strconv.Atoi(strings.TrimSpace(b))
	if !ok || err1 != nil || err2 != nil || n < 1 || i < 0 || i >= n {
		return Shard{}, fmt.Errorf("bench: shard %q: want i/n with 0 <= i < n, e.g. 0/2 and 1/2", s)
	}
	return Shard{Index: i, Count: n}, nil
}

// Slice returns the first index and the length of this shard's part of
// total items: the parts of all shards are disjoint, cover 0..total-1 and
// differ in length by at most one.
func (s Shard) Slice(total int) (first, n int) {
	if s.Count < 1 {
		return 0, total
	}
	first = s.Index * total / s.Count
	return first, (s.Index+1)*total/s.Count - first
}

func (s Shard) String() string {
	if s.Count <= 1 {
		return ""
	}
	return strconv.Itoa(s.Index) + "/" + strconv.Itoa(s.Count)
}

// UserName is the name of the bench user with the given index: prefix and
// the decimal index. Indexes are global to a run, so that shards provision
// disjoint users.
func UserName(prefix string, index int) string { return prefix + strconv.Itoa(index) }

// UserEmail is the e-mail of a bench user: a reserved domain (RFC 2606), so
// that nothing is ever mailed to it.
func UserEmail(name string) string { return name + "@bench.imsrv.invalid" }
