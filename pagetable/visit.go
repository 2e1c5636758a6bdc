package pagetable

import "sync/atomic"

// Visitor is called by VisitRange for the valid level-3 descriptors of a
// range, as gVisor's pagetables visitors are.
type Visitor interface {
	// Visit is called for each level-3 slot in [start, end) whose
	// descriptor is valid, in VA order. Returning false stops the walk.
	// The descriptor may change after VisitRange saw it valid: reload it.
	Visit(va uint64, s Slot) bool
}

// VisitorFunc adapts a function to Visitor.
type VisitorFunc func(va uint64, s Slot) bool

// Visit calls f.
func (f VisitorFunc) Visit(va uint64, s Slot) bool { return f(va, s) }

// LeafTable is one existing level-3 table; kernel walkers take its lock (the
// split PTL) and then work on its slots.
type LeafTable struct {
	PFN    uint64 // the table's frame
	Base   uint64 // VA mapped by entry 0, 2 MiB aligned
	Parent Slot   // the level-2 descriptor that linked the table when it was found

	words *[Entries]uint64
}

// Slot returns the slot of entry i (0-511), or the zero Slot if i is out of
// range.
func (lt LeafTable) Slot(i int) Slot {
	if lt.words == nil || i < 0 || i >= Entries {
		return Slot{}
	}
	return slotIn(lt.words, lt.PFN, i)
}

// Linked reports whether lt's parent descriptor still points at it: the
// recheck Linux's pte_offset_map_lock makes (pmd_same) after taking the PTL.
func (lt LeafTable) Linked() bool {
	p := lt.Parent.Load()
	return p.IsTable(Levels-2) && p.PFN() == lt.PFN
}

// clampRange page-aligns [start, end) outwards and clamps it to the 48-bit
// VA space; false if it is empty.
func clampRange(start, end uint64) (uint64, uint64, bool) {
	start &^= PageSize - 1
	if end > MaxVA {
		end = MaxVA
	}
	end = (end + PageSize - 1) &^ (PageSize - 1)
	return start, end, start < end
}

// span returns the indices [lo, hi) of the entries of the table at base
// whose 1<<shift spans overlap [start, end), which must overlap the table.
func span(base uint64, shift uint, start, end uint64) (lo, hi int) {
	size := uint64(1) << shift
	hi = Entries
	if start > base {
		lo = int((start - base) >> shift)
	}
	if tableEnd := base + Entries*size; end < tableEnd {
		hi = int((end - base + size - 1) >> shift)
	}
	return lo, hi
}

// VisitRange calls v.Visit for each level-3 slot in [start, end) whose
// descriptor is valid, in VA order, until it returns false. The range is
// page-aligned outwards and clamped to 2^48. It may run concurrently with
// Ensure and with descriptor updates; it sees each descriptor once.
func (t *Tables) VisitRange(start, end uint64, v Visitor) {
	t.LeafTables(start, end, func(lt LeafTable, lo, hi int) bool {
		for i := lo; i < hi; i++ {
			s := lt.Slot(i)
			if s.Load().Valid() && !v.Visit(lt.Base+uint64(i)<<PageShift, s) {
				return false
			}
		}
		return true
	})
}

// LeafTables calls fn for each existing level-3 table overlapping
// [start, end), in VA order, with lo..hi (hi exclusive) the entry indices
// inside [start, end). Returning false stops. The range is page-aligned
// outwards and clamped to 2^48. Linux: the pmd loop of walk_page_range.
func (t *Tables) LeafTables(start, end uint64, fn func(lt LeafTable, lo, hi int) bool) {
	start, end, ok := clampRange(start, end)
	if !ok {
		return
	}
	t.leafTables(t.root, 0, 0, start, end, fn)
}

// leafTables runs LeafTables below the level-level table in frame pfn,
// which maps VAs from base; false if fn stopped the walk.
func (t *Tables) leafTables(pfn uint64, level int, base, start, end uint64, fn func(LeafTable, int, int) bool) bool {
	words := t.mem.Words(pfn)
	if words == nil {
		return true
	}
	shift := LevelShift(level)
	lo, hi := span(base, shift, start, end)
	for i := lo; i < hi; i++ {
		s := slotIn(words, pfn, i)
		p := s.Load()
		if !p.IsTable(level) {
			continue
		}
		va := base + uint64(i)<<shift
		if level < Levels-2 {
			if !t.leafTables(p.PFN(), level+1, va, start, end, fn) {
				return false
			}
			continue
		}
		leaf := t.mem.Words(p.PFN())
		if leaf == nil {
			continue
		}
		llo, lhi := span(va, PageShift, start, end)
		if !fn(LeafTable{PFN: p.PFN(), Base: va, Parent: s, words: leaf}, llo, lhi) {
			return false
		}
	}
	return true
}

// FreeEmpty unlinks every table lying wholly inside [start, end) (levels
// 1-3, never the root) all of whose 512 descriptors are zero, bottom-up: a
// parent that becomes empty is unlinked too. For each table it stores 0 into
// the parent descriptor first (a compare-and-swap, so a descriptor changed
// behind its back is left alone) and then calls free(pfn, level, va), va being the first address the table
// mapped. free
// decides when the frame is reused: after the TLB and walk-cache flush the
// kernel requires, or at once with Memory().FreeTable; a nil free means the
// latter. The range is page-aligned outwards and clamped to 2^48. The caller
// must exclude concurrent Ensure, Map and kernel walkers on the range (the
// kernel holds the mmap lock for write); hardware walks need not be. It
// returns how many tables were unlinked. Linux: free_pgd_range.
func (t *Tables) FreeEmpty(start, end uint64, free func(pfn uint64, level int, va uint64)) int {
	start, end, ok := clampRange(start, end)
	if !ok {
		return 0
	}
	if free == nil {
		free = func(pfn uint64, _ int, _ uint64) { t.mem.FreeTable(pfn) }
	}
	n, _ := t.freeEmpty(t.root, 0, 0, start, end, free)
	return n
}

// freeEmpty runs FreeEmpty below the level-level table in frame pfn, which
// maps VAs from base. It returns how many tables it unlinked and whether the
// table is now empty.
func (t *Tables) freeEmpty(pfn uint64, level int, base, start, end uint64, free func(uint64, int, uint64)) (int, bool) {
	words := t.mem.Words(pfn)
	if words == nil {
		return 0, false
	}
	shift := LevelShift(level)
	size := uint64(1) << shift
	lo, hi := span(base, shift, start, end)
	n := 0
	for i := lo; i < hi; i++ {
		s := slotIn(words, pfn, i)
		p := s.Load()
		if !p.IsTable(level) {
			continue
		}
		va := base + uint64(i)<<shift
		covered := va >= start && va+size <= end
		var empty bool
		if level < Levels-2 {
			var c int
			c, empty = t.freeEmpty(p.PFN(), level+1, va, start, end, free)
			n += c
		} else if covered {
			empty = isEmpty(t.mem.Words(p.PFN()))
		}
		if covered && empty && s.CompareAndSwap(p, 0) {
			free(p.PFN(), level+1, va)
			n++
		}
	}
	return n, isEmpty(words)
}

// isEmpty reports whether all of a table's descriptors are zero; false for a
// missing frame, which must not be unlinked as if it were empty.
func isEmpty(words *[Entries]uint64) bool {
	if words == nil {
		return false
	}
	for i := range words {
		if atomic.LoadUint64(&words[i]) != 0 {
			return false
		}
	}
	return true
}
