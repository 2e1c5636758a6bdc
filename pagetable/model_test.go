package pagetable

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// The model tests run the same op sequences against Tables and a plain
// reference map of va -> leaf descriptor, from a seeded PRNG
// (TestTablesModel) or from fuzz bytes (FuzzTables).

// source supplies the choices that generate ops.
type source interface {
	u64n(n uint64) uint64 // in [0, n); 0 if n <= 1
}

func intn(s source, n int) int { return int(s.u64n(uint64(n))) }

type rngSource struct{ r *rand.Rand }

func (s rngSource) u64n(n uint64) uint64 {
	if n <= 1 {
		return 0
	}
	return s.r.Uint64N(n)
}

// byteSource decodes fuzz bytes: each choice takes as many bytes as n needs.
type byteSource struct {
	b         []byte
	exhausted bool
}

func (s *byteSource) u64n(n uint64) uint64 {
	if n <= 1 {
		return 0
	}
	var v uint64
	for m := n - 1; m > 0; m >>= 8 {
		if len(s.b) == 0 {
			s.exhausted = true
			break
		}
		v = v<<8 | uint64(s.b[0])
		s.b = s.b[1:]
	}
	return v % n
}

type opKind int

const (
	opMap opKind = iota
	opUnmap
	opCAS
	opLookup
	opFreeRange
	opFreeAll
)

var opNames = []string{"map", "unmap", "cas", "lookup", "free-range", "free-all"}

type op struct {
	kind       opKind
	va         uint64
	old, pte   PTE // cas: old -> pte; map: pte
	start, end uint64
}

func (o op) String() string {
	return fmt.Sprintf("%s va=%#x old=%v pte=%v range=[%#x,%#x)", opNames[o.kind], o.va, o.old, o.pte, o.start, o.end)
}

// VA clusters: a few 2 MiB regions (one L3 table each), 1 GiB regions
// (many L3 tables under one L2), a 512 GiB region (many L2 tables under one
// L1), plus random far VAs and the edges of the VA space.
var (
	clusters2M = []uint64{0x0000_0000_0040_0000, 0x0000_5555_5560_0000, 0x0000_7fff_ffe0_0000}
	clusters1G = []uint64{0x0000_0040_0000_0000, 0x0000_7f80_c000_0000}
	cluster512 = uint64(0x0000_1000_0000_0000)
	edgeVAs    = []uint64{0, PageSize, 1<<39 - PageSize, 1 << 39, 1<<30 - PageSize, MaxVA - PageSize,
		MaxVA, MaxVA + PageSize, ^uint64(0) &^ (PageSize - 1)}
	rangeSizes = []uint64{PageSize, 1 << 21, 1 << 30, 1 << 39, MaxVA}
	builders   = []func(PTE) PTE{PTE.MkClean, PTE.MkDirty, PTE.MkWrite, PTE.Wrprotect, PTE.MkOld, PTE.MkYoung}
	attrBits   = []PTE{PTEUser, PTERdonly, PTEAF, PTENG, PTEDBM, PTECont, PTEPXN, PTEUXN, PTEDirty}
)

func genVA(s source, m *model) uint64 {
	switch intn(s, 12) {
	case 0, 1, 2, 3:
		return clusters2M[intn(s, len(clusters2M))] + s.u64n(Entries)<<PageShift
	case 4, 5:
		return clusters1G[intn(s, len(clusters1G))] + s.u64n(16)<<21 + s.u64n(Entries)<<PageShift
	case 6:
		return cluster512 + s.u64n(16)<<30 + s.u64n(4)<<PageShift
	case 7:
		return s.u64n(MaxVA>>PageShift) << PageShift
	case 8:
		return edgeVAs[intn(s, len(edgeVAs))]
	default:
		if keys := m.keys(); len(keys) > 0 {
			return keys[intn(s, len(keys))]
		}
		return s.u64n(MaxVA>>PageShift) << PageShift
	}
}

func genPTE(s source) PTE {
	bits := s.u64n(1 << (len(attrBits) + 3))
	var attrs PTE
	for i, b := range attrBits {
		if bits&(1<<i) != 0 {
			attrs |= b
		}
	}
	return NewPage(s.u64n(1<<16)<<s.u64n(21), attrs).WithAttrIndx(int(bits >> len(attrBits)))
}

