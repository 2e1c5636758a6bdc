package mmu

import "github.com/mmubench/mmubench/pagetable"

// Inspection of a CPU's TLBs for the kernel's checks (the TLB invariant at
// syscall return). It reads another CPU's TLBs, so it may be called only
// from that CPU's goroutine or, in det mode, from whichever goroutine holds
// the turn (all others are parked).

// CachedLeaf is one leaf translation a CPU's L1 or L2 TLB holds.
type CachedLeaf struct {
	VA, PFN uint64
	// Write: writable without a descriptor update (AP[2] was clear when
	// filled, or the hardware dirty update has run through this entry).
	Write bool
	DBM   bool // a write may clear AP[2] in memory (re-reading the descriptor)
	User  bool // EL0 may access
	L2    bool // found in the L2 TLB (else the L1)
}

// CachedLeaves calls f for each leaf translation of asid, and each global
// one, for the pages of [start, end) that c's L1 or L2 TLB holds (once per
// TLB that holds it). An invalidation posted to c but not yet applied does
// not hide an entry: until it is applied the entry is still used.
func (c *CPU) CachedLeaves(asid uint16, start, end uint64, f func(CachedLeaf)) {
	start &^= pagetable.PageSize - 1
	if end <= start {
		return
	}
	report := func(e *tlbEntry, l2 bool) {
		f(CachedLeaf{VA: tagVA(e.tag), PFN: e.pfn, Write: e.perm&permWrite != 0, DBM: e.perm&permDBM != 0,
			User: e.perm&permUser != 0, L2: l2})
	}
	for i, t := range [...]*tlb{c.l1, c.l2} {
		if t == nil {
			continue
		}
		if pages := (end - start) >> pagetable.PageShift; pages <= 64 {
			for va := start; va < end; va += pagetable.PageSize {
				for _, tag := range [...]uint64{leafTag(asid, va), globalLeafTag(va)} {
					if w := t.find(tag); w >= 0 {
						report(&t.entries[w], i == 1)
					}
				}
			}
			continue
		}
		for w := range t.entries {
			e := &t.entries[w]
			if e.tag == 0 || tagKind(e.tag) != 0 || (!tagIsGlobal(e.tag) && tagASID(e.tag) != asid) {
				continue
			}
			if va := tagVA(e.tag); va >= start && va < end {
				report(e, i == 1)
			}
		}
	}
}

// WalkCached reports the next-level table frame c's walk cache holds for
// the level-level descriptor (0..2) on va's path in asid.
func (c *CPU) WalkCached(asid uint16, level int, va uint64) (uint64, bool) {
	if c.wc == nil {
		return 0, false
	}
	if w := c.wc.find(walkTag(asid, level, va)); w >= 0 {
		return c.wc.entries[w].pfn, true
	}
	return 0, false
}
