// TLB storage: one set-associative cache type serves as the L1 data TLB, the
// unified L2 TLB and the walk cache of each emulated CPU.
//
// Invariants:
//   - A tlb is owned by one CPU goroutine; only the owner reads or mutates it,
//     so there is no locking and no atomics. Other CPUs reach it only through
//     the owner (e.g. a TLBI delivered as a message), never directly.
//   - tags[i] == entries[i].tag for every way i; 0 means the way is invalid,
//     and every valid tag has tlbTagValid set, so 0 never matches a lookup.
//   - A tag occurs at most once, in the set selected by its VA-prefix bits.
//   - n is the number of valid ways.
//   - Fully associative TLBs with many ways keep index, an open-addressing
//     hash table holding way+1 for exactly the valid ways; every path that
//     changes tags[] (insert, evict, invalidate) updates index in the same
//     call, before anything else can look it up.
//   - Replacement state (LRU stamps, PLRU bits) is only consulted for a full
//     set, all of whose ways have been (re)filled, hence touched, since they
//     last became invalid; so invalidation never needs to repair or reset it
//     (a PLRU node's bit is set by the latest touch below it).
//   - Fully associative LRU TLBs keep the valid ways on a list in order of
//     use, less the hits logged since it was last brought up to date
//     (tlblru.go, with its own invariants), instead of stamps.
//   - insertNew is only called for a tag the TLB does not hold: the caller
//     has just missed it, and only insert and insertNew add tags.
package mmu

import (
	"fmt"
	"math/bits"
)

// tlbEntry is one cached translation (or, in the walk cache, one table descriptor).
type tlbEntry struct {
	tag   uint64 // see tag layout; 0 = invalid way
	pfn   uint64 // output frame (walk cache: next-level table PFN)
	desc  uint64 // physical address of the leaf descriptor (the hardware's DBM re-check reads it)
	gen   uint32 // generation of frame pfn when filled (use-after-free oracle)
	perm  uint8  // permission bits (defined by the access path; opaque to the TLB)
	level uint8  // walk cache: level of the cached descriptor; TLB: level of the leaf
}

// tlb is a set-associative cache of tlbEntry. Set s holds ways
// [s*ways, (s+1)*ways) of the flat slices.
type tlb struct {
	_ [64]byte // the hit path writes here: keep it off other CPUs' lines
	// What an L1 hit reads, in one cache line, then the log it writes.
	index   []uint32   // fully associative, many ways: way+1 per slot, 0 = empty
	entries []tlbEntry // the cached translations, parallel to tags
	nlog    int        // hits in hitLog
	shift   uint8      // of the hash index
	repl    Replacement
	logCap  int // lruLogSize if links != nil (Load and Store's fast path), else 0
	// LRU of a fully associative TLB: a list of the valid ways, most
	// recent first, and the log of hits not yet moved on it (tlblru.go).
	hitLog       [lruLogSize]uint16
	links        []lruLink // nil unless fully associative with LRU
	lhead, ltail int32
	moved        []uint32 // flushLRU's marks: moved[w] == flushes if w moved in this flush
	flushes      uint32
	clock        uint64   // LRU stamp source
	stamps       []uint64 // LRU: last-use stamp per way
	tags         []uint64 // dense copy of entries[i].tag, for scanning
	setMask      uint64
	ways         int
	plru         []uint64 // PLRU: per set, stride words of heap-ordered tree bits (1 = victim is right)
	// PLRU with <= 64 ways: the tree bits on way w's path and the values a
	// use of w gives them, so a use is one masked store.
	pathMask, pathVal []uint64
	rng               uint64 // splitmix64 state (random replacement)
	idxMask           uint64
	n                 int
	stride            int // PLRU words per set
	geom              TLBGeometry
	// removed, when not nil, collects the entries invalidations remove (the
	// flush-refill accounting of flush_tlb_batched_pending).
	removed *[]tlbEntry
	_       [64]byte
}

const tlbHashMul = 0x9E3779B97F4A7C15 // 2^64/phi: Fibonacci hashing spreads consecutive VPNs