// genOp draws one op; it takes about ten bytes of a byteSource.
func genOp(s source, m *model) op {
	var o op
	k := intn(s, 100)
	if len(m.ref) > 150 && k < 35 {
		k = 40 // keep the reference small: unmap instead of map
	}
	if keys := m.keys(); k >= 35 && k < 72 && len(keys) > 0 && intn(s, 4) != 0 {
		o.va = keys[intn(s, len(keys))] // mostly unmap or update what is there
	} else {
		o.va = genVA(s, m)
	}
	// The range (for VisitRange and FreeEmpty) starts at the op's VA or
	// at another one, optionally aligned down to its size.
	r := intn(s, len(rangeSizes)*2*3*2)
	size := rangeSizes[r%len(rangeSizes)]
	r /= len(rangeSizes)
	o.start = o.va
	if r%2 == 0 {
		o.start = genVA(s, m)
	}
	if r/2%2 == 0 {
		o.start &^= size - 1
	}
	o.end = o.start + size*uint64(1+r/4)
	switch {
	case k < 35:
		o.kind, o.pte = opMap, genPTE(s)
	case k < 55:
		o.kind = opUnmap
	case k < 72:
		o.kind = opCAS
		if p, ok := m.ref[o.va]; ok {
			o.old = p
			if intn(s, 4) == 0 {
				o.old ^= PTEAF // stale
			}
		} else {
			o.old = genPTE(s)
		}
		if intn(s, 5) == 0 {
			o.pte = genPTE(s)
		} else {
			o.pte = builders[intn(s, len(builders))](o.old)
		}
	case k < 80:
		o.kind = opLookup
	case k < 96:
		o.kind = opFreeRange
	default:
		o.kind = opFreeAll
	}
	return o
}

type model struct {
	t         testing.TB
	mem       *testMem
	tbl       *Tables
	ref       map[uint64]PTE
	sorted    []uint64 // ref's keys in order; nil when stale
	n         int      // ops applied
	fullEvery int      // run the full (reachability) check every fullEvery ops
}

func newModel(t testing.TB, fullEvery int) *model {
	tbl, mem := newTables(t)
	return &model{t: t, mem: mem, tbl: tbl, ref: map[uint64]PTE{}, fullEvery: fullEvery}
}

func (m *model) keys() []uint64 {
	if m.sorted == nil {
		m.sorted = make([]uint64, 0, len(m.ref))
		for va := range m.ref {
			m.sorted = append(m.sorted, va)
		}
		slices.Sort(m.sorted)
	}
	return m.sorted
}

func (m *model) set(va uint64, p PTE) { m.ref[va] = p; m.sorted = nil }
func (m *model) del(va uint64)        { delete(m.ref, va); m.sorted = nil }

func (m *model) fail(o op, format string, args ...any) {
	m.t.Helper()
	m.t.Fatalf("op %d (%v): %s", m.n, o, fmt.Sprintf(format, args...))
}

func (m *model) apply(o op) {
	m.t.Helper()
	m.n++
	want, has := m.ref[o.va]
	full := m.n%m.fullEvery == 0
	switch o.kind {
	case opMap:
		err := m.tbl.Map(o.va, o.pte)
		switch {
		case o.va >= MaxVA:
			if !errors.Is(err, ErrVA) {
				m.fail(o, "Map = %v, want ErrVA", err)
			}
		case has:
			if !errors.Is(err, ErrMapped) {
				m.fail(o, "Map = %v, want ErrMapped", err)
			}
		case err != nil:
			m.fail(o, "Map: %v", err)
		default:
			m.set(o.va, o.pte)
		}
	case opUnmap:
		old, ok := m.tbl.Unmap(o.va)
		if ok != has || old != want {
			m.fail(o, "Unmap = %v %v, want %v %v", old, ok, want, has)
		}
		m.del(o.va)
	case opCAS:
		ok := m.tbl.CompareAndSwap(o.va, o.old, o.pte)
		if wantOK := has && want == o.old; ok != wantOK {
			m.fail(o, "CompareAndSwap = %v, want %v (ref %v)", ok, wantOK, want)
		}
		if ok {
			m.set(o.va, o.pte)
		}
	case opLookup:
	case opFreeRange:
		var freed []uint64
		n := m.tbl.FreeEmpty(o.start, o.end, func(pfn uint64, level int, _ uint64) {
			if level < 1 || level > 3 || pfn == m.tbl.Root() {
				m.fail(o, "free(%#x, %d)", pfn, level)
			}
			freed = append(freed, pfn)
		})
		if n != len(freed) {
			m.fail(o, "FreeEmpty = %d, freed %d", n, len(freed))
		}
		live := m.mem.live()
		if r := reachable(m.t, m.tbl); r != live-n {
			m.fail(o, "before freeing: reachable %d, live %d, unlinked %d", r, live, n)
		}
		for _, pfn := range freed {
			m.mem.FreeTable(pfn)
		}
		full = true
	case opFreeAll:
		m.tbl.FreeEmpty(0, MaxVA, nil)
		if live, need := m.mem.live(), needed(m.ref); live != need {
			m.fail(o, "after FreeEmpty(all): %d live tables, %d needed", live, need)
		}
		full = true
	}
	m.check(o, full)
}

