package bench

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
)

// PointSet is the runs of a sweep: configurations (templates, seed 0), each
// run for a range of seeds. Points are numbered in sweep order — template
// by template, seeds ascending — and made only when asked for, so a sweep
// of a million seeds costs a template, not a million configurations.
type PointSet struct {
	templates []Config
	first     []uint64 // per template: its first seed
	count     []int    // per template: how many seeds
	start     []int    // per template: the number of its first point
	hashes    []string // per template: hash of its key (TemplateHash)
	byHash    map[string][]int
	n         int
}

// maxPoints bounds a sweep (points are numbered with ints; a row of a
// results CSV is ~2 KB, so this is far beyond any disk).
const maxPoints = 1 << 40

// add appends template c (its seed is ignored) for seeds first..first+n-1.
func (ps *PointSet) add(c Config, first uint64, n int) error {
	if n < 1 {
		return fmt.Errorf("%d seeds (must be at least 1)", n)
	}
	if first+uint64(n-1) < first {
		return fmt.Errorf("seeds %d..%d+%d wrap past 2^64", first, first, n-1)
	}
	if ps.n+n > maxPoints {
		return fmt.Errorf("more than %d points", int64(maxPoints))
	}
	c.Machine.Sched.Seed = 0
	h := templateHash(c)
	if ps.byHash == nil {
		ps.byHash = map[string][]int{}
	}
	ps.byHash[h] = append(ps.byHash[h], len(ps.templates))
	ps.templates = append(ps.templates, c)
	ps.first = append(ps.first, first)
	ps.count = append(ps.count, n)
	ps.start = append(ps.start, ps.n)
	ps.hashes = append(ps.hashes, h)
	ps.n += n
	return nil
}

// ConfigList is a PointSet of the given configurations, one point each, in
// order.
func ConfigList(cfgs []Config) *PointSet {
	ps := &PointSet{}
	for _, c := range cfgs {
		if err := ps.add(c, c.Machine.Sched.Seed, 1); err != nil {
			panic(err) // one seed never wraps
		}
	}
	return ps
}

// Len is the number of points.
func (ps *PointSet) Len() int { return ps.n }

// At is point i.
func (ps *PointSet) At(i int) Config {
	t := ps.templateOf(i)
	c := ps.templates[t]
	c.Machine.Sched.Seed = ps.first[t] + uint64(i-ps.start[t])
	return c
}

func (ps *PointSet) templateOf(i int) int {
	lo, hi := 0, len(ps.templates)-1
	for lo < hi { // the last template whose start is <= i
		mid := (lo + hi + 1) / 2
		if ps.start[mid] <= i {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo
}

// IndexOf is the number of the point whose configuration key is key (a
// results row's config column).
func (ps *PointSet) IndexOf(key string) (int, bool) {
	var c Config
	if err := json.Unmarshal([]byte(key), &c); err != nil {
		return 0, false
	}
	seed := c.Machine.Sched.Seed
	c.Machine.Sched.Seed = 0
	for _, t := range ps.byHash[templateHash(c)] {
		if seed >= ps.first[t] && seed-ps.first[t] < uint64(ps.count[t]) {
			return ps.start[t] + int(seed-ps.first[t]), true
		}
	}
	return 0, false
}

// templateHash names a configuration without its seed.
func templateHash(c Config) string {
	c.Machine.Sched.Seed = 0
	sum := sha256.Sum256([]byte(c.Key()))
	return hex.EncodeToString(sum[:8])
}

// Templates is the point set's layout as a journal header carries it:
// HASH:FIRST:COUNT per template, in order.
func (ps *PointSet) Templates() string {
	var b strings.Builder
	for t := range ps.templates {
		if t > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s:%d:%d", ps.hashes[t], ps.first[t], ps.count[t])
	}
	return b.String()
}

// Fingerprint identifies the sweep: the same points in the same order.
func (ps *PointSet) Fingerprint() string {
	sum := sha256.Sum256([]byte(ps.Templates()))
	return hex.EncodeToString(sum[:8])
}

// Shard is the numbers of the points of shard i of n: every n-th point from
// i, so each shard gets its share of every template (balanced when points
// of one template cost alike).
func (ps *PointSet) Shard(i, n int) []int {
	var out []int
	for p := i; p < ps.n; p += n {
		out = append(out, p)
	}
	return out
}

// MaxRunMemory is the most host memory a run of any point needs (RunMemory).
func (ps *PointSet) MaxRunMemory() uint64 {
	var m uint64
	for _, c := range ps.templates {
		m = max(m, RunMemory(c))
	}
	return m
}

// All is the numbers of every point.
func (ps *PointSet) All() []int { return ps.Shard(0, 1) }