// home is tag's slot in the hash index: where its probe starts.
func (t *tlb) home(tag uint64) uint64 { return tag * tlbHashMul >> (t.shift & 63) }

// firstWay is the way in tag's home slot, the first probe's answer; an
// empty slot (0) wraps to a way past the last, so one unsigned compare
// with len(t.entries) tells a way from nothing.
func (t *tlb) firstWay(tag uint64) uint32 { return t.index[t.home(tag)] - 1 }

// newTLB builds an empty TLB; seed fixes the random-replacement sequence.
func newTLB(g TLBGeometry, r Replacement, seed uint64) (*tlb, error) {
	if err := g.Validate(r); err != nil {
		return nil, err
	}
	t := &tlb{
		tags:    make([]uint64, g.Entries),
		entries: make([]tlbEntry, g.Entries),
		setMask: uint64(g.Sets() - 1),
		ways:    g.Ways,
		rng:     seed,
		repl:    r,
		geom:    g,
	}
	switch r {
	case ReplLRU:
		t.stamps = make([]uint64, g.Entries)
	case ReplPLRU:
		t.stride = (g.Ways + 63) / 64
		t.plru = make([]uint64, g.Sets()*t.stride)
		if g.Ways <= 64 { // the ways-1 tree bits fit one word: precompute each way's path
			t.pathMask = make([]uint64, g.Ways)
			t.pathVal = make([]uint64, g.Ways)
			for w := range g.Ways {
				for node := w + g.Ways - 1; node > 0; {
					p := (node - 1) >> 1
					t.pathMask[w] |= 1 << p
					if node&1 != 0 { // left child: point the victim right
						t.pathVal[w] |= 1 << p
					}
					node = p
				}
			}
		}
	}
	// A hash index only pays off where a scan would touch many lines.
	if g.Sets() == 1 && g.Ways > 8 {
		// At most a quarter full: most lookups and misses end at the
		// first probe, and an eviction's backward shift is short (a half
		// full index cost a sweep past the L1 a fifth of its time).
		size := 16
		for size < 4*g.Ways {
			size <<= 1
		}
		t.index = make([]uint32, size)
		if r == ReplLRU {
			t.stamps = nil
			t.links, t.logCap = make([]lruLink, g.Entries), lruLogSize
			t.moved = make([]uint32, g.Entries)
			t.lhead, t.ltail = -1, -1
		}
		t.idxMask = uint64(size - 1)
		t.shift = uint8(64 - bits.TrailingZeros(uint(size)))
	}
	return t, nil
}

func (t *tlb) geometry() TLBGeometry { return t.geom }

// len is the number of valid entries.
func (t *tlb) len() int { return t.n }

// find returns the way holding tag, or -1. tag must be valid (bit 63 set).
func (t *tlb) find(tag uint64) int {
	if t.index != nil {
		for h := t.home(tag); ; h = (h + 1) & t.idxMask {
			v := t.index[h]
			if v == 0 {
				return -1
			}
			if t.tags[v-1] == tag {
				return int(v - 1)
			}
		}
	}
	base := int(tag&t.setMask) * t.ways
	for i, x := range t.tags[base : base+t.ways] {
		if x == tag {
			return base + i
		}
	}
	return -1
}

// lookup returns the entry for tag and marks it used, or nil on a miss. The
// pointer is valid until the next insert or invalidate. tag must be valid.
//
// Every L1 miss runs it (in the L2 TLB, the walk cache), so it searches
// itself rather than calling find, scans a set without an early exit (tags
// in a set are unique, and a predictable loop beats a mispredicted branch),
// and does the LRU update inline. (The L1 lookup of an access is written
// out in the access path: Load, Store, translate.)
func (t *tlb) lookup(tag uint64) *tlbEntry {
	i := -1
	if t.index != nil {
		for h := t.home(tag); ; h = (h + 1) & t.idxMask {
			v := t.index[h]
			if v == 0 {
				return nil
			}
			// Compare in the entry the caller reads anyway: one cache line.
			if t.entries[v-1].tag == tag {
				i = int(v - 1)
				break
			}
		}
	} else {
		base := int(tag&t.setMask) * t.ways
		for j, x := range t.tags[base : base+t.ways] {
			if x == tag {
				i = base + j
			}
		}
		if i < 0 {
			return nil
		}
	}
	switch {
	case t.repl != ReplLRU:
		t.touch(i)
	case t.links != nil:
		t.useLRU(i)
	default:
		t.clock++
		t.stamps[i] = t.clock
	}
	return &t.entries[i]
}