func (m *model) check(o op, full bool) {
	m.t.Helper()
	for va, want := range m.ref {
		if got, ok := m.tbl.Lookup(va); !ok || got != want {
			m.fail(o, "Lookup(%#x) = %v %v, want %v", va, got, ok, want)
		}
	}
	want, has := m.ref[o.va]
	if got, ok := m.tbl.Lookup(o.va); ok != has || got != want {
		m.fail(o, "Lookup(op va) = %v %v, want %v %v", got, ok, want, has)
	}
	w := m.tbl.Walk(o.va)
	if o.va < MaxVA && w.Reads != w.Level+1 {
		m.fail(o, "Walk: Reads %d at Level %d", w.Reads, w.Level)
	}
	if w.OK != has || (has && (w.Level != 3 || w.PTE != want || w.Slot.Load() != want)) {
		m.fail(o, "Walk = %+v, want OK %v leaf %v", w, has, want)
	}

	// VisitRange yields exactly the reference entries in the range.
	start, end, _ := clampRange(o.start, o.end)
	var wantVAs, gotVAs []uint64
	for _, va := range m.keys() {
		if va >= start && va < end {
			wantVAs = append(wantVAs, va)
		}
	}
	m.tbl.VisitRange(o.start, o.end, VisitorFunc(func(va uint64, s Slot) bool {
		if s.Load() != m.ref[va] {
			m.fail(o, "VisitRange(%#x): slot holds %v, want %v", va, s.Load(), m.ref[va])
		}
		gotVAs = append(gotVAs, va)
		return true
	}))
	if !slices.Equal(gotVAs, wantVAs) {
		m.fail(o, "VisitRange = %#x, want %#x", gotVAs, wantVAs)
	}

	if full {
		if r, live := reachable(m.t, m.tbl), m.mem.live(); r != live {
			m.fail(o, "%d tables reachable, %d live", r, live)
		}
		m.mem.checkMisuse(m.t)
	}
}

// finish unmaps everything and checks that FreeEmpty returns to the root.
func (m *model) finish() {
	m.t.Helper()
	for _, va := range m.keys() {
		if _, ok := m.tbl.Unmap(va); !ok {
			m.t.Fatalf("final Unmap(%#x) failed", va)
		}
	}
	m.ref, m.sorted = map[uint64]PTE{}, nil
	m.tbl.FreeEmpty(0, MaxVA, nil)
	if live := m.mem.live(); live != 1 {
		m.t.Fatalf("after unmapping everything: %d live tables, want 1", live)
	}
	m.mem.checkMisuse(m.t)
}

func TestTablesModel(t *testing.T) {
	ops := 3000
	if raceEnabled {
		ops = 1200
	}
	if testing.Short() {
		ops = 300
	}
	for _, seed := range []uint64{1, 2, 3, 42, 0xdecafbad, 20260101} {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Parallel()
			m := newModel(t, 16)
			src := rngSource{rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
			maxLive, freeAlls := 0, 0
			for range ops {
				o := genOp(src, m)
				m.apply(o)
				maxLive = max(maxLive, m.mem.live())
				if o.kind == opFreeAll {
					freeAlls++
				}
			}
			t.Logf("%d ops: %d tables allocated, %d freed, max %d live, %d free-alls, %d entries left",
				ops, m.mem.allocs, m.mem.frees, maxLive, freeAlls, len(m.ref))
			m.finish()
		})
	}
}

func FuzzTables(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f"))
	f.Add([]byte("map, then unmap and free the tables of a cluster; repeat with edges"))
	seed := make([]byte, 192)
	r := rand.New(rand.NewPCG(7, 7))
	for i := range seed {
		seed[i] = byte(r.Uint32())
	}
	f.Add(seed)
	f.Fuzz(func(t *testing.T, data []byte) {
		// Bound the input: the minimizer's work grows with the square of
		// its length. 192 bytes is about 20 ops.
		if len(data) > 192 {
			data = data[:192]
		}
		m := newModel(t, 2)
		src := &byteSource{b: data}
		for !src.exhausted {
			m.apply(genOp(src, m))
		}
		m.finish()
	})
}
