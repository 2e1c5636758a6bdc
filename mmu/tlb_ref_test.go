package mmu

import (
	"fmt"
	"math/bits"
	"math/rand/v2"
	"slices"
	"testing"
)

// tlbRef is a deliberately naive model of tlb, written from the contract
// rather than the implementation: per set a slice of tags by way, an explicit
// most-recent-first list for LRU, a []bool heap for PLRU, and the same
// splitmix64 sequence for random.
type tlbRef struct {
	sets, ways int
	repl       Replacement
	slot       [][]uint64 // [set][way] tag, 0 = invalid
	pfn        map[uint64]uint64
	mru        [][]int  // LRU: valid ways of each set, most recent first
	tree       [][]bool // PLRU: heap-ordered nodes; true = the victim is in the right subtree
	rng        uint64
}

func newTLBRef(g TLBGeometry, r Replacement, seed uint64) *tlbRef {
	m := &tlbRef{sets: g.Entries / g.Ways, ways: g.Ways, repl: r, rng: seed, pfn: map[uint64]uint64{}}
	for range m.sets {
		m.slot = append(m.slot, make([]uint64, m.ways))
		m.mru = append(m.mru, nil)
		m.tree = append(m.tree, make([]bool, m.ways))
	}
	return m
}

func (m *tlbRef) setOf(tag uint64) int { return int(tag&(1<<36-1)) % m.sets }

func (m *tlbRef) wayOf(tag uint64) (set, way int) {
	set = m.setOf(tag)
	return set, slices.Index(m.slot[set], tag)
}

func (m *tlbRef) use(set, way int) {
	switch m.repl {
	case ReplLRU:
		l := slices.DeleteFunc(m.mru[set], func(w int) bool { return w == way })
		m.mru[set] = slices.Insert(l, 0, way)
	case ReplPLRU:
		for node := m.ways - 1 + way; node > 0; node = (node - 1) / 2 {
			parent := (node - 1) / 2
			m.tree[set][parent] = node == 2*parent+1 // used the left: next victim on the right
		}
	}
}

func (m *tlbRef) lookup(tag uint64) (pfn uint64, hit bool) {
	set, way := m.wayOf(tag)
	if way < 0 {
		return 0, false
	}
	m.use(set, way)
	return m.pfn[tag], true
}