// probe returns the way holding tag, or -1, and marks nothing used:
// lookup's search, for the access path's L1 lookup (translate), which
// writes out the first probe of a hash index and the LRU update itself.
func (t *tlb) probe(tag uint64) int {
	if t.index != nil {
		for h := t.home(tag); ; h = (h + 1) & t.idxMask {
			v := t.index[h]
			if v == 0 {
				return -1
			}
			if t.entries[v-1].tag == tag {
				return int(v - 1)
			}
		}
	}
	base := int(tag&t.setMask) * t.ways
	i := -1
	for j, x := range t.tags[base : base+t.ways] {
		if x == tag {
			i = base + j
		}
	}
	return i
}

// touch records a use of way i.
func (t *tlb) touch(i int) {
	switch t.repl {
	case ReplLRU:
		if t.links != nil {
			t.useLRU(i)
			return
		}
		t.clock++
		t.stamps[i] = t.clock
	case ReplPLRU:
		w := i & (t.ways - 1)
		if t.pathMask != nil {
			p := &t.plru[i/t.ways]
			*p = *p&^t.pathMask[w] | t.pathVal[w]
			return
		}
		set := t.plru[i/t.ways*t.stride:]
		// Point every node on the root-to-leaf path away from w.
		for node := w + t.ways - 1; node > 0; {
			p := (node - 1) >> 1
			if node&1 != 0 { // left child
				set[p>>6] |= 1 << (p & 63)
			} else {
				set[p>>6] &^= 1 << (p & 63)
			}
			node = p
		}
	}
}

// victim picks the way to evict from the full set starting at base.
func (t *tlb) victim(base int) int {
	switch t.repl {
	case ReplRandom:
		t.rng += 0x9E3779B97F4A7C15 // splitmix64
		z := t.rng
		z = (z ^ z>>30) * 0xBF58476D1CE4E5B9
		z = (z ^ z>>27) * 0x94D049BB133111EB
		hi, _ := bits.Mul64(z^z>>31, uint64(t.ways))
		return base + int(hi)
	case ReplPLRU:
		set := t.plru[base/t.ways*t.stride:]
		node := 0
		for node < t.ways-1 {
			node = 2*node + 1 + int(set[node>>6]>>(node&63)&1)
		}
		return base + node - (t.ways - 1)
	}
	if t.links != nil {
		return int(t.ltail) // insertNew made the logged moves
	}
	v := base
	for i, s := range t.stamps[base : base+t.ways] {
		if s < t.stamps[v] {
			v = base + i
		}
	}
	return v
}

// insert fills e, overwriting an entry with the same tag in place (a use,
// not an eviction), else the lowest invalid way of its set, else the
// replacement victim, which it returns. e becomes most recently used.
func (t *tlb) insert(e tlbEntry) (evicted tlbEntry, didEvict bool) {
	if e.tag&tlbTagValid == 0 {
		panic(fmt.Sprintf("mmu: tlb insert of invalid tag %#x", e.tag))
	}
	if i := t.find(e.tag); i >= 0 {
		t.entries[i] = e
		t.touch(i)
		return
	}
	t.insertNew(&e, &evicted, &didEvict)
	return
}

