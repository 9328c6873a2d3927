package report

import (
	"fmt"
	"hash/fnv"
	"regexp"
	"strconv"
	"strings"
)

// Shard is one of Total deterministic, disjoint subsets of a suite's specs;
// Index counts from 1. The zero Shard is the whole suite.
type Shard struct {
	Index, Total int
}

// ParseShard parses "i/n" (1 ≤ i ≤ n); "" is the whole suite.
func ParseShard(s string) (Shard, error) {
	if s == "" {
		return Shard{}, nil
	}
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || n < 1 || i < 1 || i > n {
		return Shard{}, fmt.Errorf("shard %q: want i/n with 1 ≤ i ≤ n, e.g. 1/3", s)
	}
	return Shard{Index: i, Total: n}, nil
}

// String returns "i/n", or "" for the whole suite.
func (s Shard) String() string {
	if s.Total == 0 {
		return ""
	}
	return fmt.Sprintf("%d/%d", s.Index, s.Total)
}

// Whole reports whether s is the whole suite (no sharding, or 1/1).
func (s Shard) Whole() bool { return s.Total <= 1 }

// Has reports whether the spec with this ID belongs to the shard. The choice
// hashes the ID alone (FNV-1a), so it is the same on every machine and a
// spec's shard does not move when other specs are added or removed.
func (s Shard) Has(id string) bool {
	if s.Whole() {
		return true
	}
	return int(fnv32(id)%uint32(s.Total)) == s.Index-1
}

// Select returns the IDs of the shard, in their order.
func (s Shard) Select(ids []string) []string {
	var out []string
	for _, id := range ids {
		if s.Has(id) {
			out = append(out, id)
		}
	}
	return out
}

func fnv32(s string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(s))
	return h.Sum32()
}

// FocusRegex returns a Ginkgo -ginkgo.focus expression that selects exactly
// the spec with this ID in the suite described as suite. Ginkgo matches
// focus against "<suite description> <spec full text>"; the optional
// bracketed tail keeps the match exact for a spec whose own text ends in
// brackets (see SplitName).
func FocusRegex(suite, id string) string {
	return "^" + regexp.QuoteMeta(suite+" "+id) + `( \[[^\]]*\])?$`
}