func tlbRefSplitmix(state *uint64) uint64 {
	*state += 0x9E3779B97F4A7C15
	z := *state
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

func (m *tlbRef) insert(tag, pfn uint64) (evicted uint64) {
	set, way := m.wayOf(tag)
	if way < 0 {
		way = slices.Index(m.slot[set], 0)
	}
	if way < 0 {
		switch m.repl {
		case ReplLRU:
			way = m.mru[set][len(m.mru[set])-1]
		case ReplRandom:
			hi, _ := bits.Mul64(tlbRefSplitmix(&m.rng), uint64(m.ways))
			way = int(hi)
		case ReplPLRU:
			node := 0
			for node < m.ways-1 {
				if m.tree[set][node] {
					node = 2*node + 2
				} else {
					node = 2*node + 1
				}
			}
			way = node - (m.ways - 1)
		}
		evicted = m.slot[set][way]
		m.remove(set, way)
	}
	m.slot[set][way] = tag
	m.pfn[tag] = pfn
	m.use(set, way)
	return evicted
}

func (m *tlbRef) remove(set, way int) {
	delete(m.pfn, m.slot[set][way])
	m.slot[set][way] = 0
	m.mru[set] = slices.DeleteFunc(m.mru[set], func(w int) bool { return w == way })
}

func (m *tlbRef) invalidateIf(f func(tag uint64) bool) int {
	c := 0
	for s := range m.slot {
		for w, tag := range m.slot[s] {
			if tag != 0 && f(tag) {
				m.remove(s, w)
				c++
			}
		}
	}
	return c
}

func (m *tlbRef) invalidateAll() int {
	c := m.invalidateIf(func(uint64) bool { return true })
	for _, t := range m.tree {
		clear(t)
	}
	return c
}

func (m *tlbRef) contents() []uint64 {
	var out []uint64
	for _, s := range m.slot {
		for _, tag := range s {
			if tag != 0 {
				out = append(out, tag)
			}
		}
	}
	slices.Sort(out)
	return out
}

func tlbContents(tl *tlb) []uint64 {
	var out []uint64
	for _, tag := range tl.tags {
		if tag != 0 {
			out = append(out, tag)
		}
	}
	slices.Sort(out)
	return out
}

// tlbCheckInvariants verifies the structural invariants stated in tlb.go.
func tlbCheckInvariants(t *testing.T, tl *tlb) {
	t.Helper()
	seen := map[uint64]bool{}
	n := 0
	for i, tag := range tl.tags {
		if tag != tl.entries[i].tag {
			t.Fatalf("way %d: tags %#x != entries.tag %#x", i, tag, tl.entries[i].tag)
		}
		if tag == 0 {
			continue
		}
		n++
		if tag&tlbTagValid == 0 || seen[tag] {
			t.Fatalf("way %d: bad or duplicate tag %#x", i, tag)
		}
		seen[tag] = true
		if got, want := i/tl.ways, int(tag&tl.setMask); got != want {
			t.Fatalf("tag %#x in set %d, want %d", tag, got, want)
		}
		if tl.find(tag) != i {
			t.Fatalf("tag %#x at way %d: find returns %d", tag, i, tl.find(tag))
		}
	}
	if n != tl.len() {
		t.Fatalf("len() = %d, counted %d", tl.len(), n)
	}
	if tl.links != nil {
		// The LRU list holds exactly the valid ways, each once, linked both ways.
		count, prev := 0, int32(-1)
		for i := tl.lhead; i >= 0; i = tl.links[i].next {
			if tl.tags[i] == 0 || tl.links[i].prev != prev || count > n {
				t.Fatalf("LRU list broken at way %d (prev %d, want %d)", i, tl.links[i].prev, prev)
			}
			prev = i
			count++
		}
		if count != n || tl.ltail != prev {
			t.Fatalf("LRU list has %d ways ending at %d, want %d ending at %d", count, prev, n, tl.ltail)
		}
		for _, w := range tl.hitLog[:tl.nlog] { // the log's uses are of valid ways (tlblru.go)
			if tl.tags[w] == 0 {
				t.Fatalf("hit log holds invalid way %d", w)
			}
		}
	}
	if tl.index == nil {
		return
	}
	ways := map[uint32]bool{}
	for s, v := range tl.index {
		if v == 0 {
			continue
		}
		if int(v) > len(tl.tags) || tl.tags[v-1] == 0 || ways[v] {
			t.Fatalf("index slot %d: stale or duplicate way+1 %d", s, v)
		}
		ways[v] = true
		// Every slot from the home to here must be occupied, or lookups stop early.
		for h := tl.home(tl.tags[v-1]); h != uint64(s); h = (h + 1) & tl.idxMask {
			if tl.index[h] == 0 {
				t.Fatalf("index slot %d: gap at %d in probe chain of way %d", s, h, v-1)
			}
		}
	}
	if len(ways) != n {
		t.Fatalf("index holds %d ways, %d valid", len(ways), n)
	}
}

// tlbStream generates accesses mixing a hot set, sequential sweeps and
// uniform traffic over a range larger than the TLB, in several ASIDs, with
// global pages and walk-cache tags.
type tlbStream struct {
	r        *rand.Rand
	entries  int
	mode     int
	left     int
	sweep    uint64
	hotBase  uint64
	hotSize  uint64
	asids    []uint16
	curASID  uint16
	lastTags []uint64
}

func (s *tlbStream) next() uint64 {
	if s.left == 0 {
		s.mode = []int{0, 0, 0, 0, 0, 1, 2, 2}[s.r.IntN(8)]
		s.left = 50 + s.r.IntN(16*s.entries+50)
		if s.r.IntN(4) == 0 {
			s.hotBase = s.r.Uint64N(1 << 24)
		}
		s.sweep = s.r.Uint64N(1 << 24)
		s.hotSize = uint64(max(1, s.entries/2+s.r.IntN(s.entries+1))) // straddles capacity
		s.curASID = s.asids[s.r.IntN(len(s.asids))]
	}
	s.left--
	var page uint64
	switch s.mode {
	case 0: // hot set of 1/2 to 3/2 of the TLB
		page = s.hotBase + s.r.Uint64N(s.hotSize)
	case 1: // sequential sweep
		s.sweep++
		page = s.sweep
	default: // uniform over 4x the TLB
		page = s.hotBase + s.r.Uint64N(uint64(4*s.entries))
	}
	if s.r.IntN(64) == 0 { // another ASID now and then
		s.curASID = s.asids[s.r.IntN(len(s.asids))]
	}
	va := page << 12
	var tag uint64
	switch k := s.r.IntN(40); {
	case k == 0:
		tag = globalLeafTag(va)
	case k <= 2:
		tag = walkTag(s.curASID, s.r.IntN(3), va)
	default:
		tag = leafTag(s.curASID, va)
	}
	s.lastTags = append(s.lastTags, tag)
	if len(s.lastTags) > 64 {
		s.lastTags = s.lastTags[1:]
	}
	return tag
}

var tlbRefGeometries = []TLBGeometry{
	{48, 48}, {16, 16}, {64, 64}, {128, 128}, {1280, 5}, {1024, 4}, {64, 4},
	{8, 2}, {1, 1}, {256, 1}, {512, 2}, {32, 8}, {96, 3},
}

// TestTLBMatchesReference runs random streams through tlb and tlbRef and
// demands the same hits, misses, victims and final contents.
func TestTLBMatchesReference(t *testing.T) {
	ops := 60000
	if testing.Short() {
		ops = 10000
	}
	for _, g := range tlbRefGeometries {
		for _, r := range []Replacement{ReplLRU, ReplRandom, ReplPLRU} {
			if g.Validate(r) != nil {
				continue
			}
			t.Run(fmt.Sprintf("%v/%v", g, r), func(t *testing.T) {
				t.Parallel()
				seed := uint64(g.Entries)*1000 + uint64(g.Ways)*10 + uint64(r)
				tlbRunReference(t, g, r, seed, max(ops, ops/600*g.Entries))
			})
		}
	}
}

func tlbRunReference(t *testing.T, g TLBGeometry, r Replacement, seed uint64, ops int) {
	tl, err := newTLB(g, r, seed)
	if err != nil {
		t.Fatal(err)
	}
	ref := newTLBRef(g, r, seed)
	rnd := rand.New(rand.NewPCG(seed, 42))
	st := &tlbStream{r: rnd, entries: g.Entries, asids: []uint16{1, 2, 3, 0xffff}}
	var hits, misses, refHits, refMisses, evictions int
	rare := max(1, g.Entries/64)
	version := uint64(0)
	for op := range ops {
		k := rnd.IntN(10000)
		if k >= 9800 && rnd.IntN(rare) != 0 {
			k = 0 // keep big TLBs' flushes rare enough for them to fill
		}
		switch {
		case k < 9000 || k >= 9917: // access: hit, or fill on miss
			tag := st.next()
			e := tl.lookup(tag)
			pfn, ok := ref.lookup(tag)
			if e != nil {
				hits++
				if e.tag != tag || e.pfn != pfn {
					t.Fatalf("op %d: hit %#x returned tag %#x pfn %#x, want pfn %#x", op, tag, e.tag, e.pfn, pfn)
				}
			} else {
				misses++
			}
			if ok {
				refHits++
			} else {
				refMisses++
			}
			if (e != nil) != ok {
				t.Fatalf("op %d: lookup %#x hit=%v, reference hit=%v", op, tag, e != nil, ok)
			}
			if !ok {
				version++
				evictions += tlbCheckInsert(t, op, tl, ref, tag, version)
			}
		case k < 9400: // refill, possibly of a present tag (overwrite in place)
			version++
			evictions += tlbCheckInsert(t, op, tl, ref, st.next(), version)
		case k < 9800:
			tag := st.next()
			if len(st.lastTags) > 0 && rnd.IntN(2) == 0 {
				tag = st.lastTags[rnd.IntN(len(st.lastTags))]
			}
			if a, b := tl.invalidateTag(tag), ref.invalidateIf(func(x uint64) bool { return x == tag }); a != b {
				t.Fatalf("op %d: invalidateTag(%#x) = %d, reference %d", op, tag, a, b)
			}
		case k < 9905:
			asid := st.asids[rnd.IntN(len(st.asids))]
			a := tl.invalidateASID(asid)
			b := ref.invalidateIf(func(x uint64) bool { return x&tlbTagGlobal == 0 && uint16(x>>36) == asid })
			if a != b {
				t.Fatalf("op %d: invalidateASID(%d) = %d, reference %d", op, asid, a, b)
			}
		case k < 9915: // range invalidation through the slow path
			lo := st.hotBase << 12
			hi := lo + uint64(rnd.IntN(g.Entries+1))<<12
			in := func(tag uint64) bool { return tagKind(tag) == 0 && tagVA(tag) >= lo && tagVA(tag) < hi }
			a := tl.invalidateMatch(func(e *tlbEntry) bool { return in(e.tag) })
			if b := ref.invalidateIf(in); a != b {
				t.Fatalf("op %d: invalidateMatch = %d, reference %d", op, a, b)
			}
		default:
			if a, b := tl.invalidateAll(), ref.invalidateAll(); a != b {
				t.Fatalf("op %d: invalidateAll = %d, reference %d", op, a, b)
			}
		}
		if op%997 == 0 {
			tlbCheckInvariants(t, tl)
		}
	}
	tlbCheckInvariants(t, tl)
	if hits != refHits || misses != refMisses {
		t.Fatalf("hits/misses %d/%d, reference %d/%d", hits, misses, refHits, refMisses)
	}
	if got, want := tlbContents(tl), ref.contents(); !slices.Equal(got, want) {
		t.Fatalf("contents differ: %d tags vs reference %d", len(got), len(want))
	}
	if hits < ops/20 || evictions < ops/20 {
		t.Fatalf("degenerate stream: %d hits, %d evictions", hits, evictions)
	}
	t.Logf("%d ops: %d hits, %d misses, %d evictions, %d resident", ops, hits, misses, evictions, tl.len())
}

func tlbCheckInsert(t *testing.T, op int, tl *tlb, ref *tlbRef, tag, pfn uint64) (evictions int) {
	t.Helper()
	ev, did := tl.insert(tlbEntry{tag: tag, pfn: pfn})
	refEv := ref.insert(tag, pfn)
	if did != (refEv != 0) || ev.tag != refEv {
		t.Fatalf("op %d: insert %#x evicted %#x (%v), reference %#x", op, tag, ev.tag, did, refEv)
	}
	if did {
		return 1
	}
	return 0
}

// TestTLBHashIndexConsistency churns fully associative TLBs over a tag space
// small enough to collide heavily and checks the index after every operation.
func TestTLBHashIndexConsistency(t *testing.T) {
	for _, g := range []TLBGeometry{{16, 16}, {48, 48}, {64, 64}, {1024, 1024}} {
		t.Run(g.String(), func(t *testing.T) {
			t.Parallel()
			tl, err := newTLB(g, ReplRandom, 7)
			if err != nil {
				t.Fatal(err)
			}
			if tl.index == nil {
				t.Fatal("fully associative TLB has no hash index")
			}
			rnd := rand.New(rand.NewPCG(uint64(g.Entries), 1))
			space := uint64(3 * g.Entries)
			every := 1 + g.Entries/64
			for op := range 20000 {
				tag := leafTag(uint16(rnd.IntN(3)), rnd.Uint64N(space)<<12)
				switch k := rnd.IntN(100); {
				case k < 60:
					tl.insert(tlbEntry{tag: tag})
					if tl.lookup(tag) == nil {
						t.Fatalf("op %d: inserted tag %#x not found", op, tag)
					}
				case k < 85:
					tl.invalidateTag(tag)
					if tl.lookup(tag) != nil {
						t.Fatalf("op %d: invalidated tag %#x still found", op, tag)
					}
				case k < 95:
					tl.invalidateMatch(func(e *tlbEntry) bool { return e.tag%7 == 0 })
				case k < 99:
					tl.invalidateASID(uint16(rnd.IntN(3)))
				default:
					tl.invalidateAll()
				}
				if op%every == 0 {
					tlbCheckInvariants(t, tl)
				}
			}
			tlbCheckInvariants(t, tl)
		})
	}
}

// TestTLBSnapshotReplacement: a TLB restored from a snapshot makes the same
// replacement decisions as it did from the state the snapshot took, for
// every policy (the litmus explorer's Save/Restore relies on it).
func TestTLBSnapshotReplacement(t *testing.T) {
	for _, g := range []TLBGeometry{{48, 48}, {16, 16}, {64, 4}, {8, 2}} {
		for _, r := range []Replacement{ReplLRU, ReplRandom, ReplPLRU} {
			if g.Validate(r) != nil {
				continue
			}
			t.Run(fmt.Sprintf("%v/%v", g, r), func(t *testing.T) {
				tl, err := newTLB(g, r, 3)
				if err != nil {
					t.Fatal(err)
				}
				rnd := rand.New(rand.NewPCG(uint64(g.Entries), uint64(r)))
				tag := func() uint64 { return leafTag(1, rnd.Uint64N(uint64(3*g.Entries))<<12) }
				for range 20 * g.Entries { // hits, fills and evictions
					if tl.lookup(tag()) == nil {
						tl.insert(tlbEntry{tag: tag()})
					}
				}
				var s tlbSnapshot
				s.save(tl)
				run := func() (out []uint64) {
					r := rand.New(rand.NewPCG(9, 9))
					for range 10 * g.Entries {
						x := leafTag(1, r.Uint64N(uint64(3*g.Entries))<<12)
						if tl.lookup(x) == nil {
							ev, _ := tl.insert(tlbEntry{tag: x})
							out = append(out, ev.tag)
						}
					}
					return out
				}
				first := run()
				s.restore(tl)
				tlbCheckInvariants(t, tl)
				if again := run(); !slices.Equal(first, again) {
					t.Fatal("the restored TLB evicts differently")
				}
			})
		}
	}
}