// insertNew is insert of a tag the TLB does not hold (the caller has just
// missed it in a lookup, and only insert adds tags): it skips the search
// for it. It returns the way filled and, if evicted is not nil, reports an
// eviction's victim in *evicted and *didEvict (only tests ask). e is read
// in place (not copied in and out of the caller's frame).
func (t *tlb) insertNew(e *tlbEntry, evicted *tlbEntry, didEvict *bool) int {
	if t.nlog != 0 {
		t.flushLRU() // the list's order decides the victim, and changes
	}
	base := int(e.tag&t.setMask) * t.ways
	i := -1
	if t.n < len(t.tags) { // some set has a free way; is it this one?
		for j, x := range t.tags[base : base+t.ways] {
			if x == 0 {
				i = base + j
				break
			}
		}
	}
	if i < 0 {
		if t.links != nil { // victim(base), its fully associative LRU case written out
			i = int(t.ltail)
		} else {
			i = t.victim(base)
		}
		if evicted != nil {
			*evicted, *didEvict = t.entries[i], true
		}
		t.unindex(i)
		if t.links != nil {
			t.unlink(i)
		}
	} else {
		t.n++
	}
	t.tags[i] = e.tag
	t.entries[i] = *e
	if t.index != nil {
		h := t.home(e.tag)
		for t.index[h] != 0 {
			h = (h + 1) & t.idxMask
		}
		t.index[h] = uint32(i + 1)
	}
	switch {
	case t.links != nil:
		t.pushFront(i)
	case t.repl == ReplLRU: // touch(i), written out
		t.clock++
		t.stamps[i] = t.clock
	default:
		t.touch(i)
	}
	return i
}

// unindex removes way i (still holding its tag) from the hash index by
// backward-shift deletion, which keeps every probe chain gap-free without
// tombstones, so lookups stay 1-2 probes after any amount of churn.
func (t *tlb) unindex(i int) {
	if t.index == nil {
		return
	}
	h := t.home(t.tags[i])
	for t.index[h] != uint32(i+1) {
		h = (h + 1) & t.idxMask
	}
	for j := h; ; {
		j = (j + 1) & t.idxMask
		v := t.index[j]
		if v == 0 {
			break
		}
		// Move v back into the hole unless its home lies cyclically in (h, j].
		home := t.home(t.tags[v-1])
		if (j-home)&t.idxMask >= (j-h)&t.idxMask {
			t.index[h] = v
			h = j
		}
	}
	t.index[h] = 0
}

// remove invalidates way i.
func (t *tlb) remove(i int) {
	if t.removed != nil {
		*t.removed = append(*t.removed, t.entries[i])
	}
	t.unindex(i)
	if t.links != nil {
		t.flushLRU() // the log may hold way i
		t.unlink(i)
	}
	t.tags[i] = 0
	t.entries[i] = tlbEntry{}
	t.n--
}

// invalidateTag removes the entry with exactly this tag; it returns 0 or 1.
func (t *tlb) invalidateTag(tag uint64) int {
	if tag&tlbTagValid == 0 {
		return 0
	}
	i := t.find(tag)
	if i < 0 {
		return 0
	}
	t.remove(i)
	return 1
}

// invalidateASID removes every non-global entry (of any kind) of asid.
func (t *tlb) invalidateASID(asid uint16) int {
	c := 0
	for i, x := range t.tags {
		if x != 0 && x&tlbTagGlobal == 0 && tagASID(x) == asid {
			t.remove(i)
			c++
		}
	}
	return c
}

// invalidateAll empties the TLB; the PRNG continues its sequence.
func (t *tlb) invalidateAll() int {
	c := t.n
	if t.removed != nil {
		for i, x := range t.tags {
			if x != 0 {
				*t.removed = append(*t.removed, t.entries[i])
			}
		}
	}
	clear(t.tags)
	clear(t.entries)
	clear(t.index)
	t.n = 0
	t.lhead, t.ltail, t.nlog = -1, -1, 0
	return c
}

// invalidateMatch removes every valid entry for which f returns true: the
// slow path for range and by-VA invalidation. f must not modify the entry.
func (t *tlb) invalidateMatch(f func(*tlbEntry) bool) int {
	c := 0
	for i := range t.entries {
		if t.tags[i] != 0 && f(&t.entries[i]) {
			t.remove(i)
			c++
		}
	}
	return c
}
